"""One log line per kind of failure, not one per attempt: a loop that retries every few seconds
against a database that is down would otherwise flood the log with the same traceback."""

from __future__ import annotations

import logging
from typing import Any


class FailureLog:
    """Logs `event` (a warning, no traceback) when a failure of a new kind starts, and
    `recovered_event` once things work again; repeats of the same kind are only counted."""

    def __init__(self, logger: logging.Logger, event: str, recovered_event: str) -> None:
        self._log = logger
        self._event = event
        self._recovered_event = recovered_event
        self._kind: str | None = None
        self._repeats = 0

    @property
    def failing(self) -> bool:
        return self._kind is not None

    def failed(self, error: BaseException, **extra: Any) -> None:
        kind = type(error).__name__
        if kind == self._kind:
            self._repeats += 1
            return
        self._kind, self._repeats = kind, 0
        self._log.warning(self._event, extra={"error": kind, "detail": str(error)[:200], **extra})

    def succeeded(self) -> None:
        if self._kind is None:
            return
        self._log.info(self._recovered_event, extra={"after_failures": self._repeats + 1})
        self._kind, self._repeats = None, 0
