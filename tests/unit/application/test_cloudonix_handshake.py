"""While Cloudonix validates the session, the handshake keeps reading the socket: a caller gone
meanwhile ends the handshake at once, and what it sent meanwhile reaches the call in order."""

from __future__ import annotations

import base64

from domain.close_policy import Close
from domain.workflow_run import RunState
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message


def media(n: int) -> dict[str, object]:
    payload = base64.b64encode(bytes([0xFF]) * 160).decode()
    return {"event": "media", "sequenceNumber": str(n), "streamSid": "MZ-1", "media": {"payload": payload}}


async def test_a_caller_gone_during_validation_ends_the_handshake_at_once(world: World):
    world.sessions.validate_delay = 60.0  # a provider that would take a minute to answer
    socket = socket_with(CONNECTED, start_message())
    socket.end()
    close = await world.stream(world.url(), socket)  # World.stream gives up after 10 s
    assert close == Close(4400, "Stream closed during handshake")
    [run] = await world.runs()
    assert (run.state, run.close_code) == (RunState.FAILED, 4400)
    assert await world.live_slots() == 0


async def test_what_the_caller_sends_during_validation_reaches_the_call_in_order(world: World):
    world.sessions.validate_delay = 0.2
    socket = socket_with(CONNECTED, start_message(), *(media(k) for k in range(2, 12)), STOP)
    assert await world.stream(world.url(), socket) == Close(1000, "")
    [run] = await world.runs()
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")
    assert run.logs["media"]["frames_in"] == 10


async def test_a_close_that_comes_with_the_answer_is_the_callers_hang_up(world: World):
    socket = socket_with(CONNECTED, start_message())
    socket.end()  # validation answers at once: the call starts, then sees the close
    assert await world.stream(world.url(), socket) == Close(1000, "")
    [run] = await world.runs()
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")
