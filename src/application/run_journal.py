"""The run's journal: what the agent learns during the call, stored on the run as it comes; and
the run's news: each change of its state, published once stored (`RunFeed`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from application.ports.live_call import CallJournal
from application.ports.repositories import StorageError, WorkflowRunRepository
from application.ports.run_feed import RunChange, RunFeed
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunNews:
    """Where the changes of one organisation's runs are published."""

    feed: RunFeed
    organization_id: int

    def tell(self, run: WorkflowRun) -> None:
        """Publish that `run` (stored) changed; never raises: the feed's failure is only logged."""
        publish(
            self.feed, RunChange(self.organization_id, run.stored_id, str(run.agent_uuid), str(run.state))
        )


def publish(feed: RunFeed, change: RunChange) -> None:
    """`feed.publish(change)`, which must never fail a call: an error is logged, not raised."""
    try:
        feed.publish(change)
    except Exception:
        log.exception("run_change_not_published", extra={"run_id": change.run_id})


class RunJournal(CallJournal):
    """Appends to the run's `gathered_context` and stores the run at once.

    Every store of the run during a call goes through one lock, so a transcript line written while
    the call ends cannot overwrite the run's end with an older copy.
    """

    def __init__(self, runs: WorkflowRunRepository, run: WorkflowRun, news: RunNews) -> None:
        self._runs = runs
        self._run = run
        self._news = news
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def append(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        for key, entry in entries:
            self._run.gathered_context.setdefault(key, []).append(entry)
        async with self._lock:
            await self._runs.save_gathered_context(self._run)

    async def save(self) -> None:
        async with self._lock:
            await self._runs.save(self._run)
        self._news.tell(self._run)

    async def store_end(self) -> None:
        """Store the ended run (`store_end`), in turn with the journal's other stores."""
        async with self._lock:
            await store_end(self._runs, self._run)
        self._news.tell(self._run)

    def save_in_background(self) -> None:
        """Store the run without waiting for the store (a commit can take tens of milliseconds);
        every later store of this journal waits its turn behind it. A failure is logged."""
        self._background = asyncio.create_task(self._save_logged())

    async def _save_logged(self) -> None:
        try:
            await self.save()
        except StorageError as exc:  # the run's end is stored later (and retried if need be)
            log.warning("run_save_failed", extra={"error": str(exc)[:200]})
        except Exception:
            log.exception("run_save_failed")


async def store_end(runs: WorkflowRunRepository, run: WorkflowRun) -> None:
    """Store the whole run; when that fails for what it holds (a value the store refuses), store
    at least how it ended. Raises `StorageError` when even that fails (the database is down)."""
    try:
        await runs.save(run)
    except StorageError as exc:
        await runs.save_end(run)
        log.warning("run_extras_not_stored", extra={"error": str(exc)[:200]})
