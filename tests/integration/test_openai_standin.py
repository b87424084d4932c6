"""The OpenAI stand-in, driven over real HTTP on loopback by the real `openai.AsyncOpenAI` client.

Every call has the shape Pipecat's OpenAI services give it: a streamed chat with `tools` and
`stream_options.include_usage` (`BaseOpenAILLMService`), a non-streamed one (`run_inference`), a WAV
upload with `model`/`language` (`OpenAISTTService`), and `pcm` speech read through
`with_streaming_response` (`OpenAITTSService`).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import openai
import pytest

from entrypoints.simulator.standins.openai_api import SAMPLE_RATE, OpenAIStandIn, Reply, ToolCall
from entrypoints.simulator.standins.pacing import INSTANT, PACED
from tests.integration.conftest import OPENAI_KEY

KEY = OPENAI_KEY
MODEL = "gpt-4o-mini"
END_CALL_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "Hang up the call.",
        "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": []},
    },
}


@pytest.fixture
async def client(standin: OpenAIStandIn) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=standin.url, api_key=KEY, max_retries=0) as oa:
        yield oa


def _wav(seconds: float, rate: int = 16_000) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    samples = (3000 * np.sin(2 * np.pi * 300 * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# -- chat ------------------------------------------------------------------------------------------


async def test_a_streamed_chat_sends_text_in_pieces_then_the_tool_call(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    text = "Of course, I will end the call now."
    standin.script_reply(text=text, tool_calls=[ToolCall("end_call", {"reason": "caller asked"})])
    messages: list[Any] = [
        {"role": "system", "content": "You are a receptionist."},
        {"role": "user", "content": "Please hang up."},
    ]

    stream = await client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[END_CALL_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    deltas: list[str] = []
    names: dict[int, str] = {}
    ids: dict[int, str] = {}
    arguments: dict[int, str] = {}
    finish: str | None = None
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        if choice.delta.content:
            deltas.append(choice.delta.content)
        for call in choice.delta.tool_calls or []:
            assert len(choice.delta.tool_calls or []) == 1  # Pipecat reads tool_calls[0] of each chunk
            if call.id:
                ids[call.index] = call.id
            if call.function and call.function.name:
                names[call.index] = names.get(call.index, "") + call.function.name
            if call.function and call.function.arguments:
                arguments[call.index] = arguments.get(call.index, "") + call.function.arguments

    assert len(deltas) > 1
    assert "".join(deltas) == text
    assert names == {0: "end_call"}
    assert ids[0].startswith("call_")
    assert json.loads(arguments[0]) == {"reason": "caller asked"}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens > 0 and usage.total_tokens > usage.prompt_tokens
    assert standin.chat_requests() == [messages]
    recorded = standin.requests_for("chat")[0]
    assert recorded.body["tools"] == [END_CALL_TOOL] and recorded.body["stream"] is True


async def test_a_streamed_chat_without_include_usage_ends_with_stop_and_no_usage(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]

    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == standin.default_reply


async def test_a_non_streamed_chat_answers_script_then_reply_fn_then_default(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    standin.script_reply(tool_calls=[ToolCall("transfer_call", {"to": "sales"}, id="call_fixed")])
    standin.script_reply(text="Scripted.")

    async def ask(content: str) -> Any:
        return await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}], stream=False
        )

    first = await ask("one")
    assert first.object == "chat.completion"
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    [call] = first.choices[0].message.tool_calls or []
    assert call.id == "call_fixed"
    assert call.function.name == "transfer_call" and json.loads(call.function.arguments) == {"to": "sales"}

    assert (await ask("two")).choices[0].message.content == "Scripted."
    assert (await ask("three")).choices[0].message.content == "I hear you."

    standin.reply_fn = lambda body: Reply(f"echo {body['messages'][-1]['content']}")
    assert (await ask("four")).choices[0].message.content == "echo four"
    standin.reply_fn = lambda body: None
    standin.default_reply = "New default."
    reply = await ask("five")
    assert reply.choices[0].message.content == "New default."
    assert reply.choices[0].finish_reason == "stop"
    assert [m[-1]["content"] for m in standin.chat_requests()] == ["one", "two", "three", "four", "five"]


# -- transcriptions --------------------------------------------------------------------------------


async def test_a_transcription_answers_the_script_and_records_the_upload(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    standin.script_transcript("I would like to book a table.")
    audio = _wav(1.5)

    first = await client.audio.transcriptions.create(
        file=("audio.wav", audio, "audio/wav"), model="gpt-transcribe", language="en", prompt="Restaurant"
    )
    second = await client.audio.transcriptions.create(
        file=("audio.wav", _wav(0.25, rate=8000), "audio/wav"), model="gpt-transcribe", language="en"
    )
    plain = await client.audio.transcriptions.create(
        file=("audio.wav", audio, "audio/wav"), model="whisper-1", response_format="text"
    )

    assert first.text == "I would like to book a table."
    assert second.text == "Hello, I have a question."
    assert isinstance(plain, str) and plain.strip() == "Hello, I have a question."
    recorded = standin.requests_for("transcriptions")
    assert [r.audio_seconds for r in recorded] == [
        pytest.approx(1.5),
        pytest.approx(0.25),
        pytest.approx(1.5),
    ]
    assert recorded[0].body == {"model": "gpt-transcribe", "language": "en", "prompt": "Restaurant"}
    assert recorded[2].body["response_format"] == "text"


async def test_a_verbose_transcription_reports_the_duration(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    verbose = await client.audio.transcriptions.create(
        file=("audio.wav", _wav(2.0), "audio/wav"), model="whisper-1", response_format="verbose_json"
    )
    assert verbose.text == standin.default_transcript
    assert verbose.duration == pytest.approx(2.0)
    assert verbose.segments is not None and verbose.segments[0].end == pytest.approx(2.0)


# -- speech ----------------------------------------------------------------------------------------


async def _speak(client: openai.AsyncOpenAI, text: str) -> tuple[bytes, int]:
    chunks: list[bytes] = []
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", input=text, voice="alloy", response_format="pcm"
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/pcm"
        chunks += [chunk async for chunk in response.iter_bytes(4800) if chunk]
    return b"".join(chunks), len(chunks)


async def test_speech_streams_speech_like_pcm_for_the_text(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    text = "Thanks for calling, how can I help you today?"
    audio, chunks = await _speak(client, text)

    duration = 0.06 * len(text)
    assert abs(len(audio) - 2 * SAMPLE_RATE * duration) <= 2
    assert chunks > 1
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64)
    peak_dbfs = 20 * np.log10(np.max(np.abs(samples)) / 32768)
    assert -13 < peak_dbfs < -11
    assert abs(samples[0]) < 100 and abs(samples[-1]) < 100  # faded in and out
    frames = samples[: len(samples) // 480 * 480].reshape(-1, 480)  # 20 ms
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 300  # ~ -40 dBFS
    assert loud.mean() > 0.9
    assert (await _speak(client, text))[0] == audio  # deterministic
    assert standin.requests_for("speech")[0].audio_seconds == pytest.approx(duration)


async def test_short_speech_lasts_at_least_four_tenths_and_follows_seconds_per_char(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    short, _ = await _speak(client, "Hi")
    standin.seconds_per_char = 0.1
    longer, _ = await _speak(client, "Goodbye now")

    assert len(short) == 2 * round(0.4 * SAMPLE_RATE)
    assert len(longer) == 2 * round(0.1 * 11 * SAMPLE_RATE)


async def test_speech_refuses_formats_other_than_pcm(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.audio.speech.create(model="gpt-4o-mini-tts", input="Hi", voice="alloy")


async def test_sixty_concurrent_speech_calls_are_all_served(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    texts = [f"Sentence number {i} of the benchmark." for i in range(60)]
    results = await asyncio.wait_for(asyncio.gather(*(_speak(client, t) for t in texts)), timeout=20)

    assert [len(audio) for audio, _ in results] == [2 * round(0.06 * len(t) * SAMPLE_RATE) for t in texts]
    assert len(standin.requests_for("speech")) == 60


# -- errors, failures, latency ---------------------------------------------------------------------


async def test_a_wrong_key_gets_401_with_an_openai_error_and_is_not_recorded(standin: OpenAIStandIn) -> None:
    async with openai.AsyncOpenAI(base_url=standin.url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        with pytest.raises(openai.AuthenticationError):
            await wrong.audio.transcriptions.create(file=("a.wav", _wav(0.5), "audio/wav"), model="whisper-1")

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert standin.requests == []


async def test_unknown_paths_get_404_with_an_openai_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.models.list()
    assert caught.value.status_code == 404
    assert isinstance(caught.value.body, dict) and "Invalid URL" in caught.value.body["message"]


async def test_fail_twice_then_the_call_succeeds(standin: OpenAIStandIn, client: openai.AsyncOpenAI) -> None:
    standin.fail("chat", status=500, times=2)
    standin.fail("transcriptions", status=429)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        assert caught.value.status_code == 500
    reply = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(openai.RateLimitError):
        await client.audio.transcriptions.create(file=("a.wav", _wav(0.5), "audio/wav"), model="whisper-1")

    assert reply.choices[0].message.content == "I hear you."
    assert len(standin.requests_for("chat")) == 3


async def test_hang_makes_a_client_time_out_until_reset(standin: OpenAIStandIn) -> None:
    standin.hang("chat")
    async with openai.AsyncOpenAI(base_url=standin.url, api_key=KEY, max_retries=0, timeout=0.3) as impatient:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        assert 0.25 < time.monotonic() - started < 2
        assert len(standin.requests_for("chat")) == 1

        standin.reset()
        reply = await impatient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}]
        )
    assert reply.choices[0].message.content == "I hear you."


async def test_latency_delays_each_answer(standin: OpenAIStandIn, client: openai.AsyncOpenAI) -> None:
    standin.latency("transcriptions", 0.3)
    started = time.monotonic()
    await client.audio.transcriptions.create(file=("a.wav", _wav(0.5), "audio/wav"), model="whisper-1")
    assert time.monotonic() - started >= 0.3

    standin.latency("transcriptions", 0)
    started = time.monotonic()
    await client.audio.transcriptions.create(file=("a.wav", _wav(0.5), "audio/wav"), model="whisper-1")
    assert time.monotonic() - started < 0.3


async def test_wait_for_returns_the_nth_request_as_it_arrives(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    standin.latency("chat", 0.5)

    async def ask(content: str) -> None:
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])

    first = asyncio.create_task(ask("first"))
    recorded = await standin.wait_for("chat", timeout=2)
    assert not first.done()  # seen while the answer is still delayed
    assert recorded.body["messages"] == [{"role": "user", "content": "first"}]
    await first
    with pytest.raises(TimeoutError):
        await standin.wait_for("chat", count=2, timeout=0.1)
    second = asyncio.create_task(ask("second"))
    assert (await standin.wait_for("chat", count=2)).body["messages"][0]["content"] == "second"
    await second


async def test_paced_services_answer_like_real_ones(
    standin: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    standin.pace(PACED)
    standin.seconds_per_char = 1.0 / len("One second.")
    started = time.monotonic()
    arrivals: list[tuple[float, int]] = []
    async with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", input="One second.", voice="alloy", response_format="pcm"
    ) as response:
        async for chunk in response.iter_bytes():
            arrivals.append((time.monotonic() - started, len(chunk)))
    assert arrivals[0][0] >= 0.15  # the first byte after 150 ms
    assert sum(size for _, size in arrivals) == 2 * SAMPLE_RATE  # a second of speech...
    assert 0.15 + 0.4 <= arrivals[-1][0] < 0.15 + 0.5 + 0.3  # ...at twice real time, in 100 ms pieces

    standin.script_reply("one two three four five six seven eight nine ten")
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Count."}], stream=True
    )
    times = [time.monotonic() - started async for _ in stream]
    assert times[0] >= 0.3  # the first token after 300 ms, then 40 a second
    assert times[-1] - times[0] >= 10 * PACED.chunk_interval

    started = time.monotonic()
    await client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", _wav(0.5)))
    assert time.monotonic() - started >= 0.2
    standin.reset()
    assert standin.pacing == INSTANT
