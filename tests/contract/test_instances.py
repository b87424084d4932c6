"""Contract of `Instances`: rows that heartbeat, and the reaping of the dead (exactly once)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from application.ports.repositories import Reaper
from application.run_journal import store_end
from domain.close_policy import NORMAL_CLOSE
from domain.workflow_run import RunState, WorkflowRun
from tests.contract.conftest import Backend
from tests.contract.factories import WorkflowRunFactory

TTL = 30.0
T0 = datetime(2030, 1, 1, tzinfo=UTC)  # later than every factory-made run: other tests' runs are not ours


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:12]}"


async def _live_run(backend: Backend, instance_id: str | None, started: datetime = T0) -> WorkflowRun:
    workflow = await backend.new_workflow()
    assert workflow.id is not None
    run = WorkflowRunFactory.build(
        workflow_id=workflow.id,
        agent_uuid=workflow.uuid,
        state=RunState.INITIALIZED,
        created_at=started,
        started_at=None,
        ended_at=None,
        duration_seconds=None,
        end_reason=None,
        close_code=None,
        close_reason=None,
        instance_id=instance_id,
    )
    run.start(started)
    return await backend.runs.add(run)


async def _stored(backend: Backend, run: WorkflowRun) -> WorkflowRun:
    assert run.id is not None
    stored = await backend.runs.get(run.id)
    assert stored is not None
    return stored


async def test_a_dead_instance_is_reaped_its_runs_failed_and_slots_freed(backend: Backend) -> None:
    dead, alive = _id("dead"), _id("alive")
    await backend.instances.register(dead, _id("host"), T0)
    await backend.instances.register(alive, _id("host"), T0)
    organization = await backend.new_organization(max_concurrent_calls=2)
    assert organization.id is not None
    assert await backend.slots.acquire(organization.id, 2, dead, T0, TTL)
    assert await backend.slots.acquire(organization.id, 2, alive, T0, TTL)
    lost = await _live_run(backend, dead)
    kept = await _live_run(backend, alive)
    finished = await _live_run(backend, dead)
    finished.complete(T0 + timedelta(seconds=3), "caller_hangup", NORMAL_CLOSE)
    await backend.runs.save(finished)

    last_seen = T0 + timedelta(seconds=5)
    await backend.instances.heartbeat(dead, last_seen)
    await backend.instances.heartbeat(alive, last_seen + timedelta(seconds=TTL))
    reaped = await backend.instances.reap(last_seen + timedelta(seconds=TTL + 1), TTL)

    assert reaped.instances >= 1
    assert reaped.slots >= 1
    ended = await _stored(backend, lost)
    assert (ended.state, ended.end_reason, ended.close_code, ended.close_reason) == (
        RunState.FAILED,
        "instance_lost",
        1011,
        "Instance lost",
    )
    assert ended.ended_at == last_seen  # when it was last seen alive, not when it was found dead
    assert ended.duration_seconds == 5.0
    assert (await _stored(backend, kept)).state is RunState.RUNNING
    assert (await _stored(backend, finished)).end_reason == "caller_hangup"
    # the dead instance's slot is free, the live one's still counts
    assert await backend.slots.live_count(organization.id, T0) == 1
    assert await backend.slots.acquire(organization.id, 2, alive, T0, TTL)


async def test_an_instance_within_its_ttl_is_not_reaped(backend: Backend) -> None:
    quiet = _id("quiet")
    await backend.instances.register(quiet, _id("host"), T0)
    run = await _live_run(backend, quiet)

    await backend.instances.reap(T0 + timedelta(seconds=TTL - 1), TTL)

    assert (await _stored(backend, run)).state is RunState.RUNNING
    assert await backend.instances.heartbeat(quiet, T0 + timedelta(seconds=TTL - 1)) is True


async def test_a_restarted_instance_reaps_its_previous_life_at_once(backend: Backend) -> None:
    name = _id("host:8000")
    before, after = _id("life-1"), _id("life-2")
    await backend.instances.register(before, name, T0)
    run = await _live_run(backend, before)
    await backend.instances.register(after, name, T0 + timedelta(seconds=2))

    reaper = Reaper(after, name, previous_life=True)
    reaped = await backend.instances.reap(T0 + timedelta(seconds=2), TTL, reaper)

    assert reaped.instances >= 1
    assert (await _stored(backend, run)).end_reason == "instance_lost"
    assert await backend.instances.heartbeat(after, T0 + timedelta(seconds=3)) is True


async def test_runs_of_no_known_instance_are_reaped_once_older_than_the_ttl(backend: Backend) -> None:
    old = await _live_run(backend, _id("never-registered"))
    young = await _live_run(backend, _id("never-registered"), started=T0 + timedelta(seconds=20))
    legacy = await _live_run(backend, None)

    await backend.instances.reap(T0 + timedelta(seconds=TTL + 10), TTL)

    assert (await _stored(backend, old)).end_reason == "instance_lost"
    assert (await _stored(backend, legacy)).end_reason == "instance_lost"
    assert (await _stored(backend, young)).state is RunState.RUNNING


async def test_a_reaped_instance_s_heartbeat_says_so_and_it_can_register_again(backend: Backend) -> None:
    partitioned = _id("partitioned")
    await backend.instances.register(partitioned, _id("host"), T0)
    await backend.instances.reap(T0 + timedelta(seconds=TTL + 1), TTL)

    assert await backend.instances.heartbeat(partitioned, T0 + timedelta(seconds=TTL + 2)) is False
    await backend.instances.register(partitioned, "host:8000", T0 + timedelta(seconds=TTL + 2))
    assert await backend.instances.heartbeat(partitioned, T0 + timedelta(seconds=TTL + 3)) is True


async def test_reapers_at_the_same_moment_end_each_run_exactly_once(backend: Backend) -> None:
    later = T0 + timedelta(seconds=TTL + 1)
    await backend.instances.reap(later, TTL)  # what earlier tests left behind, so the counts are ours
    dead = [_id("dead") for _ in range(3)]
    for instance_id in dead:
        await backend.instances.register(instance_id, _id("host"), T0)
    runs = [await _live_run(backend, instance_id) for instance_id in dead for _ in range(3)]

    results = await asyncio.gather(
        *(reaper.reap(later, TTL) for reaper in (backend.instances, backend.other_instances) * 3)
    )

    assert sum(result.instances for result in results) == len(dead)
    assert sum(result.runs for result in results) == len(runs)  # none ended twice, none missed
    assert [(await _stored(backend, run)).end_reason for run in runs] == ["instance_lost"] * len(runs)


async def test_a_run_s_end_is_stored_even_when_its_extras_cannot_be(backend: Backend) -> None:
    run = await _live_run(backend, _id("instance"))
    run.initial_context["custom"] = "nul \u0000 and a lone surrogate \ud800"  # PostgreSQL refuses both
    run.gathered_context["transcript"] = [{"role": "caller", "text": "\u0000"}]
    run.complete(T0 + timedelta(seconds=12), "caller_hangup", NORMAL_CLOSE)

    await store_end(backend.runs, run)

    stored = await _stored(backend, run)
    assert (stored.state, stored.end_reason, stored.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    assert stored.duration_seconds == 12.0


async def test_the_reaper_s_own_runs_that_no_call_holds_are_ended_once_older_than_the_ttl(
    backend: Backend,
) -> None:
    me = _id("me")
    await backend.instances.register(me, _id("host"), T0)
    held = await _live_run(backend, me)
    abandoned = await _live_run(backend, me)  # its insert committed after the call gave up on it
    young = await _live_run(backend, me, started=T0 + timedelta(seconds=20))
    assert held.id is not None
    later = T0 + timedelta(seconds=TTL + 10)
    await backend.instances.heartbeat(me, later)

    reaped = await backend.instances.reap(later, TTL, Reaper(me, "host", frozenset({held.id})))

    assert reaped.abandoned == 1
    assert (await _stored(backend, held)).state is RunState.RUNNING
    assert (await _stored(backend, young)).state is RunState.RUNNING
    ended = await _stored(backend, abandoned)
    assert (ended.state, ended.end_reason, ended.close_code, ended.close_reason) == (
        RunState.FAILED,
        "error",
        1011,
        "Service unavailable",
    )
