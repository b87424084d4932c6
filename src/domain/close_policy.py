"""Close codes and the refusals that carry them (the spec's close-code table).

Every refusal of a stream is a `StreamRefusedError` subclass: the class names the close code and
the reason sent to the peer; `detail` is diagnostic text that is logged, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MAX_REASON_BYTES = 123  # RFC 6455 §5.5: 125-byte control payload minus the 2-byte code


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY_VIOLATION = 1008
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    PROVIDER_HANDSHAKE = 4400


def cap_reason(reason: str, limit: int = MAX_REASON_BYTES) -> str:
    """Cut `reason` to at most `limit` UTF-8 bytes without splitting a character (a lone
    surrogate, which no UTF-8 can carry, becomes "?")."""
    try:
        encoded = reason.encode("utf-8")
    except UnicodeEncodeError:
        encoded = reason.encode("utf-8", errors="replace")
        reason = encoded.decode("utf-8")
    if len(encoded) <= limit:
        return reason
    return encoded[:limit].decode("utf-8", errors="ignore")


@dataclass(frozen=True, slots=True)
class Close:
    """What the socket is closed with, and what the run records: the two cannot disagree."""

    code: int
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", int(self.code))  # a plain int on the run and in logs
        object.__setattr__(self, "reason", cap_reason(self.reason))


NORMAL_CLOSE = Close(CloseCode.NORMAL, "")
INTERNAL_ERROR_CLOSE = Close(CloseCode.INTERNAL_ERROR, "Internal server error")
# What a run records when its instance died under it: no close frame went out (the process was
# gone); another instance ended the run once the dead one's heartbeat was older than the TTL.
INSTANCE_LOST_CLOSE = Close(CloseCode.INTERNAL_ERROR, "Instance lost")
# What a run records when its stream was refused for a database that answered too late, after the
# run's insert had in fact gone through: its own instance ends it once no call holds it.
ABANDONED_CLOSE = Close(CloseCode.INTERNAL_ERROR, "Service unavailable")


class StreamRefusedError(Exception):
    """A stream refused for a reason the spec names. Subclasses set `code` and `reason`."""

    code: CloseCode = CloseCode.INTERNAL_ERROR
    reason: str = "Internal server error"

    def __init__(self, reason: str | None = None, *, detail: str | None = None) -> None:
        self.close = Close(self.code, reason if reason is not None else self.reason)
        self.detail = detail
        super().__init__(self.close.reason)


# 1008: routing failures -----------------------------------------------------------------------


class RoutingRefusedError(StreamRefusedError):
    code = CloseCode.POLICY_VIOLATION


class UnknownProviderError(RoutingRefusedError):
    def __init__(self, provider: str | None) -> None:
        super().__init__(f"Unknown provider: {provider or ''}".rstrip())


class WorkflowNotFoundError(RoutingRefusedError):
    reason = "Workflow not found"


class CallLimitReachedError(RoutingRefusedError):
    reason = "Concurrent call limit reached"


class QuotaExceededError(RoutingRefusedError):
    reason = "Quota exceeded"


class TooManyLookupFailuresError(RoutingRefusedError):
    reason = "Too many failed lookups"


class InvalidStreamParameterError(RoutingRefusedError):
    """A value of the stream URL holds a NUL, a control character or is over-long: refused
    before anything is looked up or stored. The reason names the parameter, never the value."""

    def __init__(self, name: str, *, where: str = "query", detail: str | None = None) -> None:
        super().__init__(f"Invalid {where} parameter: {name}", detail=detail)


# 1011: server-side failures -------------------------------------------------------------------


class ProviderNotImplementedError(StreamRefusedError, NotImplementedError):
    code = CloseCode.INTERNAL_ERROR

    def __init__(self, provider: str) -> None:
        super().__init__(f"Agent-stream not supported for provider {provider}")


class ServiceUnavailableError(StreamRefusedError):
    """The service is shutting down or a dependency is down; the caller may retry elsewhere."""

    code = CloseCode.INTERNAL_ERROR
    reason = "Service unavailable"


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database did not answer within its bound (`AGENT_STREAM_DB_TIMEOUT`) or refused us."""


# 1013: try again later (the caller's provider may retry on another instance) -----------------


class TryAgainLaterError(StreamRefusedError):
    code = CloseCode.TRY_AGAIN_LATER
    reason = "Try again later"


class ServerBusyError(TryAgainLaterError):
    """The instance is saturated (event-loop lag above `AGENT_STREAM_BUSY_LAG_MS`)."""

    reason = "Server busy"


class DrainingError(TryAgainLaterError):
    """The instance is draining for shutdown and admits no new call."""

    reason = "Server shutting down"


class AgentMisconfiguredError(StreamRefusedError):
    """The agent cannot run as defined (e.g. an API key variable is missing)."""

    code = CloseCode.INTERNAL_ERROR


# 4400: provider handshake ---------------------------------------------------------------------


class HandshakeError(StreamRefusedError):
    code = CloseCode.PROVIDER_HANDSHAKE
    reason = "Provider handshake failed"


class MissingDomainError(HandshakeError):
    reason = "Missing Domain"


class UnknownDomainError(HandshakeError):
    def __init__(self, domain: str) -> None:
        super().__init__(f"Unknown Cloudonix domain: {domain}")


class MissingBearerTokenError(HandshakeError):
    reason = "Cloudonix configuration missing bearer_token"


class ExpectedConnectedEventError(HandshakeError):
    reason = "Expected connected event"


class ExpectedStartEventError(HandshakeError):
    reason = "Expected start event"


class InvalidJsonError(HandshakeError):
    reason = "Invalid JSON in handshake message"


class HandshakeMessageTooLargeError(HandshakeError):
    reason = "Handshake message too large"


class MissingStartMetadataError(HandshakeError):
    reason = "Missing start metadata"


class MissingStreamIdentifiersError(HandshakeError):
    reason = "Missing stream identifiers"


class MissingStartDomainError(HandshakeError):
    reason = "Missing Cloudonix domain in start message"


class HandshakeTimeoutError(HandshakeError):
    reason = "Handshake timeout"


class PeerClosedDuringHandshakeError(HandshakeError):
    reason = "Stream closed during handshake"


class UnsupportedMediaFormatError(HandshakeError):
    def __init__(self, what: str) -> None:
        super().__init__(f"Unsupported media format: {what}")


class SessionValidationFailedError(HandshakeError):
    reason = "Cloudonix session validation failed"
