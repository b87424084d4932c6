"""The caller's ear: the recording on the caller's timeline (with gap filling), and Twilio-like
mark echoes. Time is passed in, so these run without a server or sleeps."""

from __future__ import annotations

import numpy as np
import pytest

from entrypoints.simulator.caller_audio import FRAME_SAMPLES
from entrypoints.simulator.caller_ear import EarRecording, MarkEchoes

RATE = 8000


def frame(value: int = 8000, samples: int = FRAME_SAMPLES) -> bytes:
    """A 20 ms block of a loud square-ish wave (voiced), or silence with value=0."""
    x = np.full(samples, value, dtype="<i2")
    x[::2] = -value
    return x.tobytes()


def pcm_of(recording: EarRecording) -> np.ndarray:
    return np.frombuffer(recording.pcm(), dtype="<i2")


class TestEarRecording:
    def test_paced_frames_with_jitter_play_back_to_back(self) -> None:
        ear = EarRecording()
        rng = np.random.default_rng(7)
        for k in range(50):  # one frame every 20 ms, each but the first up to 15 ms late
            ear.add(0.5 + k * 0.02 + (float(rng.uniform(0, 0.015)) if k else 0.0), frame())
        x = pcm_of(ear)
        start = round(0.5 * RATE)
        assert np.all(x[:start] == 0)  # silence until the first frame arrived
        assert np.all(x[start:] != 0)  # then no hole: jitter is absorbed
        assert len(x) == start + 50 * FRAME_SAMPLES

    def test_a_gap_in_the_stream_becomes_silence_of_the_same_length(self) -> None:
        ear = EarRecording()
        ear.add(0.0, frame())
        ear.add(1.02, frame())  # 1 s after the first frame finished playing
        x = pcm_of(ear)
        assert len(x) == round(1.04 * RATE)
        assert np.all(x[FRAME_SAMPLES : round(1.02 * RATE)] == 0)
        assert np.all(x[round(1.02 * RATE) :] != 0)

    def test_audio_sent_ahead_is_queued_not_overlapped(self) -> None:
        ear = EarRecording()
        for _ in range(5):  # a 100 ms burst at t=0 (the server's lead)
            ear.add(0.0, frame())
        ear.add(0.05, frame())  # arrives while the burst is still playing
        assert ear.play_head == pytest.approx(0.12)
        assert np.all(pcm_of(ear) != 0)

    def test_everything_received_is_kept_and_counted(self) -> None:
        ear = EarRecording()
        ear.add(0.0, frame(samples=80))
        ear.add(0.0, frame(samples=400))
        assert ear.received_samples == 480
        assert ear.received_seconds == pytest.approx(0.06)

    def test_finish_pads_to_the_end_of_the_call(self) -> None:
        ear = EarRecording()
        ear.add(0.0, frame())
        ear.finish(3.0)
        assert len(pcm_of(ear)) == 3 * RATE

    def test_voiced_until_tracks_the_end_of_the_last_loud_audio(self) -> None:
        ear = EarRecording()
        assert ear.voiced_until is None
        ear.add(0.0, frame(samples=4 * FRAME_SAMPLES))
        assert ear.voiced_until == pytest.approx(0.08)
        ear.add(0.08, frame(0, samples=10 * FRAME_SAMPLES))  # silence frames do not extend it
        assert ear.voiced_until == pytest.approx(0.08)
        ear.add(0.5, frame(0, samples=FRAME_SAMPLES) + frame(samples=FRAME_SAMPLES))
        assert ear.voiced_until == pytest.approx(0.54)

    def test_the_level_is_what_plays_now_and_silence_past_the_audio(self) -> None:
        ear = EarRecording()
        ear.add(0.0, frame(8000, samples=RATE))  # 1 s at about -12 dBFS
        assert ear.level_dbfs(0.5) == pytest.approx(20 * np.log10(8000 / 32768), abs=0.1)
        assert ear.level_dbfs(3.0) == -96.0  # the queue ran dry: nothing is heard
        half_heard = 20 * np.log10(8000 / 32768 * np.sqrt(0.5))  # 50 ms of the 100 ms window
        assert ear.level_dbfs(1.05) == pytest.approx(half_heard, abs=0.1)


class TestMarkEchoes:
    def test_a_mark_is_due_when_the_audio_before_it_has_played(self) -> None:
        marks = MarkEchoes()
        marks.audio(0.0, 1.0)  # one second of audio arrived at once
        marks.mark(0.0, "greeting")
        assert marks.due(0.99) == []
        assert marks.due(1.0) == ["greeting"]
        assert marks.due(2.0) == []

    def test_a_mark_after_audio_that_has_played_is_due_at_once(self) -> None:
        marks = MarkEchoes()
        marks.audio(0.0, 0.2)
        marks.mark(0.5, "late")
        assert marks.due(0.5) == ["late"]

    def test_paced_audio_moves_the_mark_with_the_arrival_times(self) -> None:
        marks = MarkEchoes()
        for k in range(10):  # 200 ms paced in real time, arriving 100 ms ahead
            marks.audio(k * 0.02, 0.02)
        marks.mark(0.18, "m")
        assert marks.due(0.199) == []
        assert marks.due(0.2) == ["m"]

    def test_clear_makes_every_pending_mark_due_in_order_and_restarts_playback(self) -> None:
        marks = MarkEchoes()
        marks.audio(0.0, 5.0)
        marks.mark(0.0, "a")
        marks.audio(0.0, 1.0)
        marks.mark(0.0, "b")
        assert marks.clear(1.0) == ["a", "b"]
        assert marks.pending == 0
        marks.audio(1.0, 0.5)  # new audio after the clear plays from now
        marks.mark(1.0, "c")
        assert marks.due(1.49) == []
        assert marks.due(1.5) == ["c"]
