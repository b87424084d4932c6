"""A stand-in for the OpenAI HTTP API: a real HTTP server on a loopback port.

Pipecat's real OpenAI services (`OpenAILLMService`, `OpenAISTTService`, `OpenAITTSService`, all built
on the `openai` SDK's `AsyncOpenAI`) talk to it in tests and benchmarks: give them `base_url=oa.url`.

In tests::

    with OpenAIStandIn(api_key="sk-test") as oa:       # or: async with OpenAIStandIn() as oa:
        oa.script_reply(text="Goodbye!", tool_calls=[ToolCall("end_call", {})])  # then default_reply
        oa.script_transcript("I'd like to cancel.")    # then default_transcript
        oa.fail("chat", status=500, times=2)           # then normal answers again
        oa.hang("speech")                              # hold every speech until reset()/stop()
        oa.latency("transcriptions", 0.3)              # a provider's own time, before each answer
        oa.pace(PACED)                                 # every service paced like a real one (pacing.py)
        client = openai.AsyncOpenAI(base_url=oa.url, api_key="sk-test")
        ...
        first = await oa.wait_for("chat")             # from async test code, while the agent runs
        assert oa.chat_requests()[0][-1]["content"] == "Hello"

As a process (for benchmarks and manual runs)::

    python -m entrypoints.standins.openai --port 8767 [--latency-llm S --latency-stt S --latency-tts S]
        [--transcript TEXT] [--reply TEXT] [--api-key KEY] [--paced]

Operations (the names used by `fail`, `hang`, `latency` and `RecordedRequest.operation`):
`chat` POST `/v1/chat/completions` (SSE chunks when `stream` is true, else a `chat.completion`),
`transcriptions` POST `/v1/audio/transcriptions` (multipart WAV upload; `json`, `verbose_json` or
`text`), `speech` POST `/v1/audio/speech` (`response_format: "pcm"` only: 16-bit mono 24 kHz PCM that
an energy detector takes for speech, lasting `max(0.4, seconds_per_char * len(input))` seconds).
Anything else answers 404 with an OpenAI-style error body, as does a wrong key 401.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import secrets
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from entrypoints.standins.pacing import INSTANT, PACED, Pacing, speech_pieces
from entrypoints.standins.server import Receive, Scope, Send, StandInServer, read_body

__all__ = [
    "SAMPLE_RATE",
    "OpenAIStandIn",
    "Operation",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "main",
]

Operation = Literal["chat", "transcriptions", "speech"]

SAMPLE_RATE = 24_000  # what OpenAI's `pcm` speech is
_ROUTES: dict[str, Operation] = {
    "/v1/chat/completions": "chat",
    "/v1/audio/transcriptions": "transcriptions",
    "/v1/audio/speech": "speech",
}
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}
_PEAK = 32767 * 10 ** (-12 / 20)  # -12 dBFS
_FADE = SAMPLE_RATE * 5 // 1000  # 5 ms


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)  # a str is sent as it is
    id: str | None = None  # None: a fresh `call_…` id


@dataclass(frozen=True, slots=True)
class Reply:
    """One assistant turn: text (streamed word by word), then tool calls (`finish_reason: tool_calls`)."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


ReplyFn = Callable[[dict[str, Any]], Reply | None]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    operation: Operation
    body: dict[str, Any]  # the JSON body, or the form fields without the file
    at: float  # time.monotonic() on arrival
    audio_seconds: float | None  # transcriptions: the upload's length; speech: the answer's length


@dataclass(slots=True)
class _Forced:
    status: int | None  # None = hang
    times: int | None  # None = for ever


