"""`agent-stream call`: the Cloudonix side of a call, over a real WebSocket (protocol.md §1-§2).

It frames the call exactly as Cloudonix does (Twilio Media Streams framing): `connected`, `start`
(a fresh session token, `accountSid` = the domain, µ-law 8 kHz mono), then one `media` message of
20 ms every 20 ms on a drift-free clock for the whole call (the caller's speech, else µ-law silence),
`dtmf` digits, and finally `stop`. What the agent sends back is what the caller hears:

- `media` is decoded and recorded on the caller's timeline: audio that arrives while earlier audio is
  still playing is queued behind it, and a gap in the stream becomes silence, so the WAV sounds like
  the caller's ear (every byte the agent sent is kept, in arrival order, `clear` included);
- `mark` is echoed back when the audio queued before it would have finished playing, and at once
  for every pending mark when a `clear` arrives (what Twilio does; protocol.md §1.5);

The caller takes turns like a person: it waits for the agent's greeting to end (0.8 s of quiet after
the agent spoke; 3 s if the agent says nothing; 15 s at most), says its phrase (the WAV, or the
built-in test phrase), waits for the echo to end, then presses the `--dtmf` digits one a second,
and hangs up (`stop`) after `--seconds`, or earlier when the agent closes the socket. A caller does
not hang up on the agent mid-sentence: when the agent is still talking at `--seconds` (say, the
greeting replayed by `*`), the call goes on until it is quiet (at most 30 s more).

The last line says how the call ended, from what the server did: "you hung up" (the caller's `stop`,
or `#`: the agent hung up at the caller's request), "hung up by the agent", "hung up by an operator",
"transferred to ***0123" (the close reason carries the masked destination), or the close code.

The stream URL authorises the call, so it is never printed in full: the agent UUID is masked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import inspect
import json
import math
import re
import secrets
import signal
import sys
import time
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from adapters.media.g711 import MULAW
from domain.workflow_run import HANGUP_CLOSE_REASONS, TRANSFERRED_CLOSE_PREFIX, EndReason

RATE: Final = 8000
FRAME_SECONDS: Final = 0.02
FRAME_SAMPLES: Final = 160
ULAW_SILENCE: Final = b"\xff"
DEFAULT_SECONDS: Final = 24.0
DEFAULT_FROM: Final = "+15555550100"
DEFAULT_TO: Final = "+15555550199"
VOICED_DBFS: Final = -45.0  # a 20 ms block louder than this is the agent talking
MAX_MESSAGE_BYTES: Final = 1 << 20
MAX_EXTENSION_SECONDS: Final = 30.0  # past --seconds, the call waits at most this long for the agent
# websockets >= 15 honours HTTP(S)_PROXY and takes `proxy=`; uvicorn[standard] allows >= 13
_CONNECT_TAKES_PROXY: Final = "proxy" in inspect.signature(connect.__init__).parameters

__all__ = [
    "DEFAULT_SECONDS",
    "CallOptions",
    "CallUsageError",
    "CallerScript",
    "EarRecording",
    "MarkEchoes",
    "describe_ending",
    "mask_url",
    "read_wav",
    "resample",
    "run_call",
    "write_wav",
]


class CallUsageError(ValueError):
    """The command's input cannot be used (bad URL, unreadable WAV): said in one line."""


# -- audio in -------------------------------------------------------------------------------------


