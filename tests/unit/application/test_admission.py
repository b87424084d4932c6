"""Admission: an instance whose event loop lags, or with too many calls starting at once, tells new
callers to try again later (1013 "Server busy")."""

from __future__ import annotations

import contextlib

from application.admission import MAX_STARTING_CALLS
from domain.close_policy import Close
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message


async def test_a_saturated_instance_refuses_new_calls_try_again_later(world: World):
    world.load.lag.record(1.0)  # a second of event-loop lag
    assert world.load.busy
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1013, "Server busy")
    assert await world.runs() == []


async def test_too_many_calls_starting_at_once_are_refused_try_again_later(world: World):
    """Calls whose start waits on the database fill the instance's start window: the next caller is
    told to try again later (1013) at once, instead of queueing into a database time-out (1011)."""
    with contextlib.ExitStack() as waiting_on_the_database:
        for _ in range(MAX_STARTING_CALLS):
            waiting_on_the_database.enter_context(world.load.call_starting())
        close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
        assert close == Close(1013, "Server busy")
    assert world.load.starting == 0
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1000, "")
    assert world.load.starting == 0  # a call that started and ended leaves the window as it was
