"""End-of-call webhooks on the in-memory store, sent over HTTP to a receiver on loopback: one
signed POST per ended run on every end path, retried until a 2xx, signed with the current secret;
and the disposition each end path stores."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.system.clock import SystemClock
from application.instance_life import InstanceIdentity, InstanceLife
from application.management import GetAgent, NotFoundError
from application.webhooks import RotateWebhookSecret
from domain.agents import AgentDefinition
from domain.close_policy import NORMAL_CLOSE
from domain.webhooks import DeliveryState
from domain.workflow_run import RunState
from tests.unit.application.conftest import CONNECTED, STOP, World, build_world, socket_with, start_message
from tests.unit.application.webhook_parts import deliveries
from tests.webhook_receiver import webhook_receiver


async def _with_webhook(world: World, url: str) -> str:
    """Give the world's agent `url` as its webhook, and a secret; returns the secret."""
    world.workflow = await world.store.workflows.update(
        dataclasses.replace(
            world.workflow, definition=AgentDefinition.from_dict({"engine": "linetest", "webhook_url": url})
        )
    )
    rotate = RotateWebhookSecret(GetAgent(world.store.workflows), world.store.webhook_secrets, world.clock)
    return await rotate.execute(world.organization.stored_id, world.workflow.uuid)


async def _call(world: World) -> int:
    await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    [run] = await world.runs()
    return run.stored_id


async def test_an_ended_run_is_posted_once_signed_with_the_agents_secret(world: World) -> None:
    world.clock = SystemClock()  # the library checks the timestamp against the real time
    with webhook_receiver() as receiver:
        secret = await _with_webhook(world, receiver.url)
        run_id = await _call(world)
        async with deliveries(world.store, world.clock) as worker:
            assert await worker.deliver_due() == 1
            assert await worker.deliver_due() == 0  # delivered: never again
        [post] = receiver.received
        payload = Webhook(secret).verify(post.body, post.headers)
        assert payload["type"] == "run.ended"
        assert payload["data"]["id"] == run_id
        assert payload["data"]["disposition"] == "no_speech"  # the test caller said nothing
        assert payload["data"]["state"] == "completed"
        assert payload["timestamp"] == payload["data"]["ended_at"]
        assert post.headers["webhook-id"].startswith("msg_")
    [run] = await world.runs()
    delivery = await world.store.webhooks.for_run(run.stored_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 1, 204)


async def test_a_500_is_retried_after_a_back_off_then_delivered_with_the_same_id(world: World) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        await _with_webhook(world, receiver.url)
        run_id = await _call(world)
        async with deliveries(world.store, world.clock, jitter=1.0) as worker:
            assert await worker.deliver_due() == 1
            failed = await world.store.webhooks.for_run(run_id)
            assert failed is not None
            assert (failed.state, failed.attempts, failed.last_status) == (DeliveryState.PENDING, 1, 500)
            assert await worker.deliver_due() == 0  # not before its back-off
            world.clock.advance(1)
            assert await worker.deliver_due() == 1
        first, second = receiver.received
        assert (first.status, second.status) == (500, 204)
        assert first.headers["webhook-id"] == second.headers["webhook-id"]  # receivers can drop repeats
    delivered = await world.store.webhooks.for_run(run_id)
    assert delivered is not None
    assert (delivered.state, delivered.attempts, delivered.last_status) == (DeliveryState.DELIVERED, 2, 204)