def resample(samples: npt.NDArray[np.float64], rate_in: int, rate_out: int) -> npt.NDArray[np.float64]:
    """Band-limited resampling in the frequency domain: a raised-cosine roll-off from 3.4 kHz (the
    telephone band edge) to 0.97 x the lower Nyquist frequency, so nothing aliases into the band."""
    if rate_in == rate_out or samples.shape[0] == 0:
        return samples.astype(np.float64, copy=True)
    n_in = samples.shape[0]
    n_out = max(1, round(n_in * rate_out / rate_in))
    spectrum = np.fft.rfft(samples)
    keep = min(n_out // 2 + 1, spectrum.shape[0])
    freqs = np.arange(keep) * (rate_in / n_in)
    nyquist = min(rate_in, rate_out) / 2
    lo, hi = min(3400.0, 0.9 * nyquist), 0.97 * nyquist
    gain = np.where(
        freqs <= lo, 1.0, np.where(freqs >= hi, 0.0, 0.5 + 0.5 * np.cos(np.pi * (freqs - lo) / (hi - lo)))
    )
    out = np.fft.irfft(spectrum[:keep] * gain, n_out) * (n_out / n_in)
    return np.asarray(out, dtype=np.float64)


def read_wav(path: Path, max_seconds: float | None = None) -> bytes:
    """A 16-bit PCM WAV of any rate and channel count -> 16-bit little-endian PCM, 8 kHz mono.

    Channels are averaged; only the first `max_seconds` are read. `CallUsageError` for anything
    else (compressed, 8/24/32-bit, float, unreadable)."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            if width != 2:
                raise CallUsageError(
                    f"{path}: only 16-bit PCM WAV is supported (this one is {8 * width}-bit)"
                )
            frames = w.getnframes()
            if max_seconds is not None:
                frames = min(frames, math.ceil(max_seconds * rate))
            raw = w.readframes(frames)
    except (OSError, EOFError, wave.Error) as exc:
        raise CallUsageError(f"{path}: not a readable 16-bit PCM WAV ({exc})") from None
    samples = np.frombuffer(raw[: len(raw) - len(raw) % (2 * channels)], dtype="<i2")
    mono = samples.reshape(-1, channels).astype(np.float64).mean(axis=1)
    if rate == RATE and channels == 1:
        return samples.astype("<i2").tobytes()
    out = resample(mono, rate, RATE)
    return np.clip(np.round(out), -32768, 32767).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes) -> None:
    """16-bit little-endian PCM, 8 kHz mono -> a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)


def _block_dbfs(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """dBFS of each whole 20 ms block (a last partial block counts as a block of its own)."""
    n = samples.shape[0]
    blocks = [samples[i : i + FRAME_SAMPLES].astype(np.float64) for i in range(0, n, FRAME_SAMPLES)]
    rms = np.array([math.sqrt(float(np.mean(b * b))) if b.size else 0.0 for b in blocks])
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3) / 32768.0), dtype=np.float64)


# -- what the caller hears --------------------------------------------------------------------------


class EarRecording:
    """The agent's audio on the caller's timeline (seconds since the call started).

    Audio plays as it arrives, queued behind audio still playing; when the queue has run dry for
    longer than `jitter` seconds, the gap is filled with silence (shorter gaps are network jitter,
    absorbed). `finish` pads the end to the call's length.
    """

    def __init__(self, jitter: float = FRAME_SECONDS) -> None:
        self.jitter = jitter
        self._pcm = bytearray()
        self.received_samples = 0
        self.voiced_until: float | None = None  # when the last voiced audio heard ends playing

    @property
    def play_head(self) -> float:
        """When the audio received so far will have finished playing."""
        return len(self._pcm) / 2 / RATE

    @property
    def received_seconds(self) -> float:
        return self.received_samples / RATE

    def add(self, at: float, pcm: bytes) -> None:
        gap = at - self.play_head
        if gap > self.jitter:
            self._pcm += bytes(2 * round(gap * RATE))
        start = len(self._pcm) // 2
        self._pcm += pcm[: len(pcm) & ~1]
        samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2")
        self.received_samples += samples.shape[0]
        loud = np.flatnonzero(_block_dbfs(samples) > VOICED_DBFS)
        if loud.size:
            end = start + min(samples.shape[0], (int(loud[-1]) + 1) * FRAME_SAMPLES)
            self.voiced_until = end / RATE

    def finish(self, at: float) -> None:
        if at > self.play_head:
            self._pcm += bytes(2 * round((at - self.play_head) * RATE))

    def level_dbfs(self, at: float, window: float = 0.1) -> float:
        """The level of what the caller hears at `at` (the `window` seconds before it)."""
        end = round(at * RATE)  # past the audio received, the caller hears silence
        begin = max(0, end - round(window * RATE))
        if end <= begin:
            return -96.0
        chunk = np.frombuffer(bytes(self._pcm[2 * begin : 2 * end]), dtype="<i2").astype(np.float64)
        rms = math.sqrt(float(np.sum(chunk * chunk)) / (end - begin))
        return max(-96.0, 20 * math.log10(max(rms, 1e-3) / 32768.0))

    def pcm(self) -> bytes:
        return bytes(self._pcm)


