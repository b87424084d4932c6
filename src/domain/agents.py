"""Agents (workflows), their owners and the routing decisions made before a run is minted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.stored import Stored
from domain.webhooks import InvalidWebhookUrlError, check_webhook_url

MAX_CALL_SECONDS_LIMIT = 86_400  # a day: longer is a mistake, not a call
DEFAULT_MAX_CALL_SECONDS = 600
KNOWN_ENGINES = frozenset({"linetest", "pipecat"})
# the pipecat engine's turn settings (interfaces.md): how the end of a caller's turn is found
TURN_DETECTIONS = ("silence", "smart_turn")
DEFAULT_TURN_FALLBACK_SECS = 1.5  # silence after which a turn the model calls unfinished is answered
DEFAULT_BACKCHANNEL_MAX_SECS = 0.3  # caller speech shorter than this over the agent is not barge-in


class WorkflowStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class InvalidDefinitionError(ValueError):
    """An agent definition that cannot run; `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    """The agent's definition: its engine and the engine's settings (kept as given)."""

    engine: str = "linetest"
    greeting: str | None = None
    transfer_destination: str | None = None
    max_call_seconds: int = DEFAULT_MAX_CALL_SECONDS
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AgentDefinition:
        if not isinstance(raw, dict):
            raise InvalidDefinitionError("definition", "must be a JSON object")
        engine = raw.get("engine", "linetest")
        if engine not in KNOWN_ENGINES:
            raise InvalidDefinitionError("engine", f"unknown engine {engine!r}")
        max_seconds = raw.get("max_call_seconds", DEFAULT_MAX_CALL_SECONDS)
        if (
            isinstance(max_seconds, bool)
            or not isinstance(max_seconds, int)
            or not 0 < max_seconds <= MAX_CALL_SECONDS_LIMIT
        ):
            raise InvalidDefinitionError(
                "max_call_seconds", f"must be a whole number of seconds from 1 to {MAX_CALL_SECONDS_LIMIT}"
            )
        greeting = raw.get("greeting")
        if greeting is not None and not isinstance(greeting, str):
            raise InvalidDefinitionError("greeting", "must be a string")
        destination = raw.get("transfer_destination")
        if destination is not None and not isinstance(destination, str):
            raise InvalidDefinitionError("transfer_destination", "must be a string")
        webhook_url = raw.get("webhook_url")
        if webhook_url is not None:
            try:  # its shape; whether http is allowed is the service's setting (`CreateAgent`)
                check_webhook_url(webhook_url, allow_http=True)
            except InvalidWebhookUrlError as exc:
                raise InvalidDefinitionError("webhook_url", str(exc)) from None
        check_turn_settings(raw)
        recording = raw.get("recording", False)
        if not isinstance(recording, bool):
            raise InvalidDefinitionError("recording", "must be true or false")
        known = {"engine", "greeting", "transfer_destination", "max_call_seconds"}
        return cls(
            engine=engine,
            greeting=greeting,
            transfer_destination=destination,
            max_call_seconds=max_seconds,
            settings={k: v for k, v in raw.items() if k not in known},
        )

    @property
    def webhook_url(self) -> str | None:
        """Where a POST goes when one of the agent's runs ends (`definition.webhook_url`)."""
        url = self.settings.get("webhook_url")
        return url if isinstance(url, str) else None

    @property
    def records(self) -> bool:
        """`recording: true`: the call is recorded (a stereo WAV, caller left, agent right)."""
        return self.settings.get("recording") is True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine, "max_call_seconds": self.max_call_seconds}
        if self.greeting is not None:
            out["greeting"] = self.greeting
        if self.transfer_destination is not None:
            out["transfer_destination"] = self.transfer_destination
        out.update(self.settings)
        return out


def check_turn_settings(raw: dict[str, Any]) -> None:
    """`turn_detection`, `turn_fallback_secs` and `backchannel_max_secs`, when given, are usable."""
    if raw.get("turn_detection", "silence") not in TURN_DETECTIONS:
        raise InvalidDefinitionError("turn_detection", "must be 'silence' or 'smart_turn'")
    _check_seconds(raw, "turn_fallback_secs", 0.05, 10.0)
    _check_seconds(raw, "backchannel_max_secs", 0.0, 5.0)


def _check_seconds(raw: dict[str, Any], key: str, low: float, high: float) -> None:
    value = raw.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidDefinitionError(key, f"must be a number of seconds from {low:g} to {high:g}")


@dataclass(slots=True)
class Organization(Stored):
    name: str
    max_concurrent_calls: int = 10
    id: int | None = None


@dataclass(slots=True)
class User(Stored):
    organization_id: int
    monthly_minutes: int = 1000
    name: str = ""
    id: int | None = None


@dataclass(slots=True)
class Workflow(Stored):
    """An agent. `uuid` is its stable public identifier; `id` the storage key."""

    uuid: UUID
    organization_id: int
    user_id: int
    name: str
    definition: AgentDefinition = field(default_factory=AgentDefinition)
    status: WorkflowStatus = WorkflowStatus.DRAFT
    template_variables: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None


def quota_allows(monthly_minutes: int, seconds_used: float) -> bool:
    """A stream may start while the owner has used less than their monthly minutes."""
    return seconds_used < monthly_minutes * 60


def slot_available(live_calls: int, limit: int) -> bool:
    """A new call fits while the organisation's live calls are below its limit."""
    return live_calls < limit


def month_start(now: datetime) -> datetime:
    """The start of the calendar month (in `now`'s timezone) that quotas are counted from."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
