"""Traces of a call (OpenTelemetry behind an adapter): spans the use cases open and close.

The application never imports OpenTelemetry. `NO_TRACER` is the default: it hands out one shared
span that does nothing, so a call without tracing pays a method call per span, nothing per frame.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

AttributeValue = str | bool | int | float
Attributes = Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """A span measured after the fact (a turn's figures arrive as it goes): times are
    `time.monotonic()` seconds; `children` are its own finished spans."""

    name: str
    start: float
    end: float
    attributes: Attributes = field(default_factory=dict)
    children: tuple[FinishedSpan, ...] = ()


class TraceSpan(Protocol):
    @property
    @abstractmethod
    def trace_id(self) -> str | None:
        """The trace's id, 32 lowercase hex digits; None when nothing is traced."""

    @abstractmethod
    def set_attributes(self, attributes: Attributes) -> None: ...

    @abstractmethod
    def fail(self, description: str) -> None:
        """Mark the span as an error (what it covered went wrong)."""

    @abstractmethod
    def child(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[TraceSpan]:
        """A span under this one (whatever the current span is), current while the block runs."""

    @abstractmethod
    def record(self, span: FinishedSpan) -> None:
        """Add `span` (already over) under this one."""


class Tracer(Protocol):
    @abstractmethod
    def span(self, name: str, attributes: Attributes | None = None) -> AbstractContextManager[TraceSpan]:
        """A span under the current one (a new trace when there is none), current while the block runs;
        an exception escaping the block marks it as an error."""

    @abstractmethod
    def current(self) -> TraceSpan:
        """The current span (the no-op span when there is none)."""


class _NoSpan(TraceSpan, AbstractContextManager["_NoSpan"]):
    __slots__ = ()

    @property
    def trace_id(self) -> str | None:
        return None

    def set_attributes(self, attributes: Attributes) -> None:
        return None

    def fail(self, description: str) -> None:
        return None

    def child(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        return self

    def record(self, span: FinishedSpan) -> None:
        return None

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()
NO_SPAN: TraceSpan = _NO_SPAN


class NoTracer(Tracer):
    """Tracing off: every span is `NO_SPAN`, its own context manager (nothing allocated)."""

    def span(self, name: str, attributes: Attributes | None = None) -> _NoSpan:
        return _NO_SPAN

    def current(self) -> TraceSpan:
        return NO_SPAN


NO_TRACER: Tracer = NoTracer()
