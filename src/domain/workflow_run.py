"""`WorkflowRun`: one call's record, and the state machine it moves through.

initialized -> running -> completed | failed; initialized -> failed (refused before running).
Any other move raises `InvalidTransitionError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.close_policy import Close, CloseCode
from domain.disposition import disposition_of
from domain.masking import mask_phone
from domain.recording import RunRecording
from domain.stored import Stored

RUN_NAME_PREFIX = "WR-AGS-"
RUN_NUMBER_DIGITS = 8


class RunState(StrEnum):
    INITIALIZED = "initialized"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (RunState.COMPLETED, RunState.FAILED)


class EndReason(StrEnum):
    CALLER_HANGUP = "caller_hangup"  # the caller hung up, or asked the agent to (`#` on the line test)
    AGENT_HANGUP = "agent_hangup"  # the agent chose to end the call
    OPERATOR_HANGUP = "operator_hangup"  # asked through the API (or the console)
    TRANSFERRED = "transferred"
    MAX_DURATION = "max_duration"
    ERROR = "error"
    INSTANCE_LOST = "instance_lost"
    DRAINED = "drained"


# The one rule for hang-ups: only the agent's own last words (a goodbye it chose to say, an apology
# before a failure ends the call) play out before the provider hang-up goes out. A hang-up someone
# asked for (the caller's `#`, an operator, a shutdown's drain) and a limit reached (`max_duration`)
# are immediate: `clear`, the provider hang-up, close 1000.
_LAST_WORDS_PLAY_OUT = frozenset({EndReason.AGENT_HANGUP, EndReason.ERROR})


def last_words_play_out(end_reason: str) -> bool:
    """True when a hang-up for `end_reason` lets the agent's queued audio finish first."""
    return end_reason in _LAST_WORDS_PLAY_OUT


# What the server's close (code 1000) says when it ended the call itself, for the provider and on
# the run's `close_reason` (a caller's own `stop` closes with no reason). `agent-stream call` reads
# these to say how the call ended; a transfer's reason adds the masked destination.
HANGUP_CLOSE_REASONS: dict[str, str] = {
    EndReason.CALLER_HANGUP: "Hung up at the caller's request",
    EndReason.AGENT_HANGUP: "Hung up by the agent",
    EndReason.OPERATOR_HANGUP: "Hung up by an operator",
    EndReason.MAX_DURATION: "Maximum call duration reached",
    EndReason.DRAINED: "Server shutting down",
}
TRANSFERRED_CLOSE_PREFIX = "Transferred to "


def hangup_close(end_reason: str) -> Close:
    """The close of a call the server hung up for `end_reason` (1000, and why)."""
    return Close(CloseCode.NORMAL, HANGUP_CLOSE_REASONS.get(end_reason, ""))


def transfer_close(destination: str) -> Close:
    """The close of a transferred call: 1000, "Transferred to ***0123" (last four digits only)."""
    masked = mask_phone(destination) or ""
    shown = masked if masked[3:].isdigit() else "***"  # a SIP URI without a number shows nothing
    return Close(CloseCode.NORMAL, TRANSFERRED_CLOSE_PREFIX + shown)


ALLOWED_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.INITIALIZED: frozenset({RunState.RUNNING, RunState.FAILED}),
    RunState.RUNNING: frozenset({RunState.COMPLETED, RunState.FAILED}),
    RunState.COMPLETED: frozenset(),
    RunState.FAILED: frozenset(),
}


class InvalidTransitionError(Exception):
    def __init__(self, current: RunState, target: RunState) -> None:
        self.current = current
        self.target = target
        super().__init__(f"a run cannot move from {current} to {target}")


def run_name(number: int) -> str:
    if not 0 <= number < 10**RUN_NUMBER_DIGITS:
        raise ValueError("run number out of range")
    return f"{RUN_NAME_PREFIX}{number:0{RUN_NUMBER_DIGITS}d}"


@dataclass(slots=True)
class WorkflowRun(Stored):
    name: str
    workflow_id: int
    agent_uuid: UUID
    mode: str
    created_at: datetime
    call_type: str = "inbound"
    state: RunState = RunState.INITIALIZED
    initial_context: dict[str, Any] = field(default_factory=dict)
    gathered_context: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    end_reason: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    instance_id: str | None = None
    disposition: str | None = None  # set when the run ends (`domain.disposition`)
    trace_id: str | None = None  # the call's OpenTelemetry trace (32 hex digits), when tracing is on
    recording: RunRecording | None = None
    id: int | None = None

    def _move(self, target: RunState) -> None:
        if target not in ALLOWED_TRANSITIONS[self.state]:
            raise InvalidTransitionError(self.state, target)
        self.state = target

    def start(self, now: datetime) -> None:
        self._move(RunState.RUNNING)
        self.started_at = now

    def complete(self, now: datetime, end_reason: EndReason | str, close: Close) -> None:
        self._move(RunState.COMPLETED)
        self._stamp_end(now, end_reason, close)

    def fail(self, now: datetime, end_reason: EndReason | str, close: Close) -> None:
        self._move(RunState.FAILED)
        self._stamp_end(now, end_reason, close)

    def _stamp_end(self, now: datetime, end_reason: EndReason | str, close: Close) -> None:
        self.ended_at = now
        began = self.started_at or self.created_at
        self.duration_seconds = round(max(0.0, (now - began).total_seconds()), 3)
        self.end_reason = str(end_reason)
        self.close_code = int(close.code)
        self.close_reason = close.reason
        self.disposition = str(disposition_of(self.end_reason, self.gathered_context))
