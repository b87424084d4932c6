"""The disposition: derived from the end reason and whether the caller spoke, never a default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.close_policy import INSTANCE_LOST_CLOSE, NORMAL_CLOSE, Close
from domain.disposition import Disposition, caller_spoke, disposition_of
from domain.workflow_run import EndReason, WorkflowRun

T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
SILENT: dict[str, Any] = {"call_id": "c-1"}
ECHOED = {"utterances_echoed": 2, "barge_ins": 0, "dtmf": ""}  # the line test heard the caller
ANSWERED = {
    "transcript": [
        {"role": "agent", "text": "Hello", "at": "t0"},
        {"role": "caller", "text": "Opening hours?", "at": "t1"},
        {"role": "agent", "text": "Nine to five.", "at": "t2"},
    ]
}
UNANSWERED = {"transcript": [*ANSWERED["transcript"], {"role": "caller", "text": "And on", "at": "t3"}]}
CUT_OFF = {
    "transcript": [
        {"role": "caller", "text": "Hi", "at": "t0"},
        {"role": "agent", "text": "Our opening", "at": "t1", "interrupted": True},
    ]
}


@pytest.mark.parametrize(
    ("end_reason", "gathered", "expected"),
    [
        ("error", ANSWERED, Disposition.ERROR),
        ("instance_lost", ANSWERED, Disposition.ERROR),
        (None, SILENT, Disposition.ERROR),
        ("transferred", SILENT, Disposition.TRANSFERRED),
        ("operator_hangup", ANSWERED, Disposition.OPERATOR_ENDED),
        ("drained", ANSWERED, Disposition.OPERATOR_ENDED),
        ("max_duration", SILENT, Disposition.MAX_DURATION),
        ("max_duration", ANSWERED, Disposition.MAX_DURATION),
        ("caller_hangup", SILENT, Disposition.NO_SPEECH),
        ("agent_hangup", SILENT, Disposition.NO_SPEECH),
        ("agent_hangup", ANSWERED, Disposition.AGENT_ENDED),
        ("caller_hangup", ANSWERED, Disposition.COMPLETED),
        ("caller_hangup", ECHOED, Disposition.COMPLETED),
        ("caller_hangup", UNANSWERED, Disposition.CALLER_HUNG_UP),
        ("caller_hangup", CUT_OFF, Disposition.CALLER_HUNG_UP),
        ("a_reason_from_the_future", ANSWERED, Disposition.ERROR),
    ],
)
def test_disposition_of(end_reason: str | None, gathered: dict[str, Any], expected: Disposition) -> None:
    assert disposition_of(end_reason, gathered) is expected


def test_every_end_reason_has_a_disposition_of_its_own() -> None:
    """No end reason falls through to the unknown-reason `error` except the failures themselves."""
    for reason in EndReason:
        got = disposition_of(reason, ANSWERED)
        assert (got is Disposition.ERROR) == (reason in (EndReason.ERROR, EndReason.INSTANCE_LOST)), reason


@pytest.mark.parametrize(
    ("gathered", "spoke"),
    [
        (SILENT, False),
        ({"transcript": [{"role": "agent", "text": "Hello"}]}, False),
        ({"transcript": "not a list"}, False),
        ({"utterances_echoed": True}, False),  # a boolean is no count
        ({"barge_ins": 1}, True),
        (ANSWERED, True),
    ],
)
def test_caller_spoke(gathered: dict[str, Any], spoke: bool) -> None:
    assert caller_spoke(gathered) is spoke


def _run(gathered: dict[str, Any]) -> WorkflowRun:
    run = WorkflowRun(
        name="WR-AGS-00000001",
        workflow_id=1,
        agent_uuid=uuid4(),
        mode="cloudonix",
        created_at=T0,
        gathered_context=dict(gathered),
    )
    run.start(T0)
    return run


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (
            lambda run: run.complete(T0 + timedelta(seconds=9), EndReason.CALLER_HANGUP, NORMAL_CLOSE),
            "completed",
        ),
        (lambda run: run.fail(T0, EndReason.INSTANCE_LOST, INSTANCE_LOST_CLOSE), "error"),
        (lambda run: run.fail(T0, EndReason.ERROR, Close(4400, "Handshake timeout")), "error"),
    ],
)
def test_the_run_stamps_its_disposition_when_it_ends(end: Any, expected: str) -> None:
    run = _run(ANSWERED)
    assert run.disposition is None  # live: no disposition yet, not a default
    end(run)
    assert run.disposition == expected
