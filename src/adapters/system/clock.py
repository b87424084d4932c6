"""Clocks and run-number sources."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from application.ports.system import Clock, RunNumbers


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock(Clock):
    """A clock that moves only when told to: for tests and simulations."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        """Moves with `now` (`advance`), so durations follow the fixed time."""
        return self._at.timestamp()

    def advance(self, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)


class RandomRunNumbers(RunNumbers):
    """Unpredictable run numbers: a run name reveals nothing about how many calls there were."""

    def next(self) -> int:
        return secrets.randbelow(10**8)


class SequentialRunNumbers(RunNumbers):
    def __init__(self, start: int = 1) -> None:
        self._next = start

    def next(self) -> int:
        number, self._next = self._next, self._next + 1
        return number
