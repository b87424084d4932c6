"""The real app, served by uvicorn on a free loopback port in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from dishka import Provider

from entrypoints.ioc import make_container
from entrypoints.settings import Settings
from entrypoints.web.app import create_app
from entrypoints.web.server import uvicorn_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_app(settings: Settings, *providers: Provider, port: int | None = None) -> Iterator[str]:
    """Serve the app as `agent-stream serve` does; yields its base URL (http://127.0.0.1:port)."""
    port = port or free_port()
    app = create_app(settings, make_container(settings, *providers))
    server = uvicorn.Server(uvicorn_config(app, port=port, loop="asyncio"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name=f"app-{port}", daemon=True)
    thread.start()
    try:
        for _ in range(400):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("the app failed to start")
            threading.Event().wait(0.025)
        else:
            raise RuntimeError("the app did not start in 10 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
