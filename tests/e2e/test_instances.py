"""Two real `agent-stream serve` processes on one PostgreSQL database, as behind a load balancer:
call control asked of one reaches the call the other holds (LISTEN/NOTIFY), and an organisation's
concurrent-call limit holds across both."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from domain.workflow_run import RunState, WorkflowRun, run_name
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, Caller, start_event
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.media_caller import MediaCaller
from tests.pg import call_control_listeners, terminate_backends
from tests.processes import ServeProcess, serve_env, serve_pair, spawn_serve
from tests.served import free_port

HOLDER_GONE = "The instance holding this call did not answer; try again"


Pair = tuple[ServeProcess, ServeProcess]


def serving(instance: ServeProcess, tenant: Tenant) -> Tenant:
    """`tenant` as seen through `instance` (its stream URLs point there)."""
    return dataclasses.replace(tenant, app_url=instance.url)


def _spawn(database_url: str, cloudonix: CloudonixStandIn, log: Path) -> ServeProcess:
    port = free_port()
    env = serve_env(
        database_url,
        cloudonix.url,
        SECRET_KEY,
        public_url=f"http://127.0.0.1:{port}",  # Cloudonix calls a transfer's callback back here
        lookup_failures_per_minute="0",
        drain_timeout="2",
    )
    return spawn_serve(env, port, log)


@pytest.fixture(scope="module")
def instances(
    database_url: str, cloudonix_api: CloudonixStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    with serve_pair(
        lambda log: _spawn(database_url, cloudonix_api, log), tmp_path_factory.mktemp("instances")
    ) as pair:
        yield pair


@pytest.fixture
async def line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create()
    cloudonix.add_domain(created.domain, created.token)
    return created


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@contextlib.asynccontextmanager
async def live_call(
    tenant: Tenant, cloudonix: CloudonixStandIn, session: str
) -> AsyncIterator[tuple[MediaCaller, WorkflowRun]]:
    """A call live on the instance `tenant` points at, with its run once the handshake is done."""
    cloudonix.add_session(tenant.domain, session)
    async with connect(tenant.stream_url(), compression=None, open_timeout=10) as ws:
        caller = MediaCaller(ws)
        await caller.handshake(session)
        yield caller, await _handshaken(tenant, session)


async def _handshaken(tenant: Tenant, session: str) -> WorkflowRun:
    for _ in range(400):
        for run in await tenant.all_runs():
            if run.state is RunState.RUNNING and run.logs.get("stream", {}).get("session") == session:
                return run
        await asyncio.sleep(0.025)
    raise AssertionError(f"no running run for {session}")


async def _ended(tenant: Tenant, run_id: int | None, within: float = 15) -> WorkflowRun:
    assert run_id is not None
    run = None
    for _ in range(round(within / 0.05)):
        run = await tenant.runs.get(run_id)
        if run is not None and run.state.terminal:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run did not end: {run}")


async def _control(
    http: httpx.AsyncClient,
    instance: ServeProcess,
    tenant: Tenant,
    run_id: int | None,
    action: str,
    **body: str,
) -> httpx.Response:
    return await http.post(
        f"{instance.url}/api/v1/runs/{run_id}/{action}", json=body or None, headers=tenant.auth
    )


# -- call control across instances ----------------------------------------------------------------


async def test_a_hangup_asked_of_one_instance_ends_the_call_the_other_holds(
    instances: Pair,
    line: Tenant,
    cloudonix: CloudonixStandIn,
    http: httpx.AsyncClient,
):
    a, b = instances
    async with live_call(serving(b, line), cloudonix, "S-cross-hangup") as (caller, run):
        response = await _control(http, a, line, run.id, "hangup")

        assert response.status_code == 202, response.text
        assert response.json() == {"run_id": run.id, "action": "hangup"}
        assert (await caller.closed(timeout=15))[0] == 1000

    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-cross-hangup")]
    ended = await _ended(line, run.id)
    assert (ended.state, ended.end_reason, ended.close_reason) == (
        RunState.COMPLETED,
        "operator_hangup",
        "Hung up by an operator",
    )
    assert ended.instance_id == run.instance_id  # B held it to the end
    again = await _control(http, a, line, run.id, "hangup")
    assert (again.status_code, again.json()) == (409, {"detail": "The run has no live call"})


async def test_a_transfer_asked_of_one_instance_moves_the_call_the_other_holds(
    instances: Pair,
    line: Tenant,
    cloudonix: CloudonixStandIn,
    http: httpx.AsyncClient,
):
    a, b = instances
    async with live_call(serving(b, line), cloudonix, "S-cross-transfer") as (caller, run):
        response = await _control(http, a, line, run.id, "transfer", destination="sip:desk@example.com")

        assert response.status_code == 202, response.text
        assert response.json() == {
            "run_id": run.id,
            "action": "transfer",
            "destination": "sip:desk@example.com",
        }
        assert (await caller.closed(timeout=15))[0] == 1000

    [dial] = cloudonix.dials
    assert dial.destination == "sip:desk@example.com"
    assert (dial.callback or "").startswith(f"{b.url}/api/v1/telephony/cloudonix/transfer-result/")
    [move] = cloudonix.moves
    assert move.session == "S-cross-transfer"
    ended = await _ended(line, run.id)
    assert (ended.state, ended.end_reason) == (RunState.COMPLETED, "transferred")


async def test_a_holder_that_does_not_answer_is_503_not_a_silent_202(
    instances: Pair,
    line: Tenant,
    cloudonix: CloudonixStandIn,
    http: httpx.AsyncClient,
):
    a, _ = instances
    now = datetime.now(UTC)
    orphan = await line.runs.add(
        WorkflowRun(
            name=run_name(99_999_999),
            workflow_id=line.workflow_id,
            agent_uuid=line.agent_uuid,
            mode="cloudonix",
            created_at=now,
            state=RunState.RUNNING,
            started_at=now,
            instance_id="an-instance-that-is-not-running",
        )
    )

    began = time.monotonic()
    hangup = await _control(http, a, line, orphan.id, "hangup")
    transfer = await _control(http, a, line, orphan.id, "transfer", destination="+15555550123")
    took = time.monotonic() - began

    assert (hangup.status_code, hangup.json()) == (503, {"detail": HOLDER_GONE})
    assert (transfer.status_code, transfer.json()) == (503, {"detail": HOLDER_GONE})
    assert took < 20  # two bounded waits of a few seconds each, not a hang
    assert cloudonix.hangups == []
    assert "Traceback" not in a.logged()


async def test_call_control_survives_the_listener_connections_being_killed(
    instances: Pair,
    line: Tenant,
    cloudonix: CloudonixStandIn,
    http: httpx.AsyncClient,
    database_url: str,
):
    a, b = instances
    killed = await call_control_listeners(database_url)
    assert len(killed) >= 2  # A's and B's (and the in-process app's, when it runs)
    await terminate_backends(database_url, killed)

    async with live_call(serving(b, line), cloudonix, "S-after-kill") as (caller, run):
        response = await _control(http, a, line, run.id, "hangup")
        for _ in range(10):  # a few seconds at most, while the listeners reconnect
            if response.status_code != 503:
                break
            await asyncio.sleep(0.5)
            response = await _control(http, a, line, run.id, "hangup")
        assert response.status_code == 202, response.text
        assert (await caller.closed(timeout=15))[0] == 1000

    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-after-kill")]
    assert (await _ended(line, run.id)).state is RunState.COMPLETED
    assert not set(await call_control_listeners(database_url)) & set(killed)
    for instance in instances:
        logged = instance.logged()
        assert "call_control_listener_recovered" in logged
        assert "Traceback" not in logged


# -- one organisation's limit across instances ------------------------------------------------------


async def _open(tenant: Tenant, session: str) -> tuple[ClientConnection, Caller]:
    ws = await connect(tenant.stream_url(), compression=None, open_timeout=10)
    caller = Caller(ws)
    await caller.send(CONNECTED)
    await caller.send(start_event(session))
    return ws, caller


async def _refusal(caller: Caller) -> tuple[int | None, str | None]:
    """The close of a refused stream; (None, None) for one still open after a generous wait."""
    try:
        result = await caller.wait_closed(timeout=8)
    except TimeoutError:
        return None, None
    return result.code, result.reason


async def test_an_organisation_limit_of_two_holds_across_both_instances(
    instances: Pair,
    tenants: TenantFactory,
    cloudonix: CloudonixStandIn,
):
    a, b = instances
    line = await tenants.create(max_concurrent_calls=2)
    cloudonix.add_domain(line.domain, line.token, sessions={"S-1", "S-2", "S-3a", "S-3b"})

    async with live_call(serving(a, line), cloudonix, "S-1"), live_call(serving(b, line), cloudonix, "S-2"):
        for instance, session in ((a, "S-3a"), (b, "S-3b")):
            ws, caller = await _open(serving(instance, line), session)
            async with ws:
                assert await _refusal(caller) == (1008, "Concurrent call limit reached")

    runs = await line.all_runs()
    assert sorted(run.logs.get("stream", {}).get("session") for run in runs) == ["S-1", "S-2"]


async def test_a_burst_of_six_split_over_both_instances_admits_exactly_two(
    instances: Pair,
    tenants: TenantFactory,
    cloudonix: CloudonixStandIn,
):
    a, b = instances
    line = await tenants.create(max_concurrent_calls=2)
    sessions = [f"S-burst-{n}" for n in range(6)]
    cloudonix.add_domain(line.domain, line.token, sessions=set(sessions))
    targets = [serving(a if n % 2 else b, line) for n in range(6)]

    opened = await asyncio.gather(*(_open(target, s) for target, s in zip(targets, sessions, strict=True)))
    try:
        closes = await asyncio.gather(*(_refusal(caller) for _, caller in opened))
    finally:
        for ws, _ in opened:
            await ws.close()

    refused = [close for close in closes if close != (None, None)]
    assert refused == [(1008, "Concurrent call limit reached")] * 4, closes
    admitted: list[Any] = [run for run in await line.all_runs() if run.state is not RunState.INITIALIZED]
    assert len(admitted) == 2
    for run in admitted:  # the admitted calls end once their sockets close; their slots free
        await _ended(line, run.id)
