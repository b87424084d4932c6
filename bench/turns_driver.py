"""Voice-to-voice at the caller's ear, `--calls` concurrent calls (bench/turns.sh runs it per level).

Each call waits for the greeting to play out, then takes `--turns` turns: a speech burst (the first
phrase of `--wav`), then silence until the reply has played out, then a pause of 0.5-1.5 s (so the
calls' turns spread out). Voice-to-voice = the send time of the burst's last frame -> the arrival of
the first voiced reply frame (louder than -45 dBFS). Beside it, what the service adds: voice-to-voice
less `--expected-ms` (the configured silence plus the services' own times, given by turns.sh).
Calls per core = calls / the server's CPU share over the measurement (`--server-pid`, from /proc).

usage: python bench/turns_driver.py --url 'ws://...&callId={i}' --calls 30 --wav speech.wav
         [--turns 5] [--expected-ms 1250] [--server-pid PID] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import sys
import time

import numpy as np
from pipecat_startup import Call, pct, speech_burst  # bench/ is the script's folder

VOICED_DBFS = -45.0


def ulaw_level_dbfs(payload: bytes) -> float:
    """The level of a µ-law frame (G.711 decoding, vectorised)."""
    u = ~np.frombuffer(payload, dtype=np.uint8)
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa.astype(np.int32) << 3) + 0x84) << exponent) - 0x84
    pcm = np.where(sign != 0, -magnitude, magnitude).astype(np.float64)
    rms = float(np.sqrt((pcm**2).mean())) if len(pcm) else 0.0
    return 20 * np.log10(max(rms, 1e-9) / 32768)


class EarCall(Call):
    """A `Call` that also notes which outbound frames are voiced."""

    def __init__(self, url: str, i: int, account_sid: str) -> None:
        super().__init__(url, i, account_sid)
        self.voiced: list[float] = []  # arrival times of voiced frames
        self.got_voiced = asyncio.Event()

    async def _receive(self) -> None:
        async for raw in self.ws:
            now = time.monotonic()
            msg = json.loads(raw)
            if msg.get("event") == "media":
                payload = base64.b64decode(msg["media"]["payload"])
                self.media.append((now, len(payload)))
                self.got_media.set()
                if ulaw_level_dbfs(payload) > VOICED_DBFS:
                    self.voiced.append(now)
                    self.got_voiced.set()


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace) -> dict[str, object]:
    frames = speech_burst(args.wav)
    v2v: list[float] = []
    missed = 0

    async def turns(call: EarCall) -> None:
        nonlocal missed
        if await call.first_media(args.timeout) is None:
            missed += args.turns
            return
        await call.quiet()
        for _ in range(args.turns):
            call.burst_sent.clear()
            call.burst = list(frames)
            await call.burst_sent.wait()
            sent, heard = call.burst_end, len(call.voiced)
            deadline = sent + args.reply_timeout
            while not any(at > sent for at in call.voiced[heard:]) and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.got_voiced.wait(), 0.05)
                call.got_voiced.clear()
            reply = [at for at in call.voiced[heard:] if at > sent]
            if reply:
                v2v.append((reply[0] - sent) * 1000)
            else:
                missed += 1
            await call.quiet()
            await asyncio.sleep(random.uniform(0.5, 1.5))

    async def one(k: int) -> None:
        await asyncio.sleep(k * args.ramp / max(args.calls, 1))  # the k-th call of this level
        i = args.first_call + k  # its {i} in the URL
        try:
            await EarCall(args.url, i, args.account_sid).run(turns)
        except Exception as exc:  # noqa: BLE001 - counted as missed turns, the run goes on
            print(f"call {i}: {type(exc).__name__}: {exc}", file=sys.stderr)

    cpu0, t0 = cpu_seconds(args.server_pid), time.monotonic()
    await asyncio.gather(*(one(k) for k in range(args.calls)))
    cpu1, t1 = cpu_seconds(args.server_pid), time.monotonic()
    result: dict[str, object] = {"calls": args.calls, "turns_per_call": args.turns, "missed_turns": missed}
    result["voice_to_voice_ms"] = pct(v2v)
    result["expected_ms"] = args.expected_ms
    result["service_adds_ms"] = pct([ms - args.expected_ms for ms in v2v])
    if cpu0 is not None and cpu1 is not None:
        share = (cpu1 - cpu0) / (t1 - t0)
        result["server_cpu_share"] = round(share, 3)
        result["calls_per_core"] = round(args.calls / share, 1) if share > 0 else None
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="WebSocket URL template ({i}, {call_sid}, {stream_sid})")
    p.add_argument("--calls", type=int, default=1, help="concurrent calls")
    p.add_argument("--first-call", type=int, default=0, help="the first call's {i}")
    p.add_argument("--turns", type=int, default=5, help="turns per call")
    p.add_argument("--ramp", type=float, default=3.0, help="seconds over which the calls start")
    p.add_argument("--wav", help="16-bit 8 kHz speech WAV (bench/make_speech_wav.py); a tone burst if absent")
    p.add_argument("--expected-ms", type=float, default=0.0, help="configured silence + services' own times")
    p.add_argument("--server-pid", type=int, help="the server's pid: its CPU share, calls per core")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the greeting")
    p.add_argument("--reply-timeout", type=float, default=8.0, help="seconds to wait for a reply")
    p.add_argument("--account-sid", default="acme.cloudonix.net")
    p.add_argument("--json-out")
    args = p.parse_args()
    result = asyncio.run(measure(args))
    text = json.dumps(result, indent=2)
    print(text, file=sys.stderr)
    if args.json_out:
        with open(args.json_out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
