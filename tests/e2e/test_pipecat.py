"""The `pipecat` engine end to end: the real socket on loopback, Pipecat's real OpenAI services
pointed at the stand-in OpenAI-compatible server, and the stand-in Cloudonix API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from domain.workflow_run import RunState, WorkflowRun
from tests.e2e.conftest import Tenant, TenantFactory
from tests.media_caller import MediaCaller, pcm_of, speech_phrase
from tests.standins.cloudonix import CloudonixStandIn
from tests.standins.openai import OpenAIStandIn, ToolCall

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
        "tts": {**block, "model": "gpt-4o-mini-tts", "voice": "alloy"},
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


async def ended_run(tenant: Tenant) -> WorkflowRun:
    run = None
    for _ in range(200):
        run = await tenant.only_run()
        if run.state.terminal:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run did not end: {run}")


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
    run = await ended_run(pc)
    assert run.state is RunState.COMPLETED
    assert run.end_reason == "caller_hangup"
    transcript = run.gathered_context["transcript"]
    assert [(line["role"], line["text"]) for line in transcript] == [
        ("agent", GREETING),
        ("caller", "What are your opening hours?"),
        ("agent", "We are open from nine to five."),
    ]
    turns = run.gathered_context["turns"]
    assert len(turns) == 1
    assert turns[0]["voice_to_voice_ms"] > 0
