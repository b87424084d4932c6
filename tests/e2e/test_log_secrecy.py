"""Whatever happens on a call, the logs never hold the query string, a bearer token, the agent UUID
or a full phone number, and every line of a call carries its run id."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
from websockets.asyncio.client import connect

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, Caller, call, start_event, stop_event
from tests.e2e.conftest import Tenant


async def test_no_secret_reaches_the_logs(
    captured_logs: io.StringIO, tenant: Tenant, cloudonix: CloudonixStandIn
):
    cloudonix.add_session(tenant.domain, "S-logs")
    await call(tenant.stream_url(), CONNECTED, start_event("S-logs"), stop_event())  # happy
    await call(tenant.stream_url(), CONNECTED, start_event("S-unknown"))  # validation refused
    await call(tenant.stream_url(Domain="nobody"), CONNECTED, start_event("S"))  # unknown domain
    await call(tenant.stream_url(), "{bad json")  # malformed
    cloudonix.respond_with("validate", 500)
    await call(tenant.stream_url(), CONNECTED, start_event("S-logs"))  # provider error

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(line["event"] == "run_minted" for line in lines), text[:2000]
    forbidden = [
        tenant.token,
        str(tenant.agent_uuid),
        "+15555550100",
        "15555550199",
        "Domain=",
        "callId=",
        "provider=cloudonix&",
        "from=%2B1555",
    ]
    for secret in forbidden:
        assert secret not in text, f"{secret!r} leaked into the logs"
    # what the logs do carry: the run, the provider, the domain, masked numbers
    minted = [line for line in lines if line["event"] == "run_minted"]
    assert all(line["run_id"].startswith("WR-AGS-") for line in minted)
    assert all(line["provider"] == "cloudonix" for line in minted)
    assert any(line.get("caller") == "***0100" for line in minted)
    ended = [line for line in lines if line["event"] == "call_ended"]
    assert ended and all("run_id" in line and "domain" in line for line in ended)


async def test_numbers_only_the_start_event_gives_are_logged_masked_once_known(
    captured_logs: io.StringIO, tenant: Tenant, cloudonix: CloudonixStandIn
):
    cloudonix.add_session(tenant.domain, "S-numbers")
    url = tenant.stream_url(**{"from": None, "to": None})  # the numbers come from `start` only
    await call(url, CONNECTED, start_event("S-numbers", account_sid=tenant.domain), stop_event())

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    [minted] = [line for line in lines if line["event"] == "run_minted"]
    assert "caller" not in minted and "called" not in minted, minted  # not `None`: not known yet
    [started] = [line for line in lines if line["event"] == "call_started"]
    assert (started["caller"], started["called"]) == ("***0100", "***0199"), started
    assert started["run_id"] == minted["run_id"]
    assert "+15555550100" not in text and "15555550199" not in text


async def test_call_control_lines_carry_the_run_id(
    captured_logs: io.StringIO, tenant: Tenant, cloudonix: CloudonixStandIn, api: httpx.AsyncClient
):
    cloudonix.add_session(tenant.domain, "S-control")
    async with connect(tenant.stream_url(), compression=None, open_timeout=10) as ws:
        caller = Caller(ws)
        await caller.send(CONNECTED)
        await caller.send(start_event("S-control", account_sid=tenant.domain))
        for _ in range(200):  # until the run is stored (its row is written while the greeting starts)
            page = await api.get(f"/api/v1/agents/{tenant.agent_uuid}/runs", headers=tenant.auth)
            if page.json()["items"]:
                break
            await asyncio.sleep(0.05)
        run = page.json()["items"][0]
        hangup = await api.post(f"/api/v1/runs/{run['id']}/hangup", headers=tenant.auth)
        assert hangup.status_code == 202, hangup.text
        await caller.wait_closed()

    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines() if line.strip()]
    control = [line for line in lines if line["event"].startswith("call_control_")]
    assert any(line["event"] == "call_control_requested" for line in control), control
    assert all(line.get("run_id") == run["name"] for line in control), control
