"""The linetest engine on an in-memory call: events in, operations out."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from adapters.media.g711 import MULAW
from adapters.memory.calls import InMemoryActiveCall, InMemoryCallJournal
from adapters.pipelines.linetest import TURN_END_SILENCE, LineTestPipeline, greeting_pcm
from application.ports.live_call import CallOutcome
from domain.agents import AgentDefinition
from domain.stream_events import AudioIn, DtmfIn, StopIn, StreamStart
from tests.media_caller import speech_phrase

START = StreamStart(stream_sid="MZ", call_sid="CA", session="S", account_sid="acme")
SILENCE = b"\x00\x00" * 160


def spoken(call: InMemoryActiveCall) -> list[bytes]:
    """What the agent said, without the silence that ends each turn."""
    return [pcm for pcm in call.played if pcm != TURN_END_SILENCE]


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


def speech_frames(seconds: float = 1.2) -> list[bytes]:
    return frames(MULAW.decode(speech_phrase(seconds)))


async def run_line(call: InMemoryActiveCall, **definition: object) -> CallOutcome:
    return await asyncio.wait_for(
        LineTestPipeline()
        .prepare(AgentDefinition.from_dict({"engine": "linetest", **definition}), {}, InMemoryCallJournal())
        .run(call),
        timeout=10,
    )


async def test_greets_first_and_marks_the_greeting():
    call = InMemoryActiveCall(START)
    call.push(StopIn())
    outcome = await run_line(call)
    assert call.operations[:3] == ["play", "mark:greeting", "play"]
    assert call.played[:2] == [greeting_pcm(), TURN_END_SILENCE]
    assert outcome.end_reason == "caller_hangup"


async def test_echoes_an_utterance_after_the_pause():
    call = InMemoryActiveCall(START)
    speech = speech_frames()
    fed = [SILENCE] * 10 + speech + [SILENCE] * 40
    call.push(*(AudioIn(f) for f in fed), StopIn())
    call.finish_playback()
    outcome = await run_line(call)
    assert len(spoken(call)) == 2
    echo = spoken(call)[1]
    assert echo in b"".join(fed)  # the caller's own audio, unchanged
    assert 0.8 * len(b"".join(speech)) < len(echo) < 1.3 * len(b"".join(speech))
    assert call.marks == ["greeting", "echo-1"]
    assert outcome.gathered["utterances_echoed"] == 1
    assert call.clears == 1  # the greeting was still "playing" when the caller spoke


async def test_barge_in_clears_before_the_caller_has_finished():
    call = InMemoryActiveCall(START)
    speech = speech_frames()
    call.push(*(AudioIn(f) for f in [SILENCE] * 5 + speech[:8]))
    task = asyncio.create_task(run_line(call))
    for _ in range(100):
        if call.clears:
            break
        await asyncio.sleep(0.01)
    assert call.operations[:4] == ["play", "mark:greeting", "play", "clear"]
    assert len(spoken(call)) == 1  # nothing echoed yet: the caller is still talking
    call.push(StopIn())
    outcome = await task
    assert outcome.gathered["barge_ins"] == 1


async def test_no_clear_when_nothing_is_playing():
    call = InMemoryActiveCall(START, instant_playback=True)
    call.push(*(AudioIn(f) for f in [SILENCE] * 5 + speech_frames() + [SILENCE] * 40), StopIn())
    outcome = await run_line(call)
    assert call.clears == 0
    assert (outcome.gathered["barge_ins"], outcome.gathered["utterances_echoed"]) == (0, 1)


async def test_noise_alone_is_not_echoed():
    call = InMemoryActiveCall(START)
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 300, 160 * 150)).astype("<i2").tobytes()
    call.push(*(AudioIn(f) for f in frames(noise)), StopIn())
    outcome = await run_line(call)
    assert outcome.gathered["utterances_echoed"] == 0


async def test_pound_hangs_up_at_the_callers_request():
    call = InMemoryActiveCall(START)
    call.push(DtmfIn("1"), DtmfIn("#"), DtmfIn("2"))
    outcome = await run_line(call)
    assert "hang_up:caller_hangup" in call.operations
    assert (outcome.end_reason, outcome.gathered["dtmf"]) == ("caller_hangup", "1#")


async def test_star_replays_the_greeting():
    call = InMemoryActiveCall(START)
    call.push(DtmfIn("*"), StopIn())
    await run_line(call)
    greeting = ["play", "mark:greeting", "play"]
    assert call.operations == [*greeting, "clear", *greeting]
    assert spoken(call) == [greeting_pcm(), greeting_pcm()]


async def test_zero_transfers_to_the_destination():
    call = InMemoryActiveCall(START)
    call.push(DtmfIn("0"))
    outcome = await run_line(call, transfer_destination="+15555550123")
    assert call.transfers == ["+15555550123"]
    assert outcome.end_reason == "transferred"


async def test_zero_without_a_destination_does_nothing():
    call = InMemoryActiveCall(START)
    call.push(DtmfIn("0"), StopIn())
    outcome = await run_line(call)
    assert call.transfers == []
    assert (outcome.end_reason, outcome.gathered["dtmf"]) == ("caller_hangup", "0")


async def test_a_failed_transfer_keeps_the_call():
    call = InMemoryActiveCall(START, fail_transfer=True)
    call.push(DtmfIn("0"), StopIn())
    outcome = await run_line(call, transfer_destination="sip:desk@example.com")
    assert (outcome.end_reason, outcome.gathered["transfer_failures"]) == ("caller_hangup", 1)


@pytest.mark.parametrize("seconds", [1])
async def test_max_call_seconds_hangs_up(seconds: int):
    call = InMemoryActiveCall(START)
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcome = await run_line(call, max_call_seconds=seconds)
    assert outcome.end_reason == "max_duration"
    assert "hang_up:max_duration" in call.operations
    assert loop.time() - began >= seconds
