"""The caller's TCP connection reset (no closing handshake, no FIN: an RST) at every step of a call.

Whatever step it vanishes at, its run (when one was minted) is terminal within 2 s, the
organisation's only slot is free for the next call, and nothing is logged as a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from domain.workflow_run import RunState
from entrypoints.settings import Settings
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, start_event
from tests.e2e.conftest import Tenant, TenantFactory
from tests.e2e.faults import NEXT_SESSION, assert_no_crash_logged, assert_slot_free, terminal_run
from tests.media_caller import MediaCaller
from tests.served import served_app

ENDED_WITHIN = 2.0  # seconds from the reset to a terminal run (the bound)
LINETEST = {"engine": "linetest", "max_call_seconds": 60}


@pytest.fixture
async def line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create(max_concurrent_calls=1, definition=LINETEST)
    cloudonix.add_domain(created.domain, created.token, sessions={"S-gone", NEXT_SESSION})
    return created


def reset(ws: ClientConnection) -> float:
    """Drop the connection the way a crashed phone or a NAT timeout does: `SO_LINGER` 0, then
    close, so the kernel sends an RST instead of a FIN. Returns when it happened."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()
    return time.monotonic()


async def ended_in_handshake(line: Tenant, gone: float, captured_logs: io.StringIO) -> None:
    """The run of a caller gone during the handshake: failed 4400 within the bound, its slot free,
    nothing logged as a crash."""
    run = await terminal_run(line, gone, ENDED_WITHIN)
    assert (run.state, run.close_code, run.close_reason) == (
        RunState.FAILED,
        4400,
        "Stream closed during handshake",
    )
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_reset_right_after_the_upgrade(line: Tenant, captured_logs: io.StringIO):
    ws = await connect(line.stream_url(), compression=None)
    await asyncio.sleep(0.2)  # the run is minted on accept, then waits for `connected`
    gone = reset(ws)
    await ended_in_handshake(line, gone, captured_logs)


async def test_reset_after_connected(line: Tenant, captured_logs: io.StringIO):
    ws = await connect(line.stream_url(), compression=None)
    await ws.send(json.dumps(CONNECTED))
    await asyncio.sleep(0.2)
    gone = reset(ws)
    await ended_in_handshake(line, gone, captured_logs)


async def test_reset_while_the_session_is_being_validated(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO
):
    cloudonix.slow("validate", 0.4, times=1)  # would answer 200, within the provider timeout of 0.5 s
    ws = await connect(line.stream_url(), compression=None)
    await ws.send(json.dumps(CONNECTED))
    await ws.send(json.dumps(start_event("S-gone")))
    for _ in range(200):  # reset once the validation is in flight
        if cloudonix.requests_for("validate"):
            break
        await asyncio.sleep(0.005)
    gone = reset(ws)
    await ended_in_handshake(line, gone, captured_logs)


@pytest.fixture(scope="module")
def patient_app(settings: Settings) -> Iterator[str]:
    """A second served app (same database, same Cloudonix stand-in) that waits for Cloudonix as
    long as production does by default (AGENT_STREAM_PROVIDER_TIMEOUT=5)."""
    with served_app(dataclasses.replace(settings, provider_timeout=5.0)) as url:
        yield url


async def test_reset_while_cloudonix_takes_its_time_does_not_wait_for_it(
    line: Tenant, cloudonix: CloudonixStandIn, patient_app: str, captured_logs: io.StringIO
):
    cloudonix.hang("validate", times=1)  # no answer for the whole 5 s
    there = dataclasses.replace(line, app_url=patient_app)
    ws = await connect(there.stream_url(), compression=None)
    await ws.send(json.dumps(CONNECTED))
    await ws.send(json.dumps(start_event("S-gone")))
    for _ in range(200):
        if cloudonix.requests_for("validate"):
            break
        await asyncio.sleep(0.005)
    gone = reset(ws)
    await ended_in_handshake(line, gone, captured_logs)


async def test_reset_mid_call_while_the_greeting_plays(line: Tenant, captured_logs: io.StringIO):
    ws = await connect(line.stream_url(), compression=None)
    caller = MediaCaller(ws, stream_sid="MZ-e2e")
    await caller.handshake("S-gone")
    for _ in range(300):  # the greeting is playing once its first frames arrived
        if len(caller.received.media) >= 5:
            break
        await asyncio.sleep(0.01)
    assert caller.received.media, "the greeting never started"
    gone = reset(ws)
    run = await terminal_run(line, gone, ENDED_WITHIN)
    assert (run.state, run.end_reason, run.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    assert run.logs["media"]["frames_out"] >= 5
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_reset_mid_call_while_the_caller_streams_audio(line: Tenant, captured_logs: io.StringIO):
    ws = await connect(line.stream_url(), compression=None)
    caller = MediaCaller(ws, stream_sid="MZ-e2e")
    await caller.handshake("S-gone")
    await caller.silence(0.5)
    gone = reset(ws)
    run = await terminal_run(line, gone, ENDED_WITHIN)
    assert (run.state, run.end_reason, run.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_reset_while_the_hang_up_is_under_way(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO
):
    """`#` hangs up through Cloudonix at once; the caller vanishing while Cloudonix takes its time
    to answer does not stop the hang-up, and the run still ends."""
    cloudonix.slow("hangup", 0.4, times=1)  # answers 204, within the provider timeout of 0.5 s
    ws = await connect(line.stream_url(), compression=None)
    caller = MediaCaller(ws, stream_sid="MZ-e2e")
    await caller.handshake("S-gone")
    await caller.silence(0.2)
    await caller.dtmf("#")
    for _ in range(200):  # reset once the hang-up is in flight
        if cloudonix.requests_for("hangup"):
            break
        await asyncio.sleep(0.005)
    assert cloudonix.requests_for("hangup"), "the hang-up did not go out at once"
    gone = reset(ws)
    run = await terminal_run(line, gone, ENDED_WITHIN)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")
    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-gone")]
    assert run.logs["provider_hangup"] == {"hung_up": True, "attempts": 1, "last_status": 204, "error": None}
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


@pytest.mark.parametrize("after", [0.0, 0.005, 0.02, 0.05, 0.1, 0.15, 0.3, 0.6])
async def test_reset_at_any_moment_of_the_handshake_and_greeting(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO, after: float
):
    """Everything sent at once, then reset `after` s later: wherever that lands (reading the
    handshake, looking up the configuration, validating for 0.1 s, greeting), the run ends."""
    cloudonix.slow("validate", 0.1, times=1)
    ws = await connect(line.stream_url(), compression=None)
    await ws.send(json.dumps(CONNECTED))
    await ws.send(json.dumps(start_event("S-gone")))
    await asyncio.sleep(after)
    gone = reset(ws)
    run = await terminal_run(line, gone, ENDED_WITHIN)
    assert run.close_code in (1000, 4400), run
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)
