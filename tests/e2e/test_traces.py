"""Traces end to end: the served app (in this process) with an SDK tracer provider exporting to
memory, real calls over loopback (linetest and pipecat with the OpenAI stand-in), and the spans'
names and parent-child shape as the README documents them."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from dishka import Provider, Scope, provide
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, format_trace_id
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from websockets.asyncio.client import connect

from adapters.system.tracing import OtelTracer
from application.ports.tracing import Tracer
from domain.workflow_run import RunState, WorkflowRun
from entrypoints.ioc.persistence import SqlAdaptersProvider
from entrypoints.logging import configure_logging
from entrypoints.settings import Settings
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from entrypoints.simulator.standins.openai_api import OpenAIStandIn
from tests.caller import CONNECTED, Caller, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory
from tests.e2e.test_pipecat import GREETING, agent, oa, openai_api
from tests.media_caller import MediaCaller, speech_phrase
from tests.served import free_port, served_app

__all__ = ["oa", "openai_api"]  # the OpenAI stand-in's fixtures, shared with test_pipecat


class _MemoryTracing(Provider):
    scope = Scope.APP

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self._tracer = tracer

    @provide(override=True)
    def provide_tracer(self) -> Tracer:
        return self._tracer


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def traced_url(settings: Settings, exporter: InMemorySpanExporter) -> Iterator[str]:
    """A second served app, its tracer an SDK provider (not the global one) exporting to memory."""
    configure_logging("json", logging.INFO)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    port = free_port()
    own = dataclasses.replace(
        settings, public_url=f"http://127.0.0.1:{port}", instance_id=uuid.uuid4().hex[:12]
    )
    with served_app(own, SqlAdaptersProvider(), _MemoryTracing(OtelTracer(provider)), port=port) as url:
        yield url
    provider.shutdown()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture(scope="session")
def traced_tenants(sessions: async_sessionmaker[AsyncSession], traced_url: str) -> TenantFactory:
    return TenantFactory(sessions, traced_url)


# -- the shape ---------------------------------------------------------------------------------------


async def root_of(exporter: InMemorySpanExporter, run: WorkflowRun, within: float = 10.0) -> ReadableSpan:
    """The call's root span, once exported (it ends after the run's end is stored)."""
    for _ in range(round(within / 0.05)):
        roots = [s for s in exporter.get_finished_spans() if s.name == "agent_stream.call"]
        mine = [s for s in roots if s.attributes and s.attributes.get("agent_stream.run") == run.name]
        if mine:
            return mine[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no root span for {run.name}: {[s.name for s in exporter.get_finished_spans()]}")


def tree(spans: Sequence[ReadableSpan], root: ReadableSpan) -> dict[str, Any]:
    """{name: {child name: {...}}} under `root`, children of one name merged (turns: see `children`)."""
    shape: dict[str, Any] = {}
    for span in children(spans, root):
        shape.setdefault(span.name, {}).update(tree(spans, span))
    return shape


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    parent_id = parent.context.span_id if parent.context else None
    found = [s for s in spans if s.parent is not None and s.parent.span_id == parent_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format_trace_id(span.context.trace_id)


def call_lines(logs: io.StringIO, run: WorkflowRun) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("run_id") == run.name]


async def running_run(tenant: Tenant, within: float = 5.0) -> WorkflowRun:
    for _ in range(round(within / 0.05)):
        runs = await tenant.all_runs()
        if runs and runs[0].state is RunState.RUNNING and "stream" in runs[0].logs:
            return runs[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the call did not start")


# -- linetest --------------------------------------------------------------------------------------


async def test_a_linetest_call_is_one_trace_with_the_documented_shape(
    traced_tenants: TenantFactory,
    cloudonix: CloudonixStandIn,
    spans: InMemorySpanExporter,
    captured_logs: io.StringIO,
) -> None:
    tenant = await traced_tenants.create()
    cloudonix.add_domain(tenant.domain, tenant.token, sessions={"S-trace"})
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(start_event("S-trace", account_sid=tenant.domain))
        live = await running_run(tenant)
        await asyncio.sleep(0.3)  # the session span is open: the operator's hang-up comes from outside
        async with httpx.AsyncClient(base_url=tenant.app_url) as http:
            answer = await http.post(f"/api/v1/runs/{live.id}/hangup", headers=tenant.auth)
        assert answer.status_code == 202, answer.text
        result = await caller.wait_closed()
    assert result.code == 1000
    run = await tenant.ended_run(10.0)
    assert run.end_reason == "operator_hangup"

    root = await root_of(spans, run)
    finished = spans.get_finished_spans()
    assert root.parent is None
    assert tree(finished, root) == {
        "agent_stream.handshake": {"cloudonix.validate": {}},
        "agent_stream.session": {},
        "cloudonix.hangup": {},  # asked for by an operator's request, traced under the call all the same
    }
    assert run.trace_id == trace_id(root)
    assert len(run.trace_id) == 32 and int(run.trace_id, 16) > 0
    assert root.attributes is not None
    assert root.attributes["agent_stream.engine"] == "linetest"
    assert root.attributes["agent_stream.end_reason"] == "operator_hangup"
    assert root.attributes["agent_stream.close_code"] == 1000
    assert root.status.status_code is not StatusCode.ERROR
    [hangup] = [s for s in finished if s.name == "cloudonix.hangup" and trace_id(s) == run.trace_id]
    assert hangup.attributes is not None and hangup.attributes["cloudonix.hung_up"] is True

    lines = call_lines(captured_logs, run)
    events = {line["event"] for line in lines}
    assert events >= {"run_minted", "call_started", "call_hung_up", "call_control_requested", "call_ended"}
    # the operator's task only knows the run's name (it may run on another instance): its own two
    # lines say when it started and finished; everything the call and the provider request said is traced
    traced = [line for line in lines if line["event"] not in ("call_control_done", "call_control_failed")]
    assert {line.get("trace_id") for line in traced} == {run.trace_id}, traced


async def test_a_refused_handshake_marks_the_trace_as_an_error(
    traced_tenants: TenantFactory, cloudonix: CloudonixStandIn, spans: InMemorySpanExporter
) -> None:
    tenant = await traced_tenants.create()
    cloudonix.add_domain(tenant.domain, tenant.token)  # no session: validation fails
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(start_event("S-unknown", account_sid=tenant.domain))
        await caller.send(stop_event())
        result = await caller.wait_closed()
    assert result.code == 4400
    run = await tenant.ended_run(10.0)
    root = await root_of(spans, run)
    finished = spans.get_finished_spans()
    assert tree(finished, root) == {"agent_stream.handshake": {"cloudonix.validate": {}}}
    [validate] = [s for s in finished if s.name == "cloudonix.validate" and trace_id(s) == run.trace_id]
    assert validate.status.status_code is StatusCode.ERROR
    assert root.status.status_code is StatusCode.ERROR
    assert run.trace_id == trace_id(root)


# -- pipecat ---------------------------------------------------------------------------------------


@pytest.fixture
async def pc_traced(traced_tenants: TenantFactory, cloudonix: CloudonixStandIn, oa: OpenAIStandIn) -> Tenant:
    created = await traced_tenants.create(definition=agent(oa.url))
    cloudonix.add_domain(created.domain, created.token, sessions={"S-pc-trace"})
    return created


async def test_a_pipecat_turn_is_a_span_with_its_stt_llm_and_tts(
    pc_traced: Tenant, oa: OpenAIStandIn, spans: InMemorySpanExporter
) -> None:
    oa.script_transcript("What are your opening hours?")
    oa.script_reply("We are open from nine to five.")
    async with connect(pc_traced.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-pc-trace")
        await caller.silence(len(GREETING) * oa.seconds_per_char + 0.5)
        await caller.stream(speech_phrase(1.2))
        await caller.silence(0.3)
        await oa.wait_for("chat", timeout=5)
        await caller.silence(2.5)  # the answer plays
        await caller.stop()
        assert (await caller.closed())[0] == 1000
    run = await pc_traced.ended_run(10.0)
    assert run.state is RunState.COMPLETED

    root = await root_of(spans, run)
    finished = spans.get_finished_spans()
    assert tree(finished, root) == {
        "agent_stream.handshake": {"cloudonix.validate": {}},
        "agent_stream.session": {
            "agent_stream.turn": {"agent_stream.stt": {}, "agent_stream.llm": {}, "agent_stream.tts": {}}
        },
    }
    [session] = [s for s in children(finished, root) if s.name == "agent_stream.session"]
    [turn] = children(finished, session)
    [figures] = run.gathered_context["turns"]
    assert turn.attributes is not None
    assert turn.attributes["agent_stream.voice_to_voice_ms"] == figures["voice_to_voice_ms"]
    assert turn.start_time is not None and turn.end_time is not None
    assert abs((turn.end_time - turn.start_time) / 1e6 - figures["voice_to_voice_ms"]) < 2
    steps = {s.name: s for s in children(finished, turn)}
    for name, figure in (("stt", "stt_ms"), ("llm", "llm_first_token_ms"), ("tts", "tts_first_byte_ms")):
        step = steps[f"agent_stream.{name}"]
        assert step.attributes is not None and step.attributes["agent_stream.ttfb_ms"] == figures[figure]
        assert step.start_time is not None and step.end_time is not None
        assert turn.start_time <= step.start_time <= step.end_time <= turn.end_time + 50_000_000
    # the order the caller waits through: transcription, then the model's first token, then speech
    assert steps["agent_stream.stt"].end_time <= steps["agent_stream.llm"].end_time  # type: ignore[operator]
    assert steps["agent_stream.llm"].end_time <= steps["agent_stream.tts"].end_time  # type: ignore[operator]
    assert run.trace_id == trace_id(root)
    assert {trace_id(s) for s in [session, turn, *steps.values()]} == {run.trace_id}
