"""`/api/v1/agents` over HTTP against the served app on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory
from tests.factories import AgentCreateFactory, AgentUpdateFactory

AGENTS = "/api/v1/agents"


async def _create(api: httpx.AsyncClient, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body = AgentCreateFactory.body(**overrides)
    response = await api.post(AGENTS, json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_answers_the_agent(api: httpx.AsyncClient, tenant: Tenant):
    body = AgentCreateFactory.body()

    response = await api.post(AGENTS, json=body, headers=tenant.auth)

    assert response.status_code == 201, response.text
    agent = response.json()
    assert set(agent) >= {
        "uuid",
        "name",
        "status",
        "definition",
        "template_context_variables",
        "created_at",
        "updated_at",
    }
    uuid.UUID(agent["uuid"])
    assert agent["name"] == body["name"]
    assert agent["status"] == body["status"]
    assert agent["definition"] == body["definition"]
    assert agent["template_context_variables"] == body["template_context_variables"]
    assert datetime.fromisoformat(agent["created_at"]) == datetime.fromisoformat(agent["updated_at"])


async def test_create_fills_the_defaults(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.post(
        AGENTS, json={"name": "  Line test  ", "definition": {"engine": "linetest"}}, headers=tenant.auth
    )

    assert response.status_code == 201, response.text
    agent = response.json()
    assert agent["name"] == "Line test"
    assert agent["status"] == "draft"
    assert agent["definition"] == {"engine": "linetest", "max_call_seconds": 600}
    assert agent["template_context_variables"] == {}


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"engine": "nonsense"}, "definition.engine"),
        ({"engine": "linetest", "max_call_seconds": -5}, "definition.max_call_seconds"),
        ({"engine": "linetest", "max_call_seconds": 0}, "definition.max_call_seconds"),
        ({"engine": "linetest", "max_call_seconds": "600"}, "definition.max_call_seconds"),
        ({"engine": "linetest", "max_call_seconds": 10**400}, "definition.max_call_seconds"),
        ({"engine": "linetest", "max_call_seconds": 86_401}, "definition.max_call_seconds"),
        ({"engine": "linetest", "greeting": 7}, "definition.greeting"),
        ({"engine": "pipecat", "turn_detection": "model"}, "definition.turn_detection"),
        ({"engine": "pipecat", "turn_fallback_secs": 0}, "definition.turn_fallback_secs"),
        ({"engine": "pipecat", "turn_fallback_secs": "1"}, "definition.turn_fallback_secs"),
        ({"engine": "pipecat", "backchannel_max_secs": -0.1}, "definition.backchannel_max_secs"),
        ({"engine": "pipecat", "backchannel_max_secs": True}, "definition.backchannel_max_secs"),
        ({"engine": "linetest", "notes": "nul \u0000 inside"}, "definition"),
    ],
)
async def test_a_bad_definition_is_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, definition: dict[str, Any], field: str
):
    response = await api.post(AGENTS, json={"name": "x", "definition": definition}, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   ", "definition": {}}, "name"),
        ({"name": "a\u0000b", "definition": {}}, "name"),
        (
            {"name": "x", "definition": {}, "template_context_variables": {"k": "\u0000"}},
            "template_context_variables",
        ),
    ],
)
async def test_other_bad_values_are_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
):
    response = await api.post(AGENTS, json=body, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"definition": {"engine": "linetest"}}, "name"),  # no name
        ({"name": "x"}, "definition"),  # no definition
        ({"name": "x", "definition": {}, "status": "archived"}, "status"),
        ({"name": "x", "definition": []}, "definition"),
        ({"name": "x" * 256, "definition": {}}, "name"),
        ({"name": "x", "definition": {}, "template_variables": {}}, "template_variables"),  # misspelt
        ([], "body"),
    ],
)
async def test_a_malformed_body_is_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, body: Any, field: str
):
    response = await api.post(AGENTS, json=body, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"Invalid request: {field}: "), response.text
    assert response.json()["errors"][0]["field"] == field


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.post(
        AGENTS, content=b"{not json", headers={**tenant.auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert "detail" in response.json()


async def test_list_holds_the_organisations_agents_oldest_first(
    api: httpx.AsyncClient, tenants: TenantFactory
):
    mine, other = await tenants.create(), await tenants.create()
    first = await _create(api, mine)
    second = await _create(api, mine)
    await _create(api, other)

    response = await api.get(AGENTS, headers=mine.auth)

    assert response.status_code == 200
    listed = response.json()
    assert [agent["uuid"] for agent in listed] == [str(mine.agent_uuid), first["uuid"], second["uuid"]]
    assert listed[1] == first


async def test_get_answers_one_agent(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant)

    response = await api.get(f"{AGENTS}/{created['uuid']}", headers=tenant.auth)

    assert response.status_code == 200
    assert response.json() == created


async def test_get_of_an_unknown_agent_is_404(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(f"{AGENTS}/{uuid.uuid4()}", headers=tenant.auth)

    assert response.status_code == 404
    assert response.json() == {"detail": "Agent not found"}


async def test_a_path_that_is_no_uuid_is_not_found(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(f"{AGENTS}/not-a-uuid", headers=tenant.auth)

    assert response.status_code == 404
    assert "detail" in response.json()


async def test_patch_changes_only_the_given_fields_and_never_the_uuid(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant, status="draft")
    await asyncio.sleep(0.01)

    response = await api.patch(
        f"{AGENTS}/{created['uuid']}",
        json={"status": "published", "uuid": str(uuid.uuid4())},
        headers=tenant.auth,
    )
    assert response.status_code == 422  # `uuid` is not a field one can send
    assert response.json()["detail"] == "Invalid request: uuid: is not a field one can send"

    response = await api.patch(
        f"{AGENTS}/{created['uuid']}", json={"status": "published"}, headers=tenant.auth
    )

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["uuid"] == created["uuid"]
    assert updated["status"] == "published"
    assert {k: v for k, v in updated.items() if k not in ("status", "updated_at")} == {
        k: v for k, v in created.items() if k not in ("status", "updated_at")
    }
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(created["updated_at"])
    fetched = await api.get(f"{AGENTS}/{created['uuid']}", headers=tenant.auth)
    assert fetched.json() == updated


async def test_patch_with_every_field(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant)
    body = AgentUpdateFactory.body()

    response = await api.patch(f"{AGENTS}/{created['uuid']}", json=body, headers=tenant.auth)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["uuid"] == created["uuid"]
    assert updated["created_at"] == created["created_at"]
    assert (updated["name"], updated["status"]) == (body["name"], body["status"])
    assert updated["definition"]["max_call_seconds"] == body["definition"]["max_call_seconds"]
    assert updated["template_context_variables"] == body["template_context_variables"]


async def test_an_empty_patch_changes_nothing(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant)

    response = await api.patch(f"{AGENTS}/{created['uuid']}", json={}, headers=tenant.auth)

    assert response.status_code == 200
    assert response.json() == created


async def test_patch_validates_like_create(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant)
    url = f"{AGENTS}/{created['uuid']}"

    bad_engine = await api.patch(url, json={"definition": {"engine": "gpt"}}, headers=tenant.auth)
    negative = await api.patch(
        url, json={"definition": {"engine": "linetest", "max_call_seconds": -1}}, headers=tenant.auth
    )
    bad_status = await api.patch(url, json={"status": "gone"}, headers=tenant.auth)

    assert bad_engine.status_code == 422
    assert bad_engine.json()["detail"].startswith("definition.engine:")
    assert negative.status_code == 422
    assert negative.json()["detail"].startswith("definition.max_call_seconds:")
    assert bad_status.status_code == 422
    assert bad_status.json()["detail"].startswith("Invalid request: status: ")
    assert (await api.get(url, headers=tenant.auth)).json() == created


async def test_patch_of_an_unknown_agent_is_404(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.patch(f"{AGENTS}/{uuid.uuid4()}", json={"name": "x"}, headers=tenant.auth)

    assert response.status_code == 404


@pytest.mark.parametrize("status", ["draft", "published"])
async def test_an_agent_made_through_the_api_takes_calls_in_either_status(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn, status: str
):
    created = await _create(api, tenant, status=status, definition={"engine": "linetest"})
    session = f"S-{status}"
    cloudonix.add_session(tenant.domain, session)
    url = tenant.stream_url().replace(str(tenant.agent_uuid), created["uuid"])

    result = await call(url, CONNECTED, start_event(session), stop_event())

    assert (result.code, result.reason) == (1000, "")
    runs = await api.get(f"{AGENTS}/{created['uuid']}/runs", headers=tenant.auth)
    [run] = runs.json()["items"]
    assert run["state"] == RunState.COMPLETED
    assert run["agent_uuid"] == created["uuid"]