class MarkEchoes:
    """When to echo the agent's marks, as a Twilio-like player would.

    A mark is due when the audio received before it has finished playing; `clear` drops what is
    queued, so every pending mark is due at once (in order) and playback restarts from now.
    """

    def __init__(self) -> None:
        self._play_head = 0.0
        self._pending: deque[tuple[float, str]] = deque()

    def audio(self, at: float, seconds: float) -> None:
        self._play_head = max(self._play_head, at) + seconds

    def mark(self, at: float, name: str) -> None:
        self._pending.append((max(self._play_head, at), name))

    def clear(self, at: float) -> list[str]:
        names = [name for _, name in self._pending]
        self._pending.clear()
        self._play_head = at
        return names

    def due(self, at: float) -> list[str]:
        names: list[str] = []
        while self._pending and self._pending[0][0] <= at:
            names.append(self._pending.popleft()[1])
        return names

    @property
    def pending(self) -> int:
        return len(self._pending)


# -- what the caller does ---------------------------------------------------------------------------


_EPSILON: Final = 1e-6  # clock readings are sums of 20 ms steps: compare them with a tolerance


class Phase(enum.Enum):
    WAITING = "waiting for the greeting to end"
    SPEAKING = "speaking"
    LISTENING = "listening for the echo"
    DIALLING = "pressing digits"
    IDLE = "listening"


@dataclass
class CallerScript:
    """Turn-taking of the simulated caller, driven by the clock and by when the agent last spoke.

    `step(now, voiced_until)` is called every 20 ms; it returns the digits to press now, and
    `phase` says whether to send the speech (`SPEAKING`) or silence.
    """

    speech_seconds: float
    digits: str = ""
    quiet: float = 0.8  # agent silence that ends its turn
    no_agent_wait: float = 3.0  # speak after this long if the agent has said nothing
    max_wait: float = 15.0  # speak after this long even if the agent is still talking
    echo_start_wait: float = 4.0  # stop waiting for an echo that has not begun after this long
    digit_interval: float = 1.0
    phase: Phase = Phase.WAITING
    since: float = 0.0  # when the current phase began
    _next_digit: int = 0
    _next_digit_at: float = 0.0

    def step(self, now: float, voiced_until: float | None) -> list[str]:
        if self.phase is Phase.WAITING:
            agent_done = voiced_until is not None and now - voiced_until >= self.quiet - _EPSILON
            silent_agent = voiced_until is None and now >= self.no_agent_wait - _EPSILON
            if agent_done or silent_agent or now >= self.max_wait - _EPSILON:
                self.phase, self.since = Phase.SPEAKING, now
        if self.phase is Phase.SPEAKING and now - self.since >= self.speech_seconds - _EPSILON:
            self.phase, self.since = Phase.LISTENING, now
        if self.phase is Phase.LISTENING:
            waited = now - self.since + _EPSILON
            echoed = voiced_until is not None and voiced_until > self.since
            if (
                (echoed and voiced_until is not None and now - voiced_until >= self.quiet - _EPSILON)
                or (not echoed and waited >= self.echo_start_wait)
                or waited >= self.speech_seconds + self.echo_start_wait + 2 * self.quiet
            ):
                self.phase, self.since, self._next_digit_at = Phase.DIALLING, now, now
        if self.phase is Phase.DIALLING:
            if self._next_digit >= len(self.digits):
                self.phase = Phase.IDLE
            elif now >= self._next_digit_at - _EPSILON:
                digit = self.digits[self._next_digit]
                self._next_digit += 1
                self._next_digit_at = now + self.digit_interval
                return [digit]
        return []


# -- the URL ---------------------------------------------------------------------------------------

_UUIDISH = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def _mask(secret: str) -> str:
    return secret[:4] + "****" if len(secret) > 8 else "****"


