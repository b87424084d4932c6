"""Ports of a live call, on the service's side of the provider's stream: the socket the provider
streams on, the provider's REST API, the call as the agent sees it, and the agent pipeline. (The
provider's side is `adapters.cloudonix.media_stream`; the simulated caller's,
`entrypoints.simulator`.)"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.ports.recordings import CallRecording
from application.ports.tracing import NO_SPAN, TraceSpan
from domain.agents import AgentDefinition
from domain.close_policy import Close
from domain.stream_events import InboundEvent, StreamStart
from domain.telephony import SecretStr


class CallSocket(Protocol):
    """The provider's WebSocket, already accepted."""

    @abstractmethod
    async def receive(self) -> str | bytes | None:
        """The next message, or `None` once the peer has closed."""

    @abstractmethod
    async def send(self, text: str) -> bool:
        """Send a text message; `False` (never an exception) when the socket is gone."""

    @abstractmethod
    async def close(self, close: Close) -> None:
        """Close with `close`; a no-op when already closed."""


@dataclass(frozen=True, slots=True)
class ProviderCallRef:
    """What a provider's REST API needs to act on one call.

    `caller_id` is the number an outgoing leg (a transfer's destination call) presents; Cloudonix
    requires one, and the call's own called number (a DNID of the domain) is the natural choice.
    `trace` is the call's root span: the provider's hang-up and transfer requests are traced under
    it, whichever task (the agent's, an operator's) asks for them.
    """

    domain: str
    session: str
    bearer_token: SecretStr = field(repr=False)
    caller_id: str | None = None
    trace: TraceSpan = field(default=NO_SPAN, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class HangupReport:
    """How a provider hang-up went, for the run's `logs.provider_hangup`: an operator reading
    `hung_up: false` knows the caller may still be on the line.

    `last_status` is the provider's last HTTP status, `None` when it never answered; `error` then
    says why (`timeout`, `refused`, `connect_failed`, `connection_lost`, ...).
    """

    hung_up: bool
    attempts: int
    last_status: int | None
    error: str | None = None

    def to_log(self) -> dict[str, Any]:
        return {
            "hung_up": self.hung_up,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "error": self.error,
        }


class CallControlError(Exception):
    """A provider REST call failed for good (after its retries); a failed hang-up carries its
    `report`."""

    def __init__(self, message: str, report: HangupReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class ProviderSessions(Protocol):
    """The provider's REST API for one kind of call (Cloudonix today).

    Every call is bounded by the configured provider timeout.
    """

    @abstractmethod
    async def validate(self, call: ProviderCallRef) -> bool:
        """True only when the provider confirms the session exists (HTTP 200)."""

    @abstractmethod
    async def hang_up(self, call: ProviderCallRef) -> HangupReport:
        """End the call; retried on 5xx/time-outs; raises `CallControlError` (with its `report`)
        when it finally fails."""

    @abstractmethod
    async def transfer(self, call: ProviderCallRef, destination: str) -> None:
        """Move the caller to `destination`; raises `CallControlError` on failure."""


class ActiveCall(Protocol):
    """A live call as the agent sees it: events in, audio out, call control.

    `hang_up` and `transfer` act through the provider's REST API (closing the socket alone does
    not end a Cloudonix call) and then end the event stream: `events()` yields `StopIn` next.
    `ended_by` says which of them ended the call (an `EndReason` value), `None` while the caller's
    side has not been ended by us; `closed_with` is the close the stream then got (the run records
    the same).
    """

    start: StreamStart
    ended_by: str | None
    closed_with: Close | None

    @abstractmethod
    def events(self) -> AsyncIterator[InboundEvent]:
        """Inbound events until `StopIn` (always the last one)."""

    @abstractmethod
    async def play(self, pcm: bytes) -> None:
        """Queue 16-bit PCM at 8 kHz for paced playback."""

    @abstractmethod
    async def mark(self, name: str) -> None: ...

    @abstractmethod
    async def clear(self) -> None:
        """Drop queued audio at once and tell the provider to drop its buffer."""

    @abstractmethod
    def playing(self) -> bool:
        """True while queued agent audio has not finished playing to the caller."""

    @abstractmethod
    def played_seconds(self) -> float:
        """Seconds of agent audio the caller has heard so far (cut audio excluded)."""

    @abstractmethod
    async def hang_up(self, reason: str = "agent_hangup", close: Close | None = None) -> None:
        """End the call through the provider, then close the stream with `close` (by default
        1000 with the reason `hangup_close(reason)` gives). When `last_words_play_out(reason)` (the
        agent's own goodbye) what is queued plays first (at most a few seconds); any other hang-up
        is immediate: `clear`, the provider's hang-up, the close. A provider failure is logged,
        never raised: the call ends."""

    @abstractmethod
    async def transfer(self, destination: str) -> None:
        """Move the caller to `destination`; raises `CallControlError` when the transfer failed
        (the call then goes on)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the call's resources (its outbound pacing); idempotent."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Media counters for the run's logs: frames in and out, bad frames by kind."""

    def record(self, recording: CallRecording) -> None:
        """Hand the call's audio to `recording` from now on: what the caller sends, placed by the
        provider's clock, and what the agent's audio plays and when (`clear`ed audio excluded).
        A call that cannot record ignores it."""
        return None

    def control_logs(self) -> dict[str, Any]:
        """What call control did, for the run's logs by key: `provider_hangup` (a `HangupReport`)
        once a hang-up went to the provider; empty when nothing was asked of it."""
        return {}


@dataclass(slots=True)
class CallOutcome:
    """How the agent's conversation ended and what it gathered."""

    end_reason: str
    gathered: dict[str, Any] = field(default_factory=dict)
    close: Close | None = None


class CallJournal(Protocol):
    """Where an agent writes what it learns while the call goes on (transcript lines, turn
    figures); each entry is stored on the run at once, so nothing is lost if the call drops."""

    @abstractmethod
    async def append(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        """Append each `(key, entry)` to the run's `gathered_context[key]` list, then store the run
        (once for all of them)."""


class AgentSession(Protocol):
    """One call's agent, prepared while the provider's session is being validated."""

    @abstractmethod
    async def run(self, call: ActiveCall) -> CallOutcome:
        """Run the conversation until the call ends; never leaves the call hanging."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release what `prepare` started (e.g. when the handshake was refused); idempotent."""


class AgentPipeline(Protocol):
    @abstractmethod
    def prepare(
        self, definition: AgentDefinition, context: dict[str, Any], journal: CallJournal
    ) -> AgentSession:
        """Called as soon as the provider's `start` is read, before its session is validated:
        begin the slow start-up (connect services, synthesise the greeting) in the background.

        Raises `StreamRefusedError` (e.g. `AgentMisconfiguredError`) when the agent cannot run.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Release what the engine holds for all its calls (connection pools), at shutdown."""


class CallFactory(Protocol):
    """Builds the `ActiveCall` of a provider over an accepted socket after its handshake."""

    @abstractmethod
    def open(
        self, socket: CallSocket, start: StreamStart, control: ProviderSessions, ref: ProviderCallRef
    ) -> ActiveCall: ...
