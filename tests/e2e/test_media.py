"""Live calls end to end: the linetest agent over the real socket, with the stand-in Cloudonix API."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect

from adapters.pipelines.assets import greeting_ulaw
from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.e2e.conftest import Tenant, TenantFactory
from tests.media_caller import MediaCaller, best_correlation, pcm_of, speech_phrase

LINETEST = {"engine": "linetest", "transfer_destination": "+15555550123", "max_call_seconds": 60}


@pytest.fixture
async def line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create(definition=LINETEST)
    cloudonix.add_domain(created.domain, created.token, sessions={"S-media"})
    return created


async def test_greeting_then_barge_in_then_echo(line: Tenant):
    phrase = speech_phrase(1.6)
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        started = await caller.handshake("S-media")
        await caller.silence(0.6)  # the greeting plays meanwhile
        first_frame = len(caller.sent_at)
        await caller.stream(phrase)  # talking over the greeting
        await caller.silence(2.5)  # the pause, then the echo
        await caller.stop()
        assert await caller.closed() == (1000, "")
    got = caller.received
    assert got.media, "the agent sent no audio"
    assert got.media[0][0] - started < 1.0, "the greeting started late"
    greeting_heard = b"".join(chunk for at, chunk in got.media if at < got.clears[0])
    assert best_correlation(pcm_of(greeting_ulaw()[:4000]), pcm_of(greeting_heard)) > 0.95
    # barge-in: `clear` soon after the frame that carried the onset
    onset_sent = caller.sent_at[first_frame]
    assert got.clears, "no clear on barge-in"
    assert got.clears[0] - onset_sent < 0.3
    # the same speech came back, after the caller paused
    echoed = got.audio_after(got.clears[0])
    assert best_correlation(pcm_of(phrase[: 160 * 50]), pcm_of(echoed)) > 0.9
    run = await line.ended_run(5.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")
    assert run.gathered_context["utterances_echoed"] == 1
    assert run.gathered_context["barge_ins"] == 1
    assert run.logs["media"]["frames_in"] > 200


async def test_pound_during_the_greeting_hangs_up_through_cloudonix_at_once(
    line: Tenant, cloudonix: CloudonixStandIn
):
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.silence(0.5)  # the 10 s greeting is playing
        assert caller.received.media, "the greeting has not started"
        pressed = time.monotonic()
        await caller.dtmf("#")
        code = await caller.closed()
    assert code == (1000, "Hung up at the caller's request")
    [hangup] = cloudonix.requests_for("hangup")
    assert hangup.at - pressed < 1.0, f"the hang-up reached Cloudonix {hangup.at - pressed:.2f} s after #"
    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-media")]
    assert caller.received.clears, "the greeting was not cleared"
    run = await line.ended_run(5.0)
    assert (run.state, run.end_reason, run.close_code, run.close_reason) == (
        RunState.COMPLETED,
        "caller_hangup",  # the caller asked to end the call
        1000,
        "Hung up at the caller's request",
    )
    assert run.gathered_context["dtmf"] == "#"


async def test_hang_up_is_retried_after_a_server_error(line: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.respond_with("hangup", 500, times=1)
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.dtmf("#")
        await caller.closed()
    assert len(cloudonix.requests_for("hangup")) == 2
    assert (await line.ended_run(5.0)).end_reason == "caller_hangup"


async def test_a_hang_up_that_keeps_failing_still_ends_the_run(line: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.respond_with("hangup", 503)
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.dtmf("#")
        await caller.closed()
    run = await line.ended_run(5.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")
    assert len(cloudonix.requests_for("hangup")) == 3


async def test_star_replays_the_greeting(line: Tenant):
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.silence(0.5)
        await caller.dtmf("*")
        await caller.silence(0.3)
        replay_from = caller.received.clears[0] if caller.received.clears else 0.0
        await caller.silence(1.0)
        await caller.stop()
        await caller.closed()
    assert caller.received.clears, "the replay did not clear the playing greeting"
    replayed = caller.received.audio_after(replay_from)
    assert best_correlation(pcm_of(greeting_ulaw()[:4000]), pcm_of(replayed[:12000])) > 0.95


async def test_zero_transfers_to_the_configured_destination(line: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.callback_delay = 0.05
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.dtmf("0")
        assert await caller.closed() == (1000, "Transferred to ***0123")  # the number masked
    [dial] = cloudonix.dials
    assert dial.destination == "+15555550123"
    assert dial.caller_id == "+15555550199"
    [move] = cloudonix.moves
    assert move.session == "S-media"
    assert cloudonix.hangups == []  # a transfer is not followed by a hang-up
    run = await line.ended_run(5.0)
    assert (run.state, run.end_reason, run.close_reason) == (
        RunState.COMPLETED,
        "transferred",
        "Transferred to ***0123",
    )


async def test_a_failed_transfer_keeps_the_caller(line: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.callback_delay = 0.05
    cloudonix.transfer_outcome = "busy"
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.dtmf("0")
        await caller.silence(1.0)
        await caller.stop()
        assert await caller.closed() == (1000, "")
    run = await line.ended_run(5.0)
    assert (run.end_reason, run.gathered_context["transfer_failures"]) == ("caller_hangup", 1)


async def test_max_call_seconds_ends_the_call_through_cloudonix(
    tenants: TenantFactory, cloudonix: CloudonixStandIn
):
    short = await tenants.create(definition={**LINETEST, "max_call_seconds": 1})
    cloudonix.add_domain(short.domain, short.token, sessions={"S-short"})
    async with connect(short.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-short")
        await caller.silence(0.5)  # the greeting plays on; the limit does not wait for its end
        assert await caller.closed() == (1000, "Maximum call duration reached")
    assert cloudonix.hangups == [(f"{short.domain}.cloudonix.net", "S-short")]
    run = await short.ended_run(5.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "max_duration")
    assert 1.0 <= run.duration_seconds < 8


BAD_FRAMES = {
    "invalid_json": "{nope",
    "unknown_event": json.dumps({"event": "flux", "streamSid": "MZ-e2e"}),
    "too_large": json.dumps({"event": "media", "streamSid": "MZ-e2e", "media": {"payload": "A" * 70_000}}),
    "foreign_stream": json.dumps({"event": "media", "streamSid": "MZ-other", "media": {"payload": "/w=="}}),
    "invalid_base64": json.dumps({"event": "media", "streamSid": "MZ-e2e", "media": {"payload": "***"}}),
    "invalid_dtmf": json.dumps({"event": "dtmf", "streamSid": "MZ-e2e", "dtmf": {"digit": "x"}}),
    "binary": b"\x00\x01\x02",
}


async def test_bad_frames_are_counted_and_the_call_goes_on(line: Tenant):
    phrase = speech_phrase(1.2)
    async with connect(line.stream_url(), compression=None, max_size=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.silence(0.2)
        for frame in BAD_FRAMES.values():
            await caller.send_json(frame)
        await caller.stream(phrase)
        await caller.silence(2.0)
        await caller.stop()
        assert await caller.closed() == (1000, "")
    run = await line.ended_run(5.0)
    assert run.state is RunState.COMPLETED
    assert run.logs["media"]["bad_frames"] == dict.fromkeys(BAD_FRAMES, 1)
    assert run.gathered_context["utterances_echoed"] == 1  # still listening after the bad frames
    echoed = caller.received.audio_after(caller.received.clears[-1] if caller.received.clears else 0.0)
    assert best_correlation(pcm_of(phrase[: 160 * 40]), pcm_of(echoed)) > 0.9


async def test_outbound_audio_is_paced_at_real_time(line: Tenant):
    async with connect(line.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-media")
        await caller.silence(2.0)
        await caller.stop()
        await caller.closed()
    arrivals = np.array([at for at, _ in caller.received.media])
    audio_seconds = sum(len(chunk) for _, chunk in caller.received.media) / 8000
    span = arrivals[-1] - arrivals[0]
    # 2 s of listening: about 2 s of greeting arrived, never seconds of it in a burst
    assert 1.5 < audio_seconds < 2.4
    assert span > audio_seconds - 0.25
    assert all(len(chunk) == 160 for _, chunk in caller.received.media)
