"""SIGTERM on a real `agent-stream serve` process: live calls drain, then end through Cloudonix."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import httpx
from websockets.asyncio.client import connect

from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event
from tests.e2e.conftest import SECRET_KEY, TenantFactory
from tests.media_caller import MediaCaller
from tests.processes import serve_env, serve_process

DRAIN_SECONDS = 1.5


async def test_sigterm_drains_then_hangs_up_through_cloudonix(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    line = await tenants.create()
    cloudonix.add_domain(line.domain, line.token, sessions={"S-drain", "S-late"})
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, drain_timeout=str(DRAIN_SECONDS))
    async with serve_process(env) as server, httpx.AsyncClient(base_url=server.url) as http:
        here = dataclasses.replace(line, app_url=server.url)
        async with connect(here.stream_url(), compression=None) as ws:
            caller = MediaCaller(ws)
            await caller.handshake("S-drain")
            await caller.silence(0.5)
            server.signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.3)
            assert (await http.get("/ready")).status_code == 503
            late = await call(here.stream_url(), CONNECTED, start_event("S-late"))
            assert (late.code, late.reason) == (1013, "Server shutting down")
            assert await caller.closed(timeout=20) == (1000, "Server shutting down")
            assert time.monotonic() - signalled >= DRAIN_SECONDS
        assert await server.exited(within=30) == 0
    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-drain")]
    runs = await line.all_runs()
    [drained] = [run for run in runs if run.logs.get("stream", {}).get("session") == "S-drain"]
    assert (drained.state, drained.end_reason, drained.close_code) == (
        RunState.COMPLETED,
        "drained",
        1000,
    )
    assert len(runs) == 1  # the late call was refused before a run was minted
