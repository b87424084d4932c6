"""Regenerate src/entrypoints/simulator/assets/test_phrase.ulaw: what `agent-stream call` says
without `--wav`.

One short sentence in a female espeak-ng voice (the line-test greeting is male, so the caller's
echoed phrase is easy to tell apart in a recording), resampled to 8 kHz, peak -3 dBFS, encoded with
our own G.711 µ-law codec, raw (no header). Byte-identical for the same espeak-ng and numpy (see
_espeak.py for the versions the committed asset was made with); `--check` verifies that without writing.

    uv run python scripts/make_test_phrase.py [--check]
"""

from __future__ import annotations

import sys

from _espeak import ROOT, asset_main, render, to_pcm16, trim

from adapters.media.g711 import MULAW

OUT = ROOT / "src" / "entrypoints" / "simulator" / "assets" / "test_phrase.ulaw"
VOICE = "en-us+f3"
SPEED = 160
TEXT = "Testing, one, two, three. Can you hear me?"
MAX_BYTES = 40_000  # 5 s: the phrase must leave room for the echo inside the call's default 20 s


def build() -> bytes:
    data = MULAW.encode(to_pcm16(trim(render(TEXT, voice=VOICE, speed=SPEED)), peak_dbfs=-3.0))
    if len(data) > MAX_BYTES:
        raise SystemExit(f"test phrase is {len(data)} bytes, over the {MAX_BYTES}-byte budget")
    return data


if __name__ == "__main__":
    sys.exit(asset_main(__doc__, OUT, build))
