"""What the stand-in OpenAI API answers, once it knows what to say: chat completions (whole or as
SSE chunks, with tool calls), transcriptions, speech (a voiced-sounding 24 kHz PCM signal), errors;
and the parsing of what it is sent (multipart uploads, WAV lengths)."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from entrypoints.simulator.standins.pacing import INSTANT, Pacing, speech_pieces
from entrypoints.simulator.standins.server import Send

__all__ = [
    "SAMPLE_RATE",
    "Reply",
    "ToolCall",
    "chat_answer",
    "error_body",
    "parse_multipart",
    "respond",
    "speech_answer",
    "transcription_answer",
    "wav_seconds",
]

SAMPLE_RATE = 24_000  # what OpenAI's `pcm` speech is
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


async def chat_answer(
    send: Send, body: dict[str, Any], reply: Reply, chunk_interval: Callable[[], float]
) -> None:
    """A chat completion for `reply`: one JSON document, or SSE chunks (`stream`) sent
    `chunk_interval()` seconds apart."""
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
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls
            ]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        await respond(
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
    await start_response(send, 200, "text/event-stream; charset=utf-8")
    for event in events:
        await send(
            {
                "type": "http.response.body",
                "body": b"data: %s\n\n" % json.dumps(event).encode(),
                "more_body": True,
            }
        )
        await asyncio.sleep(chunk_interval())
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def transcription_answer(send: Send, form: dict[str, Any], text: str, seconds: float) -> None:
    fmt = form.get("response_format") or "json"
    if fmt in ("text", "srt", "vtt"):
        await respond(send, 200, text.encode(), "text/plain; charset=utf-8")
        return
    answer: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text, "tokens": []}
        segment |= {"temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.01}
        answer |= {"task": "transcribe", "language": form.get("language") or "en", "duration": seconds}
        answer["segments"] = [segment]
    answer["usage"] = {"type": "duration", "seconds": round(seconds)}
    await respond(send, 200, answer)


async def speech_answer(send: Send, seconds: float, pacing: Pacing = INSTANT) -> None:
    pcm = speech_pcm(round(seconds * SAMPLE_RATE))
    await start_response(send, 200, "audio/pcm")
    await speech_pieces(send, pcm, pacing)


@functools.lru_cache(maxsize=256)
def speech_pcm(samples: int) -> bytes:
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


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes | None]:
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


def wav_seconds(data: bytes) -> float | None:
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


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "rate_limit_error" if status == 429 else "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


async def start_response(send: Send, status: int, content_type: str, length: int | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"x-request-id", uuid.uuid4().hex.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def respond(send: Send, status: int, body: Any, content_type: str = "application/json") -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    await start_response(send, status, content_type, len(content))
    await send({"type": "http.response.body", "body": content})
