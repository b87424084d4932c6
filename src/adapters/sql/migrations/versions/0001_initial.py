"""Initial schema: organisations, users, API keys, agents, telephony configurations, runs, call slots.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIG_INT, sa.Identity(always=False, start=1, increment=1), nullable=False)


def _timestamp(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, DateTimeUTC(timezone=True), nullable=nullable)


def _references(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "organizations",
        _id(),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "users",
        _id(),
        sa.Column("organization_id", BIG_INT, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("monthly_minutes", sa.Integer(), nullable=False),
        _references("users", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_organization_id"), "users", ["organization_id"])
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("organization_id", BIG_INT, nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        _timestamp("created_at", nullable=False),
        _references("api_keys", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_organization_id"), "api_keys", ["organization_id"])
    op.create_table(
        "workflows",
        _id(),
        sa.Column("uuid", GUID(length=16), nullable=False),
        sa.Column("organization_id", BIG_INT, nullable=False),
        sa.Column("user_id", BIG_INT, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        sa.Column("template_variables", JSON_DOCUMENT, nullable=False),
        _timestamp("created_at", nullable=True),
        _timestamp("updated_at", nullable=True),
        _references("workflows", "organization_id", "organizations"),
        _references("workflows", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("uuid", name=op.f("uq_workflows_uuid")),
    )
    op.create_index(op.f("ix_workflows_organization_id"), "workflows", ["organization_id"])
    op.create_index(op.f("ix_workflows_user_id"), "workflows", ["user_id"])
    op.create_table(
        "telephony_configurations",
        _id(),
        sa.Column("organization_id", BIG_INT, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("domain_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("bearer_token", sa.Text(), nullable=False),
        _references("telephony_configurations", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telephony_configurations")),
        sa.UniqueConstraint(
            "organization_id", "provider", "domain_id", name="uq_telephony_configurations_domain"
        ),
    )
    op.create_index(
        op.f("ix_telephony_configurations_organization_id"), "telephony_configurations", ["organization_id"]
    )
    op.create_table(
        "workflow_runs",
        _id(),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", BIG_INT, nullable=False),
        sa.Column("agent_uuid", GUID(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("initial_context", JSON_DOCUMENT, nullable=False),
        sa.Column("gathered_context", JSON_DOCUMENT, nullable=False),
        sa.Column("logs", JSON_DOCUMENT, nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("ended_at", nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.Column("close_code", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(length=255), nullable=True),
        sa.Column("instance_id", sa.String(length=128), nullable=True),
        _references("workflow_runs", "workflow_id", "workflows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_runs")),
    )
    op.create_index(op.f("ix_workflow_runs_workflow_id"), "workflow_runs", ["workflow_id"])
    op.create_index(op.f("ix_workflow_runs_state"), "workflow_runs", ["state"])
    op.create_index(op.f("ix_workflow_runs_instance_id"), "workflow_runs", ["instance_id"])
    op.create_table(
        "call_slots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", BIG_INT, nullable=False),
        sa.Column("instance_id", sa.String(length=128), nullable=False),
        _timestamp("acquired_at", nullable=False),
        _timestamp("expires_at", nullable=False),
        _references("call_slots", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_slots")),
    )
    op.create_index(op.f("ix_call_slots_organization_id"), "call_slots", ["organization_id"])
    op.create_index(op.f("ix_call_slots_instance_id"), "call_slots", ["instance_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes too; children go before the tables they reference.
    for table in (
        "call_slots",
        "workflow_runs",
        "telephony_configurations",
        "workflows",
        "api_keys",
        "users",
        "organizations",
    ):
        op.drop_table(table)
