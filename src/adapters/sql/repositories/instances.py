"""The instances sharing the database, and the reaping of the runs and slots of the dead ones."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.models import CallSlotRow, InstanceRow, WorkflowRow, WorkflowRunRow
from adapters.sql.repositories.base import SqlAdapter, rowcount
from adapters.sql.repositories.mappers import end_values, workflow_run_from_row
from adapters.sql.repositories.webhooks import enqueue_webhook
from application.ports.repositories import Instances, Reaped, Reaper
from application.ports.run_feed import RunChange
from domain.close_policy import ABANDONED_CLOSE, INSTANCE_LOST_CLOSE
from domain.workflow_run import EndReason, RunState, WorkflowRun

_LIVE_STATES = (str(RunState.INITIALIZED), str(RunState.RUNNING))


class SqlInstances(SqlAdapter, Instances):
    """Instance rows; reaping locks the dead ones (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
    reapers on several instances at once share the work instead of repeating it, and each run is
    ended by a conditional update (only while still live): exactly once whatever the interleaving.
    SQLite is one process, where the transaction's write lock serialises reapers."""

    async def register(self, instance_id: str, name: str, now: datetime) -> None:
        async with self._transaction() as session:
            await session.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))
            session.add(InstanceRow(id=instance_id, name=name, started_at=now, heartbeat_at=now))

    async def heartbeat(self, instance_id: str, now: datetime) -> bool:
        async with self._transaction() as session:
            renewed = await rowcount(
                session, update(InstanceRow).where(InstanceRow.id == instance_id).values(heartbeat_at=now)
            )
            return renewed > 0

    async def deregister(self, instance_id: str) -> None:
        async with self._transaction() as session:
            await session.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))

    async def reap(self, now: datetime, ttl_seconds: float, reaper: Reaper | None = None) -> Reaped:
        silent_since = now - timedelta(seconds=ttl_seconds)
        dead_rule = InstanceRow.heartbeat_at < silent_since
        if reaper is not None and reaper.previous_life:
            dead_rule |= (InstanceRow.name == reaper.name) & (InstanceRow.id != reaper.instance_id)
        dead_ids = select(InstanceRow.id).where(dead_rule)
        if self._row_locks:  # another reaper's rows are its to end
            dead_ids = dead_ids.with_for_update(skip_locked=True)
        began = func.coalesce(WorkflowRunRow.started_at, WorkflowRunRow.created_at)
        live = WorkflowRunRow.state.in_(_LIVE_STATES)
        async with self._transaction() as session:
            # The delete comes first: on SQLite it takes the database's write lock, so a reaper in
            # another process waits and then finds nothing left to reap.
            dead = dict(
                (
                    await session.execute(
                        delete(InstanceRow)
                        .where(InstanceRow.id.in_(dead_ids))
                        .returning(InstanceRow.id, InstanceRow.heartbeat_at)
                    )
                )
                .tuples()
                .all()
            )
            lost = list(
                await session.scalars(
                    select(WorkflowRunRow).where(
                        live,
                        WorkflowRunRow.instance_id.is_(None)
                        | WorkflowRunRow.instance_id.not_in(select(InstanceRow.id))
                        | WorkflowRunRow.instance_id.in_(dead),
                        (began < silent_since) | WorkflowRunRow.instance_id.in_(dead),
                    )
                )
            )
            ended_runs: list[WorkflowRun] = []
            for row in lost:
                run = workflow_run_from_row(row)
                seen = dead.get(run.instance_id or "", now)
                run.fail(max(_began(run), min(seen, now)), EndReason.INSTANCE_LOST, INSTANCE_LOST_CLOSE)
                if await self._end_if_live(session, run):
                    ended_runs.append(run)
            ended = len(ended_runs)
            if reaper is not None:
                own = select(WorkflowRunRow).where(
                    live,
                    WorkflowRunRow.instance_id == reaper.instance_id,
                    WorkflowRunRow.id.not_in(list(reaper.held_runs)),
                    began < silent_since,
                )
                for row in await session.scalars(own):
                    run = workflow_run_from_row(row)
                    run.fail(now, EndReason.ERROR, ABANDONED_CLOSE)
                    if await self._end_if_live(session, run):
                        ended_runs.append(run)
            slots = 0
            if dead:
                slots = await rowcount(session, delete(CallSlotRow).where(CallSlotRow.instance_id.in_(dead)))
            return Reaped(
                instances=len(dead),
                runs=ended,
                slots=slots,
                abandoned=len(ended_runs) - ended,
                ended=await _changes(session, ended_runs),
            )

    async def _end_if_live(self, session: AsyncSession, run: WorkflowRun) -> int:
        """Store how `run` ended (and its webhook), unless it has ended meanwhile (another reaper,
        its own call): 1 or 0."""
        ended = await rowcount(
            session,
            update(WorkflowRunRow)
            .where(WorkflowRunRow.id == run.id, WorkflowRunRow.state.in_(_LIVE_STATES))
            .values(end_values(run)),
        )
        if ended:
            await enqueue_webhook(session, run, self._dialect)
        return ended


async def _changes(session: AsyncSession, runs: list[WorkflowRun]) -> tuple[RunChange, ...]:
    """The changes to publish for the runs a reaping ended (with their agents' organisations)."""
    if not runs:
        return ()
    workflow_ids = {run.workflow_id for run in runs}
    organizations = dict(
        (
            await session.execute(
                select(WorkflowRow.id, WorkflowRow.organization_id).where(WorkflowRow.id.in_(workflow_ids))
            )
        )
        .tuples()
        .all()
    )
    return tuple(
        RunChange(organizations[run.workflow_id], run.stored_id, str(run.agent_uuid), str(run.state))
        for run in runs
        if run.workflow_id in organizations
    )


def _began(run: WorkflowRun) -> datetime:
    return run.started_at or run.created_at
