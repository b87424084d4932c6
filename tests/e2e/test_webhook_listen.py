"""`agent-stream webhook-listen`: prints each POST whose Standard Webhooks signature verifies,
answers others 401, and never prints the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook

from domain.webhooks import new_secret
from tests.served import free_port

SECRET = new_secret()


@pytest.fixture
def listener() -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "entrypoints.cli", "webhook-listen", "--port", str(port), "--secret", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")},
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith(f"listening on http://127.0.0.1:{port}/")
    try:
        yield process, f"http://127.0.0.1:{port}/"
    finally:
        process.kill()
        process.wait(timeout=10)


def _signed(body: bytes, secret: str, message_id: str = "msg_test") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
    }


def test_a_verified_post_is_printed_and_a_forged_one_refused(listener) -> None:
    process, url = listener
    body = json.dumps(
        {
            "type": "run.ended",
            "timestamp": "t",
            "data": {"name": "WR-AGS-00000042", "disposition": "completed"},
        }
    ).encode()
    assert httpx.post(url, content=body, headers=_signed(body, SECRET)).status_code == 204
    assert httpx.post(url, content=body, headers=_signed(body, new_secret())).status_code == 401
    assert httpx.post(url, content=body + b" ", headers=_signed(body, SECRET)).status_code == 401
    time.sleep(0.2)
    process.kill()
    out, _ = process.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].startswith("run.ended WR-AGS-00000042") and "disposition=completed" in lines[0]
    assert json.loads(lines[1])["data"]["name"] == "WR-AGS-00000042"
    assert [line for line in lines[2:] if line.startswith("refused:")] == lines[2:4]
    assert SECRET not in out
