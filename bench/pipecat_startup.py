"""Pipeline start-up and voice-to-voice latency of a `pipecat` agent (bench/pipecat.sh runs it first).

Start-up = sending `start` -> the first outbound `media` (the greeting), over `--calls` calls (one at a
time unless `--concurrency`), each then sending `stop` and closing 1000. Voice-to-voice, on
`--v2v-calls` more calls: once the greeting has played, a speech burst (the first phrase of `--wav`,
else a tone) is streamed; we measure its last frame's send time -> the reply's first outbound media.
With `--agent`, those turns as the server recorded them (`agent-stream runs list`) are read back.
Inbound audio flows all along (a µ-law frame per 20 ms); the events are shaped as loadcall.py's.

usage: python bench/pipecat_startup.py --url 'ws://127.0.0.1:8765/...&callId={i}' [--calls 50]
         [--concurrency 1] [--v2v-calls 5] [--wav speech.wav] [--agent UUID] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Awaitable, Callable

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FRAME_S = 0.02
FRAME = 160  # µ-law bytes per 20 ms at 8 kHz
SILENCE = base64.b64encode(b"\xff" * FRAME).decode()  # µ-law digital silence


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """16-bit PCM -> G.711 µ-law, as CPython's `audioop.lin2ulaw` does it (vectorised)."""
    v = pcm.astype(np.int32) >> 2  # 14-bit
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), 8159) + 0x21
    seg = np.floor(np.log2(v)).astype(np.int32) - 5  # 0..7, 8 = over the top
    code = np.where(seg > 7, 0x7F, (seg << 4) | ((v >> (seg + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


def speech_burst(wav_path: str | None) -> list[str]:
    """The burst as base64 µ-law frames: the WAV's first loud stretch, or a 1.2 s AM tone."""
    if wav_path:
        with wave.open(wav_path) as w:
            if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (8000, 2, 1):
                raise SystemExit(f"{wav_path}: want 16-bit 8 kHz mono")
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        frames = pcm[: len(pcm) // FRAME * FRAME].reshape(-1, FRAME)
        loud = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) > 300
        first = int(np.argmax(loud))
        end = first
        while end < len(loud) and loud[end : end + 25].any():  # a phrase ends at 0.5 s of quiet
            end += 1
        pcm = frames[first:end].reshape(-1)
    else:
        t = np.arange(int(1.2 * 8000)) / 8000
        pcm = (8000 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)
    mu = ulaw_encode(pcm)
    return [base64.b64encode(mu[k : k + FRAME]).decode() for k in range(0, len(mu) - FRAME + 1, FRAME)]


class Call:
    """One call: handshake as loadcall does, then a 20 ms inbound stream; arrivals are time-stamped."""

    def __init__(self, url: str, i: int, account_sid: str) -> None:
        self.call_sid, self.sid = "CA" + uuid.uuid4().hex, "MZ" + uuid.uuid4().hex
        self.url = (
            url.replace("{i}", str(i)).replace("{call_sid}", self.call_sid).replace("{stream_sid}", self.sid)
        )
        self.account_sid = account_sid
        self.media: list[tuple[float, int]] = []  # (arrival, payload bytes) of each outbound media
        self.got_media = asyncio.Event()
        self.burst: list[str] = []  # frames to send instead of silence, from the next slot on
        self.burst_end = 0.0  # send time of the burst's last frame
        self.burst_sent = asyncio.Event()
        self.n = 0

    def _event(self, name: str, seq: int, **body: object) -> str:
        return json.dumps({"event": name, "sequenceNumber": str(seq), "streamSid": self.sid, **body})

    async def run(self, body: Callable[[Call], Awaitable[None]]) -> None:
        """Handshake exactly as loadcall.py does, run `body` while streaming, then `stop` and close 1000."""
        async with connect(self.url, compression=None, proxy=None, ping_interval=None, max_size=2**20) as ws:
            self.ws = ws
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            ids = {"streamSid": self.sid, "callSid": self.call_sid, "accountSid": self.account_sid}
            fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            start = {**ids, "session": self.call_sid, "from": "+15555550100", "to": "+15555550199"}
            start |= {"tracks": ["inbound"], "mediaFormat": fmt, "customParameters": {}}
            await ws.send(self._event("start", 1, start=start))
            self.t_start = time.monotonic()
            tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._send())]
            try:
                await body(self)
            finally:
                for task in tasks:
                    task.cancel()
            stop = {"callSid": self.call_sid, "accountSid": self.account_sid}
            with contextlib.suppress(ConnectionClosed):  # the server may have hung up first
                await ws.send(self._event("stop", self.n + 2, stop=stop))
            await ws.close(1000, "done")

    async def _receive(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            msg = json.loads(raw)
            if msg.get("event") == "media":
                payload = msg["media"]["payload"]
                self.media.append((now, len(payload) * 3 // 4 - payload.count("=")))
                self.got_media.set()

    async def _send(self) -> None:
        """One media frame per 20 ms on a drift-free clock (as loadcall: sequenceNumber from 2)."""
        while True:
            delay = self.t_start + self.n * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = self.burst.pop(0) if self.burst else SILENCE
            media = {"track": "inbound", "chunk": str(self.n + 1), "timestamp": str(self.n * 20)}
            await self.ws.send(self._event("media", self.n + 2, media={**media, "payload": payload}))
            self.n += 1
            if payload is not SILENCE and not self.burst:
                self.burst_end = time.monotonic()
                self.burst_sent.set()

    async def first_media(self, wait_s: float) -> float | None:
        """ms from `start` to the first outbound media, None when none came in time."""
        try:
            await asyncio.wait_for(self.got_media.wait(), wait_s)
        except TimeoutError:
            return None
        return (self.media[0][0] - self.t_start) * 1000

    async def quiet(self, gap: float = 0.5) -> None:
        """Until everything received has played out and nothing new came for `gap` seconds."""
        while True:
            played_out = self.media[0][0] + sum(n for _, n in self.media) / 8000 if self.media else 0.0
            wait = max(played_out, self.media[-1][0] + gap if self.media else 0.0) - time.monotonic()
            if wait <= 0:
                return
            await asyncio.sleep(wait)


def pct(values: list[float]) -> dict[str, float | int | None]:
    v = sorted(values)
    if not v:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    p95 = v[min(len(v) - 1, int(0.95 * len(v)))]
    return {"n": len(v), "p50": round(statistics.median(v), 1), "p95": round(p95, 1), "max": round(v[-1], 1)}


def server_turns(agent: str, limit: int, cli: str) -> dict[str, dict]:
    """Medians of the server-recorded turn latencies of the agent's newest `limit` runs."""
    cmd = [cli, "runs", "list", "--agent", agent, "--limit", str(limit)]
    lines = subprocess.check_output(cmd, text=True).splitlines()  # noqa: S603 - our own CLI
    runs = [json.loads(line) for line in lines if line.strip()]
    turns = [t for run in runs for t in (run.get("gathered_context") or {}).get("turns", [])]
    keys = ("voice_to_voice_ms", "stt_ms", "llm_first_token_ms", "tts_first_byte_ms")
    return {k: pct([t[k] for t in turns if t.get(k) is not None]) for k in keys}


async def measure(args: argparse.Namespace) -> dict[str, object]:
    # start-up: `start` -> first media, then stop and close at once
    startup: list[float] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def one(i: int) -> None:
        async def body(call: Call) -> None:
            ms = await call.first_media(args.timeout)
            startup.extend([] if ms is None else [ms])

        async with gate:
            try:
                await Call(args.url, i, args.account_sid).run(body)
            except Exception as exc:  # noqa: BLE001 - counted as a failure, the run goes on
                print(f"call {i}: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(one(i) for i in range(args.calls)))

    # voice-to-voice: greeting played out, one burst, its last frame -> the reply's first media
    v2v: list[float] = []
    frames = speech_burst(args.wav)

    async def talk(call: Call) -> None:
        if await call.first_media(args.timeout) is None:
            return
        await call.quiet()
        heard = len(call.media)
        call.got_media.clear()
        call.burst = list(frames)
        await call.burst_sent.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.got_media.wait(), 5.0)
        if len(call.media) > heard:
            v2v.append((call.media[heard][0] - call.burst_end) * 1000)
        await call.quiet()  # let the reply play, so the server records the whole turn

    for i in range(args.v2v_calls):
        await Call(args.url, args.calls + i, args.account_sid).run(talk)

    result: dict[str, object] = {"calls": args.calls, "concurrency": args.concurrency}
    result |= {"failed_or_no_media": args.calls - len(startup), "startup_ms": pct(startup)}
    result["startup_each_ms"] = [round(ms, 1) for ms in startup]
    result |= {"burst_seconds": round(len(frames) * FRAME_S, 2), "voice_to_voice_client_ms": pct(v2v)}
    if args.agent:
        await asyncio.sleep(2.0)  # the run's journal is written off the media path
        result["server_turns"] = server_turns(args.agent, args.v2v_calls, args.cli)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="WebSocket URL template ({i}, {call_sid}, {stream_sid})")
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the greeting")
    p.add_argument("--v2v-calls", type=int, default=5, help="calls that also measure voice-to-voice")
    p.add_argument("--wav", help="16-bit 8 kHz speech WAV (bench/make_speech_wav.py); a tone burst if absent")
    p.add_argument("--agent", help="agent UUID: read the server-recorded turn latencies back")
    p.add_argument("--cli", default=os.path.join(os.path.dirname(sys.executable), "agent-stream"))
    p.add_argument("--account-sid", default="acme.cloudonix.net")
    p.add_argument("--json-out")
    args = p.parse_args()
    result = asyncio.run(measure(args))
    text = json.dumps(result)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    s, v = result["startup_ms"], result["voice_to_voice_client_ms"]
    line = (
        f"start-up over {s['n']}/{args.calls} calls: p50 {s['p50']} ms, p95 {s['p95']} ms, max {s['max']} ms;"
    )
    line += f" voice-to-voice (client, {v['n']} calls) p50 {v['p50']} ms"
    if "server_turns" in result:
        line += "; server p50 " + ", ".join(f"{k} {d['p50']}" for k, d in result["server_turns"].items())
    print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
