"""Admission by real saturation: the event loop's lag, and the call starts waiting on the database.

An asyncio server that is out of CPU does not show it in CPU% first: its loop wakes late. The
lag is sampled a few times a second (a sleep that wakes later than asked) and smoothed; above
the threshold new streams are refused 1013 "Server busy" and readiness fails, so a load
balancer sends calls elsewhere before the calls already admitted start to stutter.

The other resource a burst of calls exhausts first is the database path of call starts (routing,
the slot, the run): past the connection pool they queue, and past `AGENT_STREAM_DB_TIMEOUT` they
would fail as "Service unavailable" (1011, a server failure). So at most `MAX_STARTING_CALLS` may
be starting at once; the next is refused 1013 at once, which a provider may retry elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from domain.close_policy import ServerBusyError

MAX_STARTING_CALLS = 40  # twice the SQL adapters' connection pool (10 + 10 overflow)
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


class Load:
    """This instance's saturation, as admission sees it: the loop's lag and the calls starting."""

    def __init__(self, lag: LoopLag, max_starting: int = MAX_STARTING_CALLS) -> None:
        self.lag = lag
        self._max_starting = max_starting
        self.starting = 0

    @property
    def busy(self) -> bool:
        return self.lag.busy or self.starting >= self._max_starting

    def refusal(self) -> ServerBusyError | None:
        """Why a new stream must wait (1013 "Server busy"), or None when it may come in."""
        if self.lag.busy:
            return ServerBusyError(detail=f"event-loop lag {self.lag.seconds * 1000:.0f} ms")
        if self.starting >= self._max_starting:
            return ServerBusyError(detail=f"{self.starting} calls starting")
        return None

    @contextmanager
    def call_starting(self) -> Iterator[StartingCall]:
        """Count a call as starting until `done()` (or the end of the block, whichever is first)."""
        start = StartingCall(self)
        self.starting += 1
        try:
            yield start
        finally:
            start.done()


class StartingCall:
    def __init__(self, load: Load) -> None:
        self._load: Load | None = load

    def done(self) -> None:
        """The call's start is over (it runs now, or was refused): idempotent."""
        if self._load is not None:
            self._load.starting -= 1
            self._load = None
