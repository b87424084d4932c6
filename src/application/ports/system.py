"""Clock and identifier sources, so use cases never read the system directly."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    @abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back: for durations, not for dates."""


class RunNumbers(Protocol):
    @abstractmethod
    def next(self) -> int:
        """A number for the next run's name, 0 <= n < 10**8."""


class Readiness(Protocol):
    @abstractmethod
    async def ready(self) -> bool:
        """True when the service's own dependencies (its database) answer."""


class CallMetrics(Protocol):
    """What the stream use case reports for monitoring (counters, not records: runs are those)."""

    @abstractmethod
    def handshake_done(self, seconds: float) -> None:
        """A call's provider handshake succeeded, `seconds` after the socket was accepted."""

    @abstractmethod
    def stream_ended(self, close_code: int) -> None:
        """One stream ended (refused or not), closed with `close_code`."""


class NoCallMetrics(CallMetrics):
    def handshake_done(self, seconds: float) -> None:
        return None

    def stream_ended(self, close_code: int) -> None:
        return None
