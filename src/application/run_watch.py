"""Watching an organisation's runs as they change (the console's live Runs tab, over SSE).

Each change the feed delivers is re-read through `GetRun` (organisation-scoped), so a watcher sees
the run as the REST API shows it, never a change of another organisation's run. A run that cannot
be read (gone, or the database failing for a moment) is skipped: the next change reads it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from application.live_calls import LiveCallRegistry
from application.management import GetRun, NotFoundError
from application.ports.repositories import StorageError
from application.ports.run_feed import RunChange, RunFeed
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 15.0
DRAIN_CHECK_SECONDS = 1.0  # how soon a watch ends once the instance drains


class WatchRuns:
    def __init__(self, feed: RunFeed, runs: GetRun, live_calls: LiveCallRegistry) -> None:
        self._feed = feed
        self._runs = runs
        self._live_calls = live_calls

    async def execute(
        self, organization_id: int, keep_alive_seconds: float = KEEP_ALIVE_SECONDS
    ) -> AsyncIterator[WorkflowRun | None]:
        """The organisation's runs as they change, from now on. `None` once subscribed, and again
        after `keep_alive_seconds` without a change (time to tell the client the stream lives).
        Ends when the instance drains; the caller stops early by closing the iterator."""
        loop = asyncio.get_running_loop()
        async with self._feed.subscribe(organization_id) as changes:
            incoming = aiter(changes)
            next_change: asyncio.Future[RunChange] | None = None
            try:
                yield None
                quiet_since = loop.time()
                while not self._live_calls.draining:
                    if next_change is None:
                        next_change = asyncio.ensure_future(anext(incoming))
                    wait = min(DRAIN_CHECK_SECONDS, max(quiet_since + keep_alive_seconds - loop.time(), 0))
                    done, _ = await asyncio.wait({next_change}, timeout=wait)
                    if not done:
                        if loop.time() - quiet_since >= keep_alive_seconds:
                            yield None
                            quiet_since = loop.time()
                        continue
                    change, next_change = next_change.result(), None
                    run = await self._read(organization_id, change)
                    if run is not None:
                        yield run
                        quiet_since = loop.time()
            finally:
                if next_change is not None:
                    next_change.cancel()
                    await asyncio.wait({next_change})

    async def _read(self, organization_id: int, change: RunChange) -> WorkflowRun | None:
        try:
            return await self._runs.execute(organization_id, change.run_id)
        except NotFoundError:
            return None
        except StorageError as exc:
            log.warning("run_watch_read_failed", extra={"run_id": change.run_id, "error": str(exc)[:200]})
            return None