class OpenAIStandIn(StandInServer):
    name = "OpenAI stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        default_reply: str = "I hear you.",
        default_transcript: str = "Hello, I have a question.",
        seconds_per_char: float = 0.06,
        latencies: Mapping[Operation, float] | None = None,
        pacing: Pacing = INSTANT,
    ) -> None:
        super().__init__(host, port)
        self._api_key = api_key
        self._defaults = (default_reply, default_transcript, seconds_per_char, dict(latencies or {}))
        self._pacing = pacing
        self.reset()

    # -- configuration --------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to what the constructor set: no scripts, failures or records; held requests go (503)."""
        with self._lock:
            self.default_reply, self.default_transcript, self.seconds_per_char, latencies = self._defaults
            self.reply_fn: ReplyFn | None = None  # consulted when no reply is scripted
            self.pacing = self._pacing
            self.chunk_interval = self.pacing.chunk_interval  # seconds between streamed chat chunks
            self.requests: list[RecordedRequest] = []
            self._replies: deque[Reply] = deque()
            self._transcripts: deque[str] = deque()
            self._forced: dict[str, list[_Forced]] = {}
            self._latency: dict[Operation, float] = {**self.pacing.latencies, **latencies}
            old, self._release = self._release, asyncio.Event()
        self._in_loop(old.set)

    def pace(self, pacing: Pacing) -> None:
        """Answer at `pacing` (`PACED`: like real services) until `reset()` (back to the constructor's)."""
        with self._lock:
            self.pacing = pacing
            self.chunk_interval = pacing.chunk_interval
            self._latency.update(pacing.latencies)

    def script_reply(self, text: str | None = None, tool_calls: Iterable[ToolCall] = ()) -> None:
        """Queue the answer to a coming chat request (FIFO; then `reply_fn`, then `default_reply`)."""
        with self._lock:
            self._replies.append(Reply(text, tuple(tool_calls)))

    def script_transcript(self, text: str) -> None:
        """Queue the answer to a coming transcription (FIFO; then `default_transcript`)."""
        with self._lock:
            self._transcripts.append(text)

    def fail(self, operation: Operation, status: int = 500, times: int | None = 1) -> None:
        """Answer the next `times` requests of `operation` (all, when None) with `status`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(status, times))

    def hang(self, operation: Operation, times: int | None = None) -> None:
        """Hold the next `times` requests of `operation` (all, when None) until `reset()`/`stop()`."""
        with self._lock:
            self._forced.setdefault(operation, []).append(_Forced(None, times))

    def latency(self, operation: Operation, seconds: float) -> None:
        """Wait `seconds` before answering each request of `operation` (0 for none)."""
        with self._lock:
            self._latency[operation] = seconds

    def requests_for(self, operation: Operation) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]

    def chat_requests(self) -> list[list[dict[str, Any]]]:
        """The `messages` of every chat request, in order of arrival."""
        return [list(r.body.get("messages") or []) for r in self.requests_for("chat")]

    async def wait_for(
        self,
        operation: Operation,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - polls a list another thread appends to
    ) -> RecordedRequest:
        """The `count`-th request of `operation` (1-based), once it has arrived; TimeoutError if not."""
        deadline = time.monotonic() + timeout
        while len(seen := self.requests_for(operation)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(seen)} {operation} request(s) after {timeout}s, wanted {count}")
            await asyncio.sleep(0.005)
        return seen[count - 1]

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """What an OpenAI client's `base_url` takes."""
        return f"http://{self.host}:{self.port}/v1"

    # -- the ASGI app ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        method: str = scope["method"]
        path: str = scope["path"].rstrip("/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        operation = _ROUTES.get(path) if method == "POST" else None
        if operation is None:
            await _respond(send, 404, _error(404, f"Invalid URL ({method} {scope['path']})"))
            return
        if not self._authorised(headers):
            await _respond(send, 401, _error(401, "Incorrect API key provided.", "invalid_api_key"))
            return
        try:
            body, audio_seconds = self._parse(operation, headers.get("content-type", ""), raw)
        except ValueError as exc:
            await _respond(send, 400, _error(400, str(exc)))
            return
        with self._lock:
            self.requests.append(RecordedRequest(operation, body, time.monotonic(), audio_seconds))

        forced = self._take_forced(operation)
        if forced is not None and forced.status is None:
            await self._release.wait()
            await _respond(send, 503, _error(503, "The stand-in released a held request."))
            return
        if forced is not None and forced.status is not None:
            await _respond(send, forced.status, _error(forced.status, "The stand-in was told to fail."))
            return

        if operation == "chat":
            reply = self._next_reply(body)
            await self._delay(operation)
            await self._chat(send, body, reply)
        elif operation == "transcriptions":
            with self._lock:
                text = self._transcripts.popleft() if self._transcripts else self.default_transcript
            await self._delay(operation)
            await _transcription(send, body, text, audio_seconds or 0.0)
        else:
            await self._delay(operation)
            await _speech(send, audio_seconds or 0.0, self.pacing)

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self._api_key is None:
            return True
        return secrets.compare_digest(headers.get("authorization", ""), f"Bearer {self._api_key}")

    def _parse(
        self, operation: Operation, content_type: str, raw: bytes
    ) -> tuple[dict[str, Any], float | None]:
        if operation == "transcriptions":
            fields, audio = _parse_multipart(content_type, raw)
            if audio is None:
                raise ValueError("'file' is a required property")
            return fields, _wav_seconds(audio)
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise ValueError("The request body must be a JSON object.")
        if operation == "speech":
            if (body.get("response_format") or "mp3") != "pcm":
                raise ValueError("The stand-in serves response_format 'pcm' only.")
            return body, max(0.4, self.seconds_per_char * len(str(body.get("input") or "")))
        return body, None

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
            reply_fn, default = self.reply_fn, self.default_reply
        return (reply_fn(body) if reply_fn is not None else None) or Reply(default)

    async def _delay(self, operation: Operation) -> None:
        with self._lock:
            seconds = self._latency.get(operation, 0.0)
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _chat(self, send: Send, body: dict[str, Any], reply: Reply) -> None:
        model = str(body.get("model") or "gpt-4o-mini")
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        pieces: list[str] = re.findall(r"\s*\S+|\s+", reply.text or "")
        calls = [
            (
                call.id or f"call_{uuid.uuid4().hex[:24]}",
                call.name,
                call.arguments if isinstance(call.arguments, str) else json.dumps(dict(call.arguments)),
            )
            for call in reply.tool_calls
        ]
        finish = "tool_calls" if calls else "stop"
        prompt_tokens = len(json.dumps(body.get("messages") or [])) // 4 + 1
        completion_tokens = len(pieces) + sum(1 + len(args) // 4 for _, _, args in calls)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or (None if calls else "")}
            message["refusal"] = None
            if calls:
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in calls
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            await _respond(
                send,
                200,
                {"id": cid, "object": "chat.completion", "created": created, "model": model}
                | {"choices": [choice], "usage": usage},
            )
            return

        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": piece} for piece in pieces]
        for index, (call_id, name, args) in enumerate(calls):
            function = {"name": name, "arguments": ""}
            deltas.append(
                {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]}
            )
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": args[at : at + 16]}}]}
                for at in range(0, len(args), 16)
            ]
        head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        events = [head | {"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(head | {"choices": [], "usage": usage})
        await _start(send, 200, "text/event-stream; charset=utf-8")
        for event in events:
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: %s\n\n" % json.dumps(event).encode(),
                    "more_body": True,
                }
            )
            await asyncio.sleep(self.chunk_interval)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _transcription(send: Send, form: dict[str, Any], text: str, seconds: float) -> None:
    fmt = form.get("response_format") or "json"
    if fmt in ("text", "srt", "vtt"):
        await _respond(send, 200, text.encode(), "text/plain; charset=utf-8")
        return
    answer: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": []}
        segment |= {"temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.01}
        answer |= {"task": "transcribe", "language": form.get("language") or "en", "duration": seconds}
        answer["segments"] = [segment]
    answer["usage"] = {"type": "duration", "seconds": round(seconds)}
    await _respond(send, 200, answer)


async def _speech(send: Send, seconds: float, pacing: Pacing) -> None:
    pcm = _speech_pcm(round(seconds * SAMPLE_RATE))
    await _start(send, 200, "audio/pcm")
    await speech_pieces(send, pcm, pacing)


@functools.lru_cache(maxsize=256)
def _speech_pcm(samples: int) -> bytes:
    """A voiced-sounding signal: 200 Hz and three harmonics, at a 4 Hz syllable rate, -12 dBFS peak."""
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    signal = np.zeros(samples, dtype=np.float64)
    for harmonic, amplitude in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.15)):
        signal += amplitude * np.sin(2 * np.pi * 200 * harmonic * t)
    signal *= 0.65 + 0.35 * np.sin(2 * np.pi * 4 * t)
    peak = float(np.max(np.abs(signal))) if samples else 0.0
    if peak > 0:
        signal *= _PEAK / peak
    fade = min(_FADE, samples // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[samples - fade :] *= ramp[::-1]
    return bytes(np.round(signal).astype("<i2").tobytes())


def _parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes | None]:
    """The form fields (`name[]` ones as lists) and the uploaded file of a multipart/form-data body."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or found is None:
        raise ValueError("Expected a multipart/form-data body.")
    fields: dict[str, Any] = {}
    upload: bytes | None = None
    for part in raw.split(b"--" + found.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'[;\s]name="([^"]*)"', head)
        if not sep or name is None:
            continue
        content = content.removesuffix(b"\r\n")
        key = name.group(1).decode()
        if b"filename=" in head:
            upload = content
        elif key.endswith("[]"):
            fields.setdefault(key[:-2], []).append(content.decode())
        else:
            fields[key] = content.decode()
    return fields, upload


def _wav_seconds(data: bytes) -> float | None:
    """The length of a RIFF/WAVE file's audio, None when it is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, rate, block = 12, 0, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        start = pos + 8
        if chunk == b"fmt " and size >= 16 and start + 16 <= len(data):
            _, _, rate, _, block = struct.unpack_from("<HHIIH", data, start)
        elif chunk == b"data":
            if not rate or not block:
                return None
            available = len(data) - start
            return min(size, available) // block / rate
        pos = start + size + (size & 1)
    return None


