from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.close_policy import Close
from domain.workflow_run import (
    ALLOWED_TRANSITIONS,
    EndReason,
    InvalidTransitionError,
    RunState,
    WorkflowRun,
    last_words_play_out,
    run_name,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def new_run() -> WorkflowRun:
    return WorkflowRun(name=run_name(7), workflow_id=1, agent_uuid=uuid4(), mode="cloudonix", created_at=T0)


def test_run_name_has_prefix_and_eight_digits():
    assert run_name(7) == "WR-AGS-00000007"
    assert run_name(99_999_999) == "WR-AGS-99999999"
    with pytest.raises(ValueError, match="range"):
        run_name(10**8)


def test_a_completed_run_records_its_end():
    run = new_run()
    run.start(T0 + timedelta(seconds=1))
    run.complete(T0 + timedelta(seconds=31.5), EndReason.CALLER_HANGUP, Close(1000))
    assert run.state is RunState.COMPLETED
    assert run.duration_seconds == 30.5
    assert (run.end_reason, run.close_code, run.close_reason) == ("caller_hangup", 1000, "")


def test_a_run_refused_before_running_fails_with_its_close():
    run = new_run()
    run.fail(T0, EndReason.ERROR, Close(4400, "Missing Domain"))
    assert run.state is RunState.FAILED
    assert (run.close_code, run.close_reason, run.duration_seconds) == (4400, "Missing Domain", 0.0)


@pytest.mark.parametrize("terminal", [RunState.COMPLETED, RunState.FAILED])
def test_terminal_runs_never_move_again(terminal):
    run = new_run()
    run.start(T0)
    if terminal is RunState.COMPLETED:
        run.complete(T0, EndReason.CALLER_HANGUP, Close(1000))
    else:
        run.fail(T0, EndReason.ERROR, Close(1011, "x"))
    with pytest.raises(InvalidTransitionError):
        run.start(T0)
    with pytest.raises(InvalidTransitionError):
        run.complete(T0, EndReason.CALLER_HANGUP, Close(1000))
    with pytest.raises(InvalidTransitionError):
        run.fail(T0, EndReason.ERROR, Close(1011))


def test_initialized_cannot_complete_without_running():
    with pytest.raises(InvalidTransitionError):
        new_run().complete(T0, EndReason.CALLER_HANGUP, Close(1000))


MOVES = {
    "start": (RunState.RUNNING, lambda r: r.start(T0)),
    "complete": (RunState.COMPLETED, lambda r: r.complete(T0, EndReason.AGENT_HANGUP, Close(1000))),
    "fail": (RunState.FAILED, lambda r: r.fail(T0, EndReason.ERROR, Close(1011))),
}


@given(st.lists(st.sampled_from(sorted(MOVES)), max_size=8))
def test_state_machine_accepts_exactly_the_allowed_moves(moves):
    run = new_run()
    for move in moves:
        target, apply = MOVES[move]
        before = run.state
        if target in ALLOWED_TRANSITIONS[before]:
            apply(run)
            assert run.state is target
        else:
            with pytest.raises(InvalidTransitionError):
                apply(run)
            assert run.state is before
    if run.state.terminal:
        assert run.ended_at is not None
        assert run.close_code is not None


def test_only_the_agents_own_endings_wait_for_its_last_words():
    waiting = {reason for reason in EndReason if last_words_play_out(reason)}
    assert waiting == {EndReason.AGENT_HANGUP, EndReason.ERROR}
