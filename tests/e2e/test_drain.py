"""SIGTERM on a real `agent-stream serve` process: live calls drain, then end through Cloudonix."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time

import httpx
from websockets.asyncio.client import connect

from domain.workflow_run import RunState
from tests.caller import CONNECTED, call, start_event
from tests.e2e.conftest import SECRET_KEY, TenantFactory
from tests.media_caller import MediaCaller
from tests.served import free_port
from tests.standins.cloudonix import CloudonixStandIn

DRAIN_SECONDS = 1.5


async def test_sigterm_drains_then_hangs_up_through_cloudonix(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    line = await tenants.create()
    cloudonix.add_domain(line.domain, line.token, sessions={"S-drain", "S-late"})
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")}
    env |= {
        "AGENT_STREAM_DATABASE_URL": database_url,
        "AGENT_STREAM_CLOUDONIX_API_URL": cloudonix.url,
        "AGENT_STREAM_SECRET_KEY": SECRET_KEY,
        "AGENT_STREAM_DRAIN_TIMEOUT": str(DRAIN_SECONDS),
    }
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    here = dataclasses.replace(line, app_url=base)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{base}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            async with connect(here.stream_url(), compression=None) as ws:
                caller = MediaCaller(ws)
                await caller.handshake("S-drain")
                await caller.silence(0.5)
                server.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                await asyncio.sleep(0.3)
                assert (await http.get(f"{base}/ready")).status_code == 503
                late = await call(here.stream_url(), CONNECTED, start_event("S-late"))
                assert (late.code, late.reason) == (1013, "Server shutting down")
                assert await caller.closed(timeout=20) == (1000, "")
                assert time.monotonic() - signalled >= DRAIN_SECONDS
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-drain")]
    runs = await line.all_runs()
    [drained] = [run for run in runs if run.logs.get("stream", {}).get("session") == "S-drain"]
    assert (drained.state, drained.end_reason, drained.close_code) == (
        RunState.COMPLETED,
        "drained",
        1000,
    )
    assert len(runs) == 1  # the late call was refused before a run was minted
