"""Row models: the relational shape of the domain, on advanced-alchemy's portable types.

These classes are storage rows, not the domain: `repositories.py` maps them to and from the
`domain` dataclasses. `DateTimeUTC` stores UTC and hands back aware datetimes on every dialect,
`JsonB` is JSONB on PostgreSQL and JSON on SQLite, `GUID` a native UUID where there is one.
Changing anything here needs a migration in `migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase, IdentityBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

__all__ = (
    "ApiKeyRow",
    "CallSlotRow",
    "InstanceRow",
    "OrganizationRow",
    "TelephonyConfigRow",
    "UserRow",
    "WebhookDeliveryRow",
    "WebhookSecretRow",
    "WorkflowRow",
    "WorkflowRunRow",
    "metadata",
)

metadata = IdentityBase.metadata

# advanced-alchemy's `JsonB` is this plus an Oracle variant whose table hook calls
# `sqlalchemy.util.portable_instancemethod`, which SQLAlchemy 2.1 removed (advanced-alchemy 1.12).
JsonB = JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


class OrganizationRow(IdentityBase):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(255))
    max_concurrent_calls: Mapped[int] = mapped_column(Integer)


class UserRow(IdentityBase):
    __tablename__ = "users"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    monthly_minutes: Mapped[int] = mapped_column(Integer)


class ApiKeyRow(IdentityBase):
    __tablename__ = "api_keys"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class WorkflowRow(IdentityBase):
    __tablename__ = "workflows"

    uuid: Mapped[UUID] = mapped_column(GUID, unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JsonB)
    template_variables: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class TelephonyConfigRow(IdentityBase):
    __tablename__ = "telephony_configurations"
    __table_args__ = (
        UniqueConstraint(
            "organization_id", "provider", "domain_id", name="uq_telephony_configurations_domain"
        ),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    domain_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    bearer_token: Mapped[str] = mapped_column(Text)


class WorkflowRunRow(IdentityBase):
    __tablename__ = "workflow_runs"

    name: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"), index=True)
    agent_uuid: Mapped[UUID] = mapped_column(GUID)
    state: Mapped[str] = mapped_column(String(16), index=True)
    call_type: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(32))
    initial_context: Mapped[dict[str, Any]] = mapped_column(JsonB)
    gathered_context: Mapped[dict[str, Any]] = mapped_column(JsonB)
    logs: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    close_code: Mapped[int | None] = mapped_column(Integer)
    close_reason: Mapped[str | None] = mapped_column(String(255))
    instance_id: Mapped[str | None] = mapped_column(String(128), index=True)
    disposition: Mapped[str | None] = mapped_column(String(32), index=True)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    recording: Mapped[dict[str, Any] | None] = mapped_column(JsonB)


class CallSlotRow(DefaultBase):
    """One live call's lease; it counts while `expires_at` is in the future."""

    __tablename__ = "call_slots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    instance_id: Mapped[str] = mapped_column(String(128), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class InstanceRow(DefaultBase):
    """One running instance of the service; dead once `heartbeat_at` is older than the TTL."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class WebhookDeliveryRow(IdentityBase):
    """The outbox: one row per ended run whose agent has a webhook, written with the run's end."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("workflow_runs.id"), unique=True)
    url: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class WebhookSecretRow(DefaultBase):
    """An agent's webhook signing secret, encrypted like the bearer tokens."""

    __tablename__ = "webhook_secrets"

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
