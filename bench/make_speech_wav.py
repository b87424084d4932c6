"""The caller's speech for the load benchmark: espeak-ng phrases, each followed by enough silence
for the line-test agent to pause-detect and echo it before the caller speaks again.

usage: python bench/make_speech_wav.py OUT.wav   (needs espeak-ng on PATH)
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _espeak import TARGET_RATE, render, silence, to_pcm16, trim

PHRASES = ["Hello, is anybody there?", "I would like to book a table.", "Thank you very much."]
GAP_SECONDS = 3.0  # >= VAD pause (0.6 s) + the echo itself (<= 1.8 s) + margin


def main(out: str) -> None:
    spoken = [trim(render(phrase)) for phrase in PHRASES]
    parts = [silence(0.5)]
    for phrase in spoken:
        parts += [phrase, silence(GAP_SECONDS)]
    pcm = to_pcm16(np.concatenate(parts), peak_dbfs=-6.0)
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(TARGET_RATE)
        w.writeframes(pcm)
    lengths = [round(len(p) / TARGET_RATE, 2) for p in spoken]
    print(f"{out}: {len(pcm) / 2 / TARGET_RATE:.1f} s, phrases {lengths} s")


if __name__ == "__main__":
    main(sys.argv[1])
