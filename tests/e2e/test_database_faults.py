"""A real `agent-stream serve` process whose PostgreSQL sits behind a fault-injecting TCP proxy.

For each fault (refused, black-holed, restarted) a new stream closes 1011 "Service unavailable"
within 5 s, `/ready` answers 503 and `/health` 200; once the fault ends the same process, never
restarted, serves full calls again and `/ready` is 200. No run stays `running`, no slot is held,
and the stream path logs no traceback. The runs are read from the database directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect

from adapters.sql.repositories import SqlCallSlots
from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.media_caller import MediaCaller
from tests.processes import serve_env, spawn_serve
from tests.tcp_proxy import Mode, TcpProxy

DB_TIMEOUT = 1.0
FAULT_BOUND = 5.0  # the bound on a stream (and /ready) during a fault
RECOVERY_BOUND = 15.0  # generous: the service only has to notice the database is back
# Events the stream path logs; none of them may carry a traceback, and none may be a crash.
CALLS = ("S-before", "S-after-refuse", "S-after-blackhole", "S-after-restart", "S-after-locks", "S-mid-call")
TTL = 3.0  # a heartbeat a second: what a call could not store is retried that soon
STREAM_EVENTS = {
    "stream_refused",
    "stream_crashed",
    "stream_storage_failed",
    "slot_release_failed",
    "call_crashed",
    "run_save_failed",
    "run_minted",
    "call_started",
    "call_ended",
}


@dataclasses.dataclass
class Served:
    base: str
    line: Tenant
    proxy: TcpProxy
    log_path: Path
    http: httpx.AsyncClient

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            records.append(record if isinstance(record, dict) else {"event": "<not json>", "text": line})
        return records


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    with TcpProxy(str(host), url.port or 5432) as running:
        yield running


@pytest.fixture
async def served(
    tenants: TenantFactory,
    cloudonix: CloudonixStandIn,
    database_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
) -> AsyncIterator[Served]:
    line = await tenants.create(max_concurrent_calls=2)
    cloudonix.add_domain(line.domain, line.token, sessions=CALLS)
    proxied = make_url(database_url).difference_update_query(["host"]).set(host="127.0.0.1", port=proxy.port)
    env = serve_env(
        proxied.render_as_string(hide_password=False),
        cloudonix.url,
        SECRET_KEY,
        db_timeout=str(DB_TIMEOUT),
        lookup_failures_per_minute="0",
        instance_ttl=str(TTL),
        busy_lag_ms="150",  # the default: admission stays on through the faults
    )
    log = tmp_path / "serve.log"
    server = spawn_serve(env, log=log)
    try:
        await asyncio.to_thread(server.wait_until, "/ready")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            line = dataclasses.replace(line, app_url=server.url)
            yield Served(server.url, line, proxy, log, http)
            assert server.process.poll() is None, "the process must keep serving through every fault"
    finally:
        server.stop()


async def _full_call(served: Served, session: str) -> None:
    line = served.line
    result = await call(
        line.stream_url(), CONNECTED, start_event(session, account_sid=line.domain), stop_event(), timeout=15
    )
    assert (result.code, result.reason) == (1000, ""), (session, result)


async def _stream_refused_within_bound(served: Served, label: str) -> None:
    started = time.monotonic()
    result = await call(
        served.line.stream_url(),
        CONNECTED,
        start_event(f"S-{label}", account_sid=served.line.domain),
        timeout=FAULT_BOUND + 5,
    )
    elapsed = time.monotonic() - started
    assert (result.code, result.reason) == (1011, "Service unavailable"), (label, result)
    assert elapsed < FAULT_BOUND, f"{label}: the stream took {elapsed:.1f}s to close"


async def _refused_within_bound(served: Served, mode: Mode) -> None:
    await _stream_refused_within_bound(served, mode)
    started = time.monotonic()
    assert (await served.http.get("/ready")).status_code == 503, mode
    elapsed = time.monotonic() - started
    assert elapsed < FAULT_BOUND, f"{mode}: /ready took {elapsed:.1f}s to answer"
    assert (await served.http.get("/health")).status_code == 200, mode


async def _ready_again(served: Served) -> None:
    deadline = time.monotonic() + RECOVERY_BOUND
    while (await served.http.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, "/ready did not come back after the fault ended"
        await asyncio.sleep(0.2)


def _stream_tracebacks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Crashes and tracebacks of the stream path (the heartbeat's own lines are not judged here)."""

    def bad(record: dict[str, Any]) -> bool:
        event = record.get("event")
        if event == "<not json>":
            return "Traceback" in record.get("text", "")
        if event in {"stream_crashed", "call_crashed"}:
            return True
        return event in STREAM_EVENTS and "exception" in record

    return [record for record in records if bad(record)]


