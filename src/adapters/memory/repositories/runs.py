"""Workflow runs: one per call, stored as it goes."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from datetime import datetime

from adapters.memory.repositories.times import utc, utc_or_none
from adapters.memory.repositories.webhooks import InMemoryWebhookOutbox
from adapters.memory.repositories.workflows import InMemoryWorkflowRepository
from application.ports.repositories import StorageError, WorkflowRunRepository
from domain.workflow_run import WorkflowRun


class InMemoryWorkflowRunRepository(WorkflowRunRepository):
    def __init__(self, workflows: InMemoryWorkflowRepository) -> None:
        self._workflows = workflows
        self._runs: dict[int, WorkflowRun] = {}
        self._ids = itertools.count(1)
        self.outbox = InMemoryWebhookOutbox()  # written with each run's end, as in one transaction

    async def add(self, run: WorkflowRun) -> WorkflowRun:
        run_id = next(self._ids)
        stored = self._stored(run, run_id)
        self._runs[run_id] = stored
        return copy.deepcopy(stored)

    async def save(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        if run_id not in self._runs:
            raise StorageError(f"no run with id {run_id}")
        self._runs[run_id] = self._stored(run, run_id)
        self.ended(self._runs[run_id])

    async def save_end(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        stored = self._runs.get(run_id)
        if stored is None:
            raise StorageError(f"no run with id {run_id}")
        stored.state = run.state
        stored.started_at = utc_or_none(run.started_at)
        stored.ended_at = utc_or_none(run.ended_at)
        stored.duration_seconds = run.duration_seconds
        stored.end_reason = run.end_reason
        stored.close_code = run.close_code
        stored.close_reason = run.close_reason
        stored.disposition = run.disposition
        self.ended(stored)

    def ended(self, stored: WorkflowRun) -> None:
        """A stored run's end was stored: its webhook joins the outbox (once)."""
        self.outbox.enqueue(stored, self._workflows.webhook_url_of(stored.workflow_id))

    async def save_gathered_context(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        if run_id not in self._runs:
            raise StorageError(f"no run with id {run_id}")
        self._runs[run_id].gathered_context = copy.deepcopy(run.gathered_context)

    async def save_recording(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        if run_id not in self._runs:
            raise StorageError(f"no run with id {run_id}")
        self._runs[run_id].recording = run.recording

    def organization_of(self, run: WorkflowRun) -> int | None:
        return self._workflows.organization_of(run.workflow_id)

    def live_runs(self) -> list[WorkflowRun]:
        """The stored runs not yet terminal (the stored objects themselves, for the reaper)."""
        return [run for run in self._runs.values() if not run.state.terminal]

    async def get(self, run_id: int) -> WorkflowRun | None:
        stored = self._runs.get(run_id)
        return None if stored is None else copy.deepcopy(stored)

    async def list_for_workflow(
        self, workflow_id: int, limit: int, before_id: int | None = None, disposition: str | None = None
    ) -> list[WorkflowRun]:
        newest_first = sorted(self._runs.items(), reverse=True)
        matching = [
            stored
            for run_id, stored in newest_first
            if stored.workflow_id == workflow_id
            and (before_id is None or run_id < before_id)
            and (disposition is None or stored.disposition == disposition)
        ]
        return [copy.deepcopy(stored) for stored in matching[: max(limit, 0)]]

    async def seconds_used(self, user_id: int, since: datetime) -> float:
        since = utc(since)
        return float(
            sum(
                stored.duration_seconds or 0.0
                for stored in self._runs.values()
                if stored.created_at >= since and self._workflows.user_of(stored.workflow_id) == user_id
            )
        )

    def _stored(self, run: WorkflowRun, run_id: int) -> WorkflowRun:
        if self._workflows.user_of(run.workflow_id) is None:
            raise StorageError(f"no workflow with id {run.workflow_id}")
        return dataclasses.replace(
            copy.deepcopy(run),
            id=run_id,
            created_at=utc(run.created_at),
            started_at=utc_or_none(run.started_at),
            ended_at=utc_or_none(run.ended_at),
        )
