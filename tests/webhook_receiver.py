"""A webhook receiver on a loopback port: records every POST and answers with the statuses it is
told to (then 204). A real HTTP server in a thread, as a user's receiver would be."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class WebhookReceiver:
    url: str
    answers: list[int] = field(default_factory=list)  # statuses to answer, first first; then 204
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self._lock:
            return self.answers.pop(0) if self.answers else 204

    def record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def wait_for(self, count: int, within: float = 15.0) -> list[Received]:
        """Until `count` POSTs arrived (any status); raises if they do not within `within` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} POSTs arrived, not {count}, in {within} s")


@contextmanager
def webhook_receiver(answers: list[int] | None = None) -> Iterator[WebhookReceiver]:
    receiver_box: dict[str, WebhookReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            receiver = receiver_box["r"]
            status = receiver.next_status()
            receiver.record(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver_box["r"] = WebhookReceiver(
        f"http://127.0.0.1:{server.server_address[1]}/hooks", list(answers or [])
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver_box["r"]
    finally:
        server.shutdown()
        server.server_close()
