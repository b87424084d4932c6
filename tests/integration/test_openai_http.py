"""`openai_http` (the engine's requests to OpenAI-compatible servers) over real HTTP on loopback,
against the OpenAI stand-in: what it sends, what it reads, and its one retry."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import AsyncIterator

import numpy as np
import pytest
from openai import NOT_GIVEN
from openai.types.chat import ChatCompletionChunk
from pipecat.utils.types import NOT_GIVEN as PIPECAT_NOT_GIVEN

from adapters.pipelines.pipecat.openai_http import (
    OpenAIHttp,
    ServiceRequestError,
    chat_chunks,
    new_session,
    pieces,
    request_body,
)
from entrypoints.simulator.standins.openai_api import OpenAIStandIn, ToolCall
from tests.integration.conftest import OPENAI_KEY

KEY = OPENAI_KEY
CHAT = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}}
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def http(standin: OpenAIStandIn) -> AsyncIterator[OpenAIHttp]:
    async with new_session(timeout=2.0) as session:
        yield OpenAIHttp(lambda: session, standin.url, KEY)


async def chunks(http: OpenAIHttp, **params: object) -> list[ChatCompletionChunk]:
    return [chunk async for chunk in chat_chunks(http, {**CHAT, "messages": HELLO, **params})]


def test_the_body_leaves_unset_parameters_out_and_merges_extra_body() -> None:
    body = request_body(
        {"model": "m", "seed": NOT_GIVEN, "top_p": PIPECAT_NOT_GIVEN, "user": None, "extra_body": {"x": 1}}
    )
    assert body == {"model": "m", "x": 1}


async def test_a_streamed_reply_arrives_as_the_sdks_chunks(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.script_reply("We open at nine.")
    got = await chunks(http)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert text == "We open at nine."
    assert any(c.usage is not None for c in got)  # stream_options.include_usage was sent
    [request] = standin.requests_for("chat")
    assert request.body["messages"] == HELLO
    assert request.body["stream"] is True


async def test_tool_calls_stream_with_their_arguments(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.script_reply(tool_calls=[ToolCall("transfer_call", {"destination": "+15555550123"})])
    got = await chunks(http, tools=[{"type": "function", "function": {"name": "transfer_call"}}])
    calls = [t for c in got if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert calls[0].function is not None and calls[0].function.name == "transfer_call"
    arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    assert arguments == '{"destination": "+15555550123"}'
    assert standin.requests_for("chat")[0].body["tools"][0]["function"]["name"] == "transfer_call"


async def test_a_server_error_is_retried_once(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.fail("chat", status=503)
    assert await chunks(http)
    assert len(standin.requests_for("chat")) == 2


async def test_two_server_errors_fail_with_the_status(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.fail("chat", status=500, times=2)
    with pytest.raises(ServiceRequestError) as caught:
        await chunks(http)
    assert caught.value.status == 500
    assert len(standin.requests_for("chat")) == 2


async def test_a_refusal_is_not_retried(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.fail("chat", status=400)
    with pytest.raises(ServiceRequestError) as caught:
        await chunks(http)
    assert caught.value.status == 400
    assert len(standin.requests_for("chat")) == 1


async def test_a_wrong_key_fails_without_the_key_in_the_error(standin: OpenAIStandIn) -> None:
    async with new_session(timeout=2.0) as session:
        wrong = OpenAIHttp(lambda: session, standin.url, "sk-wrong-key-123456")
        with pytest.raises(ServiceRequestError) as caught:
            await chunks(wrong)
    assert caught.value.status == 401
    assert "sk-wrong" not in str(caught.value)


async def test_no_server_fails_after_one_retry() -> None:
    async with new_session(timeout=0.5) as session:
        nobody = OpenAIHttp(lambda: session, "http://127.0.0.1:1/v1", KEY)
        with pytest.raises(ServiceRequestError) as caught:
            await chunks(nobody)
    assert caught.value.status is None
    assert "ClientConnectorError" in str(caught.value)


async def test_a_transcription_is_a_wav_upload(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    standin.script_transcript("What are your opening hours?")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype("<i2").tobytes())
    body = await http.post(
        "stt",
        "/audio/transcriptions",
        form={"model": "gpt-4o-transcribe", "language": "en"},
        file=("audio.wav", buffer.getvalue(), "audio/wav"),
    )
    assert json.loads(body)["text"] == "What are your opening hours?"
    [request] = standin.requests_for("transcriptions")
    assert request.body["language"] == "en"
    assert request.audio_seconds == pytest.approx(1.0, abs=0.01)


async def test_speech_streams_in_any_voice(standin: OpenAIStandIn, http: OpenAIHttp) -> None:
    body = {"model": "kokoro", "input": "Hello there.", "voice": "af_heart", "response_format": "pcm"}
    sizes = []
    async with http.stream("tts", "/audio/speech", json=body) as response:
        async for piece in pieces(response, 4800):
            sizes.append(len(piece))
    assert sum(sizes) > 0.4 * 24000 * 2  # at least the stand-in's shortest answer, 24 kHz PCM
    assert all(0 < size <= 4800 and size % 2 == 0 for size in sizes)  # whole samples, as they come
    assert standin.requests_for("speech")[0].body["voice"] == "af_heart"
