"""Workflow runs: one per call, stored as it goes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from adapters.sql.models import WorkflowRow, WorkflowRunRow
from adapters.sql.repositories.base import SqlAdapter, rowcount
from adapters.sql.repositories.mappers import (
    end_values,
    recording_value,
    workflow_run_from_row,
    workflow_run_values,
)
from adapters.sql.repositories.webhooks import enqueue_webhook
from application.ports.repositories import StorageError, WorkflowRunRepository
from domain.workflow_run import WorkflowRun


class SqlWorkflowRunRepository(SqlAdapter, WorkflowRunRepository):
    async def add(self, run: WorkflowRun) -> WorkflowRun:
        return await self._insert(WorkflowRunRow(**workflow_run_values(run)), workflow_run_from_row)

    async def save(self, run: WorkflowRun) -> None:
        """The whole run; an ended run's webhook goes into the outbox in the same transaction."""
        await self._update(run, workflow_run_values(run), ended=True)

    async def save_end(self, run: WorkflowRun) -> None:
        await self._update(run, end_values(run), ended=True)

    async def save_gathered_context(self, run: WorkflowRun) -> None:
        """One column, not the whole row: the journal writes a few times a turn."""
        await self._update(run, {"gathered_context": run.gathered_context})

    async def save_recording(self, run: WorkflowRun) -> None:
        await self._update(run, {"recording": recording_value(run)})

    async def _update(self, run: WorkflowRun, values: dict[str, Any], ended: bool = False) -> None:
        run_id = run.stored_id
        async with self._transaction() as session:
            updated = await rowcount(
                session, update(WorkflowRunRow).where(WorkflowRunRow.id == run_id).values(values)
            )
            if updated == 0:
                raise StorageError(f"no run with id {run_id}")
            if ended:
                await enqueue_webhook(session, run, self._dialect)

    async def get(self, run_id: int) -> WorkflowRun | None:
        async with self._transaction() as session:
            row = await session.get(WorkflowRunRow, run_id)
            return None if row is None else workflow_run_from_row(row)

    async def list_for_workflow(
        self, workflow_id: int, limit: int, before_id: int | None = None, disposition: str | None = None
    ) -> list[WorkflowRun]:
        query = select(WorkflowRunRow).where(WorkflowRunRow.workflow_id == workflow_id)
        if before_id is not None:
            query = query.where(WorkflowRunRow.id < before_id)
        if disposition is not None:
            query = query.where(WorkflowRunRow.disposition == disposition)
        async with self._transaction() as session:
            rows = await session.scalars(query.order_by(WorkflowRunRow.id.desc()).limit(limit))
            return [workflow_run_from_row(row) for row in rows]

    async def seconds_used(self, user_id: int, since: datetime) -> float:
        query = (
            select(func.coalesce(func.sum(WorkflowRunRow.duration_seconds), 0.0))
            .select_from(WorkflowRunRow)
            .join(WorkflowRow, WorkflowRow.id == WorkflowRunRow.workflow_id)
            .where(WorkflowRow.user_id == user_id, WorkflowRunRow.created_at >= since)
        )
        async with self._transaction() as session:
            return float(await session.scalar(query) or 0.0)
