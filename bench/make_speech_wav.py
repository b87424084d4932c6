"""The caller's speech for the load benchmark: espeak-ng phrases, each followed by enough silence
for the line-test agent to pause-detect and echo it before the caller speaks again.

usage: python bench/make_speech_wav.py OUT.wav   (needs espeak-ng on PATH)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

PHRASES = ["Hello, is anybody there?", "I would like to book a table.", "Thank you very much."]
RATE = 8000
GAP_SECONDS = 3.0  # >= VAD pause (0.6 s) + the echo itself (<= 1.8 s) + margin


def speak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phrase.wav"
        subprocess.run(["espeak-ng", "-s", "165", "-w", str(path), text], check=True)  # noqa: S603, S607
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    t = np.arange(int(len(pcm) * RATE / rate)) * (rate / RATE)
    out = np.interp(t, np.arange(len(pcm)), pcm)
    loud = np.flatnonzero(np.abs(out) > 500)
    return out[loud[0] : loud[-1] + 1]


def main(out: str) -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed (apt-get install espeak-ng)")
    gap = np.zeros(int(GAP_SECONDS * RATE))
    parts = [np.zeros(int(0.5 * RATE))]
    for phrase in PHRASES:
        parts += [speak(phrase), gap]
    audio = np.concatenate(parts)
    audio = audio / np.abs(audio).max() * 0.5 * 32767
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(audio.astype("<i2").tobytes())
    print(f"{out}: {len(audio) / RATE:.1f} s, phrases {[round(len(speak(p)) / RATE, 2) for p in PHRASES]} s")


if __name__ == "__main__":
    main(sys.argv[1])
