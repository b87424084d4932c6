"""The recording's WAV: what a crash leaves is playable after `repair`; the writer's timeline."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from adapters.recording.wav import HEADER_BYTES, header, repair
from adapters.recording.writer import RecordingWriter


def test_a_file_cut_mid_sample_is_repaired_into_a_playable_wav(tmp_path: Path):
    path = tmp_path / "run-1.wav.part"
    samples = np.arange(2 * 800, dtype="<i2")  # 800 stereo samples: 0.1 s
    path.write_bytes(header(0) + samples.tobytes() + b"\x01")  # sizes never written, a torn sample

    assert repair(path) == 3200

    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (
            2,
            2,
            8000,
            800,
        )
        assert wav.readframes(800) == samples.tobytes()


def test_a_header_only_file_repairs_to_an_empty_wav(tmp_path: Path):
    path = tmp_path / "run-2.wav.part"
    path.write_bytes(header(0)[:30])
    assert repair(path) == 0
    assert path.stat().st_size == HEADER_BYTES
    with wave.open(str(path)) as wav:
        assert wav.getnframes() == 0


async def test_caller_by_position_agent_by_play_time_and_a_cut_drops_what_played_after_it(tmp_path: Path):
    writer = RecordingWriter()
    path = tmp_path / "run-3.wav.part"
    recording = writer.open(path, opened_at=100.0)
    recording.agent_encoding("pcm16")
    tone = np.full(160, 1000, dtype="<i2").tobytes()
    # caller frames arrive late and out of step with their positions; the least late ties the clocks
    recording.caller(tone, 0.0, 100.05)
    recording.caller(tone, 0.02, 100.03)  # arrived 30 ms after its place: the origin is 100.01
    recording.caller(tone, None, 100.055)  # no position: after the previous frame (0.04)
    recording.caller(tone, None, 100.5)  # ... unless the provider paused: where it arrived (0.49)
    for k in range(10):  # the agent: 200 ms queued from 100.11, cut at 100.17
        recording.agent(tone, 100.11 + 0.02 * k)
    recording.cut(100.17)
    try:
        data_bytes = await recording.finish()
    finally:
        writer.stop()
    stereo = np.frombuffer(path.read_bytes()[HEADER_BYTES:], dtype="<i2").reshape(-1, 2)
    assert data_bytes == stereo.nbytes
    caller_at = np.flatnonzero(stereo[:, 0]) / 8000
    agent_at = np.flatnonzero(stereo[:, 1]) / 8000
    assert (caller_at[0], caller_at[-1]) == (0.0, 0.51 - 1 / 8000)
    assert len(caller_at) == 4 * 160  # 0-0.06 and 0.49-0.51: nothing overwritten
    assert caller_at[479] == 0.06 - 1 / 8000 and caller_at[480] == 0.49
    assert (round(agent_at[0], 4), round(agent_at[-1] + 1 / 8000, 4)) == (0.1, 0.16)  # 100.11-100.17
