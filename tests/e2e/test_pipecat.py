"""The `pipecat` engine end to end: the real socket on loopback, Pipecat's real OpenAI services
pointed at the stand-in OpenAI-compatible server, and the stand-in Cloudonix API."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from entrypoints.simulator.standins.openai_api import OpenAIStandIn, ToolCall
from tests.e2e.conftest import Tenant, TenantFactory
from tests.media_caller import MediaCaller, pcm_of, speech_phrase

KEY_ENV = "STANDIN_OPENAI_KEY"
KEY = "sk-standin-0123456789"
GREETING = "Hello, this is the Acme front desk. How can I help you today?"


def agent(base_url: str, **extra: Any) -> dict[str, Any]:
    block = {"provider": "openai", "base_url": base_url, "api_key_env": KEY_ENV}
    return {
        "engine": "pipecat",
        "system_prompt": "You are the front desk of {{company}}. The caller is {{caller_number}}.",
        "greeting": GREETING,
        "llm": {**block, "model": "gpt-4o-mini"},
        "stt": {**block, "model": "gpt-4o-transcribe", "language": "en"},
        "tts": {**block, "model": "gpt-4o-mini-tts", "voice": "af_heart"},  # a local server's voice
        "transfer_destinations": ["+15555550123"],
        "max_call_seconds": 60,
        **extra,
    }


@pytest.fixture(scope="session")
def openai_api() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(api_key=KEY) as server:
        yield server


@pytest.fixture
def oa(openai_api: OpenAIStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStandIn]:
    monkeypatch.setenv(KEY_ENV, KEY)  # the served app runs in this process: it reads the key at call time
    openai_api.reset()
    yield openai_api
    openai_api.reset()


async def make_agent(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn, session: str, **extra: Any
) -> Tenant:
    created = await tenants.create(definition=agent(oa.url, **extra))
    cloudonix.add_domain(created.domain, created.token, sessions={session})
    return created


@pytest.fixture
async def pc(tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn) -> Tenant:
    return await make_agent(tenants, cloudonix, oa, "S-pc")


@pytest.fixture
async def caller(pc: Tenant) -> AsyncIterator[MediaCaller]:
    async with connect(pc.stream_url(), compression=None) as ws:
        yield MediaCaller(ws)


def loud_seconds(ulaw: bytes) -> float:
    """Seconds of audio above -30 dBFS, in 20 ms frames."""
    pcm = pcm_of(ulaw)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    return float((np.sqrt((frames**2).mean(axis=1)) > 1000).sum() * 0.02)


async def test_greets_hears_the_caller_and_keeps_the_transcript(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn
) -> None:
    oa.script_transcript("What are your opening hours?")
    oa.script_reply("We are open from nine to five.")
    started = await caller.handshake("S-pc")
    await caller.silence(0.5)
    greeting_ends = len(GREETING) * oa.seconds_per_char
    assert caller.received.media, "no greeting audio"
    assert caller.received.media[0][0] - started < 1.0
    await caller.silence(greeting_ends)
    await caller.stream(speech_phrase(1.2))
    await caller.silence(0.3)
    chat = await oa.wait_for("chat", timeout=5)
    await caller.silence(3.0)  # the answer plays
    await caller.stop()
    assert (await caller.closed())[0] == 1000

    assert loud_seconds(caller.received.audio_after(0)) > greeting_ends * 0.8
    messages = chat.body["messages"]
    assert messages[0] == {
        "role": "system",
        "content": "You are the front desk of Acme. The caller is +15555550100.",
    }
    assert {"role": "assistant", "content": GREETING} in messages
    assert messages[-1]["role"] == "user"
    assert "What are your opening hours?" in messages[-1]["content"]
    stt = oa.requests_for("transcriptions")[0]
    assert 0.8 < (stt.audio_seconds or 0) < 3.0
    run = await pc.ended_run(10.0)
    assert run.state is RunState.COMPLETED
    assert run.end_reason == "caller_hangup"
    transcript = run.gathered_context["transcript"]
    assert [(line["role"], line["text"]) for line in transcript] == [
        ("agent", GREETING),
        ("caller", "What are your opening hours?"),
        ("agent", "We are open from nine to five."),
    ]
    [turn] = run.gathered_context["turns"]
    for figure in ("stt_ms", "llm_first_token_ms", "tts_first_byte_ms"):
        assert 0 <= turn[figure] < 2000, turn
    # the caller's end of speech to the first reply frame: at least the VAD's and the turn's waits
    assert 600 <= turn["voice_to_voice_ms"] < 3000, turn


async def say(caller: MediaCaller, seconds: float = 1.2) -> None:
    await caller.stream(speech_phrase(seconds))
    await caller.silence(0.2)


async def past_greeting(caller: MediaCaller, session: str) -> None:
    await caller.handshake(session)
    await caller.silence(len(GREETING) * 0.06 + 0.3)


async def test_end_call_hangs_up_through_cloudonix_after_the_goodbye(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn, cloudonix: CloudonixStandIn
) -> None:
    oa.script_transcript("That's all, thank you.")
    oa.script_reply("Goodbye!", tool_calls=[ToolCall("end_call", {})])
    await past_greeting(caller, "S-pc")
    heard_before = len(caller.received.audio_after(0))
    await say(caller)
    await caller.silence(0.5)
    assert await caller.closed(timeout=10) == (1000, "Hung up by the agent")
    assert cloudonix.hangups == [(f"{pc.domain}.cloudonix.net", "S-pc")]
    goodbye = caller.received.audio_after(0)[heard_before:]
    assert loud_seconds(goodbye) > 0.3, "the goodbye was cut by the hang-up"
    run = await pc.ended_run(10.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "agent_hangup")
    assert run.gathered_context["transcript"][-1]["text"] == "Goodbye!"


async def test_transfer_to_an_allowed_destination(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn, cloudonix: CloudonixStandIn
) -> None:
    cloudonix.callback_delay = 0.05
    oa.script_transcript("Put me through to sales.")
    oa.script_reply(
        "Transferring you now.", tool_calls=[ToolCall("transfer_call", {"destination": "+15555550123"})]
    )
    await past_greeting(caller, "S-pc")
    await say(caller)
    assert (await caller.closed(timeout=15))[0] == 1000
    [dial] = cloudonix.dials
    assert dial.destination == "+15555550123"
    assert cloudonix.hangups == []
    run = await pc.ended_run(10.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "transferred")


async def test_transfer_elsewhere_is_refused_and_the_model_is_told(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn, cloudonix: CloudonixStandIn
) -> None:
    oa.script_transcript("Transfer me to my friend.")
    oa.script_reply(tool_calls=[ToolCall("transfer_call", {"destination": "+19995550100"})])
    oa.script_reply("Sorry, I can't transfer you there.")
    await past_greeting(caller, "S-pc")
    await say(caller)
    second = await oa.wait_for("chat", count=2, timeout=8)
    await caller.silence(1.0)
    await caller.stop()
    assert (await caller.closed())[0] == 1000
    assert cloudonix.dials == []
    tool_result = second.body["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "not allowed" in tool_result["content"]
    assert "+15555550123" not in str(second.body["messages"])  # the model is not shown the list
    run = await pc.ended_run(10.0)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")


async def test_barge_in_clears_and_cuts_the_turn_where_the_caller_stopped_hearing(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn
) -> None:
    long_answer = (
        "We have three plans for small teams. The basic plan covers one line and costs ten dollars. "
        "The team plan covers five lines and costs forty dollars. The business plan covers fifty lines."
    )
    oa.script_transcript("Tell me about your plans.")
    oa.script_reply(long_answer)
    oa.script_transcript("Stop, I only need one line.")
    oa.script_reply("Then the basic plan is right for you.")
    await past_greeting(caller, "S-pc")
    await say(caller)
    await oa.wait_for("chat", timeout=5)
    await caller.silence(3.0)  # the first sentence (2.2 s) and a bit of the second
    talk_over_at = len(caller.sent_at)
    await say(caller, 1.5)
    second = await oa.wait_for("chat", count=2, timeout=8)
    await caller.silence(1.0)
    await caller.stop()
    await caller.closed()

    clears = [at for at in caller.received.clears if at > caller.sent_at[talk_over_at]]
    assert clears, "no clear on barge-in"
    assert clears[0] - caller.sent_at[talk_over_at] < 0.8
    run = await pc.ended_run(10.0)
    agent_lines = [line for line in run.gathered_context["transcript"] if line["role"] == "agent"]
    cut = agent_lines[1]
    assert cut.get("interrupted") is True
    assert long_answer.startswith(cut["text"])
    assert 3 <= len(cut["text"].split()) < len(long_answer.split()) - 10
    assert {"role": "assistant", "content": cut["text"]} in second.body["messages"]
    assert long_answer not in str(second.body["messages"])


async def test_the_greeting_can_be_interrupted_like_any_turn(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn
) -> None:
    oa.script_transcript("Sorry, wrong number.")
    await caller.handshake("S-pc")
    await caller.silence(1.2)  # a few words of the greeting
    talk_over_at = len(caller.sent_at)
    await say(caller)
    request = await oa.wait_for("chat", timeout=8)
    await caller.silence(0.5)
    await caller.stop()
    await caller.closed()
    assert [at for at in caller.received.clears if at > caller.sent_at[talk_over_at]], "no clear"
    run = await pc.ended_run(10.0)
    greeting_line = run.gathered_context["transcript"][0]
    assert greeting_line["interrupted"] is True
    assert GREETING.startswith(greeting_line["text"])
    assert 1 <= len(greeting_line["text"].split()) < len(GREETING.split())
    assistant = [m["content"] for m in request.body["messages"] if m["role"] == "assistant"]
    assert assistant == [greeting_line["text"]]


async def test_a_missing_key_variable_fails_the_run_naming_it(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn
) -> None:
    tenant = await make_agent(
        tenants,
        cloudonix,
        oa,
        "S-nokey",
        llm={
            "provider": "openai",
            "model": "m",
            "base_url": oa.url,
            "api_key_env": "AGENT_STREAM_TEST_NO_SUCH_KEY",
        },
    )
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-nokey")
        assert await caller.closed() == (1011, "Missing API key variable: AGENT_STREAM_TEST_NO_SUCH_KEY")
    run = await tenant.ended_run(10.0)
    assert (run.state, run.end_reason, run.close_code) == (RunState.FAILED, "error", 1011)
    assert run.close_reason == "Missing API key variable: AGENT_STREAM_TEST_NO_SUCH_KEY"
    assert oa.requests_for("chat") == []


async def test_an_llm_failing_twice_makes_the_agent_apologise_and_hang_up(
    pc: Tenant, caller: MediaCaller, oa: OpenAIStandIn, cloudonix: CloudonixStandIn
) -> None:
    oa.fail("chat", status=500, times=2)
    await past_greeting(caller, "S-pc")
    heard_before = len(caller.received.audio_after(0))
    await say(caller)
    assert await caller.closed(timeout=15) == (1011, "Agent failed: llm failed")
    assert len(oa.requests_for("chat")) == 2  # the request and its one retry
    assert cloudonix.hangups == [(f"{pc.domain}.cloudonix.net", "S-pc")]
    apology = caller.received.audio_after(0)[heard_before:]
    assert loud_seconds(apology) > 1.0, "no apology before the hang-up"
    run = await pc.ended_run(10.0)
    assert (run.state, run.end_reason, run.close_code) == (RunState.FAILED, "error", 1011)
    assert run.gathered_context["error"] == "llm failed"
    assert run.gathered_context["transcript"][-1]["role"] == "agent"


async def test_pipecat_logs_reach_ours_without_keys(
    captured_logs: io.StringIO,
    tenants: TenantFactory,
    oa: OpenAIStandIn,
    cloudonix: CloudonixStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a greeting of its own, so no cached audio hides the refused key
    pc = await make_agent(tenants, cloudonix, oa, "S-pc", greeting=f"Hello {uuid.uuid4().hex}.")
    wrong = "sk-wrong-key-abcdef0123456789"
    monkeypatch.setenv(KEY_ENV, wrong)  # every service request is refused 401: errors get logged
    async with connect(pc.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-pc")  # the greeting cannot be spoken: the agent ends the call
        assert await caller.closed(timeout=15) == (1011, "Agent failed: tts failed")
    assert cloudonix.hangups == [(f"{pc.domain}.cloudonix.net", "S-pc")]
    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    pipecat_lines = [line for line in lines if line.get("logger") == "pipecat"]
    assert pipecat_lines, "Pipecat's own logs did not reach ours"
    assert all(line.get("run_id", "").startswith("WR-AGS-") for line in pipecat_lines)
    for secret in (wrong, KEY, str(pc.agent_uuid), pc.token):
        assert secret not in text, f"{secret!r} leaked into the logs"
    run = await pc.ended_run(10.0)
    assert (run.state, run.end_reason) == (RunState.FAILED, "error")
