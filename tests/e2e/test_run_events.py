"""`GET /api/v1/runs/events` across two real `agent-stream serve` processes on one PostgreSQL
database: a subscriber on instance A sees a call on instance B mint its run and end it, within a
second of each change, and another organisation's subscriber sees none of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.media_caller import MediaCaller
from tests.processes import ServeProcess, serve_env, serve_pair, spawn_serve
from tests.served import free_port

EVENTS = "/api/v1/runs/events"
WITHIN = 1.0  # seconds from a change (as the run records it) to its event


def _spawn(database_url: str, cloudonix: CloudonixStandIn, log: Path) -> ServeProcess:
    port = free_port()
    env = serve_env(database_url, cloudonix.url, SECRET_KEY, public_url=f"http://127.0.0.1:{port}")
    return spawn_serve(env, port, log)


@pytest.fixture(scope="module")
def instances(
    database_url: str, cloudonix_api: CloudonixStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    with serve_pair(
        lambda log: _spawn(database_url, cloudonix_api, log), tmp_path_factory.mktemp("run-events")
    ) as pair:
        yield pair


@dataclass
class Watcher:
    """One SSE subscriber: each event with the wall-clock time it arrived."""

    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    comments: int = 0
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # the server ended the stream

    def runs(self) -> list[tuple[float, dict[str, Any]]]:
        return [(at, data) for at, kind, data in self.events if kind == "run"]

    async def read(self, response: httpx.Response) -> None:
        try:
            await self._read(response)
        finally:
            self.closed.set()

    async def _read(self, response: httpx.Response) -> None:
        kind, data = "message", ""
        async for line in response.aiter_lines():
            if line.startswith(":"):
                self.comments += 1
                self.opened.set()
            elif line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
            elif line == "" and data:
                self.events.append((time.time(), kind, json.loads(data)))
                kind, data = "message", ""


@contextlib.asynccontextmanager
async def watching(http: httpx.AsyncClient, instance: ServeProcess, tenant: Tenant) -> AsyncIterator[Watcher]:
    watcher = Watcher()
    async with http.stream("GET", f"{instance.url}{EVENTS}", headers=tenant.auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(watcher.read(response))
        try:
            await asyncio.wait_for(watcher.opened.wait(), 10)  # subscribed
            yield watcher
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def _line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create()
    cloudonix.add_domain(created.domain, created.token)
    return created


def _at(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


async def _until(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        await asyncio.sleep(0.02)


async def test_a_run_on_one_instance_appears_and_ends_live_on_the_other(
    instances: tuple[ServeProcess, ServeProcess], tenants: TenantFactory, cloudonix: CloudonixStandIn
):
    a, b = instances
    ours, theirs = await _line(tenants, cloudonix), await _line(tenants, cloudonix)
    cloudonix.add_session(ours.domain, "S-events")
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(20, read=None)) as http,
        watching(http, a, ours) as watcher,
        watching(http, a, theirs) as other_on_a,
        watching(http, b, theirs) as other_on_b,
    ):
        stream_url = ours.stream_url().replace(
            ours.app_url.replace("http://", "ws://"), b.url.replace("http://", "ws://")
        )
        async with connect(stream_url, compression=None, open_timeout=10) as ws:
            caller = MediaCaller(ws)
            await caller.handshake("S-events")
            await _until(lambda: any(run["state"] == "running" for _, run in watcher.runs()))
            await caller.silence(0.3)
            await caller.stop()
            await caller.closed(timeout=15)
        await _until(lambda: any(run["state"] == "completed" for _, run in watcher.runs()))
        await asyncio.sleep(0.5)  # time for anything stray to show up

    [stored] = await ours.all_runs()
    seen = watcher.runs()
    assert {run["id"] for _, run in seen} == {stored.id}
    assert all(run["agent_uuid"] == str(ours.agent_uuid) for _, run in seen)
    (minted_at, minted), (ended_at, ended) = seen[0], seen[-1]
    assert minted["state"] in ("initialized", "running")
    assert minted_at - _at(minted["created_at"]) < WITHIN
    assert (ended["state"], ended["end_reason"], ended["close_code"]) == ("completed", "caller_hangup", 1000)
    assert ended["disposition"] == stored.disposition
    assert ended_at - _at(ended["ended_at"]) < WITHIN
    assert other_on_a.events == other_on_b.events == []  # another organisation sees nothing


async def test_the_events_need_the_organisations_api_key(instances: tuple[ServeProcess, ServeProcess]):
    a, _ = instances
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.get(f"{a.url}{EVENTS}")
        wrong = await http.get(f"{a.url}{EVENTS}", headers={"Authorization": "Bearer not-a-key"})

    assert refused.status_code == wrong.status_code == 401


async def test_the_stream_ends_when_the_instance_drains(
    database_url: str, cloudonix_api: CloudonixStandIn, tenants: TenantFactory, tmp_path: Path
):
    tenant = await tenants.create()
    draining = _spawn(database_url, cloudonix_api, tmp_path / "draining.log")
    try:
        await asyncio.to_thread(draining.wait_until, "/health")
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(20, read=None)) as http,
            watching(http, draining, tenant) as watcher,
        ):
            draining.signal()  # SIGTERM: the drain starts (no live calls: it is over at once)
            await asyncio.wait_for(watcher.closed.wait(), 3)  # ended by the drain, not cut at exit

        assert await draining.exited(within=15) == 0
    finally:
        draining.stop()