def _error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "rate_limit_error" if status == 429 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


async def _start(send: Send, status: int, content_type: str, length: int | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"x-request-id", uuid.uuid4().hex.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _respond(send: Send, status: int, body: Any, content_type: str = "application/json") -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    await _start(send, status, content_type, len(content))
    await send({"type": "http.response.body", "body": content})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for the OpenAI HTTP API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--api-key", default=None, help="require this bearer key (any key when absent)")
    parser.add_argument("--latency-llm", type=float, default=None, help="seconds before each chat answer")
    parser.add_argument("--latency-stt", type=float, default=None, help="seconds before each transcript")
    parser.add_argument("--latency-tts", type=float, default=None, help="seconds before each speech answer")
    parser.add_argument("--transcript", default="Hello, I have a question.", help="every transcript")
    parser.add_argument("--reply", default="I hear you.", help="every chat reply")
    parser.add_argument("--seconds-per-char", type=float, default=0.06, help="speech length per character")
    parser.add_argument("--paced", action="store_true", help="answer like real services (pacing.PACED)")
    args = parser.parse_args(argv)
    latencies = {"chat": args.latency_llm, "transcriptions": args.latency_stt, "speech": args.latency_tts}
    standin = OpenAIStandIn(
        args.host,
        args.port,
        api_key=args.api_key,
        default_reply=args.reply,
        default_transcript=args.transcript,
        seconds_per_char=args.seconds_per_char,
        latencies={k: v for k, v in latencies.items() if v is not None},  # type: ignore[misc]
        pacing=PACED if args.paced else INSTANT,
    )
    standin.serve_forever()


if __name__ == "__main__":
    main()
