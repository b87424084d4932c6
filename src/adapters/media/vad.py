"""Voice-activity detection for 8 kHz 16-bit PCM in 20 ms frames, cheap enough for hundreds of calls
on one core (one numpy dot product and a few scalar operations per frame: ~3.5 µs on the 2-core
target machine, see bench/media_micro.py).

How it decides, per frame:
- Level: the frame's mean power in dBFS (0 dBFS = a square wave at full scale; a full-scale sine
  is -3 dBFS; digital silence is clamped to -100 dBFS).
- Noise floor, minimum-statistics style: the minimum frame level over the last `floor_window_ms`
  (kept as minima of 200 ms sub-windows, so the cost does not grow with the window). It follows a
  quieter background at once and a louder one within the window. The very first frame seeds the
  floor: whatever is on the line when the stream starts is taken as background.
- Stationarity: a signal whose level stays within `steady_range_db` for `steady_ms` (a steady tone,
  hum, or a noise switched on abruptly) is absorbed into the floor at once instead of after the whole
  window. Speech never holds its level that long: syllables modulate it by 10-30 dB at 3-8 Hz. This
  is the cue that keeps tones and hum from counting as speech, and it is also why an amplitude
  modulated tone (the load tester's 4 Hz AM marker bursts, ~6 dB of modulation) *is* speech here: a
  spectral or zero-crossing cue could not tell a pure-tone burst from a steady tone, and would cost
  three more numpy passes per frame.
- Activity: level above the floor by `start_margin_db` (and above `min_level_dbfs`); once speaking,
  by `continue_margin_db` (hysteresis keeps the quieter ends of words).
- Onset: `onset_frames` consecutive active frames -> `SpeechStart(frame=<first of them>)`.
  End: `pause_ms` without an active frame -> `SpeechEnd(frame=<the frame that ended it>,
  last_voiced=<last active frame>)`.

Limits: a held vowel steadier than `steady_range_db` for `steady_ms` would be absorbed (not seen in
real or synthetic speech at the defaults); noise that is loud and non-stationary (babble, traffic)
counts as activity until the floor window catches up.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = ["SpeechEnd", "SpeechStart", "VadEvent", "VoiceActivityDetector"]

_LE_INT16: Final = np.dtype("<i2")  # a dtype object: parsing a dtype string costs ~2 µs per call

try:  # the C RMS is ~15x cheaper than numpy on a 160-sample frame; audioop-lts brings it to 3.13+
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    def mean_power(pcm: bytes) -> float:
        rms: int = audioop.rms(pcm, 2)
        return float(rms * rms)

except ImportError:  # pragma: no cover - only where neither audioop nor audioop-lts exists

    def mean_power(pcm: bytes) -> float:
        x = np.frombuffer(pcm, dtype=_LE_INT16).astype(np.float32)
        return float(np.dot(x, x)) / len(x)


_FULL_SCALE_POWER: Final = 32768.0 * 32768.0
_SILENCE_DBFS: Final = -100.0
_SUB_FRAMES: Final = 10  # frames per floor sub-window (200 ms at 20 ms frames)


@dataclass(frozen=True, slots=True)
class SpeechStart:
    frame: int
    """Index (0-based, in frames fed) of the first frame of the onset."""


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    frame: int
    """Index of the frame on which the pause became long enough."""
    last_voiced: int
    """Index of the last active frame before the pause."""


VadEvent = SpeechStart | SpeechEnd


class VoiceActivityDetector:
    """An adaptive energy VAD with a minimum-statistics noise floor and a stationarity cue.

    Feed consecutive frames (20 ms = 320 bytes at 8 kHz is the design point; other lengths work,
    the time constants are counted in frames of `frame_ms`). One instance per call; not
    thread-safe; about 200 bytes of state.
    """

    __slots__ = (
        "_active_run",
        "_continue_margin",
        "_floor_subs",
        "_hangover",
        "_in_speech",
        "_index",
        "_last_voiced",
        "_level",
        "_min_level",
        "_onset_frames",
        "_start_margin",
        "_steady_range",
        "_steady_subs",
        "_sub_count",
        "_sub_max",
        "_sub_min",
        "_window_min",
        "_window_subs",
    )

    def __init__(
        self,
        *,
        pause_ms: int = 600,
        onset_frames: int = 2,
        start_margin_db: float = 7.0,
        continue_margin_db: float = 5.0,
        min_level_dbfs: float = -50.0,
        floor_window_ms: int = 2400,
        steady_ms: int = 600,
        steady_range_db: float = 3.0,
        frame_ms: int = 20,
    ) -> None:
        if onset_frames < 1 or pause_ms < frame_ms or frame_ms <= 0:
            raise ValueError("need onset_frames >= 1 and pause_ms >= frame_ms > 0")
        if continue_margin_db > start_margin_db:
            raise ValueError("continue_margin_db must not exceed start_margin_db")
        sub_ms = _SUB_FRAMES * frame_ms
        self._onset_frames = onset_frames
        self._hangover = max(1, round(pause_ms / frame_ms))
        self._start_margin = start_margin_db
        self._continue_margin = continue_margin_db
        self._min_level = min_level_dbfs
        self._window_subs = max(1, round(floor_window_ms / sub_ms))
        self._steady_subs = max(1, round(steady_ms / sub_ms))
        self._steady_range = steady_range_db
        self._floor_subs: deque[tuple[float, float]] = deque(maxlen=self._window_subs)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next frame seeds the noise floor again."""
        self._floor_subs.clear()
        self._window_min = math.inf
        self._sub_min = math.inf
        self._sub_max = -math.inf
        self._sub_count = 0
        self._index = 0
        self._active_run = 0
        self._in_speech = False
        self._last_voiced = -1
        self._level = _SILENCE_DBFS

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def frames(self) -> int:
        """Frames fed so far (the index the next frame will get)."""
        return self._index

    @property
    def level_dbfs(self) -> float:
        """Level of the last frame fed."""
        return self._level

    @property
    def noise_floor_dbfs(self) -> float:
        return min(self._window_min, self._sub_min)

    def feed(self, pcm: bytes) -> VadEvent | None:
        """Take the next frame of 16-bit little-endian PCM; return an event when speech starts/ends."""
        if not pcm:
            raise ValueError("empty frame")
        power = mean_power(pcm)
        level = 10.0 * math.log10(power / _FULL_SCALE_POWER) if power >= 1e-2 else _SILENCE_DBFS
        level = max(level, _SILENCE_DBFS)
        self._level = level
        index = self._index
        self._index = index + 1

        if index == 0:  # the first frame is taken as background
            self._window_min = level
        self._sub_min = min(self._sub_min, level)
        self._sub_max = max(self._sub_max, level)
        self._sub_count += 1
        if self._sub_count == _SUB_FRAMES:
            self._close_sub_window()
        floor = self._window_min if self._window_min < self._sub_min else self._sub_min

        margin = self._continue_margin if self._in_speech else self._start_margin
        if level > floor + margin and level > self._min_level:
            self._last_voiced = index
            run = self._active_run + 1
            self._active_run = run
            if not self._in_speech and run >= self._onset_frames:
                self._in_speech = True
                return SpeechStart(index - run + 1)
            return None
        self._active_run = 0
        if self._in_speech and index - self._last_voiced >= self._hangover:
            self._in_speech = False
            return SpeechEnd(index, self._last_voiced)
        return None

    def _close_sub_window(self) -> None:
        subs = self._floor_subs
        subs.append((self._sub_min, self._sub_max))
        self._sub_min = math.inf
        self._sub_max = -math.inf
        self._sub_count = 0
        steady = self._steady_subs
        if len(subs) >= steady:
            recent = list(subs)[-steady:]
            low = min(s[0] for s in recent)
            high = max(s[1] for s in recent)
            if high - low <= self._steady_range:
                # A steady signal: it is the background now; forget the quieter past.
                subs.clear()
                subs.append((low, high))
        self._window_min = min(s[0] for s in subs)
