"""API keys and organisation scoping, for every route of the management API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.api_keys import new_api_key
from domain.workflow_run import WorkflowRun, run_name
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import stop_event
from tests.e2e.conftest import Tenant, TenantFactory
from tests.e2e.test_rest_runs import _until, live_call
from tests.factories import AgentCreateFactory, TelephonyConfigurationCreateFactory, TransferRequestFactory


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {agent}, {config}, {run} placeholders
    body: dict[str, Any] | None = None

    def url(self, agent: str, config: int, run: int) -> str:
        return self.path.format(agent=agent, config=config, run=run)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("POST", "/api/v1/agents", {"name": "x", "definition": {"engine": "linetest"}}),
    Route("GET", "/api/v1/agents"),
    Route("GET", "/api/v1/agents/{agent}"),
    Route("PATCH", "/api/v1/agents/{agent}", {"name": "taken over"}),
    Route("GET", "/api/v1/agents/{agent}/runs"),
    Route("GET", "/api/v1/agents/{agent}/stream-url?domain=acme"),
    Route(
        "POST",
        "/api/v1/telephony-configurations",
        {"provider": "cloudonix", "domain_id": "x", "bearer_token": "t"},
    ),
    Route("GET", "/api/v1/telephony-configurations"),
    Route("DELETE", "/api/v1/telephony-configurations/{config}"),
    Route("GET", "/api/v1/runs/{run}"),
    Route("POST", "/api/v1/runs/{run}/hangup"),
    Route("POST", "/api/v1/runs/{run}/transfer", {"destination": "+15555550123"}),
]
OWN_OBJECT_ROUTES = [route for route in ROUTES if "{" in route.path]


@dataclass
class Owned:
    """Organisation A's objects: its agent, a configuration and a run."""

    tenant: Tenant
    config_id: int
    run_id: int

    def url(self, route: Route) -> str:
        return route.url(str(self.tenant.agent_uuid), self.config_id, self.run_id)


@pytest.fixture
async def owned(api: httpx.AsyncClient, tenants: TenantFactory) -> Owned:
    tenant = await tenants.create()
    configs = (await api.get("/api/v1/telephony-configurations", headers=tenant.auth)).json()
    run = await tenant.runs.add(
        WorkflowRun(
            name=run_name(1),
            workflow_id=tenant.workflow_id,
            agent_uuid=tenant.agent_uuid,
            mode="cloudonix",
            created_at=datetime.now(UTC),
            initial_context={"caller_number": "+15555550100"},
        )
    )
    assert run.id is not None
    return Owned(tenant, configs[0]["id"], run.id)


def _send(api: httpx.AsyncClient, route: Route, url: str, headers: dict[str, str]) -> Any:
    return api.request(route.method, url, json=route.body, headers=headers)


# -- 401 ------------------------------------------------------------------------------------------


BAD_CREDENTIALS = {
    "no header": {},
    "unknown key": {"Authorization": f"Bearer {new_api_key()}"},
    "scheme alone": {"Authorization": "Bearer"},
    "other scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "key without scheme": {"Authorization": new_api_key()},
    "very long key": {"Authorization": "Bearer " + "k" * 4000},
}


@pytest.mark.parametrize("route", ROUTES, ids=str)
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=str)
async def test_every_route_needs_a_valid_api_key(api: httpx.AsyncClient, route: Route, credentials: str):
    response = await _send(api, route, route.url(str(uuid.uuid4()), 1, 1), BAD_CREDENTIALS[credentials])

    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert set(response.json()) == {"detail"}


async def test_the_key_is_checked_before_the_body(api: httpx.AsyncClient):
    response = await api.post(
        "/api/v1/agents", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401


async def test_the_scheme_is_case_insensitive(api: httpx.AsyncClient, owned: Owned):
    response = await api.get("/api/v1/agents", headers={"Authorization": f"bearer {owned.tenant.api_key}"})

    assert response.status_code == 200


async def test_the_transfer_callback_needs_no_key(api: httpx.AsyncClient):
    response = await api.post("/api/v1/telephony/cloudonix/transfer-result/unknown", json={"status": "busy"})

    assert response.status_code == 404  # not 401: the transfer id is the capability


async def test_health_and_schema_need_no_key(api: httpx.AsyncClient):
    assert (await api.get("/health")).status_code == 200
    schema = await api.get("/schema")
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema.json()["components"]["securitySchemes"]["BearerAuth"]["description"],
    }


