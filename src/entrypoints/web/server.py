"""Serving with uvicorn, plus a graceful drain on SIGTERM/SIGINT (`serve` and `demo` alike).

Uvicorn's own shutdown closes every WebSocket at once (code 1012), and closing a Cloudonix stream
does not end the call: the caller would sit in the CXML's `<Pause>`. So the first signal only
starts a drain (no new calls: 1013, readiness 503; live calls go on for
`AGENT_STREAM_DRAIN_TIMEOUT` seconds, then are hung up through the provider); uvicorn shuts down
after it. A second signal cuts the drain short: every live call is hung up through the provider
at once (in parallel, at most `FORCED_HANGUP_SECONDS`), then uvicorn stops. A third stops at once.
Either way a call ended by the shutdown records `end_reason` `drained`.
"""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import Any

import structlog
import uvicorn
from dishka import AsyncContainer
from litestar import Litestar

from application.live_calls import LiveCallRegistry, drain
from entrypoints.web.protocols import BoundedHttpToolsProtocol, ClosingWebSocketsProtocol

log = structlog.get_logger(__name__)

FORCED_HANGUP_SECONDS = 10.0  # the drain's hang-ups, all at once (each provider call is bounded too)
ENDING_GRACE_SECONDS = 5  # after the drain, for calls still storing their end
WS_MAX_MESSAGE_BYTES = 1024 * 1024


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, container: AsyncContainer, drain_timeout: float) -> None:
        super().__init__(config)
        self._container = container
        self._drain_timeout = drain_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._cut_short = asyncio.Event()

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self.should_exit or self._cut_short.is_set():
            super().handle_exit(sig, frame)  # a third signal, or before serving: stop at once
        else:
            self._loop.call_soon_threadsafe(self._next_step)

    def _next_step(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())
        else:
            log.warning("drain_cut_short", reason="a second signal: live calls are hung up now")
            self._cut_short.set()

    async def _drain_then_exit(self) -> None:
        try:
            registry = await self._container.get(LiveCallRegistry)
            await drain(registry, self._drain_timeout, self._cut_short, FORCED_HANGUP_SECONDS)
        except Exception:
            log.exception("drain_failed")
        finally:
            self.should_exit = True


def uvicorn_config(
    app: Litestar,
    host: str = "127.0.0.1",
    port: int = 8000,
    loop: str = "uvloop",
    graceful_shutdown_seconds: int = 10,
) -> uvicorn.Config:
    """The one uvicorn configuration (`serve`, `demo` and the tests' served app): sans-I/O
    websockets, no per-message deflate (providers don't use it), and no access log (its lines
    carry the raw path and query string). After a drain, calls still ending get
    `graceful_shutdown_seconds` before their tasks are cancelled.

    Hostile clients (entrypoints.web.protocols): httptools and websockets-sansio with bounds: a
    request must arrive whole within 10 s (else 408 or closed), a URL over 8,000 bytes is 414,
    header fields over 32 KiB are 431, and a WebSocket message over 1 MiB closes the stream 1009
    (a real media frame is ~200 bytes and a `start` ~1 KiB; uvicorn's default is 16 MiB)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=ClosingWebSocketsProtocol,
        http=BoundedHttpToolsProtocol,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        loop=loop,
        lifespan="on",
        log_config=None,
        access_log=False,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=graceful_shutdown_seconds,
    )


def draining_server(
    app: Litestar, container: AsyncContainer, host: str, port: int, drain_timeout: float
) -> DrainingServer:
    """The server of `serve` and `demo`; after the drain, calls still ending get a few seconds."""
    config = uvicorn_config(app, host, port, graceful_shutdown_seconds=ENDING_GRACE_SECONDS)
    return DrainingServer(config, container, drain_timeout)


__all__ = ["DrainingServer", "draining_server", "uvicorn_config"]
