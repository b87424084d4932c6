"""The Cloudonix API failing at validation and at hang-up: answering 500, never answering (longer
than AGENT_STREAM_PROVIDER_TIMEOUT), or refusing connections (nothing listening on its port).

Every run ends terminal with a truthful close code and reason; a hang-up that finally failed is
marked on the run (`logs.provider_hangup`: the caller may still be on the line); the
organisation's only slot (`max_concurrent_calls=1`) is free for the next call; nothing is logged as
a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.client import connect

from domain.workflow_run import RunState, WorkflowRun
from entrypoints.settings import Settings
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event
from tests.e2e.conftest import PROVIDER_TIMEOUT, Tenant, TenantFactory
from tests.e2e.faults import NEXT_SESSION, assert_no_crash_logged, assert_slot_free, terminal_run
from tests.media_caller import MediaCaller
from tests.served import free_port, served_app

LINETEST = {"engine": "linetest", "max_call_seconds": 60}
VALIDATION_FAILED = "Cloudonix session validation failed"
# `#` lets the greeting play out (at most 5 s) before the hang-up goes out, then 3 attempts of at
# most PROVIDER_TIMEOUT each, with back-off: a generous bound for the whole.
HANGUP_ENDS_WITHIN = 15.0


@dataclass
class CloudonixElsewhere:
    """A second served app (same database) whose Cloudonix API is a stand-in of its own, on a
    fixed port that the test switches on and off: off, connections to it are refused."""

    app_url: str
    api: CloudonixStandIn

    def on(self) -> None:
        self.api.start()

    def off(self) -> None:
        self.api.stop()


@pytest.fixture(scope="module")
def elsewhere(settings: Settings) -> Iterator[CloudonixElsewhere]:
    api = CloudonixStandIn(port=free_port())  # not started: connections are refused
    own = dataclasses.replace(settings, cloudonix_api_url=api.url)
    with served_app(own) as url:
        yield CloudonixElsewhere(url, api)
    api.stop()


@pytest.fixture
async def line(tenants: TenantFactory, cloudonix: CloudonixStandIn) -> Tenant:
    created = await tenants.create(max_concurrent_calls=1, definition=LINETEST)
    cloudonix.add_domain(created.domain, created.token, sessions={"S-fault", NEXT_SESSION})
    return created


async def _refused_at_validation(tenant: Tenant) -> WorkflowRun:
    began = time.monotonic()
    result = await call(tenant.stream_url(), CONNECTED, start_event("S-fault"), timeout=10)
    assert (result.code, result.reason) == (4400, VALIDATION_FAILED)
    run = await terminal_run(tenant, began, within=10)
    assert (run.state, run.end_reason, run.close_code, run.close_reason) == (
        RunState.FAILED,
        "error",
        4400,
        VALIDATION_FAILED,
    )
    return run


# -- at validation ---------------------------------------------------------------------------------


async def test_validation_answered_500(line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO):
    cloudonix.respond_with("validate", 500, times=1)
    await _refused_at_validation(line)
    assert len(cloudonix.requests_for("validate")) == 1  # a 500 is not retried at validation
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_validation_never_answered(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO
):
    cloudonix.hang("validate", times=1)
    began = time.monotonic()
    await _refused_at_validation(line)
    assert time.monotonic() - began < PROVIDER_TIMEOUT + 5  # bounded by the provider timeout
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_validation_refused(
    line: Tenant, cloudonix: CloudonixStandIn, elsewhere: CloudonixElsewhere, captured_logs: io.StringIO
):
    there = dataclasses.replace(line, app_url=elsewhere.app_url)
    await _refused_at_validation(there)
    assert cloudonix.requests_for("validate") == []  # it never reached a Cloudonix API
    await assert_slot_free(line)  # through the first app: the slot is the organisation's
    assert_no_crash_logged(captured_logs)


# -- at hang-up ------------------------------------------------------------------------------------


async def _hung_up_by_the_agent(tenant: Tenant, before_the_hang_up: object = None) -> WorkflowRun:
    """A call the agent hangs up (`#`); the stream closes 1000 whatever Cloudonix answers."""
    async with connect(tenant.stream_url(), compression=None) as ws:
        caller = MediaCaller(ws)
        await caller.handshake("S-fault")
        await caller.silence(0.2)
        if callable(before_the_hang_up):
            await asyncio.to_thread(before_the_hang_up)
        await caller.dtmf("#")
        asked = time.monotonic()
        assert await caller.closed(timeout=HANGUP_ENDS_WITHIN) == (1000, "Hung up at the caller's request")
    run = await terminal_run(tenant, asked, within=HANGUP_ENDS_WITHIN)
    assert (run.state, run.end_reason, run.close_code) == (RunState.COMPLETED, "caller_hangup", 1000)
    return run


async def test_hang_up_answered_500(line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO):
    cloudonix.respond_with("hangup", 500)
    run = await _hung_up_by_the_agent(line)
    assert len(cloudonix.requests_for("hangup")) == 3
    assert cloudonix.hangups == []
    assert run.logs["provider_hangup"] == {"hung_up": False, "attempts": 3, "last_status": 500, "error": None}
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_hang_up_never_answered(line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO):
    cloudonix.hang("hangup", times=3)
    run = await _hung_up_by_the_agent(line)
    assert len(cloudonix.requests_for("hangup")) == 3
    assert run.logs["provider_hangup"] == {
        "hung_up": False,
        "attempts": 3,
        "last_status": None,
        "error": "timeout",
    }
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_hang_up_refused(
    line: Tenant, cloudonix: CloudonixStandIn, elsewhere: CloudonixElsewhere, captured_logs: io.StringIO
):
    there = dataclasses.replace(line, app_url=elsewhere.app_url)
    elsewhere.on()
    try:
        elsewhere.api.add_domain(line.domain, line.token, sessions={"S-fault"})
        run = await _hung_up_by_the_agent(there, before_the_hang_up=elsewhere.off)  # validated, then gone
    finally:
        elsewhere.off()
    assert elsewhere.api.hangups == []
    assert run.logs["provider_hangup"] == {
        "hung_up": False,
        "attempts": 3,
        "last_status": None,
        "error": "refused",
    }
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)


async def test_hang_up_that_succeeds_on_a_retry_says_so(
    line: Tenant, cloudonix: CloudonixStandIn, captured_logs: io.StringIO
):
    cloudonix.respond_with("hangup", 503, times=1)
    run = await _hung_up_by_the_agent(line)
    assert cloudonix.hangups == [(f"{line.domain}.cloudonix.net", "S-fault")]
    assert run.logs["provider_hangup"] == {"hung_up": True, "attempts": 2, "last_status": 204, "error": None}
    await assert_slot_free(line)
    assert_no_crash_logged(captured_logs)