# -- another organisation's objects: 404, never their data ---------------------------------------


@pytest.mark.parametrize("route", OWN_OBJECT_ROUTES, ids=str)
async def test_another_organisations_objects_are_not_found(
    api: httpx.AsyncClient, tenants: TenantFactory, owned: Owned, route: Route
):
    stranger = await tenants.create()

    response = await _send(api, route, owned.url(route), stranger.auth)

    assert response.status_code == 404, response.text
    assert set(response.json()) == {"detail"}
    for secret in (str(owned.tenant.agent_uuid), owned.tenant.token, owned.tenant.domain, "front desk"):
        assert secret not in response.text
    # ... and nothing changed for the owner
    agent = (await api.get(f"/api/v1/agents/{owned.tenant.agent_uuid}", headers=owned.tenant.auth)).json()
    assert agent["name"] == "front desk"
    configs = (await api.get("/api/v1/telephony-configurations", headers=owned.tenant.auth)).json()
    assert [c["id"] for c in configs] == [owned.config_id]
    assert (await api.get(f"/api/v1/runs/{owned.run_id}", headers=owned.tenant.auth)).status_code == 200


async def test_lists_hold_only_the_organisations_own_objects(
    api: httpx.AsyncClient, tenants: TenantFactory, owned: Owned
):
    stranger = await tenants.create()
    created = await api.post("/api/v1/agents", json=AgentCreateFactory.body(), headers=stranger.auth)
    config = await api.post(
        "/api/v1/telephony-configurations",
        json=TelephonyConfigurationCreateFactory.body(),
        headers=stranger.auth,
    )

    agents = (await api.get("/api/v1/agents", headers=stranger.auth)).json()
    configs = (await api.get("/api/v1/telephony-configurations", headers=stranger.auth)).json()
    owner_agents = (await api.get("/api/v1/agents", headers=owned.tenant.auth)).json()
    owner_configs = (await api.get("/api/v1/telephony-configurations", headers=owned.tenant.auth)).json()

    assert [a["uuid"] for a in agents] == [str(stranger.agent_uuid), created.json()["uuid"]]
    assert [c["domain_id"] for c in configs] == [
        f"{stranger.domain}.cloudonix.net",
        config.json()["domain_id"],
    ]
    assert [a["uuid"] for a in owner_agents] == [str(owned.tenant.agent_uuid)]
    assert [c["id"] for c in owner_configs] == [owned.config_id]


async def test_another_organisation_cannot_touch_a_live_call(
    api: httpx.AsyncClient, tenants: TenantFactory, tenant: Tenant, cloudonix: CloudonixStandIn
):
    stranger = await tenants.create()
    async with live_call(tenant, cloudonix, "S-private") as caller:
        run = await _until(api, tenant, "running", lambda r: "stream" in r["logs"])

        hangup = await api.post(f"/api/v1/runs/{run['id']}/hangup", headers=stranger.auth)
        transfer = await api.post(
            f"/api/v1/runs/{run['id']}/transfer", json=TransferRequestFactory.body(), headers=stranger.auth
        )

        assert (hangup.status_code, transfer.status_code) == (404, 404)
        assert cloudonix.hangups == []
        assert cloudonix.dials == []
        await caller.send(stop_event())
        result = await caller.wait_closed()
    assert result.code == 1000
    assert (await _until(api, tenant, "completed"))["end_reason"] == "caller_hangup"


async def test_an_unknown_id_and_a_foreign_id_answer_alike(
    api: httpx.AsyncClient, tenants: TenantFactory, owned: Owned
):
    stranger = await tenants.create()

    foreign = await api.get(f"/api/v1/agents/{owned.tenant.agent_uuid}", headers=stranger.auth)
    unknown = await api.get(f"/api/v1/agents/{uuid.uuid4()}", headers=stranger.auth)

    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