def mask_url(url: str) -> str:
    """The URL with the agent UUID (and anything UUID-like) masked: it authorises the stream."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if "agent-stream" in segments and segments[-1]:
        segments[-1] = _mask(segments[-1])
    path = _UUIDISH.sub(lambda m: _mask(m.group(0)), "/".join(segments))
    query = _UUIDISH.sub(lambda m: _mask(m.group(0)), parts.query)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _first(query: dict[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = query.get(name)
        if values and values[0].strip():
            return values[0].strip()
    return None


# -- the call --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallOptions:
    url: str
    wav: Path | None = None
    record: Path | None = None
    dtmf: str = ""
    seconds: float = DEFAULT_SECONDS
    account_sid: str | None = None

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise CallUsageError(
                "--url must be a WebSocket URL (ws:// or wss://), "
                "e.g. ws://127.0.0.1:8000/api/v1/agent-stream/AGENT_UUID?provider=cloudonix&Domain=demo"
            )
        if not self.seconds > 0:
            raise CallUsageError("--seconds must be a positive number")
        bad = sorted({d for d in self.dtmf.upper() if d not in "0123456789*#ABCD"})
        if bad:
            raise CallUsageError(f"--dtmf takes 0-9, *, #, A-D (not {''.join(bad)!r})")
        if self.record is not None and not self.record.parent.is_dir():
            raise CallUsageError(f"--record: no such directory {self.record.parent}")


@dataclass(frozen=True, slots=True)
class Identity:
    """The identifiers of the simulated call, as Cloudonix would fill `start`."""

    stream_sid: str
    call_sid: str
    session: str
    account_sid: str
    caller: str
    called: str

    @classmethod
    def for_call(cls, options: CallOptions) -> Identity:
        query = parse_qs(urlsplit(options.url).query)
        return cls(
            stream_sid="MZ" + secrets.token_hex(16),
            call_sid=_first(query, "callId", "CallSid") or "CA" + secrets.token_hex(16),
            session=secrets.token_hex(16),
            account_sid=options.account_sid or _first(query, "Domain") or "demo",
            caller=_first(query, "from") or DEFAULT_FROM,
            called=_first(query, "to") or DEFAULT_TO,
        )


class Framer:
    """Cloudonix -> server messages: Twilio framing, string `sequenceNumber` counter."""

    def __init__(self, ids: Identity) -> None:
        self.ids = ids
        self._sequence = 0
        self._chunk = 0

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    @staticmethod
    def connected() -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self) -> str:
        ids = self.ids
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "streamSid": ids.stream_sid,
                "start": {
                    "streamSid": ids.stream_sid,
                    "callSid": ids.call_sid,
                    "session": ids.session,
                    "accountSid": ids.account_sid,
                    "from": ids.caller,
                    "to": ids.called,
                    "context": "inbound",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
                    "customParameters": {},
                },
            }
        )

    def media(self, ulaw: bytes) -> str:
        self._chunk += 1
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "streamSid": self.ids.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(round((self._chunk - 1) * FRAME_SECONDS * 1000)),
                    "payload": base64.b64encode(ulaw).decode("ascii"),
                },
            }
        )

    def dtmf(self, digit: str) -> str:
        return json.dumps(
            {
                "event": "dtmf",
                "sequenceNumber": self._next(),
                "streamSid": self.ids.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    def mark(self, name: str) -> str:
        return json.dumps(
            {
                "event": "mark",
                "sequenceNumber": self._next(),
                "streamSid": self.ids.stream_sid,
                "mark": {"name": name},
            }
        )

    def stop(self) -> str:
        ids = self.ids
        return json.dumps(
            {
                "event": "stop",
                "sequenceNumber": self._next(),
                "streamSid": ids.stream_sid,
                "stop": {"accountSid": ids.account_sid, "callSid": ids.call_sid, "session": ids.session},
            }
        )


class Console:
    """Event lines, and a progress line: one line redrawn in place on a terminal, plain lines
    every `plain_every` seconds otherwise."""

    def __init__(self, out: TextIO, tty: bool | None = None, plain_every: float = 2.0) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.plain_every = plain_every
        self._drawn = False
        self._last_plain = -math.inf
        self._last_tty = -math.inf

    def event(self, at: float, text: str) -> None:
        self._erase()
        self.out.write(f"[{at:6.2f} s] {text}\n")
        self.out.flush()

    def progress(self, at: float, heard: float, dbfs: float, phase: Phase) -> None:
        if self.tty:
            if at - self._last_tty < 0.1:
                return
            self._last_tty = at
            bars = max(0, min(20, round((dbfs + 60) / 3)))
            line = (
                f"  {at:5.1f} s | heard {heard:5.1f} s | VU [{'#' * bars}{'.' * (20 - bars)}] "
                f"{dbfs:4.0f} dBFS | {phase.value}"
            )
            self.out.write("\r\x1b[K" + line)
            self._drawn = True
        else:
            if at - self._last_plain < self.plain_every:
                return
            self._last_plain = at
            self.out.write(
                f"[{at:6.2f} s] progress: heard {heard:.1f} s of agent audio, "
                f"level {dbfs:.0f} dBFS, {phase.value}\n"
            )
        self.out.flush()

    def _erase(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def done(self) -> None:
        self._erase()
        self.out.flush()


_ENDINGS: Final = {
    HANGUP_CLOSE_REASONS[EndReason.CALLER_HANGUP]: "you hung up (the agent ended the call when you asked)",
    HANGUP_CLOSE_REASONS[EndReason.AGENT_HANGUP]: "hung up by the agent",
    HANGUP_CLOSE_REASONS[EndReason.OPERATOR_HANGUP]: "hung up by an operator",
    HANGUP_CLOSE_REASONS[EndReason.MAX_DURATION]: "hung up by the agent: the call's time limit",
    HANGUP_CLOSE_REASONS[EndReason.DRAINED]: "hung up by the agent: the server is shutting down",
}


def describe_ending(code: int | None, reason: str, stopped_by_caller: bool, closed_by_agent: bool) -> str:
    """How the call ended, in words, from the close the server sent and whether `stop` went out."""
    if stopped_by_caller:
        return "you hung up"
    if code == 1000:
        if reason.startswith(TRANSFERRED_CLOSE_PREFIX):
            return "transferred to " + reason.removeprefix(TRANSFERRED_CLOSE_PREFIX)
        return _ENDINGS.get(reason, "the agent closed the stream")
    if code is None or not closed_by_agent:
        return "the connection was lost"
    return f"ended by the server: code {code}" + (f" ({reason})" if reason else "")


@dataclass
class CallOutcome:
    close_code: int | None
    close_reason: str
    closed_by_agent: bool
    stopped_by_caller: bool

    @property
    def exit_status(self) -> int:
        if self.closed_by_agent:
            return 0 if self.close_code == 1000 else 1
        return 0 if self.stopped_by_caller and self.close_code in (1000, None) else 1


class CallSession:
    """One call: a sender on the 20 ms clock (media, marks, digits, stop) and a receiver."""

    def __init__(self, options: CallOptions, speech_ulaw: bytes, speech_name: str, console: Console) -> None:
        self.options = options
        self.ids = Identity.for_call(options)
        self.framer = Framer(self.ids)
        self.speech = speech_ulaw
        self.speech_name = speech_name
        self.console = console
        self.ear = EarRecording()
        self.marks = MarkEchoes()
        self.script = CallerScript(speech_seconds=len(speech_ulaw) / RATE, digits=options.dtmf.upper())
        self.hangup = asyncio.Event()  # Ctrl-C
        self._t0 = 0.0
        self._start_sent_at = 0.0
        self._first_media_at: float | None = None
        self._counts = {"media": 0, "mark": 0, "clear": 0, "other": 0}
        self._echo_now: list[str] = []
        self._extended = False  # the call went past --seconds while the agent spoke
        self._voiced_until: float | None = None  # as `ear.voiced_until`, but cut where a `clear` cut

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    async def run(self) -> CallOutcome:
        url = self.options.url
        host = urlsplit(url).hostname or ""
        options: dict[str, Any] = {}
        if host in ("127.0.0.1", "localhost", "::1") and _CONNECT_TAKES_PROXY:
            options["proxy"] = None  # never send loopback traffic through an HTTP(S)_PROXY
        self.console.event(0.0, f"calling {mask_url(url)}")
        async with connect(
            url,
            compression=None,
            open_timeout=10,
            close_timeout=5,
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=None,
            **options,
            user_agent_header="agent-stream-call",
        ) as ws:
            self._t0 = asyncio.get_running_loop().time()
            receiver = asyncio.create_task(self._receive(ws), name="call-receiver")
            stopped = False
            try:
                stopped = await self._send(ws, receiver)
            finally:
                if not receiver.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(receiver), 2.0)
                if not receiver.done():
                    await ws.close(1000, "caller hung up")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(receiver, 5.0)
                if not receiver.done():
                    receiver.cancel()
        end = self._now()
        self.ear.finish(end)
        protocol = ws.protocol
        by_agent = protocol.close_rcvd is not None and (
            bool(protocol.close_rcvd_then_sent) or protocol.close_sent is None
        )
        code = ws.close_code
        reason = ws.close_reason or ""
        if by_agent:
            who = "closed by the agent"
        elif protocol.close_sent is not None:
            who = "closed by the caller"
        else:
            who = "connection lost"
        self.console.done()
        self.console.event(end, f"{who}: code {code}" + (f", reason {reason!r}" if reason else ""))
        self.console.event(end, "call ended: " + describe_ending(code, reason, stopped, by_agent))
        return CallOutcome(code, reason, by_agent, stopped)

    async def _send(self, ws: ClientConnection, receiver: asyncio.Task[None]) -> bool:
        """The 20 ms clock. Returns True when the caller sent `stop`."""
        loop = asyncio.get_running_loop()
        try:
            await ws.send(self.framer.connected())
            self.console.event(self._now(), "connected sent")
            await ws.send(self.framer.start())
            self._start_sent_at = self._now()
            self.console.event(
                self._start_sent_at,
                f"start sent (accountSid {self.ids.account_sid}, session {self.ids.session[:8]}..., "
                "audio/x-mulaw 8000 Hz mono)",
            )
            origin = loop.time()
            cursor = 0
            frame = 0
            while not receiver.done():
                delay = origin + frame * FRAME_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if receiver.done():
                    break
                now = self._now()
                if self.hangup.is_set() or (now >= self.options.seconds and not self._agent_talking(now)):
                    await ws.send(self.framer.stop())
                    why = "Ctrl-C" if self.hangup.is_set() else "after --seconds"
                    if self._extended and not self.hangup.is_set():
                        why += ", once the agent was quiet"
                    self.console.event(now, f"stop sent ({why})")
                    return True
                was = self.script.phase
                digits = self.script.step(now, self.ear.voiced_until)
                if self.script.phase is not was:
                    self._announce(now, was)
                if self.script.phase is Phase.SPEAKING and cursor < len(self.speech):
                    chunk = self.speech[cursor : cursor + FRAME_SAMPLES]
                    cursor += FRAME_SAMPLES
                    chunk += ULAW_SILENCE * (FRAME_SAMPLES - len(chunk))
                else:
                    chunk = ULAW_SILENCE * FRAME_SAMPLES
                await ws.send(self.framer.media(chunk))
                for name in [*self._echo_now, *self.marks.due(now)]:
                    await ws.send(self.framer.mark(name))
                    self.console.event(now, f"mark {name!r} echoed")
                self._echo_now.clear()
                for digit in digits:
                    await ws.send(self.framer.dtmf(digit))
                    self.console.event(now, f"dtmf {digit} sent")
                self.console.progress(
                    now, self.ear.received_seconds, self.ear.level_dbfs(now), self.script.phase
                )
                frame += 1
        except ConnectionClosed:
            pass
        return False

    def _agent_talking(self, now: float) -> bool:
        """Past `--seconds`: True while the agent is still speaking (not yet quiet for the
        script's pause), for at most `MAX_EXTENSION_SECONDS`; announced once."""
        voiced_until = self._voiced_until
        talking = voiced_until is not None and now - voiced_until < self.script.quiet - _EPSILON
        if not talking or now >= self.options.seconds + MAX_EXTENSION_SECONDS:
            return False
        if not self._extended:
            self._extended = True
            self.console.event(now, "the agent is still speaking: hanging up once it is quiet")
        return True

    def _announce(self, now: float, was: Phase) -> None:
        phase = self.script.phase
        if was is Phase.WAITING:
            self.console.event(now, f"speaking: {self.speech_name} ({len(self.speech) / RATE:.1f} s)")
        if was in (Phase.WAITING, Phase.SPEAKING) and phase not in (Phase.WAITING, Phase.SPEAKING):
            self.console.event(now, "done speaking; listening")

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                self._handle(message)
        except ConnectionClosed:
            pass

    def _handle(self, message: str | bytes) -> None:
        now = self._now()
        try:
            obj = json.loads(message)
        except ValueError:
            obj = None
        event = obj.get("event") if isinstance(obj, dict) else None
        if event == "media":
            payload = obj.get("media", {}).get("payload", "") if isinstance(obj, dict) else ""
            try:
                ulaw = base64.b64decode(payload, validate=True)
            except ValueError:
                self._other(now, "media with a payload that is not base64")
                return
            if not ulaw:
                return
            self._counts["media"] += 1
            if self._first_media_at is None:
                self._first_media_at = now
                ms = (now - self._start_sent_at) * 1000
                self.console.event(now, f"first media received, {ms:.0f} ms after start")
            before = self.ear.voiced_until
            self.ear.add(now, MULAW.decode(ulaw))
            if self.ear.voiced_until != before:
                self._voiced_until = self.ear.voiced_until
            self.marks.audio(now, len(ulaw) / RATE)
        elif event == "mark":
            mark = obj.get("mark") if isinstance(obj, dict) else None
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                self._other(now, "mark without a name")
                return
            self._counts["mark"] += 1
            self.marks.mark(now, name)
            self.console.event(now, f"mark {name!r} received")
        elif event == "clear":
            self._counts["clear"] += 1
            pending = self.marks.clear(now)
            if self._voiced_until is not None and self._voiced_until > now:
                self._voiced_until = now  # what was cut is not heard: the agent stopped talking now
            self._echo_now.extend(pending)
            self.console.event(
                now, "clear received" + (f" ({len(pending)} marks pending)" if pending else "")
            )
        else:
            self._other(now, f"unexpected message (event {str(event)[:24]!r})")

    def _other(self, now: float, text: str) -> None:
        self._counts["other"] += 1
        if self._counts["other"] <= 5:
            self.console.event(now, text)

    def summary(self) -> str:
        c = self._counts
        return (
            f"received {c['media']} media messages ({self.ear.received_seconds:.1f} s of audio), "
            f"{c['mark']} marks, {c['clear']} clears" + (f", {c['other']} other" if c["other"] else "")
        )


def _speech(options: CallOptions) -> tuple[bytes, str]:
    if options.wav is None:
        from entrypoints.simulator.caller_audio import builtin_phrase_ulaw

        return builtin_phrase_ulaw(), "built-in test phrase"
    pcm = read_wav(options.wav, max_seconds=options.seconds)
    return MULAW.encode(pcm), options.wav.name


def run_call(options: CallOptions, out: TextIO | None = None) -> int:
    """Play the call; the process exit status (0: a normal close or the caller's stop; 1 otherwise)."""
    options.check()
    speech, name = _speech(options)
    console = Console(out or sys.stdout)
    session = CallSession(options, speech, name, console)
    started = time.monotonic()

    async def main() -> CallOutcome:
        loop = asyncio.get_running_loop()

        def on_interrupt() -> None:  # the first Ctrl-C hangs up; a second one interrupts
            session.hangup.set()
            loop.remove_signal_handler(signal.SIGINT)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        try:
            return await session.run()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    status = 1
    try:
        outcome = asyncio.run(main())
        status = outcome.exit_status
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        console.done()
        console.event(time.monotonic() - started, f"could not connect: {_describe(exc)}")
    except KeyboardInterrupt:  # a second Ctrl-C: no goodbye, but keep what was heard
        console.done()
        console.event(time.monotonic() - started, "interrupted")
    console.event(time.monotonic() - started, session.summary())
    if options.record is not None:
        write_wav(options.record, session.ear.pcm())
        console.event(
            time.monotonic() - started,
            f"recorded {len(session.ear.pcm()) / 2 / RATE:.1f} s to {options.record}",
        )
    return status


def _describe(exc: BaseException) -> str:
    text = mask_text(str(exc)) or type(exc).__name__
    return text[:200]


def mask_text(text: str) -> str:
    """Any UUID-like run in `text` masked (library messages may quote the URL)."""
    return _UUIDISH.sub(lambda m: _mask(m.group(0)), text)
