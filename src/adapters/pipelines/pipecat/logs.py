"""Pipecat logs through loguru; this routes them into the stdlib logger `pipecat`, so they reach our
structlog output through the same redacting formatter as every other line (bearer tokens, keys,
stream URLs and phone numbers scrubbed) and carry the call's context (run id, provider, domain)."""

from __future__ import annotations

import logging
from typing import Any

_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "SUCCESS": logging.INFO,
    "CRITICAL": logging.CRITICAL,
}
_routed = False


def route_pipecat_logs(level: str = "INFO") -> None:
    """Replace loguru's own stderr sink with one that forwards to stdlib logging; idempotent."""
    global _routed  # noqa: PLW0603 - one loguru configuration per process
    if _routed:
        return
    from loguru import logger

    target = logging.getLogger("pipecat")

    def sink(message: Any) -> None:
        record = message.record
        name = record["level"].name
        target.log(
            _LEVELS.get(name) or logging.getLevelNamesMapping().get(name, logging.INFO),
            "%s",
            record["message"],
            extra={"pipecat_module": record["name"]},
        )

    logger.remove()
    logger.add(sink, level=level, format="{message}", backtrace=False, diagnose=False, catch=True)
    _routed = True
