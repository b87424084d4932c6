"""The shipped greeting prompt: present, small, µ-law speech."""

from __future__ import annotations

import numpy as np

from adapters.media.g711 import MULAW
from adapters.media.vad import SpeechEnd, SpeechStart, VoiceActivityDetector
from adapters.pipelines.assets import GREETING, greeting_ulaw, read_prompt


def test_the_greeting_is_small_raw_mulaw_speech() -> None:
    audio = greeting_ulaw()
    assert audio is read_prompt(GREETING)  # read once
    assert 5 * 8000 < len(audio) < 100_000  # 5 to 12.5 s at 8 kHz, under 100 KB
    pcm = MULAW.decode(audio)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    peak_dbfs = 20 * np.log10(np.max(np.abs(samples)) / 32768)
    assert -4.0 < peak_dbfs < -2.0  # normalised to -3 dBFS by scripts/make_greeting.py
    vad = VoiceActivityDetector(pause_ms=300)  # short enough to split the sentences
    events = [e for i in range(0, len(pcm) - 319, 320) if (e := vad.feed(pcm[i : i + 320])) is not None]
    assert isinstance(events[0], SpeechStart)
    assert events[0].frame <= 5  # speech from the start: silence was trimmed
    assert sum(isinstance(e, SpeechEnd) for e in events) >= 3  # "Hello." / "This is ..." / ...
