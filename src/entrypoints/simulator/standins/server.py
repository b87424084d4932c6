"""What every stand-in shares: an ASGI app (the subclass's `__call__`) served by uvicorn on a
loopback port, on a thread and event loop of its own (or in the foreground, as a process)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Self

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StandInServer:
    """Subclasses set `name`, implement the ASGI `__call__` and `url`, and may wrap the serving in
    `_running()`. `_release` is set when the server stops (or the subclass resets): requests it
    holds (`hang`) wait on it."""

    name = "stand-in"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port  # 0: any free port, known once bound
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._release = asyncio.Event()
        self._forced: dict[str, list[Any]] = {}  # operation -> forced answers, each with `times`

    @property
    def url(self) -> str:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        sock = self._bind()
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(sock)), name=self.name.replace(" ", "-"), daemon=True
        )
        self._thread.start()
        for _ in range(500):
            if self._server.started or not self._thread.is_alive():
                break
            time.sleep(0.01)
        if not self._server.started:
            raise RuntimeError(f"the {self.name} did not start")
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._in_loop(self._release.set)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @staticmethod
    def command_line(description: str, port: int) -> argparse.ArgumentParser:
        """The arguments of a stand-in run as a process (`python -m ...`): where it listens; the
        stand-in adds its own."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=port)
        return parser

    def serve_forever(self) -> None:
        """Run in the foreground (Ctrl-C stops it)."""
        sock = self._bind()
        self._server = uvicorn.Server(self._config())
        print(f"{self.name} listening on {self.url}", flush=True)
        asyncio.run(self._serve(sock))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it. Without it (asyncio, unlike uvloop, leaves Nagle on for
        # them), a kept-alive client waits ~40 ms for the body after the headers (delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        return sock

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )

    async def _serve(self, sock: socket.socket) -> None:
        if self._server is None:
            raise RuntimeError("_serve without a server")
        with self._lock:
            self._release = asyncio.Event()  # bound to this loop, even after an earlier start/stop
        self._loop = asyncio.get_running_loop()
        try:
            async with self._running():
                await self._server.serve(sockets=[sock])
        finally:
            self._loop = None

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """What the subclass holds while it serves (in its loop)."""
        yield

    def _take_forced(self, operation: str) -> Any:
        """The next forced answer queued for `operation` (the subclass's records, with a `times`
        count: None for ever), or None."""
        with self._lock:
            queue = self._forced.get(operation)
            if not queue:
                return None
            forced = queue[0]
            if forced.times is not None:
                forced.times -= 1
                if forced.times <= 0:
                    queue.pop(0)
            return forced

    def _in_loop(self, callback: Callable[[], object]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


async def read_request(scope: Scope, receive: Receive) -> HttpRequest | None:
    """The whole HTTP request of an ASGI call; None when the call is not HTTP."""
    if scope["type"] != "http":
        return None
    body = await read_body(receive)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return HttpRequest(scope["method"], scope["path"], headers, body)


async def read_body(receive: Receive) -> bytes:
    """An HTTP request's whole body, from the ASGI `receive` channel."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body
