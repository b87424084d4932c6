"""The agent-stream request, parsed from the WebSocket path and query string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from domain.close_policy import InvalidStreamParameterError
from domain.phone_numbers import restore_plus
from domain.untrusted_text import is_clean

# A domain name is at most 253 characters; phone numbers, SIP URIs and call ids are far shorter.
MAX_PARAMETER_CHARS: Final = 256


def _checked(name: str, value: str, where: str = "query") -> str | None:
    """`value` stripped (None when blank); refused when it holds a NUL, a surrogate or a control
    character, or is longer than `MAX_PARAMETER_CHARS`."""
    value = value.strip()
    if len(value) > MAX_PARAMETER_CHARS:
        raise InvalidStreamParameterError(name, where=where, detail=f"{len(value)} characters")
    if not is_clean(value):
        raise InvalidStreamParameterError(name, where=where, detail="control character")
    return value or None


def _first(query: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = query.get(name)
        if value is not None and (checked := _checked(name, value)):
            return checked
    return None


def _phone(query: Mapping[str, str], name: str) -> str | None:
    """A phone number: `_first`, with the `+` of an unencoded `from=+1555…` put back."""
    value = query.get(name)
    if value is None:
        return None
    return _checked(name, restore_plus(value))


def parse_agent_uuid(raw: str) -> UUID | None:
    try:
        return UUID(raw.strip())
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class AgentStreamRequest:
    """What the URL says about a call. Nothing here is trusted: the use case checks it all.

    `provider` comes from the path when the path names one, else from `?provider=`; it is
    lower-cased. `agent_uuid` is `None` when the path segment is not a UUID (the stream is then
    refused as "Workflow not found"). Empty values count as absent. A phone number that arrives as
    `" 1555…"` (an unencoded `+` decoded to a space) is read as `"+1555…"` (`restore_plus`). A
    value that holds a NUL, a surrogate or a control character, or is over-long, is refused
    (`InvalidStreamParameterError`, 1008): it is never looked up, stored or echoed.
    """

    agent_uuid: UUID | None
    provider: str | None
    domain: str | None = None
    call_id: str | None = None
    caller_number: str | None = None
    called_number: str | None = None

    @classmethod
    def parse(
        cls, agent_uuid: str, query: Mapping[str, str], path_provider: str | None = None
    ) -> AgentStreamRequest:
        provider = _checked("provider", path_provider, where="path") if path_provider else None
        if provider is None:
            provider = _first(query, "provider")
        return cls(
            agent_uuid=parse_agent_uuid(agent_uuid),
            provider=provider.lower() if provider else None,
            domain=_first(query, "Domain"),
            call_id=_first(query, "callId", "CallSid"),
            caller_number=_phone(query, "from"),
            called_number=_phone(query, "to"),
        )
