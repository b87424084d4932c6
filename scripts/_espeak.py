"""Shared helpers of the audio-asset scripts: render text with espeak-ng, resample to 8 kHz.

Run the scripts with `uv run python scripts/<name>.py` from the repository root (they import
`adapters.media.g711` from `src/`). Output is deterministic for a given espeak-ng build and numpy:
assets in the repository were made with espeak-ng 1.51 (Debian 1.51+dfsg-10+deb12u2) and numpy 2.4
on x86-64; `apt-get install espeak-ng` provides it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

TARGET_RATE = 8000


def espeak_version() -> str:
    exe = _espeak()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return out.split("  Data at")[0].strip()


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    return exe


def render(text: str, *, voice: str = "en-us", speed: int = 165, pitch: int = 50) -> npt.NDArray[np.float64]:
    """Speak `text` with espeak-ng and return it at 8 kHz as floats in [-1, 1]."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(  # noqa: S603
            [_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
            capture_output=True,
            check=True,
        )
        with wave.open(str(path)) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise SystemExit("espeak-ng produced an unexpected WAV format")
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return resample(samples, rate, TARGET_RATE)


def resample(x: npt.NDArray[np.float64], rate_in: int, rate_out: int) -> npt.NDArray[np.float64]:
    """Band-limited resampling in the frequency domain, with a raised-cosine roll-off from
    3.4 kHz (telephone band edge) to 0.97 x the output Nyquist frequency."""
    n_in = x.shape[0]
    n_out = round(n_in * rate_out / rate_in)
    spectrum = np.fft.rfft(x)
    keep = n_out // 2 + 1
    freqs = np.arange(keep) * (rate_in / n_in)
    nyquist = min(rate_in, rate_out) / 2
    lo, hi = 3400.0, 0.97 * nyquist
    gain = np.where(
        freqs <= lo, 1.0, np.where(freqs >= hi, 0.0, 0.5 + 0.5 * np.cos(np.pi * (freqs - lo) / (hi - lo)))
    )
    out = np.fft.irfft(spectrum[:keep] * gain, n_out) * (n_out / n_in)
    return np.asarray(out, dtype=np.float64)


def trim(x: npt.NDArray[np.float64], threshold: float = 1e-3, keep_ms: int = 40) -> npt.NDArray[np.float64]:
    """Cut leading/trailing near-silence, keeping `keep_ms` around the sound."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if loud.size == 0:
        return x[:0]
    pad = keep_ms * TARGET_RATE // 1000
    return x[max(0, int(loud[0]) - pad) : int(loud[-1]) + pad + 1]


def to_pcm16(x: npt.NDArray[np.float64], peak_dbfs: float) -> bytes:
    """Normalise to `peak_dbfs` and quantise to 16-bit little-endian PCM."""
    peak = float(np.max(np.abs(x))) or 1.0
    scaled = x * (10 ** (peak_dbfs / 20) / peak) * 32767.0
    return np.clip(np.round(scaled), -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float) -> npt.NDArray[np.float64]:
    return np.zeros(round(seconds * TARGET_RATE), dtype=np.float64)


def asset_main(doc: str | None, out: Path, build: Callable[[], bytes]) -> int:
    """The command line every asset script shares: write `out`, or with `--check` compare."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args()
    data = build()
    if args.check:
        same = out.exists() and out.read_bytes() == data
        print(f"{out.relative_to(ROOT)}: {'identical' if same else 'DIFFERENT'} ({espeak_version()})")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out.relative_to(ROOT)}: {len(data)} bytes, {len(data) / 8000:.2f} s ({espeak_version()})")
    return 0
