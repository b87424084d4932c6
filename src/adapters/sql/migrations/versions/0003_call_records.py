"""Call records (issue 14): each run's disposition, and the end-of-call webhooks' outbox and secrets.

Runs that ended before this revision get their disposition here, derived from what they hold,
as a run ending now would (`domain.disposition`).

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

from domain.disposition import disposition_of

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BACKFILL_BATCH = 1000

_runs = sa.table(
    "workflow_runs",
    sa.column("id", BIG_INT),
    sa.column("state", sa.String()),
    sa.column("end_reason", sa.String()),
    sa.column("gathered_context", JSON_DOCUMENT),
    sa.column("disposition", sa.String()),
)


def upgrade() -> None:
    op.add_column("workflow_runs", sa.Column("disposition", sa.String(length=32), nullable=True))
    op.create_index(op.f("ix_workflow_runs_disposition"), "workflow_runs", ["disposition"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BIG_INT, sa.Identity(always=False, start=1, increment=1), nullable=False),
        sa.Column("run_id", BIG_INT, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("next_attempt_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["workflow_runs.id"], name=op.f("fk_webhook_deliveries_run_id_workflow_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("run_id", name=op.f("uq_webhook_deliveries_run_id")),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "webhook_secrets",
        sa.Column("workflow_id", BIG_INT, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflows.id"], name=op.f("fk_webhook_secrets_workflow_id_workflows")
        ),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_webhook_secrets")),
    )
    _backfill_dispositions()


def _backfill_dispositions() -> None:
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(_runs.c.id, _runs.c.end_reason, _runs.c.gathered_context)
            .where(_runs.c.state.in_(("completed", "failed")), _runs.c.id > after)
            .order_by(_runs.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        for run_id, end_reason, gathered in rows:
            connection.execute(
                sa.update(_runs)
                .where(_runs.c.id == run_id)
                .values(disposition=str(disposition_of(end_reason, gathered or {})))
            )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("webhook_secrets")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("workflow_runs") as batch:
        batch.drop_index(op.f("ix_workflow_runs_disposition"))
        batch.drop_column("disposition")
