"""Real `agent-stream serve` processes, for tests that need several instances, signals or kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.served import free_port

STARTUP_SECONDS = 60.0  # a loaded machine imports Pipecat slowly


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log is not None else ""

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        """kill -9: no drain, no clean-up, as a crash or an OOM kill would leave it."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, within: float = 30.0) -> None:
        """SIGTERM (the drain), then kill -9 if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=within)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_until(self, path: str = "/health", within: float = STARTUP_SECONDS) -> None:
        """Until `path` answers 200; raises (with the log's tail) if the process exits first."""
        deadline = time.monotonic() + within
        with httpx.Client() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"serve exited with {self.process.returncode}: {self.logged()[-2000:]}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if http.get(f"{self.url}{path}").status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"serve on {self.port}: {path} did not answer 200 in {within} s")

    async def exited(self, within: float) -> int:
        for _ in range(round(within / 0.05)):
            if (code := self.process.poll()) is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(f"serve on {self.port} still running after {within} s")


def serve_env(database_url: str, cloudonix_url: str, secret_key: str, **settings: str) -> dict[str, str]:
    """The environment of a `serve` process: ours minus any AGENT_STREAM_* of the caller, then
    `settings` (`drain_timeout="2"` sets AGENT_STREAM_DRAIN_TIMEOUT)."""
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


def spawn_serve(env: Mapping[str, str], port: int | None = None, log: Path | None = None) -> ServeProcess:
    """Start `agent-stream serve` on a loopback port (its output to `log`, else discarded)."""
    port = port or free_port()
    with log.open("wb") if log is not None else open(os.devnull, "wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else None,
        )
    return ServeProcess(process, port, log)


@asynccontextmanager
async def serve_process(
    env: Mapping[str, str], port: int | None = None, log: Path | None = None
) -> AsyncIterator[ServeProcess]:
    """`spawn_serve`, healthy before it is yielded; killed on the way out if still running."""
    served = spawn_serve(env, port, log)
    try:
        await asyncio.to_thread(served.wait_until, "/health")
        yield served
    finally:
        if served.process.poll() is None:
            served.kill()


@contextmanager
def serve_pair(
    spawn: Callable[[Path], ServeProcess], logs: Path
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    """Two instances from `spawn(log)` (their output to `a.log` and `b.log` in `logs`), healthy
    before they are yielded, stopped on the way out."""
    a = spawn(logs / "a.log")
    b = spawn(logs / "b.log")
    try:
        a.wait_until("/health")
        b.wait_until("/health")
        yield a, b
    finally:
        a.stop()
        b.stop()
