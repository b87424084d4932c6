"""Instances as real processes on one PostgreSQL: a crash is cleaned up by a survivor (or by the
crashed instance's next life), and a shutdown ends its calls through the provider, saying so."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time

import httpx
from websockets.asyncio.client import connect

from domain.workflow_run import RunState, WorkflowRun
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.media_caller import MediaCaller
from tests.processes import ServeProcess, serve_env, serve_process
from tests.served import free_port

TTL = 5.0


async def _run_of(line: Tenant, session: str, within: float, state: RunState | None = None) -> WorkflowRun:
    """The run of the call with this Cloudonix session, once it is in `state` (else once it exists)."""
    found = None
    for _ in range(round(within / 0.1)):
        for run in await line.all_runs():
            if run.logs.get("stream", {}).get("session") == session:
                found = run
                if state is None or run.state is state:
                    return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"no run of session {session} in state {state} within {within} s: {found}")


async def _admitted(line: Tenant, instance: ServeProcess, session: str) -> bool:
    """Whether a short call on `instance` gets through routing (a free slot) and ends normally."""
    here = dataclasses.replace(line, app_url=instance.url)
    result = await call(here.stream_url(), CONNECTED, start_event(session), stop_event())
    return (result.code, result.reason) == (1000, "")


async def test_a_killed_instance_s_call_is_ended_by_a_survivor_and_its_slot_freed(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    line = await tenants.create(max_concurrent_calls=1)
    cloudonix.add_domain(line.domain, line.token, sessions={"S-crash", "S-after"})
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, instance_ttl=str(TTL))
    async with serve_process(env) as survivor, serve_process(env) as doomed:
        here = dataclasses.replace(line, app_url=doomed.url)
        async with connect(here.stream_url(), compression=None) as ws:
            caller = MediaCaller(ws)
            await caller.handshake("S-crash")
            await caller.silence(0.3)
            assert (await _run_of(line, "S-crash", within=5)).state is RunState.RUNNING
            doomed.kill()
            killed = time.monotonic()
            lost = await _run_of(line, "S-crash", within=TTL + 8, state=RunState.FAILED)
        assert time.monotonic() - killed <= TTL + 8
        assert (lost.end_reason, lost.close_code, lost.close_reason) == (
            "instance_lost",
            1011,
            "Instance lost",
        )
        assert lost.ended_at is not None
        assert lost.duration_seconds is not None
        assert await _admitted(line, survivor, "S-after")  # the dead instance's slot is free


async def test_a_restarted_instance_ends_its_previous_life_s_calls_at_once(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    line = await tenants.create(max_concurrent_calls=1)
    cloudonix.add_domain(line.domain, line.token, sessions={"S-before", "S-again"})
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, instance_ttl="60")  # far longer than the test
    port = free_port()
    async with serve_process(env, port) as first:
        here = dataclasses.replace(line, app_url=first.url)
        async with connect(here.stream_url(), compression=None) as ws:
            await MediaCaller(ws).handshake("S-before")
            await _run_of(line, "S-before", within=5, state=RunState.RUNNING)
            first.kill()
    async with serve_process(env, port) as second:  # same host and port: the same instance, next life
        lost = await _run_of(line, "S-before", within=5, state=RunState.FAILED)
        assert lost.end_reason == "instance_lost"
        assert await _admitted(line, second, "S-again")


async def test_a_second_signal_hangs_live_calls_up_through_cloudonix_at_once(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    line = await tenants.create()
    cloudonix.add_domain(line.domain, line.token, sessions={"S-one", "S-two"})
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, drain_timeout="60")
    async with serve_process(env) as instance:
        here = dataclasses.replace(line, app_url=instance.url)
        async with (
            connect(here.stream_url(), compression=None) as ws1,
            connect(here.stream_url(), compression=None) as ws2,
        ):
            callers = [MediaCaller(ws1), MediaCaller(ws2)]
            for caller, session in zip(callers, ("S-one", "S-two"), strict=True):
                await caller.handshake(session)
            for session in ("S-one", "S-two"):
                await _run_of(line, session, within=5, state=RunState.RUNNING)
            instance.signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            instance.signal(signal.SIGTERM)  # an impatient operator: no 60 s of grace
            signalled = time.monotonic()
            closes = await asyncio.gather(*(caller.closed(timeout=10) for caller in callers))
            assert closes == [(1000, "Server shutting down")] * 2
            assert time.monotonic() - signalled < 5
        await instance.exited(within=15)
    assert sorted(session for _, session in cloudonix.hangups) == ["S-one", "S-two"]
    for session in ("S-one", "S-two"):
        run = await _run_of(line, session, within=1)
        assert (run.state, run.end_reason, run.close_code) == (RunState.COMPLETED, "drained", 1000)


async def test_a_stalled_event_loop_refuses_new_streams_1013_until_it_recovers(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str
):
    """Saturation made real: the process is stopped (SIGSTOP) for 2 s, so its loop wakes 2 s late,
    as it would under a CPU it cannot keep up with. New streams are refused 1013 "Server busy" and
    /ready answers 503 until the smoothed lag falls below the threshold again."""
    line = await tenants.create()
    cloudonix.add_domain(line.domain, line.token, sessions={"S-busy", "S-calm"})
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, busy_lag_ms="20")
    async with serve_process(env) as instance, httpx.AsyncClient(base_url=instance.url) as http:
        here = dataclasses.replace(line, app_url=instance.url)
        instance.signal(signal.SIGSTOP)
        await asyncio.sleep(2.0)
        instance.signal(signal.SIGCONT)
        busy = await call(here.stream_url(), CONNECTED, start_event("S-busy"), stop_event())
        assert (busy.code, busy.reason) == (1013, "Server busy")
        assert (await http.get("/ready")).status_code == 503
        for _ in range(100):  # calm again within a few samples
            if (await http.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("/ready stayed 503 after the stall")
        assert await _admitted(line, instance, "S-calm")
    assert [run.logs["stream"]["session"] for run in await line.all_runs()] == ["S-calm"]
