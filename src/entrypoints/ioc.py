"""The composition root: dishka providers per layer, and `make_container`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from litestar import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.cloudonix.call import TwilioFramedCalls
from adapters.cloudonix.rest import HttpxCloudonixSessions
from adapters.cloudonix.transfers import TransferCallbacks
from adapters.memory.call_control import InMemoryCallControlHub
from adapters.memory.health import InMemoryReadiness
from adapters.memory.repositories import InMemoryStore
from adapters.pipelines.linetest import LineTestPipeline
from adapters.pipelines.pipecat import build_pipecat_pipeline, pipecat_available
from adapters.sql.call_control import call_control_channel
from adapters.sql.database import create_engine, create_sessionmaker
from adapters.sql.health import SqlReadiness
from adapters.sql.repositories import (
    SqlApiKeyRepository,
    SqlCallRoutes,
    SqlCallSlots,
    SqlInstances,
    SqlOrganizationRepository,
    SqlTelephonyConfigRepository,
    SqlWorkflowRepository,
    SqlWorkflowRunRepository,
)
from adapters.system.clock import RandomRunNumbers, SystemClock
from adapters.system.prometheus import PrometheusMetrics
from application.admission import Load, LoopLag
from application.agent_stream import AgentStream, PipelineRegistry, ThisInstance
from application.authentication import Authenticate, Caller
from application.cloudonix_handshake import CloudonixHandshake
from application.instance_life import InstanceIdentity, InstanceLife
from application.live_calls import LiveCallRegistry
from application.management import (
    AddCloudonixConfiguration,
    CreateAgent,
    CreateOrganization,
    DeleteConfiguration,
    FindAgent,
    FindRun,
    GetAgent,
    GetRun,
    ListAgents,
    ListAllAgents,
    ListConfigurations,
    ListOrganizations,
    ListRuns,
    RotateApiKey,
    UpdateAgent,
)
from application.ports.api_keys import ApiKeyRepository
from application.ports.call_control import CallControlChannel
from application.ports.calls import AgentPipeline, ProviderSessions
from application.ports.credentials import CredentialCipher
from application.ports.repositories import (
    CallRoutes,
    CallSlots,
    Instances,
    OrganizationRepository,
    TelephonyConfigRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from application.ports.system import CallMetrics, Clock, Readiness, RunNumbers
from application.providers import ProviderRegistry
from application.runs_control import CallControl, CallControlTasks, HangUpRun, LocalCallControl, TransferRun
from application.stream_url import StreamUrl
from domain.lookup_guard import LookupFailureWindow
from domain.telephony import Provider as TelephonyProvider
from entrypoints.secret_key import credential_cipher
from entrypoints.settings import Settings
from entrypoints.web.api.auth import api_key_of


class InfraProvider(Provider):
    """Process-wide resources: clients, clocks, registries."""

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

    @provide
    def provide_metrics(self, live_calls: LiveCallRegistry, lag: LoopLag) -> PrometheusMetrics:
        return PrometheusMetrics(live_calls, lag)

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
    this_instance = provide(ThisInstance)

    @provide
    def provide_call_metrics(self, metrics: PrometheusMetrics) -> CallMetrics:
        return metrics

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
    ) -> ProviderRegistry:
        cloudonix = CloudonixHandshake(
            configs,
            sessions,
            TwilioFramedCalls(on_bad_frame=metrics.bad_frame),
            handshake_timeout=settings.handshake_timeout,
        )
        return ProviderRegistry({TelephonyProvider.CLOUDONIX.value: cloudonix})

    @provide
    async def provide_pipelines(self) -> AsyncIterator[PipelineRegistry]:
        engines: dict[str, AgentPipeline] = {"linetest": LineTestPipeline()}
        if pipecat_available():  # the optional extra: `pip install 'agent-stream[pipecat]'`
            engines["pipecat"] = build_pipecat_pipeline()
        registry = PipelineRegistry(engines)
        yield registry
        await registry.aclose()


class SqlAdaptersProvider(Provider):
    """Persistence on SQLAlchemy: PostgreSQL (asyncpg) or the embedded SQLite (aiosqlite)."""

    scope = Scope.APP

    @provide
    async def provide_engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(settings.database_url, timeout=settings.db_timeout)
        yield engine
        await engine.dispose()

    @provide
    def provide_sessionmaker(
        self, settings: Settings, engine: AsyncEngine
    ) -> async_sessionmaker[AsyncSession]:
        return create_sessionmaker(engine, transaction_timeout=settings.db_timeout)

    @provide
    def provide_credential_cipher(self, settings: Settings) -> CredentialCipher:
        return credential_cipher(settings)

    organizations = provide(SqlOrganizationRepository, provides=OrganizationRepository)
    workflows = provide(SqlWorkflowRepository, provides=WorkflowRepository)
    configs = provide(SqlTelephonyConfigRepository, provides=TelephonyConfigRepository)
    runs = provide(SqlWorkflowRunRepository, provides=WorkflowRunRepository)
    routes = provide(SqlCallRoutes, provides=CallRoutes)
    slots = provide(SqlCallSlots, provides=CallSlots)
    instances = provide(SqlInstances, provides=Instances)
    api_keys = provide(SqlApiKeyRepository, provides=ApiKeyRepository)

    @provide
    def provide_readiness(self, settings: Settings, engine: AsyncEngine) -> Readiness:
        return SqlReadiness(engine, timeout=settings.db_timeout)

    @provide
    async def provide_call_control_channel(
        self, settings: Settings, local: LocalCallControl
    ) -> AsyncIterator[CallControlChannel]:
        """Listens from start-up (`lifespan` resolves it) until the container closes."""
        async with call_control_channel(
            settings.database_url, settings.instance_id, local.serve, settings.db_timeout
        ) as channel:
            yield channel


class MemoryAdaptersProvider(Provider):
    """Persistence in process memory: for tests and for entrypoints that need no database."""

    scope = Scope.APP

    def __init__(self, store: InMemoryStore | None = None) -> None:
        super().__init__()
        self._store = store or InMemoryStore()

    @provide
    def provide_store(self) -> InMemoryStore:
        return self._store

    @provide
    def provide_organizations(self, store: InMemoryStore) -> OrganizationRepository:
        return store.organizations

    @provide
    def provide_workflows(self, store: InMemoryStore) -> WorkflowRepository:
        return store.workflows

    @provide
    def provide_configs(self, store: InMemoryStore) -> TelephonyConfigRepository:
        return store.telephony_configs

    @provide
    def provide_runs(self, store: InMemoryStore) -> WorkflowRunRepository:
        return store.runs

    @provide
    def provide_routes(self, store: InMemoryStore) -> CallRoutes:
        return store.routes

    @provide
    def provide_slots(self, store: InMemoryStore) -> CallSlots:
        return store.slots

    @provide
    def provide_instances(self, store: InMemoryStore) -> Instances:
        return store.instances

    @provide
    def provide_api_keys(self, store: InMemoryStore) -> ApiKeyRepository:
        return store.api_keys

    readiness = provide(InMemoryReadiness, provides=Readiness)

    @provide
    def provide_call_control_channel(
        self, settings: Settings, local: LocalCallControl
    ) -> Iterator[CallControlChannel]:
        channel = InMemoryCallControlHub().join(settings.instance_id, local.serve)
        yield channel
        channel.close()


class UseCasesProvider(Provider):
    """Use cases, one per WebSocket connection or HTTP request."""

    scope = Scope.SESSION

    agent_stream = provide(AgentStream)
    create_organization = provide(CreateOrganization)
    create_agent = provide(CreateAgent)
    add_cloudonix = provide(AddCloudonixConfiguration)
    list_runs = provide(ListRuns)
    authenticate = provide(Authenticate)
    list_agents = provide(ListAgents)
    get_agent = provide(GetAgent)
    update_agent = provide(UpdateAgent)
    list_configurations = provide(ListConfigurations)
    delete_configuration = provide(DeleteConfiguration)
    get_run = provide(GetRun)
    list_organizations = provide(ListOrganizations)
    list_all_agents = provide(ListAllAgents)
    find_agent = provide(FindAgent)
    find_run = provide(FindRun)
    rotate_api_key = provide(RotateApiKey)
    hang_up_run = provide(HangUpRun)
    transfer_run = provide(TransferRun)

    @provide
    def provide_stream_url(
        self, settings: Settings, get_agent: GetAgent, configs: TelephonyConfigRepository
    ) -> StreamUrl:
        return StreamUrl(get_agent, configs, settings.public_url)


class HttpProvider(Provider):
    """Objects of one HTTP request: the request itself and the organisation its API key names."""

    scope = Scope.REQUEST
    request = from_context(provides=Request, scope=Scope.REQUEST)

    @provide
    async def provide_caller(self, request: Request, authenticate: Authenticate) -> Caller:  # type: ignore[type-arg]
        """Raises `NotAuthenticatedError` (401) without a valid `Authorization: Bearer` API key."""
        return await authenticate.execute(api_key_of(request.headers.get("authorization")))


def make_container(settings: Settings, *providers: Provider) -> AsyncContainer:
    """The app container; `providers` replace the default SQL persistence when given."""
    persistence = providers or (SqlAdaptersProvider(),)
    return make_async_container(
        InfraProvider(), *persistence, UseCasesProvider(), HttpProvider(), context={Settings: settings}
    )
