"""What a call needs before it starts: its route (agent, organisation, owner, minutes used this
month) and a concurrency slot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from adapters.sql.models import CallSlotRow, OrganizationRow, UserRow, WorkflowRow, WorkflowRunRow
from adapters.sql.repositories.base import SqlAdapter, rowcount
from adapters.sql.repositories.mappers import organization_from_row, user_from_row, workflow_from_row
from application.ports.repositories import CallRoute, CallRoutes, CallSlots


class SqlCallRoutes(SqlAdapter, CallRoutes):
    """The agent, its organisation and owner, and the owner's seconds this month: one statement."""

    async def route(self, agent_uuid: UUID, since: datetime) -> CallRoute | None:
        owned = aliased(WorkflowRow)  # the owner's agents, the routed one among them
        used = (
            select(func.coalesce(func.sum(WorkflowRunRow.duration_seconds), 0.0))
            .select_from(WorkflowRunRow)
            .join(owned, owned.id == WorkflowRunRow.workflow_id)
            .where(owned.user_id == WorkflowRow.user_id, WorkflowRunRow.created_at >= since)
            .scalar_subquery()
        )
        query = (
            select(WorkflowRow, OrganizationRow, UserRow, used)
            .outerjoin(OrganizationRow, OrganizationRow.id == WorkflowRow.organization_id)
            .outerjoin(UserRow, UserRow.id == WorkflowRow.user_id)
            .where(WorkflowRow.uuid == agent_uuid)
        )
        async with self._transaction() as session:
            found = (await session.execute(query)).first()
            if found is None:
                return None
            workflow, organization, owner, seconds = found
            return CallRoute(
                workflow=workflow_from_row(workflow),
                organization=None if organization is None else organization_from_row(organization),
                owner=None if owner is None else user_from_row(owner),
                seconds_used=float(seconds or 0.0),
            )


class SqlCallSlots(SqlAdapter, CallSlots):
    """Slot rows under a per-organisation lock.

    PostgreSQL: the organisation's row is locked (`FOR NO KEY UPDATE`, which still lets other
    transactions insert rows that reference it) for the rest of the transaction, so the count
    and the insert of concurrent acquires for one organisation never interleave.
    SQLite: one process; acquires are serialised by an `asyncio.Lock`, and the transaction
    begins with a write, which takes SQLite's database lock before anything is counted.
    Expired slots of the organisation are deleted on the way; an unknown organisation gets none.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self._local_lock = asyncio.Lock()

    async def acquire(
        self, organization_id: int, limit: int, instance_id: str, now: datetime, ttl_seconds: float
    ) -> str | None:
        slot_id = uuid4().hex
        lock: contextlib.AbstractAsyncContextManager[Any] = (
            contextlib.nullcontext() if self._row_locks else self._local_lock
        )
        async with lock, self._transaction() as session:
            if self._row_locks:
                await session.execute(
                    select(OrganizationRow.id)
                    .where(OrganizationRow.id == organization_id)
                    .with_for_update(key_share=True)
                )
            # Expired leases go first (on SQLite, this write is what takes the database lock).
            await session.execute(
                delete(CallSlotRow).where(
                    CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at <= now
                )
            )
            live = (
                select(func.count())
                .select_from(CallSlotRow)
                .where(CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at > now)
                .scalar_subquery()
            )
            # One conditional statement: the slot goes in only if the organisation exists and
            # has fewer than `limit` live slots at this point of the (locked) transaction.
            candidate = select(
                literal(slot_id),
                OrganizationRow.id,
                literal(instance_id),
                literal(now, DateTimeUTC()),
                literal(now + timedelta(seconds=ttl_seconds), DateTimeUTC()),
            ).where(OrganizationRow.id == organization_id, live < limit)
            inserted = await rowcount(
                session,
                insert(CallSlotRow).from_select(
                    ["id", "organization_id", "instance_id", "acquired_at", "expires_at"], candidate
                ),
            )
        return slot_id if inserted == 1 else None

    async def release(self, slot_id: str) -> None:
        async with self._transaction() as session:
            await session.execute(delete(CallSlotRow).where(CallSlotRow.id == slot_id))

    async def renew(self, slot_ids: Collection[str], now: datetime, ttl_seconds: float) -> None:
        if not slot_ids:
            return
        async with self._transaction() as session:
            await session.execute(
                update(CallSlotRow)
                .where(CallSlotRow.id.in_(list(slot_ids)))
                .values(expires_at=now + timedelta(seconds=ttl_seconds))
            )

    async def live_count(self, organization_id: int, now: datetime) -> int:
        async with self._transaction() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(CallSlotRow)
                .where(CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at > now)
            )
            return int(count or 0)
