"""The VAD on espeak-ng speech (shipped as data/speech.ulaw, made by scripts/make_vad_speech.py) and on
synthetic signals: silence, white and pink noise, speech in noise, tones, hum, and the load tester's
marker-tone bursts.

Ground truth comes from the clean signal: a frame is speech when its level is above -50 dBFS (the
detector's floor) or, in noise, above the noise level; segments closer than the pause are merged.
Times are in frames of 20 ms; "decided" is when `feed` returned the event (the end of that frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from adapters.media.g711 import MULAW
from adapters.media.vad import SpeechEnd, SpeechStart, VadEvent, VoiceActivityDetector

Signal = npt.NDArray[np.float64]
SR = 8000
N = 160  # samples per frame
FRAME_MS = 20
PAUSE_MS = 600
ONSET_MS = 60  # SpeechStart decided within this of the true onset
END_MS = 100  # SpeechEnd decided within this of true end + pause
SPEECH = Path(__file__).parent / "data" / "speech.ulaw"


def speech() -> Signal:
    return np.frombuffer(MULAW.decode(SPEECH.read_bytes()), dtype="<i2").astype(np.float64)


def frame_levels(signal: Signal) -> Signal:
    n = len(signal) // N
    power = (signal[: n * N].reshape(n, N) ** 2).mean(axis=1)
    return np.asarray(10 * np.log10(np.maximum(power, 1e-2) / 32768.0**2), dtype=np.float64)


def segments(
    levels: Signal, threshold: float, gap_frames: int = PAUSE_MS // FRAME_MS
) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for f in np.flatnonzero(levels > threshold):
        if out and f - out[-1][1] <= gap_frames:
            out[-1][1] = int(f)
        else:
            out.append([int(f), int(f)])
    return [(a, b) for a, b in out]


def run(signal: Signal, vad: VoiceActivityDetector | None = None) -> list[tuple[int, VadEvent]]:
    """(index of the frame on which feed() returned the event, event)."""
    vad = vad or VoiceActivityDetector()
    pcm = np.clip(np.round(signal), -32768, 32767).astype("<i2").tobytes()
    events = []
    for i in range(len(pcm) // (2 * N)):
        event = vad.feed(pcm[i * 2 * N : (i + 1) * 2 * N])
        if event is not None:
            events.append((i, event))
    return events


def white(rng: np.random.Generator, dbfs: float, seconds: float) -> Signal:
    return rng.standard_normal(round(seconds * SR)) * 32768.0 * 10 ** (dbfs / 20)


def pink(rng: np.random.Generator, dbfs: float, seconds: float) -> Signal:
    """1/f noise from 100 Hz up (a phone line passes nothing lower), at `dbfs` RMS."""
    n = round(seconds * SR)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[freqs < 100] = 0
    spectrum[freqs >= 100] /= np.sqrt(freqs[freqs >= 100])
    noise = np.fft.irfft(spectrum, n)
    return np.asarray(noise / np.sqrt(np.mean(noise**2)) * 32768.0 * 10 ** (dbfs / 20), dtype=np.float64)


def tone(freq: float, peak_dbfs: float, seconds: float) -> Signal:
    t = np.arange(round(seconds * SR)) / SR
    return np.asarray(32767.0 * 10 ** (peak_dbfs / 20) * np.sin(2 * np.pi * freq * t), dtype=np.float64)


def marker_bursts(count: int, burst_s: float = 1.5, silence_s: float = 1.5, lead_s: float = 0.5) -> Signal:
    """loadcall's generated signal (shared/loadcall/loadcall.py `generated_signal`): marker tones
    500..1900 Hz, 4 Hz AM (0.75 + 0.25 sin), 8 % noise, 5 ms raised-cosine edges, -12 dBFS peak,
    sent as µ-law."""
    rng = np.random.default_rng(1)
    amp = 32767.0 * 10 ** (-12 / 20)
    n = round(burst_s / 0.02) * N
    t = np.arange(n) / SR
    edge = int(0.005 * SR)
    env = 0.75 + 0.25 * np.sin(2 * np.pi * 4.0 * t)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
    env[:edge] *= ramp
    env[n - edge :] *= ramp[::-1]
    parts = [np.zeros(round(lead_s / 0.02) * N)]
    for k in range(count):
        freq = (500.0, 700.0, 900.0, 1100.0, 1300.0, 1500.0, 1700.0, 1900.0)[k % 8]
        parts.append(amp * env * (np.sin(2 * np.pi * freq * t) + 0.08 * (rng.random(n) * 2 - 1)))
        parts.append(np.zeros(round(silence_s / 0.02) * N))
    pcm = np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype("<i2").tobytes()
    return np.frombuffer(MULAW.decode(MULAW.encode(pcm)), dtype="<i2").astype(np.float64)


def assert_tracks(
    events: list[tuple[int, VadEvent]], truth: list[tuple[int, int]], pause_ms: int = PAUSE_MS
) -> None:
    """One SpeechStart/SpeechEnd pair per true segment, on time."""
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStart, SpeechEnd] * len(truth), events
    for (first, last), ((start_at, start), (end_at, end)) in zip(
        truth, zip(events[::2], events[1::2], strict=True), strict=True
    ):
        assert isinstance(start, SpeechStart)
        assert isinstance(end, SpeechEnd)
        # Decided (end of the frame that completed the onset) within ONSET_MS of the true onset.
        assert 0 < (start_at + 1 - first) * FRAME_MS <= ONSET_MS, (first, start_at, start)
        assert abs(start.frame - first) * FRAME_MS <= ONSET_MS
        # Decided within END_MS of the true end plus the pause.
        true_end = (last + 1) * FRAME_MS + pause_ms
        assert abs((end_at + 1) * FRAME_MS - true_end) <= END_MS, (last, end_at, end)
        assert end.frame == end_at
        assert first <= end.last_voiced <= last


# -- speech ----------------------------------------------------------------------------------


def test_speech_segments_are_found_on_time() -> None:
    signal = speech()
    truth = segments(frame_levels(signal), -50.0)
    assert len(truth) == 3  # the three phrases of make_vad_speech.py
    assert_tracks(run(signal), truth)


@pytest.mark.parametrize("noise", [white, pink])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_speech_in_noise_at_10_db_snr(noise: object, seed: int) -> None:
    clean = speech()
    levels = frame_levels(clean)
    speech_level = 10 * np.log10(np.mean(10 ** (levels[levels > -50] / 10)))
    noise_level = float(speech_level) - 10.0
    assert callable(noise)
    noisy = clean + noise(np.random.default_rng(seed), noise_level, len(clean) / SR)
    # Speech is there where it rises above the noise.
    assert_tracks(run(noisy), segments(levels, noise_level))


def test_a_shorter_pause_ends_speech_sooner() -> None:
    signal = speech()
    truth = segments(frame_levels(signal), -50.0, gap_frames=300 // FRAME_MS)
    events = run(signal, VoiceActivityDetector(pause_ms=300))
    assert_tracks(events, truth, pause_ms=300)


def test_onset_frame_count_is_configurable() -> None:
    signal = speech()
    first = segments(frame_levels(signal), -50.0)[0][0]
    at, event = run(signal, VoiceActivityDetector(onset_frames=1))[0]
    assert isinstance(event, SpeechStart)
    assert at == event.frame
    assert abs(event.frame - first) <= 1


@pytest.mark.parametrize("cut", [34, 40, 145, 160])
def test_speech_already_under_way_when_the_stream_starts_is_found_within_the_phrase(cut: int) -> None:
    """The first frame seeds the noise floor; the floor drops at the first dip between syllables,
    so at most the first syllables are lost and the following phrases are tracked normally."""
    signal = speech()[cut * N :]
    truth = segments(frame_levels(signal), -50.0)
    events = run(signal)
    (_, first), (_, first_end) = events[:2]
    assert isinstance(first, SpeechStart)
    assert isinstance(first_end, SpeechEnd)
    assert first.frame <= 25  # within 0.5 s
    assert abs(first_end.last_voiced - truth[0][1]) <= 1
    assert_tracks(events[2:], truth[1:])


# -- no false triggers -----------------------------------------------------------------------


def test_digital_silence() -> None:
    vad = VoiceActivityDetector()
    assert run(np.zeros(SR * 5), vad) == []
    assert vad.frames == 250
    assert vad.level_dbfs == -100.0
    assert not vad.in_speech


@pytest.mark.parametrize("noise", [white, pink])
@pytest.mark.parametrize("dbfs", [-70.0, -55.0, -40.0, -25.0, -10.0])
def test_stationary_noise_never_triggers(noise: object, dbfs: float) -> None:
    assert callable(noise)
    assert run(noise(np.random.default_rng(int(-dbfs)), dbfs, 20.0)) == []


def test_noise_switched_on_mid_call_is_absorbed_quickly() -> None:
    rng = np.random.default_rng(5)
    signal = np.concatenate([white(rng, -60, 1.0), white(rng, -30, 6.0)])
    events = run(signal)
    assert len(events) <= 2
    if events:  # an abrupt jump in background may count as an onset, but not for long
        (_, start), (end_at, end) = events
        assert isinstance(start, SpeechStart)
        assert isinstance(end, SpeechEnd)
        assert (end_at - 50) * FRAME_MS <= 1600


@pytest.mark.parametrize("freq", [1000.0, 440.0, 2600.0])
def test_a_steady_tone_from_the_start_is_not_speech(freq: float) -> None:
    assert run(tone(freq, -12, 5.0)) == []


def test_hum_is_not_speech() -> None:
    t = np.arange(5 * SR) / SR
    hum = sum(32767 * 10 ** (-20 / 20) / k * np.sin(2 * np.pi * 50 * k * t) for k in (1, 2, 3, 5))
    rng = np.random.default_rng(9)
    assert run(hum + white(rng, -60, 5.0)) == []


def test_a_steady_tone_switched_on_mid_call_is_absorbed_into_the_background() -> None:
    signal = np.concatenate([np.zeros(SR), tone(1000.0, -12, 5.0)])
    events = run(signal)
    assert [type(e) for _, e in events] == [SpeechStart, SpeechEnd]
    (_, start), (end_at, end) = events
    assert isinstance(start, SpeechStart)
    assert isinstance(end, SpeechEnd)
    assert start.frame == 50
    # Recognised as steady within ~0.8 s, then the usual pause: "speech" for at most ~1.5 s.
    assert (end.last_voiced - 50) * FRAME_MS <= 900
    assert (end_at - 50) * FRAME_MS <= 900 + PAUSE_MS


def test_speech_over_a_steady_tone_is_still_found() -> None:
    clean = speech()
    background = tone(1000.0, -45, len(clean) / SR)  # -48 dBFS RMS
    truth = segments(frame_levels(clean), -48.0)
    assert_tracks(run(clean + background), truth)


# -- the load tester's marker-tone bursts are speech -------------------------------------------


def test_loadcall_marker_tone_bursts_are_detected_as_speech() -> None:
    signal = marker_bursts(8)
    truth = segments(frame_levels(signal), -50.0)
    assert len(truth) == 8
    assert truth[0] == (25, 99)
    assert_tracks(run(signal), truth)


def test_long_marker_bursts_stay_one_utterance() -> None:
    signal = marker_bursts(2, burst_s=4.0, silence_s=1.5)
    truth = segments(frame_levels(signal), -50.0)
    events = run(signal)
    assert [type(e) for _, e in events] == [SpeechStart, SpeechEnd] * 2
    for (first, last), ((_, start), (_, end)) in zip(
        truth, zip(events[::2], events[1::2], strict=True), strict=True
    ):
        assert isinstance(start, SpeechStart)
        assert isinstance(end, SpeechEnd)
        assert start.frame == first
        assert last - end.last_voiced <= 15  # the floor may rise to the modulation troughs late on


# -- API -------------------------------------------------------------------------------------


def test_reset_forgets_the_background() -> None:
    vad = VoiceActivityDetector()
    run(tone(1000.0, -12, 2.0), vad)
    assert vad.noise_floor_dbfs > -20
    vad.reset()
    assert vad.frames == 0
    assert run(np.zeros(SR), vad) == []
    assert vad.noise_floor_dbfs == -100.0


def test_frames_of_other_sizes_are_accepted() -> None:
    vad = VoiceActivityDetector(frame_ms=10)
    pcm = np.clip(speech(), -32768, 32767).astype("<i2").tobytes()
    events = [e for i in range(0, len(pcm) - 160, 160) if (e := vad.feed(pcm[i : i + 160])) is not None]
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd] * 3


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="onset_frames"):
        VoiceActivityDetector(onset_frames=0)
    with pytest.raises(ValueError, match="onset_frames"):
        VoiceActivityDetector(pause_ms=10)
    with pytest.raises(ValueError, match="continue_margin_db"):
        VoiceActivityDetector(start_margin_db=5, continue_margin_db=8)
    with pytest.raises(ValueError, match="empty frame"):
        VoiceActivityDetector().feed(b"")
