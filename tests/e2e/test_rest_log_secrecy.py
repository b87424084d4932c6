"""The management API never logs a bearer token, an API key or an agent UUID."""

from __future__ import annotations

import io
import secrets

import httpx

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.e2e.conftest import SECRET_KEY, Tenant
from tests.factories import AgentCreateFactory


async def test_no_credential_reaches_the_logs(
    captured_logs: io.StringIO, api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
):
    token = "cx-" + secrets.token_urlsafe(24)
    wrong_key = "ask_" + secrets.token_urlsafe(32)
    body = {"provider": "cloudonix", "domain_id": "logsecrecy", "bearer_token": token}
    await api.post("/api/v1/telephony-configurations", json=body, headers=tenant.auth)
    await api.post("/api/v1/telephony-configurations", json=body, headers=tenant.auth)  # 409
    await api.get("/api/v1/telephony-configurations", headers=tenant.auth)
    await api.get("/api/v1/telephony-configurations", headers={"Authorization": f"Bearer {wrong_key}"})
    agent = (await api.post("/api/v1/agents", json=AgentCreateFactory.body(), headers=tenant.auth)).json()
    agent_url = f"/api/v1/agents/{agent['uuid']}"
    await api.get(f"{agent_url}/stream-url", params={"domain": "acme"}, headers=tenant.auth)
    await api.patch(agent_url, json={"definition": {"engine": "x"}}, headers=tenant.auth)
    await api.get(f"/api/v1/agents/{tenant.agent_uuid}/runs", headers=tenant.auth)

    text = captured_logs.getvalue()
    for secret in (token, tenant.api_key, wrong_key, agent["uuid"], str(tenant.agent_uuid), SECRET_KEY):
        assert secret not in text
