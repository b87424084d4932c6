"""Prometheus metrics (interfaces.md names), one registry per app so several apps in one process
(tests) never clash.

Event-loop lag is sampled, not CPU: CPU% does not show an asyncio server's saturation, lag does.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from application.admission import LoopLag
from application.live_calls import LiveCallRegistry
from application.ports.system import CallMetrics


class PrometheusMetrics(CallMetrics):
    def __init__(self, live_calls: LiveCallRegistry, lag: LoopLag) -> None:
        self.registry = CollectorRegistry()
        live = Gauge("agent_stream_live_calls", "Calls live on this instance", registry=self.registry)
        live.set_function(lambda: len(live_calls))
        self.calls = Counter(
            "agent_stream_calls", "Streams ended, by close code", ["close_code"], registry=self.registry
        )
        self.handshake = Histogram(
            "agent_stream_handshake_seconds",
            "From accepting the socket to a validated provider session",
            buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.provider_requests = Counter(
            "agent_stream_provider_requests",
            "Provider REST requests, by operation and outcome (HTTP status, timeout or error class)",
            ["operation", "status"],
            registry=self.registry,
        )
        self.provider_seconds = Histogram(
            "agent_stream_provider_request_seconds",
            "Provider REST request duration",
            ["operation"],
            registry=self.registry,
        )
        self.bad_frames = Counter(
            "agent_stream_bad_frames",
            "Malformed frames skipped during calls",
            ["kind"],
            registry=self.registry,
        )
        loop_lag = Gauge(
            "agent_stream_event_loop_lag_seconds",
            "Event-loop lag, smoothed (new calls are refused above AGENT_STREAM_BUSY_LAG_MS)",
            registry=self.registry,
        )
        loop_lag.set_function(lambda: lag.seconds)

    def handshake_done(self, seconds: float) -> None:
        self.handshake.observe(seconds)

    def stream_ended(self, close_code: int) -> None:
        self.calls.labels(close_code=str(close_code)).inc()

    def provider_request(self, operation: str, status: str, seconds: float) -> None:
        self.provider_requests.labels(operation=operation, status=status).inc()
        self.provider_seconds.labels(operation=operation).observe(seconds)

    def bad_frame(self, kind: str) -> None:
        self.bad_frames.labels(kind=kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