async def test_refused_black_holed_and_restarted_database(
    served: Served, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _full_call(served, "S-before")
    for mode in ("refuse", "blackhole"):
        served.proxy.set_mode(mode)
        for _ in range(2):  # a second stream meets the same fault: it is no slower
            await _refused_within_bound(served, mode)
        served.proxy.set_mode("pass")
        await _ready_again(served)
        await _full_call(served, f"S-after-{mode}")

    # A restart: every pooled connection is closed, and the server answers again at once.
    served.proxy.set_mode("refuse")
    served.proxy.set_mode("pass")
    await _full_call(served, "S-after-restart")
    assert (await served.http.get("/ready")).status_code == 200

    runs = await served.line.all_runs()
    assert sorted(run.logs["stream"]["session"] for run in runs) == sorted(CALLS[:4])
    assert all(run.state.terminal for run in runs), [(run.name, run.state) for run in runs]
    slots = SqlCallSlots(sessions)
    assert await slots.live_count(served.line.organization_id, datetime.now(UTC)) == 0

    records = served.log_records()
    assert _stream_tracebacks(records) == []
    # Nothing else floods the log either: no traceback at all, one heartbeat line per kind of fault.
    assert [r for r in records if "exception" in r or "Traceback" in r.get("text", "")] == []
    assert len([r for r in records if r.get("event") == "heartbeat_failed"]) <= 4
    refusals = [r for r in records if r.get("event") == "stream_refused" and r.get("close_code") == 1011]
    assert len(refusals) == 4, refusals  # one plain line per refused stream, nothing more


async def test_a_stalled_slot_acquire_or_run_insert_closes_1011_and_holds_nothing(
    served: Served, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The database answers, but one write waits on a lock held elsewhere for longer than the
    bound: the slot acquire (the organisation's row is locked), then the run insert (the runs
    table is locked against writes). Each stream closes 1011 in time; no run, no slot is left."""
    organization_id = served.line.organization_id
    locks = {
        "slot-acquire": "SELECT id FROM organizations WHERE id = :id FOR UPDATE",
        "run-insert": "LOCK TABLE workflow_runs IN SHARE MODE",
    }
    for label, lock in locks.items():
        async with sessions() as session, session.begin():
            await session.execute(text(lock), {"id": organization_id})
            await _stream_refused_within_bound(served, label)
            assert (await served.http.get("/ready")).status_code == 200  # the database answers
    await _full_call(served, "S-after-locks")

    [run] = await served.line.all_runs()
    assert run.logs["stream"]["session"] == "S-after-locks"
    assert run.state.terminal
    slots = SqlCallSlots(sessions)
    assert await slots.live_count(organization_id, datetime.now(UTC)) == 0
    records = served.log_records()
    assert _stream_tracebacks(records) == []
    details = [r.get("detail", "") for r in records if r.get("event") == "stream_refused"]
    assert len(details) == 2, details
    assert all("did not answer in time" in detail for detail in details), details


async def test_a_database_outage_mid_call_ends_the_run_once_the_database_is_back(
    served: Served, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The caller hangs up while the database refuses: the run's end and the slot's release
    cannot be stored then, and are by the heartbeat once the database answers again."""
    line = served.line
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-mid-call", account_sid=line.domain)
        await caller.silence(0.5)
        [live] = await line.all_runs()
        assert live.state is RunState.RUNNING
        served.proxy.set_mode("refuse")
        await caller.stop()
        assert await caller.closed(timeout=10) == (1000, "")
    await asyncio.sleep(2 * TTL / 3)  # a beat or two while the database is still away
    assert (await line.only_run()).state is RunState.RUNNING  # its end is still waiting
    served.proxy.set_mode("pass")

    ended = await line.ended_run(within=RECOVERY_BOUND)
    assert (ended.state, ended.end_reason, ended.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    slots = SqlCallSlots(sessions)
    assert await slots.live_count(line.organization_id, datetime.now(UTC)) == 0
    records = served.log_records()
    events = [record.get("event") for record in records]
    assert "run_end_not_stored" in events
    assert "run_end_stored_late" in events
    assert "heartbeat_failed" in events
    assert not any("Traceback" in record.get("text", "") for record in records)


async def test_a_service_started_while_its_database_is_down_serves_once_it_answers(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    """`serve` with its database refusing: one warning line, then it serves (`/health` 200,
    `/ready` 503, streams 1011 "Service unavailable"), and takes calls as soon as the database
    answers, without a restart (a rolling deploy during a database fail-over)."""
    line = await tenants.create()
    cloudonix.add_domain(line.domain, line.token, sessions={"S-late-db"})
    proxied = make_url(database_url).difference_update_query(["host"]).set(host="127.0.0.1", port=proxy.port)
    proxy.set_mode("refuse")
    env = serve_env(
        proxied.render_as_string(hide_password=False), cloudonix.url, SECRET_KEY, db_timeout=str(DB_TIMEOUT)
    )
    log = tmp_path / "serve.log"
    server = spawn_serve(env, log=log)
    try:
        await asyncio.to_thread(server.wait_until, "/health")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.get("/ready")).status_code == 503
            here = dataclasses.replace(line, app_url=server.url)
            refused = await call(
                here.stream_url(), CONNECTED, start_event("S-early", account_sid=line.domain)
            )
            assert (refused.code, refused.reason) == (1011, "Service unavailable")
            proxy.set_mode("pass")
            served = Served(server.url, here, proxy, log, http)
            await _ready_again(served)
            await _full_call(served, "S-late-db")
    finally:
        server.stop()
    records = served.log_records()
    events = [record.get("event") for record in records]
    assert events.count("database_unreachable_at_start") == 1
    assert [r for r in records if "exception" in r or "Traceback" in r.get("text", "")] == []
