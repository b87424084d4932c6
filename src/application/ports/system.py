"""Clock and identifier sources, so use cases never read the system directly."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    @abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class RunNumbers(Protocol):
    @abstractmethod
    def next(self) -> int:
        """A number for the next run's name, 0 <= n < 10**8."""


class Readiness(Protocol):
    @abstractmethod
    async def ready(self) -> bool:
        """True when the service's own dependencies (its database) answer."""
