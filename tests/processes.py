"""Real `agent-stream serve` processes for tests that need several instances, signals or kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from tests.served import free_port


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no drain, no clean-up, as a crash or an OOM kill would leave it."""
        self.process.kill()
        self.process.wait(timeout=10)

    async def wait_healthy(self, within: float = 30.0) -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(round(within / 0.1)):
                if self.process.poll() is not None:
                    raise RuntimeError(f"serve exited with {self.process.returncode}")
                try:
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"serve on {self.port} did not answer /health")

    async def exited(self, within: float) -> int:
        for _ in range(round(within / 0.05)):
            if (code := self.process.poll()) is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(f"serve on {self.port} still running after {within} s")


def serve_env(database_url: str, cloudonix_url: str, secret_key: str, **settings: str) -> dict[str, str]:
    """The environment of a `serve` process: ours, minus any AGENT_STREAM_* of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")}
    env |= {
        "AGENT_STREAM_DATABASE_URL": database_url,
        "AGENT_STREAM_CLOUDONIX_API_URL": cloudonix_url,
        "AGENT_STREAM_SECRET_KEY": secret_key,
        "AGENT_STREAM_LOG_FORMAT": "json",
        "AGENT_STREAM_BUSY_LAG_MS": "0",  # a shared test machine must not look saturated
    }
    env |= {f"AGENT_STREAM_{name.upper()}": value for name, value in settings.items()}
    return env


@asynccontextmanager
async def serve_process(
    env: Mapping[str, str], port: int | None = None, *, command: str = "serve"
) -> AsyncIterator[ServeProcess]:
    """`agent-stream serve` (or `demo`) on a free loopback port, healthy before it is yielded;
    killed on the way out if the test left it running."""
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "entrypoints.cli", command, "--port", str(port)],
        env=dict(env),
        stdout=subprocess.DEVNULL,
    )
    served = ServeProcess(process, port)
    try:
        await served.wait_healthy()
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
