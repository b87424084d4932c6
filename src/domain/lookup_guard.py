"""Brute-force guard for agent lookups: a client whose lookups keep failing is refused a while."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class LookupFailureWindow:
    """At most `limit` failed lookups per client in any `window_seconds`; then a cool-down.

    Times are plain seconds from any monotonic source; `limit == 0` turns the guard off.
    `max_clients` bounds memory under a flood of distinct addresses (oldest entries go first).
    """

    limit: int
    window_seconds: float = 60.0
    max_clients: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, client: str, now: float) -> bool:
        if self.limit <= 0:
            return False
        times = self._failures.get(client)
        if times is None:
            return False
        self._expire(times, now)
        if not times:
            del self._failures[client]
            return False
        return len(times) >= self.limit

    def record_failure(self, client: str, now: float) -> None:
        if self.limit <= 0:
            return
        times = self._failures.get(client)
        if times is None:
            if len(self._failures) >= self.max_clients:
                self._failures.pop(next(iter(self._failures)))
            times = self._failures[client] = deque()
        self._expire(times, now)
        times.append(now)
        while len(times) > self.limit:
            times.popleft()

    def _expire(self, times: deque[float], now: float) -> None:
        while times and now - times[0] >= self.window_seconds:
            times.popleft()
