"""Traces leave the process over OTLP/HTTP when, and only when, the standard variable says where:
a real `agent-stream serve` process, a real call, and a tiny OTLP receiver on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import SECRET_KEY, TenantFactory
from tests.processes import serve_env, serve_process


class OtlpReceiver:
    """Collects the bodies POSTed to /v1/traces (answers 200, as a collector does)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []  # path, content type, body
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def spans(self) -> list[tuple[str, str, str]]:
        """(service name, span name, trace id) of every span received."""
        found = []
        for path, _, body in self.posts:
            assert path == "/v1/traces", path
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((attributes.get("service.name", ""), span.name, span.trace_id.hex()))
        return found

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


async def a_call(tenants: TenantFactory, cloudonix: CloudonixStandIn, app_url: str, session: str) -> str:
    """One linetest call through the served process; returns its run's trace id (or '')."""
    tenant = dataclasses.replace(await tenants.create(), app_url=app_url)
    cloudonix.add_domain(tenant.domain, tenant.token, sessions={session})
    result = await call(tenant.stream_url(), CONNECTED, start_event(session), stop_event())
    assert result.code == 1000
    run = await tenant.ended_run(10.0)
    return run.trace_id or ""


async def test_spans_are_posted_to_the_otlp_endpoint(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str, receiver: OtlpReceiver
) -> None:
    env = serve_env(database_url, cloudonix.url, SECRET_KEY)
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    async with serve_process(env) as server:
        trace_id = await a_call(tenants, cloudonix, server.url, "S-otlp")
        for _ in range(100):
            if any(name == "agent_stream.call" for _, name, _ in receiver.spans()):
                break
            await asyncio.sleep(0.05)
    assert len(trace_id) == 32
    ours = [(service, name) for service, name, trace in receiver.spans() if trace == trace_id]
    assert {name for _, name in ours} == {
        "agent_stream.call",
        "agent_stream.handshake",
        "cloudonix.validate",
        "agent_stream.session",
    }
    assert {service for service, _ in ours} == {"agent-stream"}  # OTEL_SERVICE_NAME unset: ours
    assert {content_type for _, content_type, _ in receiver.posts} == {"application/x-protobuf"}


async def test_without_the_variable_nothing_is_exported_and_the_run_has_no_trace(
    tenants: TenantFactory, cloudonix: CloudonixStandIn, database_url: str, receiver: OtlpReceiver
) -> None:
    env = serve_env(database_url, cloudonix.url, SECRET_KEY)
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env["OTEL_SERVICE_NAME"] = "agent-stream-off"  # other OTEL_ variables alone turn nothing on
    async with serve_process(env) as server:
        trace_id = await a_call(tenants, cloudonix, server.url, "S-no-otlp")
        await asyncio.sleep(0.5)
    assert trace_id == ""  # the run's trace_id is null
    assert receiver.posts == []  # and no span went anywhere (the SDK is not even loaded: test_tracing)
