"""Persistence providers: SQLAlchemy (PostgreSQL or the embedded SQLite) or process memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from dishka import Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.memory.call_control import InMemoryCallControlHub
from adapters.memory.health import InMemoryReadiness
from adapters.memory.repositories import InMemoryStore
from adapters.memory.run_feed import InMemoryRunFeed
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
    SqlWebhookOutbox,
    SqlWebhookSecrets,
    SqlWorkflowRepository,
    SqlWorkflowRunRepository,
)
from adapters.sql.run_feed import run_feed
from application.ports.api_keys import ApiKeyRepository
from application.ports.call_control import CallControlChannel
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
from application.ports.run_feed import RunFeed
from application.ports.system import Readiness
from application.ports.webhooks import WebhookOutbox, WebhookSecrets
from application.runs_control import LocalCallControl
from entrypoints.secret_key import credential_cipher
from entrypoints.settings import Settings


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
    webhook_outbox = provide(SqlWebhookOutbox, provides=WebhookOutbox)
    webhook_secrets = provide(SqlWebhookSecrets, provides=WebhookSecrets)

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

    @provide
    async def provide_run_feed(self, settings: Settings) -> AsyncIterator[RunFeed]:
        """PostgreSQL: listens from start-up (`lifespan` resolves it) until the container closes;
        SQLite (one process): in memory."""
        async with run_feed(settings.database_url, settings.instance_id, settings.db_timeout) as feed:
            yield feed


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

    @provide
    def provide_webhook_outbox(self, store: InMemoryStore) -> WebhookOutbox:
        return store.webhooks

    @provide
    def provide_webhook_secrets(self, store: InMemoryStore) -> WebhookSecrets:
        return store.webhook_secrets

    readiness = provide(InMemoryReadiness, provides=Readiness)

    @provide
    def provide_call_control_channel(
        self, settings: Settings, local: LocalCallControl
    ) -> Iterator[CallControlChannel]:
        channel = InMemoryCallControlHub().join(settings.instance_id, local.serve)
        yield channel
        channel.close()

    @provide
    def provide_run_feed(self) -> RunFeed:
        return InMemoryRunFeed()
