"""The outbound pacer on the real event loop with a recording send callback.

Lower bounds (a frame is never sent early) are exact: the pacer decides from the same clock the
recorder reads. Upper bounds are generous: the machine running the tests may be busy.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from adapters.media.g711 import MULAW, PCM16
from adapters.media.pacer import FRAME_BYTES, FRAME_SECONDS, OutboundPacer
from adapters.media.twilio.outbound import OutboundFramer

SID = "MZpacer"
LEAD = 0.1
EPS = 1e-6  # float slack on exact lower bounds
LATE = 0.08  # generous allowance for a busy machine


@dataclass
class Sent:
    at: float
    message: dict[str, object]

    @property
    def event(self) -> object:
        return self.message["event"]

    @property
    def payload(self) -> bytes:
        media = self.message["media"]
        assert isinstance(media, dict)
        return base64.b64decode(media["payload"])


@dataclass
class RecordingSocket:
    """A `CallSocket.send` stand-in: records (loop time, message); refuses after `accept` sends."""

    accept: int | None = None
    sent: list[Sent] = field(default_factory=list)
    refused: int = 0

    async def send(self, text: str) -> bool:
        if self.accept is not None and len(self.sent) >= self.accept:
            self.refused += 1
            return False
        self.sent.append(Sent(asyncio.get_running_loop().time(), json.loads(text)))
        return True

    def media(self) -> list[Sent]:
        return [s for s in self.sent if s.event == "media"]

    def events(self) -> list[str]:
        out = []
        for s in self.sent:
            if s.event == "mark":
                mark = s.message["mark"]
                assert isinstance(mark, dict)
                out.append(f"mark:{mark['name']}")
            else:
                out.append(str(s.event))
        return out


def pcm(seconds: float, value: int = 1000) -> bytes:
    return np.full(round(seconds * 8000), value, dtype="<i2").tobytes()


def new_pacer(socket: RecordingSocket, **kwargs: float) -> OutboundPacer:
    return OutboundPacer(socket.send, OutboundFramer(SID, MULAW), **kwargs)


def now() -> float:
    return asyncio.get_running_loop().time()


async def test_frames_are_paced_at_real_time_with_at_most_100_ms_lead() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket, min_lead=LEAD) as pacer:  # one frame per wake-up
        t0 = now()
        pacer.play(pcm(1.0))
        assert await pacer.drain(timeout=5)
        done = now()
    frames = socket.media()
    assert len(frames) == 50
    for k, frame in enumerate(frames):
        assert frame.at >= t0 + FRAME_SECONDS * k - LEAD - EPS, f"frame {k} sent with more than 100 ms lead"
        assert frame.at <= max(t0, t0 + FRAME_SECONDS * k - LEAD) + LATE, f"frame {k} late"
    # The first 100 ms go out at once (the lead), then one frame per 20 ms.
    assert frames[5].at - t0 < LATE
    gaps = [b.at - a.at for a, b in itertools.pairwise(frames[6:])]
    assert 0.015 < float(np.median(gaps)) < 0.025
    # No drift: the last frame goes at its slot, and drain waits for it to have played.
    assert frames[-1].at - (t0 + 0.98 - LEAD) < LATE
    assert done >= t0 + 1.0 - EPS


async def test_by_default_frames_go_in_threes_between_60_and_100_ms_ahead() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        t0 = now()
        pacer.play(pcm(1.0))
        assert await pacer.drain(timeout=5)
    frames = socket.media()
    assert len(frames) == 50
    for k, frame in enumerate(frames):
        plays_at = t0 + FRAME_SECONDS * k
        assert frame.at >= plays_at - LEAD - EPS, f"frame {k} sent with more than 100 ms lead"
        assert frame.at <= max(t0, plays_at - 0.06) + LATE, f"frame {k} late"
    # Wake-ups every 60 ms, each sending the three frames that are due.
    gaps = [b.at - a.at for a, b in itertools.pairwise(frames[6:])]
    wakeups = [g for g in gaps if g > 0.01]
    assert len(wakeups) <= len(gaps) // 2
    assert 0.05 < float(np.median(wakeups)) < 0.07


async def test_every_frame_is_20_ms_and_the_last_partial_frame_is_padded_with_silence() -> None:
    socket = RecordingSocket()
    audio = pcm(0.05, 3000)  # 2.5 frames
    async with new_pacer(socket) as pacer:
        pacer.play(audio)
        assert await pacer.drain(timeout=5)
    payloads = [f.payload for f in socket.media()]
    assert [len(p) for p in payloads] == [160, 160, 160]
    assert b"".join(payloads)[:400] == MULAW.encode(audio)
    assert payloads[2][80:] == b"\xff" * 80  # µ-law silence


async def test_a_partial_frame_waits_for_the_rest_of_the_audio_instead_of_padding() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.065, 2000))  # 3 frames + 40 bytes: the provider now holds 60 ms
        await asyncio.sleep(0.01)
        pacer.play(pcm(0.035, 2000))  # completes the fourth frame and adds a fifth
        assert await pacer.drain(timeout=5)
    payloads = [f.payload for f in socket.media()]
    assert len(payloads) == 5
    assert b"\xff" not in b"".join(payloads[:4])


async def test_a_new_utterance_after_the_queue_ran_dry_starts_at_once() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.04))
        assert await pacer.drain(timeout=5)
        await asyncio.sleep(0.05)
        t1 = now()
        pacer.play(pcm(0.4))
        assert await pacer.drain(timeout=5)
    second = socket.media()[2:]
    assert len(second) == 20
    assert second[0].at - t1 < LATE
    for k, frame in enumerate(second):
        assert frame.at >= t1 + FRAME_SECONDS * k - LEAD - EPS


async def test_audio_queued_while_playing_continues_the_schedule_without_extra_lead() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        t0 = now()
        pacer.play(pcm(0.2))
        await asyncio.sleep(0.05)
        pacer.play(pcm(0.2))
        assert await pacer.drain(timeout=5)
    frames = socket.media()
    assert len(frames) == 20
    for k, frame in enumerate(frames):
        assert frame.at >= t0 + FRAME_SECONDS * k - LEAD - EPS


async def test_clear_stops_at_once_and_resets_the_clock() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        t0 = now()
        pacer.play(pcm(2.0))
        pacer.mark("never")
        await asyncio.sleep(0.2)
        cut_at = now()
        heard = pacer.clear()
        sent_before = len(socket.media())
        await asyncio.sleep(0.15)
        assert len(socket.media()) == sent_before, "media sent after clear()"
        assert socket.events()[-1] == "clear"
        assert "mark:never" not in socket.events()
        # What the caller heard: playback started at t0, so about the time elapsed.
        assert cut_at - t0 - 0.03 <= heard <= cut_at - t0 + EPS
        assert pacer.played_seconds() == pytest.approx(heard, abs=1e-9)
        assert pacer.queued_seconds() == pytest.approx(heard, abs=1e-9)
        # The next utterance starts immediately, with the usual lead and no backlog.
        t1 = now()
        pacer.play(pcm(0.2))
        assert await pacer.drain(timeout=5)
    after = socket.media()[sent_before:]
    assert len(after) == 10
    assert after[0].at - t1 < LATE
    for k, frame in enumerate(after):
        assert frame.at >= t1 + FRAME_SECONDS * k - LEAD - EPS
    assert pacer.played_seconds() == pytest.approx(heard + 0.2, abs=1e-6)


async def test_the_clear_message_goes_out_before_new_audio() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.5))
        await asyncio.sleep(0.03)
        pacer.clear()
        pacer.play(pcm(0.04))
        assert await pacer.drain(timeout=5)
    events = socket.events()
    cleared = events.index("clear")
    assert events[cleared + 1 :] == ["media", "media"]


async def test_marks_are_sent_in_order_after_the_audio_before_them_was_sent() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.mark("first")  # nothing before it: sent at once
        pacer.play(pcm(0.2))
        pacer.mark("a")
        pacer.play(pcm(0.05))  # partial frame: padded so that "b" falls on a frame boundary
        pacer.mark("b")
        pacer.mark("c")
        pacer.play(pcm(0.1))
        assert await pacer.drain(timeout=5)
    assert (
        socket.events()
        == ["mark:first", *["media"] * 10, "mark:a", *["media"] * 3, "mark:b", "mark:c"] + ["media"] * 5
    )


async def test_marks_track_what_the_caller_has_heard_without_echoes() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.3))
        pacer.mark("one")
        pacer.play(pcm(0.3))
        pacer.mark("two")
        assert pacer.heard_until() is None
        assert pacer.queued_seconds() == pytest.approx(0.6)
        await asyncio.sleep(0.12)
        assert pacer.heard_until() is None
        assert 0.1 <= pacer.played_seconds() <= 0.12 + LATE
        assert pacer.buffered_seconds() <= LEAD + FRAME_SECONDS + EPS
        assert pacer.sent_seconds() - pacer.played_seconds() <= LEAD + FRAME_SECONDS + EPS
        await asyncio.sleep(0.25)
        assert pacer.heard_until() == "one"
        assert await pacer.drain(timeout=5)
        assert pacer.heard_until() == "two"
        assert pacer.played_seconds() == pytest.approx(0.6)


async def test_mark_echoes_confirm_the_playback_position() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.2))
        pacer.mark("m1")
        pacer.play(pcm(1.0))
        pacer.mark("m2")
        while "mark:m1" not in socket.events():
            await asyncio.sleep(0.01)
        # The provider says playback reached m1 (0.2 s) — here earlier than the clock estimate.
        assert pacer.on_mark_echo("m1")
        assert pacer.heard_until() == "m1"
        assert pacer.played_seconds() >= 0.2
        assert not pacer.on_mark_echo("m1")  # already echoed
        assert not pacer.on_mark_echo("unknown")
        # A late echo: the provider's playback lags the clock, so the estimate is held back to it.
        await asyncio.sleep(0.1)
        assert pacer.played_seconds() <= 0.2 + 0.1 + LATE


async def test_mark_echoes_of_cleared_marks_are_ignored() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(0.06))
        pacer.mark("queued-audio-end")
        pacer.play(pcm(1.0))
        while "mark:queued-audio-end" not in socket.events():
            await asyncio.sleep(0.005)
        pacer.clear()  # the mark was sent but its audio not yet played
        assert not pacer.on_mark_echo("queued-audio-end")


async def test_drain_waits_until_the_audio_has_played() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        t0 = now()
        pacer.play(pcm(0.5))
        assert await pacer.drain(timeout=5)
        elapsed = now() - t0
        assert 0.5 - EPS <= elapsed <= 0.5 + 0.3
        assert pacer.buffered_seconds() == 0.0
        assert await pacer.drain(timeout=1)  # nothing queued: at once


async def test_drain_times_out() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        pacer.play(pcm(2.0))
        assert not await pacer.drain(timeout=0.1)


async def test_a_closed_socket_stops_the_pacer_cleanly() -> None:
    socket = RecordingSocket(accept=3)
    pacer = new_pacer(socket)
    pacer.play(pcm(1.0))
    await asyncio.wait_for(pacer.run(), timeout=5)  # returns, no exception
    assert pacer.closed
    assert len(socket.sent) == 3
    assert socket.refused == 1
    pacer.play(pcm(0.1))  # ignored
    pacer.mark("late")  # ignored
    assert pacer.clear() >= 0.0
    assert not await pacer.drain(timeout=1)
    assert socket.refused == 1


async def test_aclose_stops_sending() -> None:
    socket = RecordingSocket()
    pacer = new_pacer(socket)
    pacer.start()
    pacer.play(pcm(1.0))
    await asyncio.sleep(0.05)
    await pacer.aclose()
    count = len(socket.sent)
    await asyncio.sleep(0.06)
    assert len(socket.sent) == count < 50
    assert pacer.closed


async def test_run_refuses_to_run_twice() -> None:
    socket = RecordingSocket()
    async with new_pacer(socket) as pacer:
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already running"):
            await pacer.run()


async def test_already_encoded_audio_is_sent_as_is() -> None:
    socket = RecordingSocket()
    prompt = bytes(range(256)) * 2  # 512 µ-law samples: 3 frames + 32 samples
    async with new_pacer(socket) as pacer:
        pacer.play_encoded(prompt)
        assert pacer.queued_seconds() == pytest.approx(512 / 8000)
        assert await pacer.drain(timeout=5)
    payloads = [f.payload for f in socket.media()]
    assert b"".join(payloads) == prompt + b"\xff" * (4 * 160 - 512)


async def test_16_bit_pcm_codec_frames_are_320_bytes() -> None:
    socket = RecordingSocket()
    pacer = OutboundPacer(socket.send, OutboundFramer(SID, PCM16))
    async with pacer:
        pacer.play(pcm(0.05, 7))
        with pytest.raises(ValueError, match="whole number"):
            pacer.play_encoded(b"\x00")
        assert await pacer.drain(timeout=5)
    payloads = [f.payload for f in socket.media()]
    assert [len(p) for p in payloads] == [320, 320, 320]
    assert b"".join(payloads) == pcm(0.05, 7) + bytes(160)


async def test_input_validation() -> None:
    socket = RecordingSocket()
    pacer = new_pacer(socket)
    with pytest.raises(ValueError, match="even byte count"):
        pacer.play(b"\x00")
    with pytest.raises(ValueError, match="max_lead"):
        new_pacer(socket, max_lead=0.0)
    with pytest.raises(ValueError, match="min_lead"):
        new_pacer(socket, min_lead=0.2)
    pacer.play(b"")  # nothing to do
    assert pacer.queued_seconds() == 0.0
    await pacer.aclose()


async def test_many_concurrent_calls_are_each_paced() -> None:
    sockets = [RecordingSocket() for _ in range(100)]
    pacers = [new_pacer(s) for s in sockets]
    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for pacer in pacers:
            pacer.start()
            pacer.play(pcm(0.4))
            tg.create_task(pacer.drain(timeout=10))
    for pacer in pacers:
        await pacer.aclose()
    for socket in sockets:
        frames = socket.media()
        assert len(frames) == 20
        for k, frame in enumerate(frames):
            assert frame.at >= t0 + FRAME_SECONDS * k - LEAD - EPS
    assert FRAME_BYTES == 320
