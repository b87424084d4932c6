"""Browser tests of the console: Playwright driving Debian's chromium against the served app.

The app here is the e2e app (same PostgreSQL database) with one addition: `RunFeed` is a small
in-process feed (`TestRunFeed`), so a test can publish a run change itself. The app's own
publishers (the call path, the reaper) publish through the container's `RunFeed` too, so they reach
this feed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dishka import Provider, Scope, provide
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.repositories.runs import SqlWorkflowRunRepository
from application.ports.run_feed import RunChange, RunFeed
from domain.workflow_run import WorkflowRun, run_name
from entrypoints.ioc.persistence import SqlAdaptersProvider
from entrypoints.logging import configure_logging
from entrypoints.settings import Settings
from tests.e2e.conftest import Tenant, TenantFactory
from tests.served import free_port, served_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


class TestRunFeed(RunFeed):
    """Run changes within this process, from any thread to subscribers on the app's loop."""

    __test__ = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Queue[RunChange]]] = []

    def publish(self, change: RunChange) -> None:
        with self._lock:
            targets = [
                (loop, queue) for org, loop, queue in self._subscribers if org == change.organization_id
            ]
        for loop, queue in targets:
            loop.call_soon_threadsafe(queue.put_nowait, change)

    @contextlib.asynccontextmanager
    async def subscribe(self, organization_id: int) -> AsyncIterator[AsyncIterator[RunChange]]:
        queue: asyncio.Queue[RunChange] = asyncio.Queue()
        entry = (organization_id, asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.append(entry)

        async def changes() -> AsyncIterator[RunChange]:
            while True:
                yield await queue.get()

        try:
            yield changes()
        finally:
            with self._lock:
                self._subscribers.remove(entry)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


class FeedProvider(Provider):
    scope = Scope.APP

    def __init__(self, feed: TestRunFeed) -> None:
        super().__init__()
        self._feed = feed

    @provide
    def provide_feed(self) -> RunFeed:
        return self._feed


@pytest.fixture(scope="session")
def run_feed() -> TestRunFeed:
    return TestRunFeed()


@pytest.fixture(scope="session")
def app_url(settings: Settings, run_feed: TestRunFeed) -> Iterator[str]:
    """The console's app: the e2e settings, an instance of its own, the test feed."""
    configure_logging("json", logging.INFO)
    port = free_port()
    own = replace(settings, public_url=f"http://127.0.0.1:{port}", instance_id=f"console{port}")
    with served_app(own, SqlAdaptersProvider(), FeedProvider(run_feed), port=port) as url:
        yield url


def ensure_chromium() -> None:
    """Debian's chromium (Playwright's own browser download cannot reach the internet here):
    installed with apt on first use when it is missing and we may, else a failure saying how."""
    if os.access(CHROMIUM, os.X_OK):
        return
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=quiet)  # noqa: S603 - fixed arguments
        subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, env=quiet)  # noqa: S603
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium")


@pytest.fixture(scope="session")
def tenants(sessions: async_sessionmaker[AsyncSession], app_url: str) -> TenantFactory:
    """The console's own tenants, on the console's app. Overridden here, not inherited: the parent
    `tenants` is session-wide and would otherwise keep whichever `app_url` asked for it first."""
    return TenantFactory(sessions, app_url)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    await asyncio.to_thread(ensure_chromium)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, app_url: str) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(base_url=app_url, viewport={"width": 1100, "height": 900})
    await made.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    yield made
    await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    opened = await context.new_page()
    violations: list[str] = []
    opened.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield opened
    assert not violations, violations  # nothing on any page breaks the Content-Security-Policy


async def sign_in(page: Page, api_key: str) -> None:
    await page.goto("/console/sign-in")
    await page.get_by_label("API key").fill(api_key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/agents")


async def screenshot(page: Page, name: str, **options: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


@pytest.fixture
async def other_tenant(tenants: TenantFactory) -> Tenant:
    return await tenants.create()


@pytest.fixture
def runs(tenants: TenantFactory) -> SqlWorkflowRunRepository:
    return tenants.runs


def minted_run(tenant: Tenant) -> WorkflowRun:
    """A run as the call path mints it (`initialized`), not yet stored."""
    return WorkflowRun(
        name=run_name(random.randrange(10**8)),
        workflow_id=tenant.workflow_id,
        agent_uuid=tenant.agent_uuid,
        mode="cloudonix",
        created_at=datetime.now(UTC),
        initial_context={"caller_number": "+15555550100", "called_number": "+15555550199"},
        logs={"inbound_webhook": {"domain": tenant.domain}},
    )
