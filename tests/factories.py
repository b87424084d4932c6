"""polyfactory builders of the management API's request bodies (`entrypoints.web.api.schemas`).

`body()` gives the JSON object a client would send; every value is valid unless a test
overrides it.
"""

from __future__ import annotations

import random
import secrets
from typing import Any, Generic, TypeVar

import msgspec
from polyfactory import Use
from polyfactory.factories.msgspec_factory import MsgspecFactory

from entrypoints.web.api.schemas import (
    AgentCreate,
    AgentUpdate,
    TelephonyConfigurationCreate,
    TransferRequest,
)

T = TypeVar("T", bound=msgspec.Struct)


def agent_name() -> str:
    return f"{MsgspecFactory.__faker__.catch_phrase()[:200]} {secrets.token_hex(3)}"


def definition() -> dict[str, Any]:
    """A definition the stream can run: the linetest engine with assorted optional fields."""
    chosen: dict[str, Any] = {"engine": "linetest", "max_call_seconds": random.randint(1, 3600)}
    if random.random() < 0.5:
        chosen["greeting"] = MsgspecFactory.__faker__.sentence()
    if random.random() < 0.5:
        chosen["transfer_destination"] = random.choice(["+15555550123", "sip:desk@example.com"])
    if random.random() < 0.5:
        chosen["notes"] = {"team": MsgspecFactory.__faker__.word(), "tags": ["a", "b"], "ünïcødé": "☎"}
    return chosen


def template_variables() -> dict[str, Any]:
    return {"company": MsgspecFactory.__faker__.company(), "tier": random.randint(1, 3)}


class BodyFactory(MsgspecFactory[T], Generic[T]):
    __is_base_factory__ = True

    @classmethod
    def body(cls, **overrides: Any) -> dict[str, Any]:
        built: dict[str, Any] = msgspec.to_builtins(cls.build(**overrides))
        return built


class AgentCreateFactory(BodyFactory[AgentCreate]):
    name = Use(agent_name)
    definition = Use(definition)
    status = Use(random.choice, ["draft", "published"])
    template_context_variables = Use(template_variables)


class AgentUpdateFactory(BodyFactory[AgentUpdate]):
    __allow_none_optionals__ = False
    name = Use(agent_name)
    definition = Use(definition)
    status = Use(random.choice, ["draft", "published"])
    template_context_variables = Use(template_variables)


class TelephonyConfigurationCreateFactory(BodyFactory[TelephonyConfigurationCreate]):
    provider = "cloudonix"
    domain_id = Use(lambda: f"tenant{secrets.token_hex(5)}")
    bearer_token = Use(lambda: f"cx-{secrets.token_urlsafe(24)}")
    name = Use(lambda: MsgspecFactory.__faker__.company()[:100])


class TransferRequestFactory(BodyFactory[TransferRequest]):
    destination = Use(
        lambda: random.choice(
            [f"+1555555{random.randint(1000, 9999)}", f"sip:desk{random.randint(1, 99)}@example.com"]
        )
    )
