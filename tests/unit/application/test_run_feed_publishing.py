"""Every stored change of a run's state is published on the run feed, for its organisation: the
call's own (minted, ended), an end stored late by the heartbeat, and the runs a reaper ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from adapters.memory.run_feed import InMemoryRunFeed
from application.instance_life import InstanceIdentity, InstanceLife
from application.ports.run_feed import RunChange
from application.run_journal import RunNews
from domain.close_policy import NORMAL_CLOSE
from domain.workflow_run import EndReason
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message

TTL = 30.0


def _subscribe(
    world: World, organization_id: int | None = None
) -> AbstractAsyncContextManager[AsyncIterator[RunChange]]:
    return world.feed.subscribe(organization_id or world.organization.id or 0)


async def _drained(changes: AsyncIterator[RunChange]) -> list[RunChange]:
    """What the subscription holds now (the in-memory feed delivers at once)."""
    seen: list[RunChange] = []
    while True:
        try:
            async with asyncio.timeout(0.05):
                seen.append(await anext(changes))
        except TimeoutError:
            return seen


def _life(world: World, instance_id: str) -> InstanceLife:
    store = world.store
    identity = InstanceIdentity(instance_id, f"{instance_id}:8000", TTL)
    return InstanceLife(identity, store.instances, store.slots, store.runs, world.clock, feed=world.feed)


async def test_a_call_publishes_its_run_minted_started_and_ended(world: World):
    async with _subscribe(world) as changes, _subscribe(world, organization_id=999) as others:
        await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))

        seen = await _drained(changes)
        assert await _drained(others) == []

    [run] = await world.runs()
    assert {(change.run_id, change.agent_uuid) for change in seen} == {(run.id, str(world.workflow.uuid))}
    states = [change.state for change in seen]
    assert states[0] == "running"  # minted (stored already running)
    assert states[-1] == "completed"
    assert set(states) == {"running", "completed"}


async def test_a_refused_handshake_still_publishes_the_runs_end(world: World):
    async with _subscribe(world) as changes:
        await world.stream(world.url(), socket_with(CONNECTED, start_message(session="unknown")))

        states = [change.state for change in await _drained(changes)]

    assert states == ["running", "failed"]


async def test_an_end_stored_late_is_published_when_the_beat_stores_it(world: World):
    life = _life(world, "here")
    await life.beat()
    run = await world.store.runs.add(world.live_run("here"))
    life.hold_run(run.stored_id)
    run.complete(world.clock.now(), EndReason.CALLER_HANGUP, NORMAL_CLOSE)
    life.drop_run(run, stored=False, news=RunNews(world.feed, world.organization.id or 0))

    async with _subscribe(world) as changes:
        await life.beat()

        assert [(c.run_id, c.state) for c in await _drained(changes)] == [(run.id, "completed")]


async def test_the_runs_a_reaper_ends_are_published(world: World):
    await _life(world, "crashed").beat()
    run = await world.store.runs.add(world.live_run("crashed"))
    reaper = _life(world, "alive")
    await reaper.beat()
    world.clock.advance(TTL + 1)

    async with _subscribe(world) as changes:
        await reaper.beat()

        assert await _drained(changes) == [
            RunChange(world.organization.id or 0, run.stored_id, str(world.workflow.uuid), "failed")
        ]


class BrokenFeed(InMemoryRunFeed):
    def publish(self, change: RunChange) -> None:
        raise RuntimeError("feed broken")


async def test_a_feed_that_fails_never_fails_the_call(world: World):
    world.feed = BrokenFeed()

    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))

    assert close.code == 1000
    [run] = await world.runs()
    assert run.state == "completed"
