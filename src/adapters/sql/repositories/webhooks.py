"""The webhooks' outbox and the agents' signing secrets.

`enqueue_webhook` is called by the run stores inside the transaction that stores a run's end, so
the outbox row and the end commit together (or neither does). One row per run: a second end
stored for the same run (a reaped run whose call stores its end later) adds nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import Insert, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.models import WebhookDeliveryRow, WebhookSecretRow, WorkflowRow
from adapters.sql.repositories.base import SqlAdapter
from application.ports.credentials import CredentialCipher
from application.ports.webhooks import WebhookOutbox, WebhookSecrets
from domain.webhooks import DeliveryState, WebhookDelivery, webhook_url_of
from domain.workflow_run import WorkflowRun


async def enqueue_webhook(session: AsyncSession, run: WorkflowRun, dialect: str | None) -> None:
    """In the caller's transaction: the outbox row of `run`, if it has ended and its agent has a
    webhook (and the run has none yet)."""
    if not run.state.terminal:
        return
    definition = await session.scalar(select(WorkflowRow.definition).where(WorkflowRow.id == run.workflow_id))
    url = webhook_url_of(definition)
    if url is None:
        return
    due = run.ended_at or datetime.now().astimezone()
    values = {
        "run_id": run.stored_id,
        "url": url,
        "message_id": f"msg_{uuid.uuid4().hex}",
        "state": str(DeliveryState.PENDING),
        "attempts": 0,
        "last_status": None,
        "created_at": due,
        "next_attempt_at": due,
    }
    statement: Insert
    if dialect == "postgresql":
        statement = postgresql.insert(WebhookDeliveryRow).values(values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(WebhookDeliveryRow).values(values).on_conflict_do_nothing()
    await session.execute(statement)


def _delivery(row: WebhookDeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        run_id=row.run_id,
        url=row.url,
        message_id=row.message_id,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        last_status=row.last_status,
        id=row.id,
    )


class SqlWebhookOutbox(SqlAdapter, WebhookOutbox):
    """Claims lock the due rows `FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances claiming at
    once share them out; on SQLite the claim's update takes the database's write lock first."""

    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[WebhookDelivery]:
        due = (
            select(WebhookDeliveryRow.id)
            .where(
                WebhookDeliveryRow.state == str(DeliveryState.PENDING),
                WebhookDeliveryRow.next_attempt_at <= now,
            )
            .order_by(WebhookDeliveryRow.next_attempt_at)
            .limit(limit)
        )
        if self._row_locks:
            due = due.with_for_update(skip_locked=True)
        leased_until = now + timedelta(seconds=lease_seconds)
        async with self._transaction() as session:
            rows = await session.scalars(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id.in_(due))
                .values(next_attempt_at=leased_until)
                .returning(WebhookDeliveryRow),
                execution_options={"synchronize_session": False},
            )
            return [_delivery(row) for row in rows]

    async def save_attempt(self, delivery: WebhookDelivery) -> None:
        async with self._transaction() as session:
            await session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery.stored_id)
                .values(
                    state=str(delivery.state),
                    attempts=delivery.attempts,
                    last_status=delivery.last_status,
                    next_attempt_at=delivery.next_attempt_at,
                )
            )

    async def for_run(self, run_id: int) -> WebhookDelivery | None:
        async with self._transaction() as session:
            row = await session.scalar(select(WebhookDeliveryRow).where(WebhookDeliveryRow.run_id == run_id))
            return None if row is None else _delivery(row)


class SqlWebhookSecrets(SqlAdapter, WebhookSecrets):
    """Secrets encrypted at rest by `cipher`, as the telephony bearer tokens are."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cipher: CredentialCipher) -> None:
        super().__init__(sessions)
        self._cipher = cipher

    async def replace(self, workflow_id: int, secret: str, now: datetime) -> None:
        async with self._transaction() as session:
            await session.execute(delete(WebhookSecretRow).where(WebhookSecretRow.workflow_id == workflow_id))
            session.add(
                WebhookSecretRow(workflow_id=workflow_id, secret=self._cipher.encrypt(secret), created_at=now)
            )

    async def get(self, workflow_id: int) -> str | None:
        async with self._transaction() as session:
            stored = await session.scalar(
                select(WebhookSecretRow.secret).where(WebhookSecretRow.workflow_id == workflow_id)
            )
            return None if stored is None else self._cipher.decrypt(stored)
