"""Tracing is on only when the standard OTLP variables say where to export; off, the process never
loads the OpenTelemetry SDK nor installs a tracer provider, and a span costs next to nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from application.ports.tracing import NO_SPAN, NO_TRACER
from entrypoints.settings import Settings, tracing_enabled

# Builds the app's container as `serve` does (persistence in memory), resolves its tracer, and
# reports what is loaded and installed.
PROBE = """
import asyncio, json, sys
from entrypoints.ioc import make_container
from entrypoints.ioc.persistence import MemoryAdaptersProvider
from entrypoints.settings import Settings
from application.ports.tracing import Tracer

async def main():
    container = make_container(Settings.from_env(), MemoryAdaptersProvider())
    tracer = await container.get(Tracer)
    with tracer.span("probe") as span:
        trace_id = span.trace_id
    sdk_loaded = "opentelemetry.sdk" in sys.modules
    from opentelemetry import trace
    provider = type(trace.get_tracer_provider()).__module__ + "." + type(trace.get_tracer_provider()).__name__
    await container.close()
    print(json.dumps({"tracer": type(tracer).__name__, "sdk": sdk_loaded, "provider": provider,
                      "trace_id": trace_id}))

asyncio.run(main())
"""


def probe(**otel: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENT_STREAM_"))}
    env |= otel
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_with_an_otlp_endpoint(environ: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(environ) is enabled
    assert Settings.from_env(environ).tracing is enabled


def test_off_the_sdk_is_never_loaded_and_no_provider_is_installed() -> None:
    seen = probe()
    assert seen == {
        "tracer": "NoTracer",
        "sdk": False,
        "provider": "opentelemetry.trace.ProxyTracerProvider",
        "trace_id": None,
    }


def test_on_an_sdk_provider_is_installed_and_spans_have_trace_ids() -> None:
    # port 9 (discard): nothing listens; the batch exporter's failure at shutdown is only logged
    seen = probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT="1")
    assert seen["tracer"] == "OtelTracer"
    assert seen["sdk"] is True
    assert seen["provider"] == "opentelemetry.sdk.trace.TracerProvider"
    assert isinstance(seen["trace_id"], str) and len(seen["trace_id"]) == 32


def test_a_span_costs_next_to_nothing_when_off() -> None:
    """The no-op path a call takes: its root, handshake, validation and session spans, the trace
    id lookups and the attribute calls, measured against an empty loop."""
    n = 20_000

    def one_call() -> None:
        with NO_TRACER.span("agent_stream.call", {"agent_stream.provider": "cloudonix"}) as root:
            _ = root.trace_id
            NO_TRACER.current().set_attributes({"agent_stream.run": "WR-AGS-00000000"})
            with NO_TRACER.span("agent_stream.handshake"), NO_TRACER.span("cloudonix.validate"):
                pass
            with NO_TRACER.span("agent_stream.session"):
                pass
            NO_TRACER.current().set_attributes({"agent_stream.end_reason": "caller_hangup"})
            with NO_SPAN.child("cloudonix.hangup"):
                pass

    started = time.perf_counter()
    for _ in range(n):
        one_call()
    per_call = (time.perf_counter() - started) / n
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per call"  # measured ~2 µs; a call lasts minutes
    print(f"no-op tracing: {per_call * 1e6:.2f} µs per call")
