"""End-of-call webhooks through the served app: an agent with a `webhook_url` and a secret gets one
verified POST per ended call, shown on the run; the Runs tab filters by disposition; and across a
kill -9 of a `serve` process between the run's end and the delivery, exactly one more POST comes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.processes import serve_env, serve_process
from tests.served import free_port
from tests.webhook_receiver import WebhookReceiver, webhook_receiver


async def _hook_up(api: httpx.AsyncClient, tenant: Tenant, url: str) -> str:
    """Give the tenant's agent `url` as its webhook (through the API) and a new secret."""
    changed = await api.patch(
        f"/api/v1/agents/{tenant.agent_uuid}",
        json={"definition": {"engine": "linetest", "webhook_url": url}},
        headers=tenant.auth,
    )
    assert changed.status_code == 200, changed.text
    created = await api.post(f"/api/v1/agents/{tenant.agent_uuid}/webhook-secret", headers=tenant.auth)
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


async def _call(tenant: Tenant, cloudonix: CloudonixStandIn, session: str) -> None:
    cloudonix.add_session(f"{tenant.domain}.cloudonix.net", session)
    result = await call(tenant.stream_url(), CONNECTED, start_event(session, tenant.domain), stop_event())
    assert result.code == 1000


async def _received(receiver: WebhookReceiver, count: int, within: float = 15.0) -> None:
    await asyncio.to_thread(receiver.wait_for, count, within)


async def _run_document(api: httpx.AsyncClient, tenant: Tenant, run_id: int) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/runs/{run_id}", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


async def test_an_ended_call_is_posted_signed_and_retried_after_a_500(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        secret = await _hook_up(api, tenant, receiver.url)
        await _call(tenant, cloudonix, "S-hook")
        await _received(receiver, 2)
        first, second = receiver.received
        assert (first.status, second.status) == (500, 204)
        payload = Webhook(secret).verify(second.body, second.headers)
        run = await tenant.only_run()
        assert payload["type"] == "run.ended"
        assert payload["data"]["id"] == run.id
        assert payload["data"]["disposition"] == run.disposition == "no_speech"
        assert payload["data"]["end_reason"] == "caller_hangup"
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        for _ in range(100):  # the attempt is stored just after the answer
            document = await _run_document(api, tenant, run.stored_id)
            if document["webhook"]["state"] == "delivered":
                break
            await asyncio.sleep(0.05)
        assert document["webhook"] == {"state": "delivered", "attempts": 2, "last_status": 204}
        assert document["disposition"] == "no_speech"


async def test_a_rotated_secret_signs_the_next_call(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
) -> None:
    with webhook_receiver() as receiver:
        old = await _hook_up(api, tenant, receiver.url)
        rotated = await api.post(f"/api/v1/agents/{tenant.agent_uuid}/webhook-secret", headers=tenant.auth)
        new = rotated.json()["secret"]
        await _call(tenant, cloudonix, "S-rotated")
        await _received(receiver, 1)
        [post] = receiver.received
        Webhook(new).verify(post.body, post.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(post.body, post.headers)


async def test_another_organisation_gets_404_for_the_secret(
    api: httpx.AsyncClient, tenant: Tenant, tenants: TenantFactory
) -> None:
    other = await tenants.create()
    answer = await api.post(f"/api/v1/agents/{tenant.agent_uuid}/webhook-secret", headers=other.auth)
    assert answer.status_code == 404
    assert "secret" not in answer.text


async def test_a_run_without_a_webhook_shows_none_and_the_runs_tab_filters_by_disposition(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
) -> None:
    await _call(tenant, cloudonix, "S-plain")
    run = await tenant.ended_run(within=5)
    document = await _run_document(api, tenant, run.stored_id)
    assert "webhook" not in document
    url = f"/api/v1/agents/{tenant.agent_uuid}/runs"
    silent = await api.get(url, params={"disposition": "no_speech"}, headers=tenant.auth)
    assert [item["id"] for item in silent.json()["items"]] == [run.id]
    completed = await api.get(url, params={"disposition": "completed"}, headers=tenant.auth)
    assert completed.json()["items"] == []
    bad = await api.get(url, params={"disposition": "happy"}, headers=tenant.auth)
    assert bad.status_code == 422
    assert "disposition" in bad.json()["detail"]


async def test_a_webhook_url_is_validated_naming_the_field(api: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await api.patch(
        f"/api/v1/agents/{tenant.agent_uuid}",
        json={"definition": {"engine": "linetest", "webhook_url": "ftp://hooks.example.com/"}},
        headers=tenant.auth,
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("definition.webhook_url:")


async def test_a_kill_between_the_end_and_the_delivery_still_delivers_exactly_once_more(
    database_url: str, cloudonix: CloudonixStandIn, tenants: TenantFactory, tmp_path: Path
) -> None:
    with webhook_receiver(answers=[500]) as receiver:
        port = free_port()
        env = serve_env(
            database_url,
            cloudonix.url,
            SECRET_KEY,
            public_url=f"http://127.0.0.1:{port}",
            lookup_failures_per_minute="0",
            webhook_allow_private="true",
        )
        tenant = await tenants.create()
        cloudonix.add_domain(tenant.domain, tenant.token)
        async with serve_process(env, port, tmp_path / "first.log") as first:
            tenant.app_url = first.url
            async with httpx.AsyncClient(base_url=first.url, timeout=10) as api:
                secret = await _hook_up(api, tenant, receiver.url)
            await _call(tenant, cloudonix, "S-crash")
            await _received(receiver, 1)  # the 500: the delivery waits for its retry
            first.kill()  # kill -9 before the retry
        assert len(receiver.received) == 1
        async with serve_process(env, free_port(), tmp_path / "second.log"):
            await _received(receiver, 2, within=30)
            await asyncio.sleep(3)  # nothing more comes: it was delivered
        assert [post.status for post in receiver.received] == [500, 204]
        Webhook(secret).verify(receiver.received[1].body, receiver.received[1].headers)
