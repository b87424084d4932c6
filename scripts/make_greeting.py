"""Regenerate src/adapters/pipelines/assets/greeting.ulaw: the line-test agent's greeting.

espeak-ng speech, resampled to 8 kHz, peak -3 dBFS, encoded with our own G.711 µ-law codec, raw
(no header). Byte-identical for the same espeak-ng and numpy (see _espeak.py for the versions the
committed asset was made with); `--check` verifies that without writing.

    uv run python scripts/make_greeting.py [--check]
"""

from __future__ import annotations

import sys

from _espeak import ROOT, asset_main, render, to_pcm16, trim

from adapters.media.g711 import MULAW

OUT = ROOT / "src" / "adapters" / "pipelines" / "assets" / "greeting.ulaw"
VOICE = "en-us"
SPEED = 170
TEXT = (
    "Hello. This is the Agent Stream line test. Say something and pause, and I will repeat it. "
    "Press pound to hang up, zero to transfer, star to hear this again."
)
MAX_BYTES = 100_000


def build() -> bytes:
    data = MULAW.encode(to_pcm16(trim(render(TEXT, voice=VOICE, speed=SPEED)), peak_dbfs=-3.0))
    if len(data) > MAX_BYTES:
        raise SystemExit(f"greeting is {len(data)} bytes, over the {MAX_BYTES}-byte budget")
    return data


if __name__ == "__main__":
    sys.exit(asset_main(__doc__, OUT, build))
