"""The Runs tab and a run's page in a real browser: live rows over server-sent events, a call from
the simulator, and hanging a live call up from its page."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from adapters.sql.repositories.runs import SqlWorkflowRunRepository
from application.ports.run_feed import RunChange
from domain.close_policy import Close
from entrypoints.simulator.caller import CallOptions, run_call
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.e2e.conftest import Tenant, TenantFactory
from tests.e2e.console.conftest import TestRunFeed, minted_run, screenshot, sign_in


def _change(tenant: Tenant, run_id: int, state: str) -> RunChange:
    return RunChange(tenant.organization_id, run_id, str(tenant.agent_uuid), state)


async def _live(page: Page) -> None:
    await expect(page.locator("[data-live-status]")).to_have_attribute("data-connected", "true")


async def test_runs_tab_pages_newest_first_with_state_badges(
    page: Page, tenant: Tenant, runs: SqlWorkflowRunRepository
):
    ids = [(await runs.add(minted_run(tenant))).stored_id for _ in range(30)]
    await sign_in(page, tenant.api_key)
    await page.goto(f"/console/agents/{tenant.agent_uuid}/runs")

    rows = page.locator("#runs-body tr")
    await expect(rows).to_have_count(25)
    assert await rows.first.get_attribute("id") == f"run-{ids[-1]}"
    await expect(rows.first.locator(".badge")).to_have_text("initialized")
    await page.get_by_role("link", name="Older runs").click()
    await expect(page.locator("#runs-body tr")).to_have_count(5)
    assert await page.locator("#runs-body tr").last.get_attribute("id") == f"run-{ids[0]}"


async def test_a_minted_run_appears_and_changes_without_a_reload(
    page: Page, tenant: Tenant, runs: SqlWorkflowRunRepository, run_feed: TestRunFeed
):
    """The Runs tab's side of the feed: a change published on the `RunFeed` port shows at once."""
    await sign_in(page, tenant.api_key)
    await page.goto(f"/console/agents/{tenant.agent_uuid}/runs")
    await _live(page)
    await page.evaluate("() => { window.notReloaded = true; }")

    run = await runs.add(minted_run(tenant))
    run_feed.publish(_change(tenant, run.stored_id, "initialized"))
    row = page.locator(f"#run-{run.id}")
    await expect(row.locator(".badge")).to_have_text("initialized", timeout=1000)  # within 1 s

    now = datetime.now(UTC)
    run.start(now)
    await runs.save(run)
    run_feed.publish(_change(tenant, run.stored_id, "running"))
    await expect(row.locator(".badge")).to_have_text("running")
    await screenshot(page, "runs", full_page=True)

    run.complete(now + timedelta(seconds=3), "caller_hangup", Close(1000, "caller hung up"))
    await runs.save(run)
    run_feed.publish(_change(tenant, run.stored_id, "completed"))
    await expect(row.locator(".badge")).to_have_text("completed")
    await expect(row).to_contain_text("caller_hangup")
    await expect(page.locator("#runs-body tr")).to_have_count(1)  # replaced in place, shown once
    assert await page.evaluate("() => window.notReloaded") is True


async def test_a_simulated_call_appears_on_the_runs_tab_and_completes_without_a_reload(
    page: Page, tenant: Tenant, cloudonix: CloudonixStandIn
):
    """NEEDS THE RUN FEED'S PUBLISHERS (helper I1): the call path publishes its run's changes on
    `RunFeed`. Until they are merged nothing publishes, and this test fails waiting for the row."""
    cloudonix.accept_any_session = True
    try:
        await sign_in(page, tenant.api_key)
        await page.goto(f"/console/agents/{tenant.agent_uuid}/runs")
        await _live(page)
        await page.evaluate("() => { window.notReloaded = true; }")

        out = io.StringIO()
        options = CallOptions(url=tenant.stream_url(), dtmf="42")  # 24 s: greeting, phrase, echo, digits
        call = asyncio.create_task(asyncio.to_thread(run_call, options, out))
        row = page.locator("#runs-body tr[id^=run-]").first
        await expect(row).to_be_visible(timeout=3000)
        await expect(row.locator(".badge")).to_have_text(re.compile("initialized|running"))
        await screenshot(page, "runs-call", full_page=True)
        assert await call == 0, out.getvalue()
        await expect(row.locator(".badge")).to_have_text("completed", timeout=5000)
        assert await page.evaluate("() => window.notReloaded") is True

        await row.get_by_role("link").click()
        await expect(page.locator("#run-state")).to_have_text("completed")
        await expect(page.locator(".facts")).to_contain_text("42")  # the DTMF
        await screenshot(page, "run", full_page=True)
    finally:
        cloudonix.accept_any_session = False


async def test_hangs_a_live_call_up_from_its_page(page: Page, tenant: Tenant, cloudonix: CloudonixStandIn):
    cloudonix.accept_any_session = True
    try:
        await sign_in(page, tenant.api_key)
        out = io.StringIO()
        call = asyncio.create_task(
            asyncio.to_thread(run_call, CallOptions(url=tenant.stream_url(), seconds=20), out)
        )
        run = None
        for _ in range(100):
            runs = await tenant.all_runs()
            if runs and str(runs[0].state) == "running":
                run = runs[0]
                break
            await asyncio.sleep(0.05)
        assert run is not None, out.getvalue()

        await page.goto(f"/console/runs/{run.id}")
        await expect(page.locator("#run-state")).to_have_text("running")
        await screenshot(page, "run-live", full_page=True)
        await page.get_by_role("button", name="Hang up").click()
        await expect(page.get_by_role("status").filter(has_text="Hang-up requested.")).to_be_visible()

        await asyncio.wait_for(call, 10)
        assert len(cloudonix.hangups) == 1  # the stand-in Cloudonix API received the hang-up
        ended = await tenant.ended_run(within=5)
        assert ended.end_reason == "operator_hangup"
        await page.reload()
        await expect(page.locator("#run-state")).to_have_text("completed")
        await expect(page.get_by_role("button", name="Hang up")).to_have_count(0)
    finally:
        cloudonix.accept_any_session = False


async def test_a_recorded_call_plays_on_its_page_for_its_organisation_only(
    page: Page, tenants: TenantFactory, cloudonix: CloudonixStandIn, other_tenant: Tenant
):
    """The run page's player streams the recording through the console's session; another
    organisation's session gets 404 for it."""
    line = await tenants.create(definition={"engine": "linetest", "recording": True})
    cloudonix.add_domain(line.domain, line.token)
    cloudonix.accept_any_session = True
    try:
        out = io.StringIO()
        assert await asyncio.to_thread(run_call, CallOptions(url=line.stream_url(), seconds=2.0), out) == 0
        run = await line.ended_run(within=5)
        assert run.recording is not None, out.getvalue()
    finally:
        cloudonix.accept_any_session = False

    await sign_in(page, line.api_key)
    await page.goto(f"/console/runs/{run.id}")
    player = page.locator("audio")
    await expect(player).to_have_attribute("src", f"/console/runs/{run.id}/recording")
    whole = await page.request.get(f"/console/runs/{run.id}/recording")
    assert whole.status == 200 and whole.headers["content-type"] == "audio/wav"
    body = await whole.body()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    ranged = await page.request.get(f"/console/runs/{run.id}/recording", headers={"Range": "bytes=0-11"})
    assert ranged.status == 206 and await ranged.body() == body[:12]

    await page.context.clear_cookies()
    await sign_in(page, other_tenant.api_key)
    assert (await page.request.get(f"/console/runs/{run.id}/recording")).status == 404
