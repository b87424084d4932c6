"""A real-time Cloudonix-side caller for end-to-end media tests: sends µ-law frames every 20 ms,
echoes marks like a provider, and keeps everything the agent sent with arrival times."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adapters.media.g711 import MULAW
from adapters.media.twilio.caller import dtmf_message, mark_message, media_message, to_text
from tests.caller import CONNECTED, start_event, stop_event

FRAME_BYTES = 160  # 20 ms of µ-law
SPEECH = Path(__file__).parent / "unit" / "adapters" / "media" / "data" / "speech.ulaw"


def speech_phrase(seconds: float = 1.6, offset: float = 0.0) -> bytes:
    """µ-law speech (espeak-ng, shipped with the VAD tests) starting at its first loud frame."""
    ulaw = SPEECH.read_bytes()
    pcm = np.frombuffer(MULAW.decode(ulaw), dtype="<i2").astype(np.float64)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 1000)
    first = int(loud[0]) + int(offset / 0.02)
    return ulaw[first * 160 : (first + int(seconds / 0.02)) * 160]


def pcm_of(ulaw: bytes) -> np.ndarray:
    return np.frombuffer(MULAW.decode(ulaw), dtype="<i2").astype(np.float64)


def best_match(needle: np.ndarray, haystack: np.ndarray) -> tuple[int, float]:
    """Where `needle` best sits inside `haystack` (a sample index) and how well it matches there:
    peak normalised cross-correlation, 1.0 = identical; (0, 0.0) when the haystack is shorter."""
    if len(haystack) < len(needle):
        return 0, 0.0
    n = len(needle)
    needle = needle - needle.mean()
    size = 1 << int(np.ceil(np.log2(len(haystack) + n)))
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)[
        : len(haystack) - n + 1
    ]
    window = np.ones(n)
    sums = np.convolve(haystack, window, "valid")
    squares = np.convolve(haystack**2, window, "valid")
    score = corr / np.sqrt(np.maximum(squares - sums**2 / n, 1e-9) * (needle**2).sum())
    best = int(score.argmax())
    return best, float(score[best])


def best_correlation(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Peak normalised cross-correlation of `needle` anywhere inside `haystack` (1.0 = identical)."""
    return best_match(needle, haystack)[1]


@dataclass
class Received:
    media: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, µ-law)
    marks: list[tuple[float, str]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    def audio_after(self, t: float = 0.0) -> bytes:
        return b"".join(chunk for at, chunk in self.media if at >= t)


class MediaCaller:
    def __init__(self, ws: Any, stream_sid: str = "MZ-e2e") -> None:
        self.ws = ws
        self.stream_sid = stream_sid
        self.received = Received()
        self.sent_at: list[float] = []  # send time of each media frame
        self._receiver = asyncio.create_task(self._receive())
        self._seq = 2
        self._first_sent: float | None = None  # the stream's time 0, for `media.timestamp`
        self._next_ms = 0  # the media clock: where the next frame goes

    async def handshake(self, session: str, **start: Any) -> float:
        await self.ws.send(json.dumps(CONNECTED))
        await self.ws.send(json.dumps(start_event(session, stream_sid=self.stream_sid, **start)))
        return time.monotonic()

    async def send_json(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def stream(self, ulaw: bytes) -> float:
        """Send `ulaw` in real time, 20 ms a frame; returns when the first frame was sent."""
        t0 = time.monotonic()
        if self._first_sent is None:
            self._first_sent = t0
        # never faster than real time: a new stream starts once the previous one's last frame is over
        t0 = max(t0, self._first_sent + self._next_ms / 1000)
        # like a provider's media clock: 20 ms a frame, and a pause in sending is a gap in it
        first_ms = max(self._next_ms, round((t0 - self._first_sent) * 1000))
        for k in range(0, len(ulaw), FRAME_BYTES):
            delay = t0 + (k // FRAME_BYTES) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sent_at.append(time.monotonic())
            self._seq += 1
            self._next_ms = first_ms + (k // FRAME_BYTES + 1) * 20
            frame = media_message(
                self.stream_sid,
                ulaw[k : k + FRAME_BYTES],
                sequence_number=str(self._seq),
                timestamp_ms=self._next_ms - 20,
            )
            await self.ws.send(to_text(frame))
        return t0

    async def silence(self, seconds: float) -> None:
        await self.stream(b"\xff" * int(seconds / 0.02) * FRAME_BYTES)

    async def dtmf(self, digit: str) -> None:
        await self.send_json(dtmf_message(self.stream_sid, digit, track=None))

    async def stop(self) -> None:
        await self.send_json(stop_event(self.stream_sid))

    async def closed(self, timeout: float = 15.0) -> tuple[int | None, str | None]:
        await asyncio.wait_for(asyncio.shield(self._receiver), timeout)
        return self.ws.close_code, self.ws.close_reason

    async def _receive(self) -> None:
        try:
            async for text in self.ws:
                now = time.monotonic()
                message = json.loads(text)
                event = message.get("event")
                if event == "media":
                    self.received.media.append((now, base64.b64decode(message["media"]["payload"])))
                elif event == "mark":
                    name = message["mark"]["name"]
                    self.received.marks.append((now, name))
                    await self.send_json(mark_message(self.stream_sid, name))
                elif event == "clear":
                    self.received.clears.append(now)
                else:
                    self.received.other.append(message)
        except Exception:  # noqa: BLE001, S110 - the socket closing ends the receiver either way
            pass
