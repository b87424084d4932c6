"""The Runs tab (`/agents/{uuid}/runs`), one run (`/runs/{id}`), and live call control over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from domain.workflow_run import WorkflowRun, run_name
from entrypoints.serialization import run_to_dict
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, Caller, CallResult, start_event, stop_event
from tests.e2e.conftest import Tenant
from tests.factories import TransferRequestFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _run(tenant: Tenant, number: int, **fields: Any) -> WorkflowRun:
    return WorkflowRun(
        name=run_name(number),
        workflow_id=tenant.workflow_id,
        agent_uuid=tenant.agent_uuid,
        mode="cloudonix",
        created_at=T0 + timedelta(seconds=number),
        initial_context={"caller_number": "+15555550100", "n": number},
        gathered_context={"call_id": f"call-{number}"},
        logs={"inbound_webhook": {"domain": tenant.domain}},
        **fields,
    )


async def _add_runs(tenant: Tenant, count: int) -> list[int]:
    semaphore = asyncio.Semaphore(8)

    async def add(number: int) -> int:
        async with semaphore:
            stored = await tenant.runs.add(_run(tenant, number))
        assert stored.id is not None
        return stored.id

    return list(await asyncio.gather(*(add(n) for n in range(count))))


def _runs_url(tenant: Tenant) -> str:
    return f"/api/v1/agents/{tenant.agent_uuid}/runs"


# -- the Runs tab -------------------------------------------------------------------------------


async def test_pages_through_250_runs_newest_first_without_gaps_or_repeats(
    api: httpx.AsyncClient, tenant: Tenant
):
    inserted = await _add_runs(tenant, 250)

    seen: list[int] = []
    pages: list[int] = []
    before_id: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if before_id is not None:
            params["before_id"] = before_id
        response = await api.get(_runs_url(tenant), params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_before_id"}
        pages.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        before_id = page["next_before_id"]
        if before_id is None:
            break
        assert before_id == page["items"][-1]["id"]

    assert pages == [100, 100, 50]
    assert seen == sorted(inserted, reverse=True)  # newest first, each once, none missing
    assert len(set(seen)) == 250


async def test_default_page_is_50_and_a_full_last_page_has_no_next(api: httpx.AsyncClient, tenant: Tenant):
    await _add_runs(tenant, 60)

    first = (await api.get(_runs_url(tenant), headers=tenant.auth)).json()
    second = (
        await api.get(_runs_url(tenant), params={"before_id": first["next_before_id"]}, headers=tenant.auth)
    ).json()
    exact = (await api.get(_runs_url(tenant), params={"limit": 60}, headers=tenant.auth)).json()

    assert len(first["items"]) == 50
    assert len(second["items"]) == 10
    assert second["next_before_id"] is None
    assert len(exact["items"]) == 60
    assert exact["next_before_id"] is None


async def test_an_agent_without_runs_has_an_empty_page(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(_runs_url(tenant), headers=tenant.auth)

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_before_id": None}


async def test_items_have_the_run_shape(api: httpx.AsyncClient, tenant: Tenant):
    stored = await tenant.runs.add(_run(tenant, 7))

    [item] = (await api.get(_runs_url(tenant), headers=tenant.auth)).json()["items"]

    assert item == run_to_dict(stored)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": -1}, {"limit": "ten"}, {"before_id": 0}, {"before_id": "x"}],
)
async def test_bad_paging_parameters_are_422_naming_them(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any]
):
    response = await api.get(_runs_url(tenant), params=params, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"Invalid request: {next(iter(params))}: ")


async def test_limits_at_the_edges_are_accepted(api: httpx.AsyncClient, tenant: Tenant):
    for limit in (1, 200):
        response = await api.get(_runs_url(tenant), params={"limit": limit}, headers=tenant.auth)
        assert response.status_code == 200


async def test_runs_of_an_unknown_agent_are_404(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get("/api/v1/agents/00000000-0000-4000-8000-000000000000/runs", headers=tenant.auth)

    assert response.status_code == 404
    assert response.json() == {"detail": "Agent not found"}


# -- one run ------------------------------------------------------------------------------------


async def test_get_answers_the_run(api: httpx.AsyncClient, tenant: Tenant):
    stored = await tenant.runs.add(_run(tenant, 3))

    response = await api.get(f"/api/v1/runs/{stored.id}", headers=tenant.auth)

    assert response.status_code == 200
    assert response.json() == run_to_dict(stored)


async def test_get_of_an_unknown_run_is_404(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(f"/api/v1/runs/{2**52}", headers=tenant.auth)

    assert response.status_code == 404
    assert response.json() == {"detail": "Run not found"}


@pytest.mark.parametrize("run_id", ["0", "-3", "abc", str(2**63)])
async def test_a_run_id_out_of_range_is_rejected(api: httpx.AsyncClient, tenant: Tenant, run_id: str):
    response = await api.get(f"/api/v1/runs/{run_id}", headers=tenant.auth)

    assert response.status_code in (404, 422)  # not a run id: no route, or a 422 naming run_id
    assert "detail" in response.json()


# -- live calls -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def live_call(tenant: Tenant, cloudonix: CloudonixStandIn, session: str) -> AsyncIterator[Caller]:
    """A call in progress: connected and started, the socket open until the block ends."""
    cloudonix.add_session(tenant.domain, session)
    async with connect(tenant.stream_url(), compression=None, open_timeout=10) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(start_event(session))
        yield caller


async def _current_run(api: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    page = (await api.get(_runs_url(tenant), params={"limit": 1}, headers=tenant.auth)).json()
    assert page["items"], "no run yet"
    run: dict[str, Any] = page["items"][0]
    return run


async def _until(
    api: httpx.AsyncClient,
    tenant: Tenant,
    state: str,
    also: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    for _ in range(200):
        with contextlib.suppress(AssertionError):
            run = await _current_run(api, tenant)
            if run["state"] == state and also(run):
                return run
        await asyncio.sleep(0.025)
    raise AssertionError(f"the run never got to {state}")


async def _control(
    api: httpx.AsyncClient, tenant: Tenant, run_id: int, action: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    """POST the action, retrying while the call is not registered as live yet (409)."""
    for _ in range(200):
        response = await api.post(f"/api/v1/runs/{run_id}/{action}", json=body, headers=tenant.auth)
        if response.status_code != 409:
            return response
        await asyncio.sleep(0.025)
    return response


async def test_a_run_is_listed_while_its_call_is_live(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
):
    async with live_call(tenant, cloudonix, "S-live") as caller:
        running = await _until(api, tenant, "running")
        assert running["ended_at"] is None
        handshaken = await _until(api, tenant, "running", lambda run: "stream" in run["logs"])
        assert handshaken["logs"]["stream"]["session"] == "S-live"
        await caller.send(stop_event())
        result = await caller.wait_closed()

    assert result.code == 1000
    ended = await _until(api, tenant, "completed")
    assert ended["id"] == running["id"]
    assert ended["end_reason"] == "caller_hangup"


async def test_hangup_ends_the_live_call_through_cloudonix_at_once(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
):
    async with live_call(tenant, cloudonix, "S-hangup") as caller:
        run = await _until(api, tenant, "running", lambda run: "stream" in run["logs"])

        asked = time.monotonic()  # the 10 s greeting is playing
        response = await _control(api, tenant, run["id"], "hangup")

        assert response.status_code == 202, response.text
        assert response.json() == {"run_id": run["id"], "action": "hangup"}
        result: CallResult = await caller.wait_closed()

    [hangup] = cloudonix.requests_for("hangup")
    took = hangup.at - asked
    assert took < 1.0, f"the hang-up reached Cloudonix {took:.2f} s after the request"
    assert (result.code, result.reason) == (1000, "Hung up by an operator")
    events = [message["event"] for message in result.received]
    assert "media" in events, "the greeting was not playing"
    assert "clear" in events, "the greeting was not cleared"
    ended = await _until(api, tenant, "completed")
    assert (ended["end_reason"], ended["close_code"], ended["close_reason"]) == (
        "operator_hangup",
        1000,
        "Hung up by an operator",
    )
    assert (f"{tenant.domain}.cloudonix.net", "S-hangup") in cloudonix.hangups
    again = await api.post(f"/api/v1/runs/{run['id']}/hangup", headers=tenant.auth)
    assert again.status_code == 409
    assert again.json() == {"detail": "The run has no live call"}


@pytest.mark.parametrize("callback_format", ["json", "list", "form"])
async def test_transfer_moves_the_live_call_and_takes_cloudonix_callbacks(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn, callback_format: Any
):
    cloudonix.callback_format = callback_format
    destination = TransferRequestFactory.body()["destination"]
    async with live_call(tenant, cloudonix, "S-transfer") as caller:
        run = await _until(api, tenant, "running")

        response = await _control(api, tenant, run["id"], "transfer", {"destination": f" {destination} "})

        assert response.status_code == 202, response.text
        assert response.json() == {"run_id": run["id"], "action": "transfer", "destination": destination}
        result = await caller.wait_closed()

    assert result.code == 1000
    ended = await _until(api, tenant, "completed")
    assert ended["end_reason"] == "transferred"
    [dial] = cloudonix.dials
    assert dial.destination == destination
    assert "/api/v1/telephony/cloudonix/transfer-result/" in (dial.callback or "")
    assert cloudonix.callbacks, "Cloudonix never called back"
    assert {record.status for record in cloudonix.callbacks} == {200}  # our callback route took each one
    [move] = cloudonix.moves
    assert move.session == "S-transfer"


@pytest.mark.parametrize(
    "destination", ["12345", "+0123", "tel:+15555550123", "sip:", "sip:a b@example.com", "x" * 300]
)
async def test_a_bad_transfer_destination_is_422(api: httpx.AsyncClient, tenant: Tenant, destination: str):
    stored = await tenant.runs.add(_run(tenant, 1))

    response = await api.post(
        f"/api/v1/runs/{stored.id}/transfer", json={"destination": destination}, headers=tenant.auth
    )

    assert response.status_code == 422, response.text
    assert "destination" in response.json()["detail"]


async def test_control_of_a_run_that_is_not_live_is_409(api: httpx.AsyncClient, tenant: Tenant):
    stored = await tenant.runs.add(_run(tenant, 2))

    hangup = await api.post(f"/api/v1/runs/{stored.id}/hangup", headers=tenant.auth)
    transfer = await api.post(
        f"/api/v1/runs/{stored.id}/transfer", json=TransferRequestFactory.body(), headers=tenant.auth
    )

    assert (hangup.status_code, transfer.status_code) == (409, 409)


async def test_control_of_an_unknown_run_is_404(api: httpx.AsyncClient, tenant: Tenant):
    hangup = await api.post(f"/api/v1/runs/{2**52}/hangup", headers=tenant.auth)
    transfer = await api.post(
        f"/api/v1/runs/{2**52}/transfer", json={"destination": "+15555550123"}, headers=tenant.auth
    )

    assert (hangup.status_code, transfer.status_code) == (404, 404)


async def test_transfer_needs_a_destination(api: httpx.AsyncClient, tenant: Tenant):
    stored = await tenant.runs.add(_run(tenant, 4))

    response = await api.post(f"/api/v1/runs/{stored.id}/transfer", json={}, headers=tenant.auth)

    assert response.status_code == 422
    assert response.json()["detail"] == "Invalid request: destination: is required"


# -- the transfer callback route ------------------------------------------------------------------


async def test_a_callback_for_an_unknown_transfer_is_404(api: httpx.AsyncClient):
    response = await api.post(
        "/api/v1/telephony/cloudonix/transfer-result/no-such-transfer", json={"status": "busy"}
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Transfer not found"}


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{broken", "application/json"),
        (b"42", "application/json"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
async def test_a_callback_body_that_is_neither_json_nor_form_is_400(
    api: httpx.AsyncClient, content: bytes, content_type: str
):
    response = await api.post(
        "/api/v1/telephony/cloudonix/transfer-result/anything",
        content=content,
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "params",
    [{"before_id": "1e3"}, {"before_id": "null"}, {"before_id": "1.0"}, {"limit": "1e1"}],
)
async def test_paging_parameters_not_written_in_digits_are_422_naming_them(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any]
):
    # the query decoder would read `1e3` as 1000 and `null` as no parameter at all
    response = await api.get(_runs_url(tenant), params=params, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{next(iter(params))}: "), response.text
