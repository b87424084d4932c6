"""`InstanceTasks` on the in-memory store: registered before `start` returns, beating, sampling and
delivering webhooks in the background while it serves, and gone after `stop`."""

from __future__ import annotations

import asyncio

from application.admission import LoopLag
from application.instance_life import InstanceIdentity, InstanceLife
from application.instance_tasks import InstanceTasks
from application.webhooks import WebhookDeliveries
from tests.unit.application.conftest import World
from tests.unit.application.webhook_parts import deliveries


def _tasks(world: World, instance_id: str, webhooks: WebhookDeliveries) -> InstanceTasks:
    store = world.store
    identity = InstanceIdentity(instance_id, "host:8000", ttl_seconds=30)
    life = InstanceLife(identity, store.instances, store.slots, store.runs, world.clock, feed=world.feed)
    return InstanceTasks(life, LoopLag(busy_above_seconds=0.15), webhooks)


def _running(name: str) -> bool:
    return any(task.get_name() == name and not task.done() for task in asyncio.all_tasks())


async def test_start_registers_before_it_returns_and_stop_ends_the_life(world: World):
    async with deliveries(world.store, world.clock) as webhooks:
        await _start_and_stop(world, _tasks(world, "serving", webhooks))


async def _start_and_stop(world: World, tasks: InstanceTasks) -> None:
    await tasks.start()

    assert await world.store.instances.heartbeat("serving", world.clock.now()) is True
    assert _running("instance-heartbeat") and _running("loop-lag") and _running("webhook-delivery")

    await tasks.stop()

    assert not _running("instance-heartbeat") and not _running("loop-lag")
    assert not _running("webhook-delivery")
    assert await world.store.instances.heartbeat("serving", world.clock.now()) is False
