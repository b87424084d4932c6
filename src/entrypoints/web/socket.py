"""`LitestarCallSocket`: the `CallSocket` port over an accepted Litestar WebSocket.

It talks raw ASGI messages (the socket's own `receive`/`send`), which is what Litestar's helpers
do underneath, minus their per-message overhead on the media path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

from litestar import WebSocket

from application.ports.live_call import CallSocket
from domain.close_policy import Close


class LitestarCallSocket(CallSocket):
    __slots__ = ("_closed", "_receive", "_send")

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        # raw ASGI callables, typed loosely: we build and read the messages ourselves
        self._receive: Callable[[], Awaitable[dict[str, Any]]] = cast("Any", socket.receive)
        self._send: Callable[[dict[str, Any]], Awaitable[None]] = cast("Any", socket.send)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def receive(self) -> str | bytes | None:
        if self._closed:
            return None
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                if text is not None:
                    return text
                data: bytes | None = message.get("bytes")
                return data or b""
            if kind == "websocket.disconnect":
                self._closed = True
                return None

    async def send(self, text: str) -> bool:
        if self._closed:
            return False
        try:
            await self._send({"type": "websocket.send", "text": text})
        except Exception:  # noqa: BLE001 - any send failure means the peer is gone
            self._closed = True
            return False
        return True

    async def close(self, close: Close) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # already gone: nothing left to tell the peer
            await self._send({"type": "websocket.close", "code": int(close.code), "reason": close.reason})
