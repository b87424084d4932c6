"""A run's disposition: how its call ended, in an operator's words, derived from what happened.

It is never a default: `disposition_of` reads the end reason, whether the run failed, and whether
the caller ever spoke (what the engines journal), when the run ends.

| end reason | caller spoke | disposition |
|---|---|---|
| `error`, `instance_lost` (the call was cut by a crash) | any | `error` |
| `transferred` | any | `transferred` |
| `operator_hangup`, `drained` (the operator's shutdown hung it up) | any | `operator_ended` |
| `max_duration` | any | `max_duration` |
| `caller_hangup`, `agent_hangup` | no | `no_speech` |
| `agent_hangup` | yes | `agent_ended` |
| `caller_hangup` | yes, and the agent answered the caller's last words in full | `completed` |
| `caller_hangup` | yes, but left mid-exchange (before the agent answered, or cut it off) | `caller_hung_up` |

"The caller spoke": a `caller` line in `gathered_context.transcript` (the pipecat engine), or
speech the engine heard and answered (`utterances_echoed`/`barge_ins` of the line test). An engine
that keeps no transcript (the line test) cannot tell mid-exchange from done: a caller who spoke
and hung up there is `completed`. A run without an end reason (it failed before anything
happened) is `error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Disposition(StrEnum):
    COMPLETED = "completed"
    CALLER_HUNG_UP = "caller_hung_up"
    AGENT_ENDED = "agent_ended"
    OPERATOR_ENDED = "operator_ended"
    TRANSFERRED = "transferred"
    MAX_DURATION = "max_duration"
    NO_SPEECH = "no_speech"
    ERROR = "error"


# End reasons (`domain.workflow_run.EndReason` values) whose disposition does not depend on speech.
_REGARDLESS_OF_SPEECH: dict[str, Disposition] = {
    "error": Disposition.ERROR,
    "instance_lost": Disposition.ERROR,
    "transferred": Disposition.TRANSFERRED,
    "operator_hangup": Disposition.OPERATOR_ENDED,
    "drained": Disposition.OPERATOR_ENDED,
    "max_duration": Disposition.MAX_DURATION,
}
_AFTER_SPEECH: dict[str, Disposition] = {
    "agent_hangup": Disposition.AGENT_ENDED,
    "caller_hangup": Disposition.COMPLETED,
}
SPEECH_END_REASONS = frozenset(_AFTER_SPEECH)


def disposition_of(end_reason: str | None, gathered_context: Mapping[str, Any]) -> Disposition:
    """The disposition of a run that ended for `end_reason` having gathered `gathered_context`."""
    if end_reason is None:
        return Disposition.ERROR
    fixed = _REGARDLESS_OF_SPEECH.get(end_reason)
    if fixed is not None:
        return fixed
    if end_reason not in _AFTER_SPEECH:
        return Disposition.ERROR  # an end reason this table does not know: say so, not "completed"
    if not caller_spoke(gathered_context):
        return Disposition.NO_SPEECH
    if end_reason == "caller_hangup" and _left_mid_exchange(gathered_context):
        return Disposition.CALLER_HUNG_UP
    return _AFTER_SPEECH[end_reason]


def caller_spoke(gathered_context: Mapping[str, Any]) -> bool:
    """Whether the caller ever spoke: a caller line in the transcript, or speech the engine heard."""
    if any(line.get("role") == "caller" for line in _transcript(gathered_context)):
        return True
    return any(_count(gathered_context.get(key)) > 0 for key in ("utterances_echoed", "barge_ins"))


def _left_mid_exchange(gathered_context: Mapping[str, Any]) -> bool:
    """The transcript's last line is the caller's (no answer yet) or the agent's, cut off."""
    transcript = _transcript(gathered_context)
    if not transcript:
        return False
    last = transcript[-1]
    return last.get("role") == "caller" or bool(last.get("interrupted"))


def _transcript(gathered_context: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    lines = gathered_context.get("transcript")
    if not isinstance(lines, list):
        return []
    return [line for line in lines if isinstance(line, Mapping)]


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
