"""End-to-end fixtures: PostgreSQL (tests/pg.py), the stand-in Cloudonix API and the served app."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.database import create_engine, create_sessionmaker, upgrade
from adapters.sql.repositories import (
    SqlApiKeyRepository,
    SqlOrganizationRepository,
    SqlTelephonyConfigRepository,
    SqlWorkflowRepository,
    SqlWorkflowRunRepository,
)
from adapters.system.clock import SystemClock
from adapters.system.crypto import FernetCredentialCipher
from application.management import AddCloudonixConfiguration, AgentDraft, CreateAgent, CreateOrganization
from domain.workflow_run import WorkflowRun
from entrypoints.logging import configure_logging, make_formatter
from entrypoints.settings import Settings
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.pg import fresh_postgres_database
from tests.served import free_port, served_app

HANDSHAKE_TIMEOUT = 1.0
SECRET_KEY = "e2e-secret-key-that-encrypts-provider-tokens"
PROVIDER_TIMEOUT = 0.5


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_postgres_database("agent_stream_e2e") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def cloudonix_api() -> Iterator[CloudonixStandIn]:
    with CloudonixStandIn() as standin:
        yield standin


@pytest.fixture
def cloudonix(cloudonix_api: CloudonixStandIn) -> Iterator[CloudonixStandIn]:
    cloudonix_api.reset()
    yield cloudonix_api
    cloudonix_api.reset()


@pytest.fixture(scope="session")
def app_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def recordings_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="session")
def settings(
    database_url: str, cloudonix_api: CloudonixStandIn, app_port: int, recordings_folder: Path
) -> Settings:
    return Settings(
        database_url=database_url,
        public_url=f"http://127.0.0.1:{app_port}",
        secret_key=SECRET_KEY,
        cloudonix_api_url=cloudonix_api.url,
        handshake_timeout=HANDSHAKE_TIMEOUT,
        provider_timeout=PROVIDER_TIMEOUT,
        lookup_failures_per_minute=0,
        instance_ttl=30,
        busy_lag_ms=0,  # the test process shares its GIL with the app: admission is tested on its own
        log_format="json",
        webhook_allow_private=True,  # the tests' webhook receivers are on loopback
        recordings_url=f"file://{recordings_folder}",
    )


@pytest.fixture(scope="session")
def app_url(settings: Settings, app_port: int) -> Iterator[str]:
    configure_logging("json", logging.INFO)
    with served_app(settings, port=app_port) as url:
        yield url


@pytest.fixture(scope="session")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Tenant:
    """An organisation with one linetest agent and one Cloudonix configuration."""

    organization_id: int
    agent_uuid: uuid.UUID
    workflow_id: int
    domain: str  # as an operator would type it (short form)
    token: str
    app_url: str
    runs: SqlWorkflowRunRepository
    api_key: str = ""  # the organisation's API key, for the REST API

    @property
    def auth(self) -> dict[str, str]:
        """The REST API's `Authorization` header for this organisation."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def stream_url(self, path_provider: bool = False, **query: str | None) -> str:
        params: dict[str, str | None] = {
            "provider": "cloudonix",
            "Domain": self.domain,
            "callId": "call-e2e",
            "from": "+15555550100",
            "to": "+15555550199",
        }
        params.update(query)
        clean = {k: v for k, v in params.items() if v is not None}
        base = self.app_url.replace("http://", "ws://")
        if path_provider:
            clean.pop("provider", None)
            return f"{base}/api/v1/agent-stream/cloudonix/{self.agent_uuid}?{urlencode(clean)}"
        return f"{base}/api/v1/agent-stream/{self.agent_uuid}?{urlencode(clean)}"

    async def only_run(self) -> WorkflowRun:
        runs = await self.runs.list_for_workflow(self.workflow_id, 10)
        assert len(runs) == 1, runs
        return runs[0]

    async def all_runs(self) -> list[WorkflowRun]:
        return await self.runs.list_for_workflow(self.workflow_id, 100)

    async def ended_run(self, within: float) -> WorkflowRun:
        """The only run, once it is terminal; fails if it is not within `within` seconds. A run
        not minted yet is waited for too: a socket the server closed early (1009) may reach the
        caller before the run is written."""
        run = None
        for _ in range(round(within / 0.05)):
            runs = await self.all_runs()
            assert len(runs) <= 1, runs
            run = runs[0] if runs else None
            if run is not None and run.state.terminal:
                return run
            await asyncio.sleep(0.05)
        raise AssertionError(f"the run did not end: {run}")


class TenantFactory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], app_url: str) -> None:
        self._organizations = SqlOrganizationRepository(sessions)
        self._workflows = SqlWorkflowRepository(sessions)
        self._configs = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(SECRET_KEY))
        self._api_keys = SqlApiKeyRepository(sessions)
        self.runs = SqlWorkflowRunRepository(sessions)
        self._app_url = app_url

    async def create(
        self,
        max_concurrent_calls: int = 10,
        monthly_minutes: int = 1000,
        definition: dict[str, Any] | None = None,
        domain: str | None = None,
        token: str | None = None,
    ) -> Tenant:
        org = await CreateOrganization(self._organizations, self._api_keys).execute(
            f"org-{uuid.uuid4().hex[:6]}", max_concurrent_calls, monthly_minutes
        )
        agent = await CreateAgent(self._organizations, self._workflows, SystemClock()).execute(
            org.organization_id,
            AgentDraft(
                name="front desk",
                definition=definition or {"engine": "linetest"},
                template_variables={"company": "Acme"},
            ),
        )
        domain = domain or f"tenant{uuid.uuid4().hex[:8]}"
        token = token or f"cx-token-{uuid.uuid4().hex}"
        await AddCloudonixConfiguration(self._configs).execute(org.organization_id, domain, token)
        assert agent.id is not None
        return Tenant(
            org.organization_id, agent.uuid, agent.id, domain, token, self._app_url, self.runs, org.api_key
        )

    async def add_config(self, organization_id: int, domain: str, token: str) -> None:
        await AddCloudonixConfiguration(self._configs).execute(organization_id, domain, token)

    @property
    def configs(self) -> SqlTelephonyConfigRepository:
        return self._configs


@pytest.fixture(scope="session")
def tenants(sessions: async_sessionmaker[AsyncSession], app_url: str) -> TenantFactory:
    return TenantFactory(sessions, app_url)


@pytest.fixture
async def tenant(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create()
    cloudonix.add_domain(created.domain, created.token)
    return created


@pytest.fixture
async def api(app_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the served app (no credentials: pass `tenant.auth`)."""
    async with httpx.AsyncClient(base_url=app_url, timeout=10) as client:
        yield client


@pytest.fixture
def captured_logs(app_url: str) -> Iterator[io.StringIO]:
    """Every log line while the test runs, through the formatter `serve` installs with
    AGENT_STREAM_LOG_FORMAT=json (the served app runs in this process)."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(make_formatter("json"))
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
