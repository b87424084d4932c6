"""One contract suite, three stores: the `backend` fixture runs each test on memory, SQLite and PostgreSQL.

The SQL schemas come from the migrations (`upgrade`), not `create_all`, so drift shows up. Each
SQL backend is one database per test session; tests make their own organisations and agents,
so they never depend on what other tests left behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.repositories import InMemoryStore
from adapters.sql.database import create_engine, create_sessionmaker, upgrade
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
from adapters.system.crypto import FernetCredentialCipher
from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import (
    CallRoutes,
    CallSlots,
    Instances,
    OrganizationRepository,
    TelephonyConfigRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from application.ports.webhooks import WebhookOutbox, WebhookSecrets
from domain.agents import Organization, User, Workflow
from tests.contract.factories import OrganizationFactory, UserFactory, WorkflowFactory
from tests.pg import fresh_postgres_database

CONTRACT_SECRET_KEY = "contract-tests-secret-key"

BACKENDS = [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


class OrganizationsWithOwners(OrganizationRepository, Protocol):
    """`owner_of` is implemented by both adapters but not (yet) declared by the port."""

    async def owner_of(self, organization_id: int) -> User | None: ...


@dataclass
class Backend:
    """The six ports over one store, plus a second `CallSlots` as another instance would hold."""

    name: str
    organizations: OrganizationsWithOwners
    workflows: WorkflowRepository
    configs: TelephonyConfigRepository
    runs: WorkflowRunRepository
    routes: CallRoutes
    slots: CallSlots
    other_instance_slots: CallSlots
    api_keys: ApiKeyRepository
    instances: Instances
    other_instances: Instances  # the same rows, through another engine (another process's pool)
    webhooks: WebhookOutbox
    other_webhooks: WebhookOutbox  # the same outbox, as another instance claims from it
    webhook_secrets: WebhookSecrets

    async def new_organization(self, max_concurrent_calls: int = 10) -> Organization:
        return await self.organizations.add(
            OrganizationFactory.build(max_concurrent_calls=max_concurrent_calls)
        )

    async def new_user(self, organization: Organization | None = None) -> User:
        organization = organization or await self.new_organization()
        assert organization.id is not None
        return await self.organizations.add_user(UserFactory.build(organization_id=organization.id))

    async def new_workflow(self, user: User | None = None) -> Workflow:
        user = user or await self.new_user()
        assert user.id is not None
        return await self.workflows.add(
            WorkflowFactory.build(uuid=uuid4(), organization_id=user.organization_id, user_id=user.id)
        )


def memory_backend() -> Backend:
    store = InMemoryStore()
    return Backend(
        name="memory",
        organizations=store.organizations,
        workflows=store.workflows,
        configs=store.telephony_configs,
        runs=store.runs,
        routes=store.routes,
        slots=store.slots,
        other_instance_slots=store.slots,  # one process holds the whole store
        api_keys=store.api_keys,
        instances=store.instances,
        other_instances=store.instances,
        webhooks=store.webhooks,
        other_webhooks=store.webhooks,
        webhook_secrets=store.webhook_secrets,
    )


def sql_backend(name: str, engine: AsyncEngine, other_engine: AsyncEngine) -> Backend:
    sessions = create_sessionmaker(engine)
    return Backend(
        name=name,
        organizations=SqlOrganizationRepository(sessions),
        workflows=SqlWorkflowRepository(sessions),
        configs=SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY)),
        runs=SqlWorkflowRunRepository(sessions),
        routes=SqlCallRoutes(sessions),
        slots=SqlCallSlots(sessions),
        other_instance_slots=SqlCallSlots(create_sessionmaker(other_engine)),
        api_keys=SqlApiKeyRepository(sessions),
        instances=SqlInstances(sessions),
        other_instances=SqlInstances(create_sessionmaker(other_engine)),
        webhooks=SqlWebhookOutbox(sessions),
        other_webhooks=SqlWebhookOutbox(create_sessionmaker(other_engine)),
        webhook_secrets=SqlWebhookSecrets(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY)),
    )


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("contract") / "agent-stream.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        upgrade(url)
        yield url


async def _engine_pair(url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    engines = (create_engine(url), create_engine(url))
    try:
        yield engines
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.fixture(scope="session")
async def sqlite_engines(sqlite_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    async for engines in _engine_pair(sqlite_url):
        yield engines


@pytest.fixture(scope="session")
async def postgres_engines(postgres_database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    async for engines in _engine_pair(postgres_database_url):
        yield engines


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    name: str = request.param
    if name == "memory":
        return memory_backend()
    engine, other_engine = request.getfixturevalue(f"{name}_engines")
    return sql_backend(name, engine, other_engine)
