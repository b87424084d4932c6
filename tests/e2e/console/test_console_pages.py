"""The console in a real browser: sign-in, agents, telephony configurations, isolation, CSRF."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from tests.e2e.conftest import Tenant
from tests.e2e.console.conftest import minted_run, screenshot, sign_in


async def test_signs_in_with_the_api_key_and_out_again(page: Page, tenant: Tenant, app_url: str):
    await page.goto("/console/agents")
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))  # no session: the sign-in form
    await screenshot(page, "sign-in")

    await page.get_by_label("API key").fill("not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("That API key is not valid.")).to_be_visible()

    await sign_in(page, tenant.api_key)
    await expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    assert tenant.api_key not in page.url
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "agent_stream_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert tenant.api_key not in cookie["value"]
    stored = await page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert tenant.api_key not in stored
    assert "csrf" not in stored.lower()  # htmx keeps no copy of the pages (its history cache is off)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    await page.goto("/console/agents")
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))  # the session ended


async def test_creates_an_agent_and_copies_its_uuid(page: Page, tenant: Tenant):
    await sign_in(page, tenant.api_key)

    await page.get_by_label("Name").fill("Billing line")
    await page.get_by_label("Definition (JSON)").fill('{"engine": "linetest", "max_call_seconds": -5}')
    await page.get_by_role("button", name="Create agent").click()
    error = page.locator("#definition-error")
    await expect(error).to_contain_text("max_call_seconds")  # the API's validation, beside the field
    await expect(page.get_by_label("Definition (JSON)")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Definition (JSON)").fill('{"engine": "linetest", "max_call_seconds": 90}')
    await page.get_by_role("button", name="Create agent").click()
    await expect(page.get_by_role("heading", name="Billing line")).to_be_visible()
    uuid = (await page.locator("#agent-uuid").text_content() or "").strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", uuid)

    await page.get_by_role("button", name="Copy the agent's UUID").click()
    await expect(page.locator("#announce")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("() => navigator.clipboard.readText()") == uuid

    # the stream URL and CXML of the organisation's domain, each with its copy button
    await expect(page.locator("#stream-url")).to_contain_text(f"/api/v1/agent-stream/{uuid}")
    await expect(page.locator("#stream-url")).to_contain_text(f"Domain={tenant.domain}")
    await page.get_by_role("button", name="Copy the CXML").click()
    assert "<Stream url=" in await page.evaluate("() => navigator.clipboard.readText()")
    await screenshot(page, "agent", full_page=True)

    # an edit the API refuses shows its error beside the field; a good one is kept
    await page.get_by_label("Definition (JSON)").fill('{"engine": "nope"}')
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#definition-error")).to_contain_text("engine")
    await page.get_by_label("Definition (JSON)").fill('{"engine": "linetest", "greeting": "Hi"}')
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_label("Definition (JSON)")).to_contain_text('"greeting": "Hi"')

    await page.goto("/console/agents")
    await expect(page.get_by_role("link", name="Billing line")).to_be_visible()
    await screenshot(page, "agents", full_page=True)


async def test_adds_a_configuration_shows_it_masked_and_deletes_it_after_confirmation(
    page: Page, tenant: Tenant
):
    token = "cx-secret-token-0123456789abcdef"
    await sign_in(page, tenant.api_key)
    await page.get_by_role("link", name="Telephony").click()

    assert await page.get_by_label("Bearer token").get_attribute("type") == "password"
    await page.get_by_label("Domain").fill("Acme.Cloudonix.Net")
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_label("Name (optional)").fill("Acme desk")
    await page.get_by_role("button", name="Add configuration").click()

    row = page.locator("tr", has_text="acme.cloudonix.net")
    await expect(row).to_be_visible()
    await expect(row.locator("code.token")).not_to_have_text(token)
    assert token not in await page.content()  # masked everywhere on the page
    await screenshot(page, "telephony", full_page=True)

    await page.get_by_label("Domain").fill("acme")  # the same domain again: refused beside the field
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_role("button", name="Add configuration").click()
    await expect(page.locator("#domain_id-error")).to_contain_text("exists already")

    await row.get_by_role("link", name="Delete").click()
    await expect(
        page.get_by_role("heading", name="Delete the configuration for acme.cloudonix.net?")
    ).to_be_visible()
    await page.get_by_role("link", name="Cancel").click()
    await expect(page.locator("tr", has_text="acme.cloudonix.net")).to_be_visible()  # cancel keeps it

    await page.locator("tr", has_text="acme.cloudonix.net").get_by_role("link", name="Delete").click()
    await page.get_by_role("button", name="Delete acme.cloudonix.net").click()
    await expect(page.locator("tr", has_text="acme.cloudonix.net")).to_have_count(0)
    await expect(page.locator("tr", has_text=tenant.domain)).to_be_visible()


async def test_another_organisation_sees_none_of_it(page: Page, tenant: Tenant, other_tenant: Tenant, runs):
    run = await runs.add(minted_run(tenant))
    await sign_in(page, other_tenant.api_key)

    await expect(page.get_by_role("link", name="front desk")).to_have_count(1)  # its own agent only
    for path in (
        f"/console/agents/{tenant.agent_uuid}",
        f"/console/agents/{tenant.agent_uuid}/runs",
        f"/console/runs/{run.id}",
    ):
        response = await page.goto(path)
        assert response is not None
        assert response.status == 404, path
    live = await page.request.get(f"/console/agents/{tenant.agent_uuid}/runs/live")
    assert live.status == 404
    await page.goto("/console/telephony")
    await expect(page.locator("tr", has_text=tenant.domain)).to_have_count(0)
    await expect(page.locator("tr", has_text=other_tenant.domain)).to_have_count(1)


async def test_a_form_posted_without_its_csrf_token_is_refused(page: Page, tenant: Tenant, app_url: str):
    await sign_in(page, tenant.api_key)

    refused = await page.request.post("/console/agents", form={"name": "forged", "definition": "{}"})
    wrong = await page.request.post(
        "/console/agents", form={"name": "forged", "definition": "{}", "csrf_token": "guess"}
    )
    sign_out = await page.request.post("/console/sign-out", form={})
    assert (refused.status, wrong.status, sign_out.status) == (403, 403, 403)
    await page.goto("/console/agents")
    await expect(page.get_by_role("link", name="forged")).to_have_count(0)

    async with httpx.AsyncClient(base_url=app_url) as client:  # the sign-in form has its own token
        forged = await client.post("/console/sign-in", data={"api_key": tenant.api_key})
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers


async def test_pages_are_readable_at_360_px_under_a_strict_policy(page: Page, tenant: Tenant, runs):
    run = await runs.add(minted_run(tenant))
    await page.set_viewport_size({"width": 360, "height": 740})
    await sign_in(page, tenant.api_key)
    for path in (
        "/console/agents",
        f"/console/agents/{tenant.agent_uuid}",
        f"/console/agents/{tenant.agent_uuid}/runs",
        f"/console/runs/{run.id}",
        "/console/telephony",
    ):
        response = await page.goto(path)
        assert response is not None
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert await page.locator("script:not([src])").count() == 0
        overflow = await page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 360, (path, overflow)
    await page.goto(f"/console/agents/{tenant.agent_uuid}")
    await screenshot(page, "agent-360px", full_page=True)


async def test_every_control_is_reachable_with_the_keyboard(page: Page, tenant: Tenant):
    await sign_in(page, tenant.api_key)
    await page.goto(f"/console/agents/{tenant.agent_uuid}")
    reached: set[str] = set()
    for _ in range(40):
        await page.keyboard.press("Tab")
        reached.add(
            await page.evaluate(
                "() => document.activeElement.id || document.activeElement.textContent.trim()"
            )
        )
    assert {"domain", "name", "status", "definition"} <= reached
    assert any(text.startswith("Copy") for text in reached)

    for field in await page.locator("input:not([type=hidden]), select, textarea").all():
        field_id = await field.get_attribute("id")
        assert field_id and await page.locator(f"label[for={field_id}]").count() == 1, field_id
