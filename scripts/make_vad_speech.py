"""Regenerate tests/unit/adapters/media/data/speech.ulaw: espeak-ng speech for the VAD tests.

Three phrases (two voices) separated by silences longer than the VAD's default 600 ms pause, raw
8 kHz µ-law, peak -6 dBFS. The tests find the true speech segments from the signal itself, so the
layout below is only a convenience. Byte-identical for the same espeak-ng and numpy (see _espeak.py).

    uv run python scripts/make_vad_speech.py [--check]
"""

from __future__ import annotations

import sys

import numpy as np
from _espeak import ROOT, asset_main, render, silence, to_pcm16, trim

from adapters.media.g711 import MULAW

OUT = ROOT / "tests" / "unit" / "adapters" / "media" / "data" / "speech.ulaw"

LAYOUT: tuple[tuple[float, str, str], ...] = (
    # (silence before, voice, text)
    (0.6, "en-us", "Hello, world."),
    (1.0, "en-us+f3", "Please tell me your account number."),
    (1.2, "en-us", "Seven, eight, nine."),
)
TAIL_SILENCE = 0.8


def build() -> bytes:
    parts = []
    for gap, voice, text in LAYOUT:
        parts.append(silence(gap))
        parts.append(trim(render(text, voice=voice)))
    parts.append(silence(TAIL_SILENCE))
    return MULAW.encode(to_pcm16(np.concatenate(parts), peak_dbfs=-6.0))


if __name__ == "__main__":
    sys.exit(asset_main(__doc__, OUT, build))
