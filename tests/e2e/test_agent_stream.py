"""The agent-stream endpoint end to end: real app, real PostgreSQL, real sockets, stand-in Cloudonix."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from websockets.asyncio.client import connect

from domain.telephony import Provider, SecretStr, TelephonyConfig
from domain.workflow_run import RunState
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, Caller, call, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory


async def test_happy_path_runs_and_completes(tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-happy")
    result = await call(
        tenant.stream_url(), CONNECTED, start_event("S-happy", account_sid=tenant.domain), stop_event()
    )
    assert (result.code, result.reason) == (1000, "")
    run = await tenant.only_run()
    assert re.fullmatch(r"WR-AGS-\d{8}", run.name)
    assert (run.state, run.end_reason, run.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    assert (run.call_type, run.mode) == ("inbound", "cloudonix")
    assert run.initial_context["caller_number"] == "+15555550100"
    assert run.initial_context["called_number"] == "+15555550199"
    assert run.initial_context["company"] == "Acme"
    assert run.gathered_context["call_id"] == "call-e2e"
    assert run.logs["inbound_webhook"]["domain"] == tenant.domain
    assert run.logs["stream"]["session"] == "S-happy"
    [validate] = cloudonix.requests_for("validate")
    assert validate.path == f"/customers/self/domains/{tenant.domain}.cloudonix.net/sessions/S-happy"
    assert validate.headers["authorization"] == f"Bearer {tenant.token}"


async def test_the_spec_example_url_pasted_unencoded_keeps_the_plus(
    tenant: Tenant, cloudonix: CloudonixStandIn
):
    # the spec's example, as Cloudonix users paste it: `+` unencoded, which a query decodes to a space
    cloudonix.add_session(tenant.domain, "S-plus")
    base = tenant.app_url.replace("http://", "ws://")
    url = (
        f"{base}/api/v1/agent-stream/{tenant.agent_uuid}"
        f"?provider=cloudonix&Domain={tenant.domain}&callId=call-plus&from=+15555550100&to=+15555550199"
    )
    start = start_event("S-plus", account_sid=tenant.domain, **{"from": None, "to": None})
    result = await call(url, CONNECTED, start, stop_event())
    assert (result.code, result.reason) == (1000, "")
    run = await tenant.only_run()
    assert run.initial_context["caller_number"] == "+15555550100"
    assert run.initial_context["called_number"] == "+15555550199"


async def test_path_form_of_the_url(tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-path")
    result = await call(tenant.stream_url(path_provider=True), CONNECTED, start_event("S-path"), stop_event())
    assert (result.code, result.reason) == (1000, "")
    assert (await tenant.only_run()).state is RunState.COMPLETED


async def test_a_domain_that_names_nothing_counts_as_none(tenant: Tenant, cloudonix: CloudonixStandIn):
    """`Domain=.` normalises to nothing: `start`'s accountSid names the configuration (it used to
    trip an assertion and close 1011)."""
    cloudonix.add_session(tenant.domain, "S-dot")
    result = await call(
        tenant.stream_url(Domain="."),
        CONNECTED,
        start_event("S-dot", account_sid=tenant.domain),
        stop_event(),
    )
    assert (result.code, result.reason) == (1000, "")
    assert (await tenant.only_run()).state is RunState.COMPLETED


async def test_domain_from_start_account_sid_when_the_url_has_none(
    tenant: Tenant, cloudonix: CloudonixStandIn
):
    cloudonix.add_session(tenant.domain, "S-acc")
    result = await call(
        tenant.stream_url(Domain=None),
        CONNECTED,
        start_event("S-acc", account_sid=f"{tenant.domain}.cloudonix.net"),
        stop_event(),
    )
    assert (result.code, result.reason) == (1000, "")


async def test_caller_closing_the_socket_ends_the_run_completed(tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-close")
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(start_event("S-close"))
        await asyncio.sleep(0.3)
    for _ in range(50):
        run = await tenant.only_run()
        if run.state.terminal:
            break
        await asyncio.sleep(0.05)
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")


# --- 4400: each cause on its own -------------------------------------------------------------


async def _refused_4400(tenant: Tenant, url: str, *messages, reason: str, timeout: float = 10) -> None:
    result = await call(url, *messages, timeout=timeout)
    assert (result.code, result.reason) == (4400, reason)
    run = await tenant.only_run()
    assert (run.state, run.close_code, run.close_reason, run.end_reason) == (
        RunState.FAILED,
        4400,
        reason,
        "error",
    )


async def test_missing_domain(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(Domain=None),
        CONNECTED,
        start_event("S", account_sid=None),
        reason="Missing Domain",
    )


async def test_no_matching_configuration(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(Domain="nobody"),
        CONNECTED,
        start_event("S"),
        reason="Unknown Cloudonix domain: nobody.cloudonix.net",
    )


async def test_configuration_without_bearer_token(tenants: TenantFactory, tenant: Tenant):
    await tenants.configs.add(
        TelephonyConfig(
            organization_id=tenant.organization_id,
            provider=Provider.CLOUDONIX,
            domain_id="tokenless.example.com",
            bearer_token=SecretStr(""),
        )
    )
    await _refused_4400(
        tenant,
        tenant.stream_url(Domain="tokenless.example.com"),
        CONNECTED,
        start_event("S"),
        reason="Cloudonix configuration missing bearer_token",
    )


async def test_start_before_connected(tenant: Tenant):
    await _refused_4400(tenant, tenant.stream_url(), start_event("S"), reason="Expected connected event")


async def test_media_instead_of_start(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        {"event": "media", "media": {"payload": "/w=="}},
        reason="Expected start event",
    )


async def test_invalid_json(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        "{this is not json",
        reason="Invalid JSON in handshake message",
    )


async def test_start_without_identifiers(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        start_event("S", callSid=None),
        reason="Missing stream identifiers",
    )


async def test_unsupported_media_format(tenant: Tenant):
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        start_event("S", mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": 16000}),
        reason="Unsupported media format: sampleRate 16000",
    )


async def test_nothing_within_the_handshake_timeout(tenant: Tenant):
    await _refused_4400(tenant, tenant.stream_url(), reason="Handshake timeout")


async def test_no_start_within_the_handshake_timeout(tenant: Tenant):
    await _refused_4400(tenant, tenant.stream_url(), CONNECTED, reason="Handshake timeout")


async def test_session_unknown_to_cloudonix(tenant: Tenant, cloudonix: CloudonixStandIn):
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        start_event("S-unknown"),
        reason="Cloudonix session validation failed",
    )
    assert len(cloudonix.requests_for("validate")) == 1


async def test_session_validation_server_error(tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-500")
    cloudonix.respond_with("validate", 500)
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        start_event("S-500"),
        reason="Cloudonix session validation failed",
    )


async def test_session_validation_that_never_answers(tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.add_session(tenant.domain, "S-hang")
    cloudonix.hang("validate")
    loop = asyncio.get_running_loop()
    began = loop.time()
    await _refused_4400(
        tenant,
        tenant.stream_url(),
        CONNECTED,
        start_event("S-hang"),
        reason="Cloudonix session validation failed",
    )
    assert loop.time() - began < 5  # bounded by the provider timeout, not by the stand-in


async def test_same_domain_in_another_organisation_is_never_used(
    tenants: TenantFactory, tenant: Tenant, cloudonix: CloudonixStandIn
):
    other = await tenants.create(domain=f"shared{uuid.uuid4().hex[:6]}")
    cloudonix.add_domain(other.domain, other.token, sessions={"S-x"})
    await _refused_4400(
        tenant,
        tenant.stream_url(Domain=other.domain),
        CONNECTED,
        start_event("S-x"),
        reason=f"Unknown Cloudonix domain: {other.domain}.cloudonix.net",
    )
    assert all(other.token not in str(r.headers) for r in cloudonix.requests)


# --- 1008 and 1011 --------------------------------------------------------------------------


async def test_unknown_agent_is_1008(tenant: Tenant):
    url = tenant.stream_url().replace(str(tenant.agent_uuid), str(uuid.uuid4()))
    result = await call(url, CONNECTED, start_event("S"))
    assert (result.code, result.reason) == (1008, "Workflow not found")
    assert await tenant.all_runs() == []


async def test_unknown_provider_is_1008(tenant: Tenant):
    result = await call(tenant.stream_url(provider="skype"), CONNECTED)
    assert (result.code, result.reason) == (1008, "Unknown provider: skype")


async def test_known_provider_without_agent_stream_is_1011(tenant: Tenant):
    result = await call(tenant.stream_url(provider="twilio"), CONNECTED, start_event("S"))
    assert (result.code, result.reason) == (1011, "Agent-stream not supported for provider twilio")
    run = await tenant.only_run()
    assert (run.state, run.close_code) == (RunState.FAILED, 1011)


async def test_quota_exceeded_is_1008(tenants: TenantFactory):
    broke = await tenants.create(monthly_minutes=0)
    result = await call(broke.stream_url(), CONNECTED, start_event("S"))
    assert (result.code, result.reason) == (1008, "Quota exceeded")
    assert await broke.all_runs() == []


async def test_concurrent_call_limit_and_slot_release(tenants: TenantFactory, cloudonix: CloudonixStandIn):
    small = await tenants.create(max_concurrent_calls=1)
    cloudonix.add_domain(small.domain, small.token, sessions={"S-1", "S-3"})
    async with connect(small.stream_url(), compression=None) as ws:
        first = Caller(ws)
        await first.send(CONNECTED)
        await first.send(start_event("S-1"))
        for _ in range(100):  # the first call is live once its run is running
            runs = await small.all_runs()
            if runs and runs[0].state is RunState.RUNNING and "stream" in runs[0].logs:
                break
            await asyncio.sleep(0.02)
        second = await call(small.stream_url(), CONNECTED, start_event("S-2"))
        assert (second.code, second.reason) == (1008, "Concurrent call limit reached")
        await first.send(stop_event())
        await first.wait_closed()
    third = await call(small.stream_url(), CONNECTED, start_event("S-3"), stop_event())
    assert (third.code, third.reason) == (1000, "")


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_health_and_ready(app_url: str, path: str):
    import httpx

    async with httpx.AsyncClient() as client:
        answer = await client.get(app_url + path)
    assert answer.status_code == 200
