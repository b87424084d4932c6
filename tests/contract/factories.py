"""polyfactory builders of the domain dataclasses, with values every store can hold.

Datetimes are aware (in assorted zones: stores hand them back in UTC), JSON documents hold only
JSON types, strings fit the columns' lengths.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from polyfactory import Use
from polyfactory.factories import DataclassFactory

from domain.agents import KNOWN_ENGINES, AgentDefinition, Organization, User, Workflow
from domain.disposition import Disposition
from domain.telephony import SecretStr, TelephonyConfig
from domain.workflow_run import EndReason, WorkflowRun, run_name

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


def moment() -> datetime:
    """An aware datetime with microseconds, in one of a few zones."""
    offset = timedelta(seconds=random.randint(0, 365 * 86_400), microseconds=random.randint(0, 999_999))
    return (EPOCH + offset).astimezone(random.choice(ZONES))


def text(max_length: int = 40) -> str:
    return DataclassFactory.__faker__.pystr(min_chars=1, max_chars=max_length)


def json_document() -> dict[str, Any]:
    """A nested JSON object with every JSON type (and non-ASCII text)."""
    return {
        "text": text(),
        "unicode": "ünïcødé ☎",
        "number": random.randint(-(2**40), 2**40),
        "ratio": random.random(),
        "flag": random.choice([True, False]),
        "nothing": None,
        "items": [text(8), random.randint(0, 9), {"deep": [1.5, "x"]}],
        "nested": {"key": text(12), "empty_list": [], "empty_object": {}},
    }


class OrganizationFactory(DataclassFactory[Organization]):
    id = None
    name = Use(text, 100)
    max_concurrent_calls = Use(random.randint, 1, 500)


class UserFactory(DataclassFactory[User]):
    id = None
    name = Use(text, 100)
    monthly_minutes = Use(random.randint, 0, 100_000)


class AgentDefinitionFactory(DataclassFactory[AgentDefinition]):
    engine = Use(lambda: random.choice(sorted(KNOWN_ENGINES)))
    greeting = Use(lambda: random.choice([None, text(80)]))
    transfer_destination = Use(lambda: random.choice([None, "+15555550123", "sip:desk@example.com"]))
    max_call_seconds = Use(random.randint, 1, 7200)
    settings = Use(json_document)


class WorkflowFactory(DataclassFactory[Workflow]):
    id = None
    name = Use(text, 100)
    definition = Use(AgentDefinitionFactory.build)
    template_variables = Use(json_document)
    created_at = Use(moment)
    updated_at = Use(moment)


class TelephonyConfigFactory(DataclassFactory[TelephonyConfig]):
    id = None
    domain_id = Use(lambda: f"{secrets.token_hex(6)}.cloudonix.net")
    bearer_token = Use(lambda: SecretStr(secrets.token_urlsafe(32)))
    name = Use(text, 100)


class WorkflowRunFactory(DataclassFactory[WorkflowRun]):
    id = None
    name = Use(lambda: run_name(random.randint(0, 10**8 - 1)))
    mode = Use(lambda: random.choice(["cloudonix", "twilio"]))
    call_type = Use(lambda: random.choice(["inbound", "outbound"]))
    initial_context = Use(json_document)
    gathered_context = Use(json_document)
    logs = Use(json_document)
    created_at = Use(moment)
    started_at = Use(moment)
    ended_at = Use(moment)
    duration_seconds = Use(lambda: round(random.uniform(0, 600), 3))
    end_reason = Use(lambda: str(random.choice(list(EndReason))))
    close_code = Use(lambda: random.choice([1000, 1008, 1011, 4400]))
    close_reason = Use(text, 123)
    instance_id = Use(lambda: f"instance-{secrets.token_hex(8)}")
    disposition = Use(lambda: str(random.choice(list(Disposition))))
