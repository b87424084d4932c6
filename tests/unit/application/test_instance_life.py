"""`InstanceLife` on the in-memory store: registration, the reaping of dead instances and of this
instance's previous life, and the stores handed over by calls the database failed."""

from __future__ import annotations

import copy

from application.instance_life import InstanceIdentity, InstanceLife
from domain.close_policy import NORMAL_CLOSE
from domain.workflow_run import RunState
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message

TTL = 30.0


def _life(world: World, instance_id: str, name: str = "host:8000") -> InstanceLife:
    store = world.store
    identity = InstanceIdentity(instance_id, name, TTL)
    return InstanceLife(identity, store.instances, store.slots, store.runs, world.clock, feed=world.feed)


async def test_the_first_beat_registers_and_ends_the_previous_life_s_runs_at_once(world: World):
    before = _life(world, "life-1")
    await before.beat()
    run = await world.store.runs.add(world.live_run("life-1"))
    world.clock.advance(2)  # restarted at once: far less than the TTL

    await _life(world, "life-2").beat()

    [lost] = await world.runs()
    assert (lost.id, lost.state, lost.end_reason) == (run.id, RunState.FAILED, "instance_lost")


async def test_another_name_s_instance_is_left_alone_until_its_ttl(world: World):
    await _life(world, "elsewhere", name="other-host:8000").beat()
    await world.store.runs.add(world.live_run("elsewhere"))
    life = _life(world, "here")
    await life.beat()

    world.clock.advance(TTL - 1)
    await life.beat()
    assert [run.state for run in await world.runs()] == [RunState.RUNNING]

    world.clock.advance(2)
    await life.beat()
    assert [run.end_reason for run in await world.runs()] == ["instance_lost"]


async def test_an_instance_reaped_while_alive_registers_again(world: World):
    life = _life(world, "partitioned")
    await life.beat()
    world.clock.advance(TTL + 1)
    await world.store.instances.reap(world.clock.now(), TTL)  # another instance found it silent
    assert await world.store.instances.heartbeat("partitioned", world.clock.now()) is False

    await life.beat()

    assert await world.store.instances.heartbeat("partitioned", world.clock.now()) is True


async def test_handed_over_stores_are_made_at_the_next_beat(world: World):
    life = _life(world, "here")
    await life.beat()
    assert world.organization.id is not None
    slot = await world.store.slots.acquire(world.organization.id, 5, "here", world.clock.now(), TTL)
    assert slot is not None
    run = await world.store.runs.add(world.live_run("here"))
    ended = copy.deepcopy(run)
    ended.complete(world.clock.now(), "caller_hangup", NORMAL_CLOSE)
    life.hold_slot(slot)
    life.hold_run(run.id or 0)
    life.drop_slot(slot, released=False)
    life.drop_run(ended, stored=False)
    assert life.pending() == 2

    await life.beat()

    assert life.pending() == 0
    assert await world.live_slots() == 0
    [stored] = await world.runs()
    assert (stored.state, stored.end_reason) == (RunState.COMPLETED, "caller_hangup")


async def test_a_call_on_a_clean_shutdown_leaves_no_instance_row(world: World):
    life = _life(world, "leaving")
    await life.beat()
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == NORMAL_CLOSE

    await life.end()

    assert await world.store.instances.heartbeat("leaving", world.clock.now()) is False


async def test_only_held_slots_are_renewed_so_a_lost_one_expires(world: World):
    life = _life(world, "here")
    await life.beat()
    assert world.organization.id is not None
    held = await world.store.slots.acquire(world.organization.id, 5, "here", world.clock.now(), TTL)
    lost = await world.store.slots.acquire(world.organization.id, 5, "here", world.clock.now(), TTL)
    assert held is not None
    assert lost is not None  # e.g. its acquire committed after the call had given up on it
    life.hold_slot(held)

    for _ in range(4):  # beats across more than the TTL
        world.clock.advance(TTL / 3)
        await life.beat()

    assert await world.live_slots() == 1
