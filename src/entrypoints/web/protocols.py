"""Uvicorn's HTTP and WebSocket protocols with the bounds a public port needs (issue 10).

As shipped, uvicorn (httptools) leaves a connection open for ever when it never finishes a request
(an idle TCP connection, a head or a body that stops half-way: slowloris), puts no limit on the
request line or the header fields, and hands a WebSocket upgrade to `websockets`, whose own limits
(8,192-byte lines) refuse an over-long URL with a 414 that is queued but never written: the client
waits with nothing sent. So:

- `BoundedHttpToolsProtocol` gives every request `REQUEST_TIMEOUT` seconds from its first byte (or
  from the connection, for the first one) until it is received whole or upgraded; past it a
  request whose head is incomplete is answered 408, one whose body is incomplete is closed, and an
  idle connection is closed. A URL over `MAX_URL_BYTES` is answered 414, header fields over
  `MAX_HEADER_BYTES` (or more than `MAX_HEADERS` of them) 431, before the app sees anything. The
  bounds are tighter than `websockets`' so an upgrade never meets a limit of its own.
- A refused request is answered and half-closed, and the connection closed once the client stops
  sending (at most `LINGER_SECONDS` later): closed at once, the client's unread bytes would make
  the kernel reset the connection and lose the answer.
- `ClosingWebSocketsProtocol` writes out and closes whatever `websockets` refused during the
  opening handshake (any 4xx it prepared, or an unparseable request), instead of leaving it queued.

Connections that finished their request are not affected: uvicorn's keep-alive timeout applies
between requests, and a WebSocket call lives as long as it lasts.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

REQUEST_TIMEOUT: Final = 10.0  # seconds to receive one whole request (head and body)
MAX_URL_BYTES: Final = 8000  # below websockets' 8,192-byte request line
MAX_HEADER_BYTES: Final = 32 * 1024  # all header names and values of one request
MAX_HEADER_LINE_BYTES: Final = 8000  # one header line, below websockets' 8,192 bytes
MAX_HEADERS: Final = 100  # below websockets' 128
LINGER_SECONDS: Final = 2.0  # after a refusal: what the client still sends is read and dropped


class _RequestRefusedError(Exception):
    """Raised from a parser callback to stop parsing; httptools re-raises it as a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._receiving = False  # a request has begun and is not received whole yet
        self._head_done = False
        self._header_bytes = 0
        self._header_count = 0
        self._lingering = False  # answered and half-closed: what still comes is dropped

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    # the request deadline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_TIMEOUT, self._request_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _request_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._receiving and not self._head_done:
            self._answer(408, "Request timeout")
        else:  # idle since the connection opened, or a body that stopped coming: the app is told
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._receiving, self._head_done = True, False
        self._header_bytes = self._header_count = 0
        if self._deadline is None:  # a keep-alive connection's next request
            self._arm()

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._receiving = False
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # from here the WebSocket protocol owns the connection
        super().handle_websocket_upgrade()

    # the size of the request head

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            self._refuse(414, "Request URL too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if (
            self._header_count > MAX_HEADERS
            or self._header_bytes > MAX_HEADER_BYTES
            or len(name) + len(value) > MAX_HEADER_LINE_BYTES
        ):
            self._refuse(431, "Request header fields too large")
        super().on_header(name, value)

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _RequestRefusedError(message)

    def send_400_response(self, msg: str) -> None:
        """Uvicorn answers every parser error 400; a refusal raised by a callback says its own."""
        refusal, self._refusal = self._refusal, None
        status, message = refusal if refusal is not None else (400, msg)
        if refusal is not None:
            self.logger.warning("HTTP request refused: %s", message)
        self._answer(status, message)

    def _answer(self, status: int, message: str) -> None:
        self._disarm()
        body = message.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(head))
        self._close_lingering()

    def _close_lingering(self) -> None:
        """Close without losing the answer (a lingering close, as nginx and Apache do). Closed at
        once while the client is still sending (the rest of a 100 kB URL), the unread bytes make
        the kernel reset the connection, and the reset can destroy the answer before the client
        has read it. So: the answer then FIN, what still comes is dropped, and the connection
        closes when the client closes its side (`eof_received`) or after `LINGER_SECONDS`."""
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class ClosingWebSocketsProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            # websockets refused the opening request (and may have prepared an answer): send it, close
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()


__all__ = ["REQUEST_TIMEOUT", "BoundedHttpToolsProtocol", "ClosingWebSocketsProtocol"]