async def test_a_rotated_secret_signs_and_the_old_one_no_longer_verifies(world: World) -> None:
    world.clock = SystemClock()
    with webhook_receiver() as receiver:
        old = await _with_webhook(world, receiver.url)
        rotate = RotateWebhookSecret(
            GetAgent(world.store.workflows), world.store.webhook_secrets, world.clock
        )
        new = await rotate.execute(world.organization.stored_id, world.workflow.uuid)
        assert new != old
        await _call(world)
        async with deliveries(world.store, world.clock) as worker:
            await worker.deliver_due()
        [post] = receiver.received
        Webhook(new).verify(post.body, post.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(post.body, post.headers)


async def test_another_organisations_agent_gets_no_secret(world: World) -> None:
    other = await build_world()
    rotate = RotateWebhookSecret(GetAgent(world.store.workflows), world.store.webhook_secrets, world.clock)
    with pytest.raises(NotFoundError):
        await rotate.execute(world.organization.stored_id + 1000, world.workflow.uuid)
    with pytest.raises(NotFoundError):
        await rotate.execute(world.organization.stored_id, other.workflow.uuid)


async def test_without_a_secret_nothing_is_sent_and_the_delivery_waits(world: World) -> None:
    with webhook_receiver() as receiver:
        world.workflow = await world.store.workflows.update(
            dataclasses.replace(
                world.workflow, definition=AgentDefinition.from_dict({"webhook_url": receiver.url})
            )
        )
        run_id = await _call(world)
        async with deliveries(world.store, world.clock) as worker:
            await worker.deliver_due()
        assert receiver.received == []
    waiting = await world.store.webhooks.for_run(run_id)
    assert waiting is not None
    assert (waiting.state, waiting.attempts, waiting.last_status) == (DeliveryState.PENDING, 1, None)


async def test_an_agent_without_a_webhook_has_no_delivery(world: World) -> None:
    run_id = await _call(world)
    assert await world.store.webhooks.for_run(run_id) is None


# -- the disposition and the outbox row on every end path --------------------------------------------


async def test_a_refused_call_ends_error_with_its_webhook(world: World) -> None:
    world.handshake_timeout = 0.05
    await _with_webhook(world, "https://hooks.example.com/agent")
    await world.stream(world.url(), socket_with(CONNECTED))
    [run] = await world.runs()
    assert (run.state, run.end_reason, run.disposition) == (RunState.FAILED, "error", "error")
    assert await world.store.webhooks.for_run(run.stored_id) is not None


async def test_a_run_reaped_by_another_instance_ends_error_with_its_webhook(world: World) -> None:
    await _with_webhook(world, "https://hooks.example.com/agent")
    store, clock = world.store, world.clock
    await store.instances.register("crashed", "host-a:8000", clock.now())
    run = await store.runs.add(world.live_run("crashed"))
    clock.advance(31)
    reaper = InstanceLife(
        InstanceIdentity("alive", "host-b:8000", 30),
        store.instances,
        store.slots,
        store.runs,
        clock,
        feed=world.feed,
    )
    await reaper.beat()
    reaped = await store.runs.get(run.stored_id)
    assert reaped is not None
    assert (reaped.end_reason, reaped.disposition) == ("instance_lost", "error")
    assert await store.webhooks.for_run(run.stored_id) is not None


async def test_an_end_stored_late_keeps_its_disposition_and_gets_its_webhook(world: World) -> None:
    await _with_webhook(world, "https://hooks.example.com/agent")
    store = world.store
    run = await store.runs.add(world.live_run("test-instance", gathered={"barge_ins": 1}))
    run.complete(world.clock.now(), "agent_hangup", NORMAL_CLOSE)
    assert run.disposition == "agent_ended"
    await store.runs.save_end(run)  # what `store_end` falls back to, and the late retry stores
    stored = await store.runs.get(run.stored_id)
    assert stored is not None
    assert stored.disposition == "agent_ended"
    assert await store.webhooks.for_run(run.stored_id) is not None
    await store.runs.save(run)  # stored again: still one delivery
    assert len(await store.webhooks.claim(world.clock.now(), 60, 10)) == 1


async def test_the_worker_keeps_going_while_it_runs(world: World) -> None:
    with webhook_receiver() as receiver:
        world.clock = SystemClock()
        await _with_webhook(world, receiver.url)
        async with deliveries(world.store, world.clock) as worker:
            task = asyncio.create_task(worker.run(every=0.02))
            try:
                await _call(world)
                await asyncio.to_thread(receiver.wait_for, 1, 5.0)
            finally:
                task.cancel()
        assert json.loads(receiver.received[0].body)["type"] == "run.ended"
