"""Micro-benchmark of the per-frame media path (one 20 ms frame of one call).

    uv run python bench/media_micro.py [--pacers 200 --seconds 3]

Inbound: a loadcall-shaped `media` message -> `parse_inbound` (JSON, base64, µ-law decode) ->
`VoiceActivityDetector.feed`. Outbound: 320 bytes of PCM -> `OutboundFramer.media` (µ-law encode,
base64, JSON template). Each stage is also timed alone. Best of several repeats, in µs per frame.
Then the pacer: N calls paced concurrently on one event loop with a no-op send; CPU time of the
process per frame sent (event loop, timers and framing included).

Budget (README of loadcall: 200 calls x 50 frames/s on one core, Litestar already using about half
of it): about 10-20 µs per inbound frame and as much per outbound frame.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from adapters.media.g711 import MULAW
from adapters.media.pacer import OutboundPacer
from adapters.media.twilio.inbound import load_message, parse_inbound
from adapters.media.twilio.outbound import OutboundFramer
from adapters.media.vad import VoiceActivityDetector
from domain.stream_events import AudioIn

SID = "MZ" + "0123456789abcdef" * 2


def per_call_us(fn: Callable[[], object], number: int = 20_000, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def speech_frames() -> list[bytes]:
    """Real frames: espeak speech plus silence from the VAD test data, as µ-law."""
    data = (
        Path(__file__).resolve().parent.parent / "tests/unit/adapters/media/data/speech.ulaw"
    ).read_bytes()
    return [data[i : i + 160] for i in range(0, len(data) - 159, 160)]


def inbound(frames: list[bytes]) -> dict[str, float]:
    messages = [
        '{"event":"media","sequenceNumber":"'
        + str(k + 2)
        + '","streamSid":"'
        + SID
        + '","media":{"track":"inbound","chunk":"'
        + str(k + 1)
        + '","timestamp":"'
        + str(k * 20)
        + '","payload":"'
        + base64.b64encode(f).decode()
        + '"}}'
        for k, f in enumerate(frames)
    ]
    n = len(messages)
    vad = VoiceActivityDetector()
    pcms = [MULAW.decode(f) for f in frames]
    state = {"i": 0}

    def full() -> None:
        i = state["i"] = (state["i"] + 1) % n
        event = parse_inbound(messages[i], SID, MULAW)
        if type(event) is AudioIn:
            vad.feed(event.pcm)

    def parse_only() -> None:
        i = state["i"] = (state["i"] + 1) % n
        parse_inbound(messages[i], SID, MULAW)

    def vad_only() -> None:
        i = state["i"] = (state["i"] + 1) % n
        vad.feed(pcms[i])

    per_call_us(full, number=50_000, repeat=3)  # warm-up: caches, CPU clock
    msg = messages[n // 2]
    payload = json.loads(msg)["media"]["payload"]
    raw = frames[n // 2]
    return {
        "inbound total (parse+b64+decode+VAD)": per_call_us(full),
        "  parse_inbound (json+b64+decode)": per_call_us(parse_only),
        "    json: load_message": per_call_us(lambda: load_message(msg)),
        "    json: json.loads (for comparison)": per_call_us(lambda: json.loads(msg)),
        "    base64 strict decode": per_call_us(lambda: binascii.a2b_base64(payload, strict_mode=True)),
        "    µ-law decode (160 B)": per_call_us(lambda: MULAW.decode(raw)),
        "  VAD feed (320 B)": per_call_us(vad_only),
    }


def outbound() -> dict[str, float]:
    framer = OutboundFramer(SID, MULAW)
    pcm = np.clip(np.random.default_rng(1).normal(0, 3000, 160), -32768, 32767).astype("<i2").tobytes()
    encoded = MULAW.encode(pcm)
    return {
        "outbound total (encode+b64+JSON)": per_call_us(lambda: framer.media(pcm)),
        "  µ-law encode (320 B)": per_call_us(lambda: MULAW.encode(pcm)),
        "  base64 + template": per_call_us(lambda: framer.media_payload(encoded)),
        "  json.dumps (for comparison)": per_call_us(
            lambda: json.dumps({"event": "media", "streamSid": SID, "media": {"payload": "x" * 216}})
        ),
    }


async def pacers(count: int, seconds: float) -> tuple[float, int, float]:
    sent = 0

    async def send(_text: str) -> bool:
        nonlocal sent
        sent += 1
        return True

    framer = OutboundFramer(SID, MULAW)
    audio = np.zeros(round(seconds * 8000), dtype="<i2").tobytes()
    group = [OutboundPacer(send, framer) for _ in range(count)]
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for p in group:
        p.start()
        p.play(audio)
    await asyncio.gather(*(p.drain(timeout=seconds + 5) for p in group))
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    for p in group:
        await p.aclose()
    return cpu / sent * 1e6, sent, cpu / wall


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pacers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--uvloop", action="store_true", help="run the pacer on uvloop (as uvicorn does)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    for name, us in {**inbound(speech_frames()), **outbound()}.items():
        print(f"{name:42s} {us:7.2f} µs/frame")
    if args.uvloop:
        import uvloop

        us, frames, load = uvloop.run(pacers(args.pacers, args.seconds))
    else:
        us, frames, load = asyncio.run(pacers(args.pacers, args.seconds))
    loop_name = "uvloop" if args.uvloop else "asyncio"
    print(
        f"pacer ({loop_name}): {args.pacers} calls x {args.seconds:.0f} s: {frames} frames, "
        f"{us:.2f} µs CPU/frame incl. event loop and framing, {load * 100:.1f} % of a core"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
