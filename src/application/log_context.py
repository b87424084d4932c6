"""Per-call logging context, kept in a ContextVar so every log line of a call carries it.

The application cannot import structlog (layer rule); the entrypoint's log configuration merges
`current()` into every line, stdlib and structlog alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_call_context: ContextVar[dict[str, Any] | None] = ContextVar("agent_stream_call_context", default=None)


def current() -> dict[str, Any]:
    return _call_context.get() or {}


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    merged = {**current(), **{k: v for k, v in values.items() if v is not None}}
    token = _call_context.set(merged)
    try:
        yield
    finally:
        _call_context.reset(token)
