"""`agent-stream call`'s audio input: WAV files of any rate and channel count become 8 kHz mono PCM."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from entrypoints.simulator.caller_audio import builtin_phrase_ulaw, read_wav, resample, write_wav
from entrypoints.simulator.caller_options import CallUsageError

Signal = npt.NDArray[np.float64]


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> Signal:
    t = np.arange(round(seconds * rate)) / rate
    return np.asarray(amplitude * 32767 * np.sin(2 * np.pi * freq * t), dtype=np.float64)


def save(path: Path, channels: list[Signal], rate: int, width: int = 2) -> Path:
    frames = np.stack(channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 2:
            w.writeframes(np.round(frames).astype("<i2").tobytes())
        else:
            w.writeframes((np.round(frames / 256) + 128).astype(np.uint8).tobytes())
    return path


def samples(pcm: bytes) -> Signal:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def peak_hz(x: Signal, rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def rms(x: Signal) -> float:
    return float(np.sqrt(np.mean(x * x)))


def test_an_8k_mono_wav_is_read_sample_for_sample(tmp_path: Path) -> None:
    signal = np.round(tone(440, 0.5, 8000))
    pcm = read_wav(save(tmp_path / "a.wav", [signal], 8000))
    assert np.array_equal(samples(pcm), signal)


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 44100, 48000])
def test_other_rates_are_resampled_keeping_pitch_length_and_level(tmp_path: Path, rate: int) -> None:
    pcm = read_wav(save(tmp_path / "a.wav", [tone(1000, 1.0, rate)], rate))
    out = samples(pcm)
    assert abs(len(out) - 8000) <= 1
    assert peak_hz(out) == pytest.approx(1000, abs=8)
    middle = out[800:-800]  # away from the block edges
    assert rms(middle) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.02)


def test_stereo_is_mixed_down_to_mono(tmp_path: Path) -> None:
    left, right = tone(500, 0.5, 16000), tone(1500, 0.5, 16000)
    out = samples(read_wav(save(tmp_path / "s.wav", [left, right], 16000)))
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    hz = np.fft.rfftfreq(len(out), 1 / 8000)
    strongest = sorted(hz[np.argsort(spectrum)[-2:]])
    assert strongest == pytest.approx([500, 1500], abs=8)


def test_content_above_the_telephone_band_does_not_alias_into_it() -> None:
    # 6 kHz at 48 kHz would fold to 2 kHz at 8 kHz without the anti-alias roll-off
    out = resample(tone(6000, 1.0, 48000), 48000, 8000)
    assert rms(out) < 0.001 * 32767


def test_only_the_seconds_needed_are_read(tmp_path: Path) -> None:
    path = save(tmp_path / "long.wav", [tone(300, 10.0, 16000)], 16000)
    assert len(read_wav(path, max_seconds=2.0)) == 2 * 2 * 8000


def test_an_8_bit_wav_is_refused_with_its_width(tmp_path: Path) -> None:
    path = save(tmp_path / "b.wav", [tone(300, 0.1, 8000)], 8000, width=1)
    with pytest.raises(CallUsageError, match=r"only 16-bit PCM WAV is supported \(this one is 8-bit\)"):
        read_wav(path)


def test_a_file_that_is_no_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3 not a wave file at all")
    with pytest.raises(CallUsageError, match="not a readable 16-bit PCM WAV"):
        read_wav(path)
    with pytest.raises(CallUsageError):
        read_wav(tmp_path / "missing.wav")


def test_a_recording_is_written_as_8k_16_bit_mono(tmp_path: Path) -> None:
    pcm = np.round(tone(700, 0.3, 8000)).astype("<i2").tobytes()
    write_wav(tmp_path / "r.wav", pcm)
    with wave.open(str(tmp_path / "r.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.readframes(w.getnframes()) == pcm


def test_the_built_in_phrase_is_a_few_seconds_of_speech_like_audio() -> None:
    from adapters.media.g711 import MULAW

    ulaw = builtin_phrase_ulaw()
    x = samples(MULAW.decode(ulaw))
    assert 2.0 <= len(x) / 8000 <= 5.0
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    levels = 20 * np.log10(np.maximum(np.sqrt((frames**2).mean(axis=1)), 1e-3) / 32768)
    assert np.mean(levels > -40) > 0.6  # mostly voiced
    assert np.mean(levels < -45) > 0.05  # with the pauses of speech between words
