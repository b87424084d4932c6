"""The `Tracer` port over OpenTelemetry, and its OTLP set-up from the standard `OTEL_*` variables.

Imported only when tracing is on (`Settings.tracing`): with it off, the process never loads the
OpenTelemetry SDK nor installs a tracer provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, format_trace_id, set_span_in_context

from application.ports.tracing import NO_SPAN, Attributes, FinishedSpan, Tracer, TraceSpan

INSTRUMENTATION = "agent_stream"
DEFAULT_SERVICE_NAME = "agent-stream"


class OtelSpan(TraceSpan):
    __slots__ = ("_span", "_tracer")

    def __init__(self, span: trace.Span, tracer: trace.Tracer) -> None:
        self._span = span
        self._tracer = tracer

    @property
    def trace_id(self) -> str | None:
        context = self._span.get_span_context()
        return format_trace_id(context.trace_id) if context.is_valid else None

    def set_attributes(self, attributes: Attributes) -> None:
        self._span.set_attributes(dict(attributes))

    def fail(self, description: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, description))

    @contextmanager
    def child(self, name: str, attributes: Attributes | None = None) -> Iterator[TraceSpan]:
        with self._tracer.start_as_current_span(
            name, context=set_span_in_context(self._span), attributes=attributes
        ) as span:
            yield OtelSpan(span, self._tracer)

    def record(self, span: FinishedSpan) -> None:
        _record(self._tracer, self._span, span, time.time_ns() - time.monotonic_ns())


def _record(tracer: trace.Tracer, parent: trace.Span, finished: FinishedSpan, epoch_offset: int) -> None:
    span = tracer.start_span(
        finished.name,
        context=set_span_in_context(parent),
        attributes=finished.attributes,
        start_time=epoch_offset + round(finished.start * 1e9),
    )
    for child in finished.children:
        _record(tracer, span, child, epoch_offset)
    span.end(end_time=epoch_offset + round(finished.end * 1e9))


class OtelTracer(Tracer):
    def __init__(self, provider: trace.TracerProvider) -> None:
        self._tracer = provider.get_tracer(INSTRUMENTATION)

    @contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[TraceSpan]:
        with self._tracer.start_as_current_span(name, attributes=attributes) as span:
            yield OtelSpan(span, self._tracer)

    def current(self) -> TraceSpan:
        span = trace.get_current_span()
        return OtelSpan(span, self._tracer) if span.get_span_context().is_valid else NO_SPAN


def otlp_tracer() -> tuple[Tracer, Callable[[], None]]:
    """A tracer exporting over OTLP/HTTP in batches, configured by the standard variables
    (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `_TIMEOUT`, `OTEL_SERVICE_NAME`,
    `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`); installed as the global
    provider. Returns it with its shutdown, which exports what is still queued."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return OtelTracer(provider), provider.shutdown
