"""`agent-stream webhook-listen`: a receiver for the end-of-call webhooks, to try them out.

It verifies each POST's Standard Webhooks signature with the `standardwebhooks` library (the
agent's `whsec_` secret, a timestamp within five minutes), answers 204 and prints it: a summary
line, then the body as one JSON line. A POST that does not verify gets 401 and one line saying so.
It never prints the secret. A receiver of your own does the same, and drops a `webhook-id` it
has seen (a delivery is retried until a 2xx answers it, so it may come more than once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

MAX_BODY_BYTES = 10 * 1024 * 1024


def summary(payload: dict[str, Any], message_id: str) -> str:
    """One line for people: the event, the run, how it ended."""
    found = payload.get("data")
    data: dict[str, Any] = found if isinstance(found, dict) else {}
    return (
        f"{payload.get('type')} {data.get('name')} state={data.get('state')} "
        f"end_reason={data.get('end_reason')} disposition={data.get('disposition')} webhook-id={message_id}"
    )


def make_listener(host: str, port: int, secret: str, out: Callable[[str], None]) -> ThreadingHTTPServer:
    """A server that verifies POSTs with `secret` and reports each through `out`."""
    verifier = Webhook(secret)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                payload = verifier.verify(body, headers)
            except (WebhookVerificationError, ValueError) as exc:
                with lock:
                    out(f"refused: {exc} (from {self.client_address[0]})")
                self._answer(HTTPStatus.UNAUTHORIZED)
                return
            self._answer(HTTPStatus.NO_CONTENT)
            with lock:
                out(summary(payload, headers.get("webhook-id", "")))
                out(json.dumps(payload, ensure_ascii=False))

        def _answer(self, status: HTTPStatus) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None  # the lines above say what happened; no access log

    return ThreadingHTTPServer((host, port), Handler)
