"""What the fault tests (provider faults, clients vanishing) check after each fault: the run is
terminal in time, the organisation's slot is free, and nothing was logged as a crash."""

from __future__ import annotations

import asyncio
import io
import json
import time

from domain.workflow_run import WorkflowRun
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import Tenant

NEXT_SESSION = "S-next"  # the session of the call that proves the slot is free


async def terminal_run(tenant: Tenant, since: float, within: float) -> WorkflowRun:
    """The tenant's only run once terminal; fails when it is not terminal `within` s of `since`
    (a `time.monotonic()` reading)."""
    while True:
        runs = await tenant.all_runs()
        if len(runs) == 1 and runs[0].state.terminal:
            return runs[0]
        if time.monotonic() - since > within:
            raise AssertionError(f"no terminal run {within} s after the fault: {runs}")
        await asyncio.sleep(0.02)


async def assert_slot_free(tenant: Tenant) -> None:
    """With `max_concurrent_calls=1`, a next call is admitted and runs to its end (the tenant's
    Cloudonix domain must know `NEXT_SESSION`)."""
    result = await call(tenant.stream_url(), CONNECTED, start_event(NEXT_SESSION), stop_event())
    assert (result.code, result.reason) == (1000, "")


def assert_no_crash_logged(logs: io.StringIO) -> None:
    """No traceback, no crash event, no 1011, nothing at error level: a fault outside is not a
    failure of ours."""
    text = logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text[-3000:]
    assert [line for line in lines if line["event"] in ("call_crashed", "stream_crashed")] == []
    assert [line for line in lines if line.get("close_code") == 1011] == []
    assert [line for line in lines if line.get("level") in ("error", "critical")] == []
