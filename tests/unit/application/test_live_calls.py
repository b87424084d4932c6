"""The live-call registry draining for shutdown: no new calls, live calls get their grace, the rest end
via the provider."""

from __future__ import annotations

import asyncio

from adapters.memory.calls import InMemoryActiveCall
from application.live_calls import LiveCallRegistry, drain
from domain.close_policy import Close
from domain.stream_events import StreamStart
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message

START = StreamStart(stream_sid="MZ", call_sid="CA", session="S", account_sid="acme")


async def test_calls_that_end_within_the_grace_are_left_alone():
    registry = LiveCallRegistry()
    short, long = InMemoryActiveCall(START), InMemoryActiveCall(START)
    registry.register(1, short)
    registry.register(2, long)

    async def short_call_ends() -> None:
        await asyncio.sleep(0.05)
        registry.unregister(1)

    ending = asyncio.create_task(short_call_ends())
    hung_up = await drain(registry, grace_seconds=0.3)
    await ending
    assert registry.draining
    assert hung_up == 1
    assert short.operations == []
    assert long.operations == ["hang_up:drained"]


async def test_drain_returns_at_once_when_no_call_is_live():
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await drain(LiveCallRegistry(), grace_seconds=5) == 0
    assert loop.time() - began < 1


async def test_a_draining_instance_admits_no_new_call(world: World):
    world.live_calls.draining = True
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1013, "Server shutting down")
    assert await world.runs() == []
