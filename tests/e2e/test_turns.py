"""Turn-taking on the `pipecat` engine with services paced like real ones (issue 13), end to end:
the real socket on loopback, Pipecat's OpenAI services against the paced stand-in."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from websockets.asyncio.client import ClientConnection, connect

from adapters.media.g711 import MULAW
from adapters.pipelines.pipecat.smart_turn import smart_turn_models
from adapters.pipelines.pipecat.vad import CallVad, SileroBatch, silero_session
from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from entrypoints.simulator.standins.openai_api import OpenAIStandIn
from entrypoints.simulator.standins.pacing import PACED, Pacing
from tests.e2e.conftest import Tenant, TenantFactory
from tests.e2e.test_pipecat import KEY, KEY_ENV, agent, loud_seconds
from tests.media_caller import MediaCaller, speech_phrase

ISSUE_GREETING = "Hello {{caller_number}}, thanks for calling Acme."
SHORT_GREETING = "Hello."  # over at once: the tests' turns start on a quiet line
LONG_REPLY = (
    "We have three plans for small teams. The basic plan covers one line and costs ten dollars a "
    "month. The team plan covers five lines and costs forty dollars a month. The business plan "
    "covers fifty lines and is priced on request, with a discount for a yearly contract."
)


@pytest.fixture(scope="module")
def paced_api() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=KEY, pacing=PACED) as server:
        yield server


@pytest.fixture
def oa(paced_api: OpenAIStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStandIn]:
    monkeypatch.setenv(KEY_ENV, KEY)
    paced_api.reset()
    yield paced_api
    paced_api.reset()


def caller_number() -> str:
    """A fresh caller number: a greeting naming it is not in the process's speech cache yet."""
    return f"+1555{random.randrange(10**7):07d}"


async def paced_agent(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn, session: str, **extra: Any
) -> Tenant:
    created = await tenants.create(definition=agent(oa.url, **{"greeting": SHORT_GREETING, **extra}))
    cloudonix.add_domain(created.domain, created.token, sessions={session})
    return created


async def caller_says_a_phrase(ws: ClientConnection, session: str) -> MediaCaller:
    """A call on a quiet line: the handshake, a second of silence, a 1.2 s phrase, 0.3 s of silence."""
    caller = MediaCaller(ws)
    await caller.handshake(session)
    await caller.silence(1.0)
    await caller.stream(speech_phrase(1.2))
    await caller.silence(0.3)
    return caller


