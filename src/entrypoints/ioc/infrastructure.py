"""Process-wide resources: clients, clocks, registries, metrics, this instance's life."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
from dishka import Provider, Scope, alias, from_context, provide

from adapters.cloudonix.media_stream import TwilioFramedCalls
from adapters.cloudonix.rest import HttpxCloudonixSessions
from adapters.cloudonix.transfers import TransferCallbacks
from adapters.media.twilio.handshake import TwilioHandshakeReader
from adapters.pipelines.linetest import LineTestPipeline
from adapters.pipelines.pipecat import build_pipecat_pipeline, pipecat_available
from adapters.system.clock import RandomRunNumbers, SystemClock
from adapters.system.prometheus import PrometheusMetrics
from adapters.webhooks.sender import HttpxWebhookSender, webhook_client
from application.admission import Load, LoopLag
from application.agent_stream import PipelineRegistry, ThisInstance
from application.cloudonix_handshake import CloudonixHandshake
from application.instance_life import InstanceIdentity, InstanceLife
from application.instance_tasks import InstanceTasks
from application.live_calls import LiveCallRegistry
from application.ports.call_control import CallControlChannel
from application.ports.live_call import AgentPipeline, ProviderSessions
from application.ports.repositories import TelephonyConfigRepository, WorkflowRunRepository
from application.ports.system import CallMetrics, Clock, RunNumbers
from application.ports.tracing import NO_TRACER, Tracer
from application.ports.webhooks import RunDocuments, WebhookOutbox, WebhookSecrets, WebhookSender
from application.providers import ProviderRegistry
from application.runs_control import CallControl, CallControlTasks, LocalCallControl
from application.webhooks import WebhookDeliveries
from domain.lookup_guard import LookupFailureWindow
from domain.telephony import Provider as TelephonyProvider
from domain.webhooks import WebhookPolicy
from entrypoints.serialization import RunJson
from entrypoints.settings import Settings


class InfraProvider(Provider):
    """Process-wide resources: clients, clocks, registries, metrics, this instance's life and load."""

    scope = Scope.APP
    settings = from_context(provides=Settings, scope=Scope.APP)
    clock = provide(SystemClock, provides=Clock)
    run_numbers = provide(RandomRunNumbers, provides=RunNumbers)
    transfers = provide(TransferCallbacks)
    live_calls = provide(LiveCallRegistry)
    local_call_control = provide(LocalCallControl)

    @provide
    def provide_call_control(
        self, local: LocalCallControl, channel: CallControlChannel, settings: Settings
    ) -> CallControl:
        return CallControl(local, channel, settings.instance_id)

    @provide
    async def provide_call_control_tasks(self) -> AsyncIterator[CallControlTasks]:
        tasks = CallControlTasks()
        yield tasks
        await tasks.aclose()

    @provide
    async def provide_http_client(self, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            base_url=settings.cloudonix_api_url,
            timeout=httpx.Timeout(settings.provider_timeout),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            trust_env=False,
        ) as client:
            yield client

    @provide
    def provide_provider_sessions(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        transfers: TransferCallbacks,
        metrics: PrometheusMetrics,
    ) -> ProviderSessions:
        return HttpxCloudonixSessions(
            client,
            timeout=settings.provider_timeout,
            public_url=settings.public_url,
            transfers=transfers,
            metrics=metrics.provider_request,
        )

    metrics = provide(PrometheusMetrics)
    call_metrics = alias(source=PrometheusMetrics, provides=CallMetrics)

    @provide
    def provide_loop_lag(self, settings: Settings) -> LoopLag:
        return LoopLag(busy_above_seconds=settings.busy_lag_ms / 1000)

    @provide
    def provide_load(self, lag: LoopLag) -> Load:
        return Load(lag)

    @provide
    def provide_instance_identity(self, settings: Settings) -> InstanceIdentity:
        return InstanceIdentity(
            instance_id=settings.instance_id,
            name=settings.instance_name or settings.instance_id,
            ttl_seconds=settings.instance_ttl,
        )

    instance_life = provide(InstanceLife)
    instance_tasks = provide(InstanceTasks)
    run_documents = provide(RunJson, provides=RunDocuments)

    @provide
    def provide_webhook_deliveries(
        self,
        outbox: WebhookOutbox,
        secrets: WebhookSecrets,
        runs: WorkflowRunRepository,
        sender: WebhookSender,
        documents: RunDocuments,
        clock: Clock,
    ) -> WebhookDeliveries:
        return WebhookDeliveries(outbox, secrets, runs, sender, documents, clock)

    @provide
    def provide_webhook_policy(self, settings: Settings) -> WebhookPolicy:
        return WebhookPolicy(allow_private=settings.webhook_allow_private)

    @provide
    async def provide_webhook_sender(self, policy: WebhookPolicy) -> AsyncIterator[WebhookSender]:
        async with webhook_client() as client:
            yield HttpxWebhookSender(client, allow_private=policy.allow_private)

    this_instance = provide(ThisInstance)

    @provide
    def provide_lookup_guard(self, settings: Settings) -> LookupFailureWindow:
        return LookupFailureWindow(limit=settings.lookup_failures_per_minute)

    @provide
    def provide_providers(
        self,
        settings: Settings,
        configs: TelephonyConfigRepository,
        sessions: ProviderSessions,
        metrics: PrometheusMetrics,
        tracer: Tracer,
    ) -> ProviderRegistry:
        cloudonix = CloudonixHandshake(
            configs,
            sessions,
            TwilioFramedCalls(on_bad_frame=metrics.bad_frame),
            TwilioHandshakeReader(),
            handshake_timeout=settings.handshake_timeout,
            tracer=tracer,
        )
        return ProviderRegistry({TelephonyProvider.CLOUDONIX.value: cloudonix})

    @provide
    async def provide_pipelines(self, tracer: Tracer) -> AsyncIterator[PipelineRegistry]:
        engines: dict[str, AgentPipeline] = {"linetest": LineTestPipeline()}
        if pipecat_available():  # the optional extra: `pip install 'agent-stream[pipecat]'`
            engines["pipecat"] = build_pipecat_pipeline(tracer)
        registry = PipelineRegistry(engines)
        yield registry
        await registry.aclose()

    @provide
    def provide_tracer(self, settings: Settings) -> Iterator[Tracer]:
        """OpenTelemetry over OTLP when the standard variables ask for it; else the no-op tracer,
        and the SDK is never imported."""
        if not settings.tracing:
            yield NO_TRACER
            return
        from adapters.system.tracing import otlp_tracer

        tracer, shutdown = otlp_tracer()
        yield tracer
        shutdown()  # exports what is still queued
