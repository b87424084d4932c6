"""The agent-stream use case: design.md's flow, steps 1-9."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from application import log_context
from application.admission import Load, StartingCall
from application.instance_life import InstanceLife
from application.live_calls import LiveCallRegistry
from application.ports.live_call import ActiveCall, AgentPipeline, AgentSession, CallOutcome, CallSocket
from application.ports.recordings import CallRecorder, CallRecording
from application.ports.repositories import (
    CallRoute,
    CallRoutes,
    CallSlots,
    StorageError,
    WorkflowRunRepository,
)
from application.ports.run_feed import RunFeed
from application.ports.system import CallMetrics, Clock, RunNumbers
from application.ports.tracing import NO_TRACER, Tracer, TraceSpan
from application.providers import CallOpener, ProviderRegistry
from application.run_journal import RunJournal, RunNews, store_end
from domain.agents import Workflow, month_start, quota_allows
from domain.close_policy import (
    INTERNAL_ERROR_CLOSE,
    NORMAL_CLOSE,
    CallLimitReachedError,
    Close,
    DatabaseUnavailableError,
    DrainingError,
    QuotaExceededError,
    ServiceUnavailableError,
    StreamRefusedError,
    TooManyLookupFailuresError,
    WorkflowNotFoundError,
)
from domain.lookup_guard import LookupFailureWindow
from domain.masking import mask_phone
from domain.stream_events import RESERVED_CONTEXT_KEYS, StreamStart
from domain.stream_request import AgentStreamRequest
from domain.workflow_run import EndReason, RunState, WorkflowRun, run_name

log = logging.getLogger(__name__)
T = TypeVar("T")
CALL_SPAN = "agent_stream.call"  # the stream's root span, accept to close; the run keeps its trace id
SESSION_SPAN = "agent_stream.session"  # the agent on the live call (its turns are spans under it)


@dataclass(frozen=True, slots=True)
class AgentStreamCommand:
    request: AgentStreamRequest
    client: str = "unknown"  # the peer's address, for the lookup guard


class PipelineRegistry:
    def __init__(self, pipelines: Mapping[str, AgentPipeline]) -> None:
        self._pipelines = dict(pipelines)

    def get(self, engine: str) -> AgentPipeline:
        pipeline = self._pipelines.get(engine)
        if pipeline is None:
            raise ServiceUnavailableError(f"Engine not available: {engine}")
        return pipeline

    async def aclose(self) -> None:
        for pipeline in self._pipelines.values():
            await pipeline.aclose()


@dataclass(frozen=True, slots=True)
class ThisInstance:
    """This instance's own state, which every stream passes through: its life (identity, the slots
    and runs it holds), its live calls (and whether it drains) and its load."""

    life: InstanceLife
    live_calls: LiveCallRegistry
    load: Load


class AgentStream:
    """Routes one provider stream to its agent and keeps its run truthful on every path."""

    def __init__(
        self,
        routes: CallRoutes,
        runs: WorkflowRunRepository,
        slots: CallSlots,
        providers: ProviderRegistry,
        pipelines: PipelineRegistry,
        clock: Clock,
        run_numbers: RunNumbers,
        *,
        instance: ThisInstance,
        lookup_guard: LookupFailureWindow,
        metrics: CallMetrics,
        feed: RunFeed,
        tracer: Tracer = NO_TRACER,
        recorder: CallRecorder,
    ) -> None:
        self._routes = routes
        self._runs = runs
        self._slots = slots
        self._providers = providers
        self._pipelines = pipelines
        self._clock = clock
        self._run_numbers = run_numbers
        self._life = instance.life
        self._load = instance.load
        self._guard = lookup_guard
        self._live_calls = instance.live_calls
        self._metrics = metrics
        self._feed = feed  # each stored change of a run's state is published (the live Runs tab)
        self._tracer = tracer
        self._recorder = recorder
        self._monotonic = clock.monotonic

    async def execute(self, command: AgentStreamCommand, socket: CallSocket) -> Close:
        """Run the stream to its end; returns the close the socket must get (already on the run)."""
        accepted_at = self._monotonic()
        with (
            self._tracer.span(CALL_SPAN, {"agent_stream.provider": str(command.request.provider)}) as span,
            log_context.bound(trace_id=span.trace_id),
        ):
            close = await self._execute(command, socket, accepted_at)
            _close_span(span, close)
        self._metrics.stream_ended(close.code)
        return close

    def refuse(self, refusal: StreamRefusedError) -> Close:
        """A stream refused before it could be routed (its URL): logged and counted like any other."""
        close = self._refused(refusal)
        self._metrics.stream_ended(close.code)
        return close

    async def _execute(self, command: AgentStreamCommand, socket: CallSocket, accepted_at: float) -> Close:
        request = command.request
        with log_context.bound(provider=request.provider):
            try:
                if self._live_calls.draining:
                    raise DrainingError()
                if (busy := self._load.refusal()) is not None:
                    raise busy
            except StreamRefusedError as refusal:
                return self._refused(refusal)
            with self._load.call_starting() as starting:
                try:
                    opener = self._providers.resolve(request.provider)  # 1
                    route = await self._find_route(request, command.client)  # 2
                except StreamRefusedError as refusal:
                    return self._refused(refusal)
                with log_context.bound(workflow_id=route.workflow.id):
                    return await self._with_slot(command, socket, opener, route, accepted_at, starting)

    async def _with_slot(
        self,
        command: AgentStreamCommand,
        socket: CallSocket,
        opener: CallOpener,
        route: CallRoute,
        accepted_at: float,
        starting: StartingCall,
    ) -> Close:
        workflow, organization = route.workflow, route.organization
        if organization is None or organization.id is None:
            return self._refused(WorkflowNotFoundError(detail="organisation missing"))
        try:
            slot = await self._slots.acquire(  # 3
                organization.id,
                organization.max_concurrent_calls,
                self._life.identity.instance_id,
                self._clock.now(),
                self._life.identity.ttl_seconds,
            )
        except StorageError as exc:
            return self._refused(DatabaseUnavailableError(detail=str(exc)))
        if slot is None:
            return self._refused(CallLimitReachedError())
        self._life.hold_slot(slot)
        try:
            _check_quota(route)  # 4
            run = await self._mint(command.request, workflow)  # 5 and 6
        except StreamRefusedError as refusal:
            await _shielded(self._release(slot))
            return self._refused(refusal)
        except BaseException:
            await _shielded(self._release(slot))
            raise
        starting.done()  # what follows waits on the caller and the provider, not on the database
        news = RunNews(self._feed, organization.id)
        news.tell(run)
        try:
            with log_context.bound(run_id=run.name, domain=command.request.domain):
                log.info(
                    "run_minted", extra=_numbers(command.request.caller_number, command.request.called_number)
                )
                return await self._run_call(command, socket, opener, workflow, run, news, accepted_at)
        finally:
            await _shielded(self._release(slot))

    async def _release(self, slot: str) -> None:
        """Free the slot; with the database down, the next heartbeat that reaches it does."""
        try:
            await self._slots.release(slot)
        except StorageError as exc:
            self._life.drop_slot(slot, released=False)
            log.warning("slot_release_failed", extra={"detail": str(exc)[:200]})
        else:
            self._life.drop_slot(slot, released=True)

    async def _find_route(self, request: AgentStreamRequest, client: str) -> CallRoute:
        if self._guard.blocked(client, self._monotonic()):
            raise TooManyLookupFailuresError()
        route = None
        if request.agent_uuid is not None:
            try:
                route = await self._routes.route(request.agent_uuid, month_start(self._clock.now()))
            except StorageError as exc:
                raise DatabaseUnavailableError(detail=str(exc)) from exc
        if route is None or route.workflow.id is None:
            self._guard.record_failure(client, self._monotonic())
            raise WorkflowNotFoundError()
        return route

    async def _mint(self, request: AgentStreamRequest, workflow: Workflow) -> WorkflowRun:
        initial_context: dict[str, Any] = {
            **workflow.template_variables,
            "caller_number": request.caller_number,
            "called_number": request.called_number,
            "provider": request.provider,
            "direction": "inbound",
        }
        run = WorkflowRun(
            name=run_name(self._run_numbers.next()),
            workflow_id=workflow.stored_id,
            agent_uuid=workflow.uuid,
            mode=str(request.provider),
            call_type="inbound",
            created_at=self._clock.now(),
            initial_context=initial_context,
            gathered_context={"call_id": request.call_id},
            logs={"inbound_webhook": {"domain": request.domain}},
            instance_id=self._life.identity.instance_id,
            trace_id=self._tracer.current().trace_id,
        )
        run.start(run.created_at)  # 6: stored once, already running (one write less per call)
        try:
            run = await self._runs.add(run)
        except StorageError as exc:  # if it was stored after all, the heartbeat's reaper ends it
            raise DatabaseUnavailableError(detail=str(exc)) from exc
        self._life.hold_run(run.stored_id)
        return run

    async def _run_call(
        self,
        command: AgentStreamCommand,
        socket: CallSocket,
        opener: CallOpener,
        workflow: Workflow,
        run: WorkflowRun,
        news: RunNews,
        accepted_at: float,
    ) -> Close:
        outcome: CallOutcome | None = None
        refusal: StreamRefusedError | None = None
        session: AgentSession | None = None
        recording: CallRecording | None = None

        def prepare(start: StreamStart) -> None:  # on `start`, while the session is validated
            nonlocal session
            _merge_start_context(run, start)
            session = pipeline.prepare(workflow.definition, dict(run.initial_context), journal)

        journal = RunJournal(self._runs, run, news)
        self._tracer.current().set_attributes(
            {"agent_stream.run": run.name, "agent_stream.engine": workflow.definition.engine}
        )
        try:
            pipeline = self._pipelines.get(workflow.definition.engine)
            call = await opener.open(socket, command.request, workflow, run, on_start=prepare)  # 7
            self._metrics.handshake_done(self._monotonic() - accepted_at)
            try:
                if workflow.definition.records:
                    recording = self._record(run, call)
                if session is None:  # an opener that did not call back
                    prepare(call.start)
                assert session is not None  # noqa: S101 - set by prepare
                journal.save_in_background()  # the greeting need not wait for the commit
                context = run.initial_context  # the numbers are known now: from the URL or `start`
                log.info(
                    "call_started",
                    extra={
                        "engine": workflow.definition.engine,
                        **_numbers(context.get("caller_number"), context.get("called_number")),
                    },
                )
                if run.id is not None:
                    self._live_calls.register(run.id, call)
                with self._tracer.span(SESSION_SPAN):
                    outcome = await session.run(call)  # 8
                if call.ended_by is not None:  # ended through call control, from in or outside
                    outcome.end_reason = call.ended_by
                    outcome.close = outcome.close or call.closed_with  # the run says what the socket got
            finally:
                if run.id is not None:
                    self._live_calls.unregister(run.id)
                await _shielded(call.aclose())
                if recording is not None:  # stored before the run's end: its URL then works
                    run.recording = await _shielded(recording.finish())
                run.logs["media"] = call.stats()
                run.logs.update(call.control_logs())  # e.g. a failed provider hang-up
        except StreamRefusedError as exc:
            refusal = exc
        except StorageError as exc:  # e.g. the handshake's configuration lookup; the end is retried
            refusal = DatabaseUnavailableError(detail=str(exc)[:200])
        except asyncio.CancelledError:
            await _shielded(self._finish(run, news, None, ServiceUnavailableError(detail="cancelled")))
            raise
        except Exception:
            log.exception("call_crashed")
            await _shielded(self._finish(run, news, None, None))
            return INTERNAL_ERROR_CLOSE
        finally:
            if session is not None:
                await _shielded(session.aclose())
        return await _shielded(self._finish(run, news, outcome, refusal, journal))  # 9

    def _record(self, run: WorkflowRun, call: ActiveCall) -> CallRecording | None:
        """Start the call's recording (`definition.recording`); a recorder that cannot start
        (a full or read-only disk) leaves the call unrecorded, never refused."""
        try:
            recording = self._recorder.open(run)
        except OSError as exc:
            log.warning("recording_not_started", extra={"error": str(exc)[:200]})
            return None
        call.record(recording)
        return recording

    async def _finish(
        self,
        run: WorkflowRun,
        news: RunNews,
        outcome: CallOutcome | None,
        refusal: StreamRefusedError | None,
        journal: RunJournal | None = None,
    ) -> Close:
        """Stamp the run's end from what happened, store it and publish it; returns the socket's
        close."""
        now = self._clock.now()
        if outcome is not None:
            run.gathered_context.update(outcome.gathered)
            close = outcome.close or NORMAL_CLOSE
            if close.code == NORMAL_CLOSE.code and outcome.end_reason != EndReason.ERROR:
                run.complete(now, outcome.end_reason, close)
            else:
                run.fail(now, outcome.end_reason, close)
        else:
            close = refusal.close if refusal is not None else INTERNAL_ERROR_CLOSE
            if refusal is not None:
                self._refused(refusal)
            if run.state is not RunState.FAILED:
                run.fail(now, EndReason.ERROR, close)
        try:
            if journal is not None:
                await journal.store_end()  # and publishes it
            else:
                await store_end(self._runs, run)
                news.tell(run)
        except StorageError as exc:
            # stored (and published) by the next beat that reaches the database
            self._life.drop_run(run, stored=False, news=news)
            log.warning("run_end_not_stored", extra={"error": str(exc)[:200]})
        else:
            self._life.drop_run(run, stored=True)
        self._tracer.current().set_attributes({"agent_stream.end_reason": str(run.end_reason)})
        log.info(
            "call_ended",
            extra={
                "state": str(run.state),
                "end_reason": run.end_reason,
                "close_code": run.close_code,
                "duration_seconds": run.duration_seconds,
            },
        )
        return close

    def _refused(self, refusal: StreamRefusedError) -> Close:
        log.warning(
            "stream_refused",
            extra={
                "close_code": int(refusal.close.code),
                "close_reason": refusal.close.reason,
                "detail": refusal.detail,
            },
        )
        return refusal.close


def _close_span(span: TraceSpan, close: Close) -> None:
    span.set_attributes({"agent_stream.close_code": int(close.code)})
    if close.code != NORMAL_CLOSE.code:
        span.fail(f"{int(close.code)} {close.reason}")


def _check_quota(route: CallRoute) -> None:
    owner = route.owner
    if owner is None:
        raise QuotaExceededError(detail="owning user missing")
    if not quota_allows(owner.monthly_minutes, route.seconds_used):
        raise QuotaExceededError(detail=f"used {route.seconds_used:.0f}s of {owner.monthly_minutes} min")


def _numbers(caller: object, called: object) -> dict[str, str]:
    """The masked numbers a log line carries: those that are known (a URL may say neither)."""
    numbers = {"caller": caller, "called": called}
    return {k: masked for k, v in numbers.items() if isinstance(v, str) and (masked := mask_phone(v))}


def _merge_start_context(run: WorkflowRun, start: StreamStart) -> None:
    """Fill what the URL did not say from `start`, and add the provider's custom parameters."""
    context = run.initial_context
    if context.get("caller_number") is None and start.caller_number:
        context["caller_number"] = start.caller_number
    if context.get("called_number") is None and start.called_number:
        context["called_number"] = start.called_number
    context["direction"] = start.direction
    for key, value in start.custom_parameters.items():
        if key not in RESERVED_CONTEXT_KEYS and key not in context:
            context[key] = value


async def _shielded(awaitable: Awaitable[T]) -> T:
    """Finish `awaitable` even when the call's task is being cancelled (slots, run records)."""
    return await asyncio.shield(awaitable)
