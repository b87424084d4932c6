"""Runs the README's first quick-start line for real (`agent-stream demo`, which serves on the
embedded SQLite default): /health answers 200 and a stream to an unknown agent closes 1008, so the
quick start cannot rot. .ci/run runs it with `uv run --no-dev` in a fresh environment, as the
README does: serving must need nothing of the dev group. (The demo's own call is exercised by
tests/e2e/test_cli_call_demo.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from websockets.asyncio.client import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def unknown_agent_close(port: int) -> tuple[int | None, str | None]:
    url = f"ws://127.0.0.1:{port}/api/v1/agent-stream/{uuid.uuid4()}?provider=cloudonix&Domain=acme"
    async with connect(url) as ws:
        with contextlib.suppress(Exception):  # the close is what we want to see
            await asyncio.wait_for(ws.recv(), 10)
        return ws.close_code, ws.close_reason


def main() -> int:
    workdir = tempfile.mkdtemp(prefix="agent-stream-quickstart-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")}
    agent_stream = shutil.which("agent-stream")
    if agent_stream is None:
        print("agent-stream is not on PATH", file=sys.stderr)
        return 1
    server = subprocess.Popen(  # noqa: S603 - our own entry point
        [agent_stream, "demo", "--port", str(port)], cwd=workdir, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    if answer.status != 200:
                        raise OSError(answer.status)
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the server did not come up", file=sys.stderr)
                    return 1
                time.sleep(0.3)
        code, reason = asyncio.run(unknown_agent_close(port))
        print(f"/health 200; unknown agent closed {code} {reason!r}")
        if (code, reason) != (1008, "Workflow not found"):
            return 1
        for path in ("/console/sign-in", "/console/static/htmx.min.js", "/console/static/sse.js"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                if answer.status != 200 or not answer.read():
                    print(f"the console's {path} is not served", file=sys.stderr)
                    return 1
        print("the console and its static files are served (nothing from elsewhere)")
        if not os.path.exists(os.path.join(workdir, "agent-stream.db")):
            print("the embedded database was not created", file=sys.stderr)
            return 1
        return 0
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as a newcomer stops it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
