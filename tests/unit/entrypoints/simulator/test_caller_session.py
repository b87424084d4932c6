"""The whole `agent-stream call` client against a scripted agent on a loopback WebSocket: pacing
of the caller's media, mark echoes timed by playback (and released at once by `clear`), the
recording, and the exit status for each way a call ends."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from adapters.media.g711 import MULAW
from adapters.media.twilio.outbound import OutboundFramer
from entrypoints.simulator.caller import CallOptions, run_call

Script = Callable[[ServerConnection, "Seen"], Awaitable[None]]
SILENT_PAYLOAD = base64.b64encode(b"\xff" * 160).decode()
LOUD = np.tile(np.array([6000, -6000], dtype="<i2"), 80).tobytes()  # 20 ms, about -15 dBFS


class Seen:
    """What the scripted agent received, with arrival times (seconds since `start`)."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.marks: dict[str, float] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def events(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, m) for t, m in self.messages if m.get("event") == name]


async def handshake(ws: ServerConnection, seen: Seen) -> OutboundFramer:
    assert json.loads(await ws.recv())["event"] == "connected"
    start = json.loads(await ws.recv())
    seen.t0 = time.monotonic()
    return OutboundFramer(start["streamSid"], MULAW)


async def collect(ws: ServerConnection, seen: Seen) -> None:
    async for raw in ws:
        message = json.loads(raw)
        seen.messages.append((seen.now(), message))
        if message["event"] == "mark":
            seen.marks[message["mark"]["name"]] = seen.now()
        if message["event"] == "stop":
            await ws.close(1000)
            return


async def call_against(
    script: Script, tmp_path: Path, seconds: float, **options: Any
) -> tuple[int, str, Seen]:
    seen = Seen()

    async def handler(ws: ServerConnection) -> None:
        await script(ws, seen)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        out = io.StringIO()
        call = CallOptions(
            url=f"ws://127.0.0.1:{port}/api/v1/agent-stream/0b1c2d3e-0000-4000-8000-000000000000?Domain=x",
            record=tmp_path / "rec.wav",
            seconds=seconds,
            **options,
        )
        status = await asyncio.to_thread(run_call, call, out)
    return status, out.getvalue(), seen


async def test_marks_are_echoed_after_their_audio_and_at_once_on_clear(tmp_path: Path) -> None:
    async def agent(ws: ServerConnection, seen: Seen) -> None:
        framer = await handshake(ws, seen)
        listener = asyncio.create_task(collect(ws, seen))
        for _ in range(25):  # 0.5 s sent at once: the caller plays it in real time
            await ws.send(framer.media(LOUD))
        await ws.send(framer.mark("a"))
        seen.marks["a sent"] = seen.now()
        await asyncio.sleep(0.7)
        for _ in range(100):  # 2 s more, then cut short
            await ws.send(framer.media(LOUD))
        await ws.send(framer.mark("b"))
        await asyncio.sleep(0.3)
        seen.marks["clear sent"] = seen.now()
        await ws.send(framer.clear())
        await listener

    status, out, seen = await call_against(agent, tmp_path, seconds=2.5)

    assert status == 0, out
    assert seen.marks["a"] - seen.marks["a sent"] == pytest.approx(0.5, abs=0.08)
    assert seen.marks["b"] - seen.marks["clear sent"] < 0.08
    assert "mark 'a' echoed" in out
    assert "clear received (1 marks pending)" in out
    assert "stop sent (after --seconds)" in out
    assert "closed by the agent: code 1000" in out
    assert "0b1c2d3e-0000" not in out  # the agent UUID is masked

    media = seen.events("media")
    stop_at = seen.events("stop")[0][0]
    assert len(media) == pytest.approx(stop_at / 0.02, abs=3)  # one frame per 20 ms, no drift
    assert [m["sequenceNumber"] for _, m in media[:2]] == ["2", "3"]

    with wave.open(str(tmp_path / "rec.wav")) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert len(x) / 8000 == pytest.approx(0.7 + 2.0, abs=0.1)  # all the audio sent, on its timeline
    loud = np.abs(x.astype(np.int32)) > 1000
    assert loud[:4000].mean() > 0.95  # the first 0.5 s played as it arrived
    assert not loud[round(0.55 * 8000) : round(0.65 * 8000)].any()  # the gap before the second burst
    # everything sent is recorded (2.5 s of audio), even what `clear` cut short on the line
    assert loud.sum() == pytest.approx(2.5 * 8000, rel=0.02)


async def test_the_agent_refusing_the_call_exits_1_with_its_code_and_reason(tmp_path: Path) -> None:
    async def agent(ws: ServerConnection, seen: Seen) -> None:
        await handshake(ws, seen)
        await ws.close(4400, "Cloudonix session validation failed")

    status, out, _ = await call_against(agent, tmp_path, seconds=5)
    assert status == 1
    assert "closed by the agent: code 4400, reason 'Cloudonix session validation failed'" in out
    assert "first media received" not in out