async def test_a_greeting_streamed_in_pieces_plays_whole_from_its_first_piece(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    # a TTS that streams 24 kHz PCM in 200 ms pieces at real time: about 5.9 s of greeting
    oa.pace(Pacing(tts_first_byte_secs=0.15, tts_speed=1.0, tts_piece_secs=0.2))
    oa.seconds_per_char = 5.9 / len("Hello +15550000000, thanks for calling Acme.")
    tenant = await paced_agent(tenants, cloudonix, oa, "S-greet", greeting=ISSUE_GREETING)
    async with connect(tenant.stream_url(**{"from": caller_number()}), compression=None) as ws:
        caller = MediaCaller(ws)
        started = await caller.handshake("S-greet")
        await caller.silence(3.0)  # nothing heard yet would make a caller speak: it is heard at once
        assert caller.received.media, "no greeting after 3 s"
        assert caller.received.media[0][0] - started < 1.0  # the first piece, not the whole phrase
        await caller.silence(4.0)
        await caller.stop()
        assert (await caller.closed())[0] == 1000
    assert caller.received.clears == []
    assert loud_seconds(caller.received.audio_after(0)) > 5.9 * 0.8
    run = await tenant.ended_run(10.0)
    assert run.gathered_context["transcript"][0]["role"] == "agent"
    assert "interrupted" not in run.gathered_context["transcript"][0]


async def test_the_first_reply_frame_leaves_before_the_llm_has_finished(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    oa.script_reply(LONG_REPLY)
    tenant = await paced_agent(tenants, cloudonix, oa, "S-fast")
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-fast")
        await caller.silence(1.0)
        heard_before = len(caller.received.media)
        await caller.stream(speech_phrase(1.2))
        await caller.silence(0.3)
        chat = await oa.wait_for("chat", timeout=5)
        await caller.silence(3.0)
        await caller.stop()
        await caller.closed()
    words = len(LONG_REPLY.split())
    streamed_until = chat.at + PACED.llm_first_token_secs + words * PACED.chunk_interval  # at the soonest
    reply = caller.received.media[heard_before:]
    assert reply, "no reply"
    assert reply[0][0] < streamed_until - 0.3, (reply[0][0] - chat.at, streamed_until - chat.at)
    run = await tenant.ended_run(10.0)
    [turn] = run.gathered_context["turns"]
    assert turn["tts_first_byte_ms"] >= 150


async def test_a_short_first_clause_goes_at_once_and_the_next_sentence_is_asked_for_while_it_streams(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    reply = "Sure, I can help with that. It takes a minute."
    oa.script_reply(reply)
    oa.seconds_per_char = 0.12  # "Sure," streams for 0.25 s after its first byte
    tenant = await paced_agent(tenants, cloudonix, oa, "S-clause")
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = await caller_says_a_phrase(ws, "S-clause")
        await oa.wait_for("chat", timeout=5)
        await caller.silence(6.0)
        await caller.stop()
        await caller.closed()
    said = {r.body["input"]: r for r in oa.requests_for("speech") if r.body["input"] in reply}
    assert list(said) == ["Sure,", "I can help with that.", "It takes a minute."]
    clause, sentence = said["Sure,"], said["I can help with that."]
    assert clause.audio_seconds is not None
    # asked for while the clause's audio still streams (Pipecat alone asks only once its last
    # piece is in), so the sentence's first audio comes before the short clause has played out
    speed = PACED.tts_speed or 1.0
    last_piece = clause.at + PACED.tts_first_byte_secs + (clause.audio_seconds - PACED.tts_piece_secs) / speed
    assert sentence.at < last_piece - 0.1, (sentence.at - clause.at, last_piece - clause.at)
    run = await tenant.ended_run(10.0)
    agent_lines = [line["text"] for line in run.gathered_context["transcript"] if line["role"] == "agent"]
    assert agent_lines[-1] == reply


async def confirmed_at(ulaw: bytes, backchannel_secs: float) -> float:
    """Seconds into `ulaw` (after a quiet line) at which the engine's VAD has heard the caller
    voiced for `backchannel_secs`: where an interruption is confirmed (transport.CallInput)."""
    vad = CallVad(VADParams(stop_secs=0.2), SileroBatch(silero_session(), tick=0.0))
    vad.set_sample_rate(8000)
    for _ in range(50):
        await vad.analyze_audio(bytes(320))
    held: float | None = None
    for k in range(0, len(ulaw), 160):
        before = vad.state
        state = await vad.analyze_audio(MULAW.decode(ulaw[k : k + 160]))
        if held is None and state is VADState.SPEAKING and before is not VADState.SPEAKING:
            held = backchannel_secs - vad.params.start_secs
        elif held is not None and state is VADState.SPEAKING:
            held -= 0.02
        if held is not None and held <= 0:
            return (k + 160) / 8000
    raise AssertionError("never confirmed")


async def agent_speaking(caller: MediaCaller, oa: OpenAIStandIn) -> int:
    """The caller's first turn, then the agent's long answer playing; the media index it began at."""
    oa.script_reply(LONG_REPLY)
    await caller.silence(1.0)
    await caller.stream(speech_phrase(1.2))
    await caller.silence(0.3)
    await oa.wait_for("chat", timeout=5)
    await caller.silence(1.5)  # the answer has started
    assert caller.received.media, "the agent is not speaking"
    return len(caller.sent_at)


async def test_a_backchannel_does_not_cut_the_agent_but_an_interruption_does(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    tenant = await paced_agent(tenants, cloudonix, oa, "S-mhm")  # backchannel_max_secs: 0.3
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-mhm")
        await agent_speaking(caller, oa)
        await caller.stream(speech_phrase(0.2))  # "mm-hm"
        await caller.silence(1.5)
        assert caller.received.clears == [], "a backchannel cut the agent"
        assert len(oa.requests_for("transcriptions")) == 1  # and it was no turn
        talk_over_at = len(caller.sent_at)
        interruption = speech_phrase(1.0)
        await caller.stream(interruption)
        await caller.silence(0.5)
        await caller.stop()
        await caller.closed()
    assert caller.received.clears, "an interruption did not cut the agent"
    # confirmed once the VAD has heard the caller voiced for backchannel_max_secs (0.3 s); the
    # clear within 100 ms of that (and of the VAD batch's 30 ms tick)
    confirmed = caller.sent_at[talk_over_at] + await confirmed_at(interruption, 0.3)
    assert caller.received.clears[0] - confirmed < 0.1 + 0.03, caller.received.clears[0] - confirmed
    run = await tenant.ended_run(10.0)
    assert run.state is RunState.COMPLETED
    assert any(line.get("interrupted") for line in run.gathered_context["transcript"])


async def test_smart_turn_loads_once_per_process_and_answers_a_turn(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    oa.script_transcript("What are your opening hours?")
    oa.script_reply("From nine to five.")
    oa.script_transcript("Thank you.")
    oa.script_reply("You're welcome.")
    tenant = await paced_agent(tenants, cloudonix, oa, "S-smart", turn_detection="smart_turn")
    for _ in range(2):
        async with connect(tenant.stream_url(), compression=None) as ws:
            caller = await caller_says_a_phrase(ws, "S-smart")
            await oa.wait_for("chat", count=len(oa.requests_for("chat")) + 1, timeout=8)
            await caller.silence(1.5)
            await caller.stop()
            await caller.closed()
    models = smart_turn_models()  # the served app runs in this process
    assert models.loads == 1
    model = await models.get()
    assert model.inferences >= 2  # asked at each pause
    runs = await tenant.all_runs()
    assert all(run.gathered_context["turns"] for run in runs)
