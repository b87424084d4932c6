"""Admission by real saturation: the event loop's lag, smoothed.

An asyncio server that is out of CPU does not show it in CPU% first: its loop wakes late. The
lag is sampled a few times a second (a sleep that wakes later than asked) and smoothed; above
the threshold new streams are refused 1013 "Server busy" and readiness fails, so a load
balancer sends calls elsewhere before the calls already admitted start to stutter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SAMPLE_SECONDS = 0.1
SMOOTHING = 0.3  # weight of the newest sample: about half a second of memory at 10 samples/s


class LoopLag:
    def __init__(self, busy_above_seconds: float, monotonic: Callable[[], float] = time.perf_counter) -> None:
        self._threshold = busy_above_seconds  # 0: admission by lag is off
        self._monotonic = monotonic
        self.seconds = 0.0  # smoothed

    def record(self, sample_seconds: float) -> None:
        self.seconds += SMOOTHING * (max(0.0, sample_seconds) - self.seconds)

    @property
    def busy(self) -> bool:
        return self._threshold > 0 and self.seconds > self._threshold

    async def sample_forever(self) -> None:
        """Sleep a fixed time and record how much later than asked the loop woke us (cancel to stop)."""
        while True:
            asked = self._monotonic()
            await asyncio.sleep(SAMPLE_SECONDS)
            self.record(self._monotonic() - asked - SAMPLE_SECONDS)