async def test_the_agent_hanging_up_normally_exits_0(tmp_path: Path) -> None:
    async def agent(ws: ServerConnection, seen: Seen) -> None:
        framer = await handshake(ws, seen)
        listener = asyncio.create_task(collect(ws, seen))
        for _ in range(10):
            await ws.send(framer.media(LOUD))
        await asyncio.sleep(0.5)
        await ws.close(1000)
        await listener

    status, out, _ = await call_against(agent, tmp_path, seconds=10)
    assert status == 0, out
    assert "closed by the agent: code 1000" in out
    assert "stop sent" not in out
    with wave.open(str(tmp_path / "rec.wav")) as w:
        assert w.getnframes() / 8000 == pytest.approx(0.5, abs=0.15)


async def test_the_caller_speaks_after_the_greeting_and_dials_after_the_echo(tmp_path: Path) -> None:
    tone = np.round(8000 * np.sin(2 * np.pi * 440 * np.arange(3200) / 16000)).astype("<i2")
    with wave.open(str(tmp_path / "hello.wav"), "wb") as w:  # 0.2 s at 16 kHz
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone.tobytes())

    async def agent(ws: ServerConnection, seen: Seen) -> None:
        framer = await handshake(ws, seen)
        listener = asyncio.create_task(collect(ws, seen))
        for _ in range(15):  # a 0.3 s greeting
            await ws.send(framer.media(LOUD))
        await asyncio.sleep(1.5)
        for _ in range(15):  # a 0.3 s "echo"
            await ws.send(framer.media(LOUD))
        await listener

    status, out, seen = await call_against(
        agent, tmp_path, seconds=5.5, wav=tmp_path / "hello.wav", dtmf="12#"
    )
    assert status == 0, out
    spoken = [t for t, m in seen.events("media") if m["media"]["payload"] != SILENT_PAYLOAD]
    # the greeting ends at 0.3 s: after 0.8 s of quiet the caller speaks for 0.2 s
    assert spoken[0] == pytest.approx(1.1, abs=0.08)
    assert spoken[-1] - spoken[0] == pytest.approx(0.18, abs=0.03)
    dtmf = seen.events("dtmf")
    assert [m["dtmf"] for _, m in dtmf] == [{"track": "inbound_track", "digit": d} for d in ("1", "2", "#")]
    # the echo (1.5-1.8 s) ends, 0.8 s of quiet, then one digit a second
    assert [t for t, _ in dtmf] == pytest.approx([2.6, 3.6, 4.6], abs=0.1)
    assert "speaking: hello.wav (0.2 s)" in out


async def test_the_caller_does_not_hang_up_on_the_agent_mid_sentence(tmp_path: Path) -> None:
    async def agent(ws: ServerConnection, seen: Seen) -> None:
        framer = await handshake(ws, seen)
        listener = asyncio.create_task(collect(ws, seen))
        await asyncio.sleep(1.0)
        for _ in range(100):  # 2 s of speech from 1 s: still playing at --seconds
            await ws.send(framer.media(LOUD))
        await listener

    status, out, seen = await call_against(agent, tmp_path, seconds=2.0)

    assert status == 0, out
    assert "the agent is still speaking: hanging up once it is quiet" in out
    assert "stop sent (after --seconds, once the agent was quiet)" in out
    stop_at = seen.events("stop")[0][0]
    assert stop_at >= 3.0 + 0.8 - 0.1, "the caller hung up before the agent was quiet"
    assert "call ended: you hung up" in out


@pytest.mark.parametrize(
    ("code", "reason", "said"),
    [
        (1000, "Hung up by the agent", "call ended: hung up by the agent"),
        (1000, "Hung up by an operator", "call ended: hung up by an operator"),
        (1000, "Transferred to ***0123", "call ended: transferred to ***0123"),
        (1000, "Hung up at the caller's request", "call ended: you hung up"),
        (1000, "Server shutting down", "call ended: hung up by the agent: the server is shutting down"),
        (1011, "Internal server error", "call ended: ended by the server: code 1011 (Internal server error)"),
    ],
)
async def test_the_last_line_says_how_the_call_ended(
    tmp_path: Path, code: int, reason: str, said: str
) -> None:
    async def agent(ws: ServerConnection, seen: Seen) -> None:
        framer = await handshake(ws, seen)
        await ws.send(framer.media(LOUD))
        await asyncio.sleep(0.3)
        await ws.close(code, reason)

    _, out, _ = await call_against(agent, tmp_path, seconds=10)
    assert said in out, out
