"""Contract of `WorkflowRunRepository`: run records, the Runs tab's pages and the quota's sum."""

from __future__ import annotations

import dataclasses
from datetime import timedelta, timezone
from typing import Any

import pytest

from application.ports.repositories import StorageError
from domain.agents import Workflow
from domain.close_policy import NORMAL_CLOSE
from domain.recording import RunRecording
from domain.workflow_run import EndReason, RunState, WorkflowRun
from tests.contract.conftest import Backend
from tests.contract.factories import EPOCH, WorkflowRunFactory


def _fresh_run(workflow: Workflow, **changes: Any) -> WorkflowRun:
    """A run as the use case mints it: initialized, nothing stamped yet."""
    assert workflow.id is not None
    run = WorkflowRun(
        name="WR-AGS-00000001",
        workflow_id=workflow.id,
        agent_uuid=workflow.uuid,
        mode="cloudonix",
        created_at=EPOCH,
        initial_context={"caller_number": "+15555550100"},
        gathered_context={"call_id": "C-1"},
        logs={"inbound_webhook": {"domain": "acme"}},
        instance_id="instance-a",
    )
    return dataclasses.replace(run, **changes)


async def test_a_run_round_trips(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    assert workflow.id is not None
    built = WorkflowRunFactory.build(workflow_id=workflow.id, agent_uuid=workflow.uuid)

    added = await backend.runs.add(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    loaded = await backend.runs.get(added.id)
    assert loaded == added
    assert loaded is not None
    for value in (loaded.created_at, loaded.started_at, loaded.ended_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)


async def test_a_freshly_minted_run_round_trips(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    built = _fresh_run(workflow)

    added = await backend.runs.add(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    assert await backend.runs.get(added.id) == added


async def test_save_stores_the_runs_progress(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    run = await backend.runs.add(_fresh_run(workflow))
    assert run.id is not None

    run.start(EPOCH + timedelta(seconds=1))
    await backend.runs.save(run)
    assert await backend.runs.get(run.id) == run

    run.gathered_context["transcript"] = [{"role": "caller", "text": "hello", "at": "2026-01-01T00:00:02Z"}]
    run.logs["stream"] = {"streamSid": "MZ1", "tracks": ["inbound"]}
    run.complete(EPOCH + timedelta(seconds=43.5), EndReason.CALLER_HANGUP, NORMAL_CLOSE)
    await backend.runs.save(run)

    stored = await backend.runs.get(run.id)
    assert stored == run
    assert stored is not None
    assert stored.state is RunState.COMPLETED
    assert stored.duration_seconds == 42.5


async def test_the_journal_stores_the_gathered_context_alone(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    run = await backend.runs.add(_fresh_run(workflow))
    assert run.id is not None
    stored_before = await backend.runs.get(run.id)
    assert stored_before is not None

    run.gathered_context["transcript"] = [{"role": "agent", "text": "Hello", "at": "2026-01-01T00:00:01Z"}]
    run.logs["stream"] = {"streamSid": "MZ1"}  # not the journal's: stays as stored
    run.start(EPOCH + timedelta(seconds=1))
    await backend.runs.save_gathered_context(run)

    stored = await backend.runs.get(run.id)
    assert stored == dataclasses.replace(stored_before, gathered_context=run.gathered_context)
    with pytest.raises(StorageError):
        await backend.runs.save_gathered_context(dataclasses.replace(run, id=10**9))


async def test_saving_an_unknown_run_fails(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    run = await backend.runs.add(_fresh_run(workflow))

    with pytest.raises(StorageError):
        await backend.runs.save(dataclasses.replace(run, id=10**9))


async def test_a_run_needs_an_existing_agent(backend: Backend) -> None:
    workflow = await backend.new_workflow()

    with pytest.raises(StorageError):
        await backend.runs.add(_fresh_run(workflow, workflow_id=10**9))


async def test_naive_datetimes_are_refused(backend: Backend) -> None:
    workflow = await backend.new_workflow()

    with pytest.raises(StorageError):
        await backend.runs.add(_fresh_run(workflow, created_at=EPOCH.replace(tzinfo=None)))


async def test_an_unknown_run_is_none(backend: Backend) -> None:
    assert await backend.runs.get(10**9) is None


async def test_the_store_keeps_its_own_copy(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    run = await backend.runs.add(_fresh_run(workflow))
    assert run.id is not None

    run.logs["injected"] = True
    run.state = RunState.FAILED

    stored = await backend.runs.get(run.id)
    assert stored is not None
    assert "injected" not in stored.logs
    assert stored.state is RunState.INITIALIZED


async def test_pages_walk_all_runs_newest_first_without_gaps_or_repeats(backend: Backend) -> None:
    workflow, other = await backend.new_workflow(), await backend.new_workflow()
    assert workflow.id is not None
    ids: list[int] = []
    for number in range(250):
        run = await backend.runs.add(_fresh_run(workflow, name=f"WR-AGS-{number:08d}"))
        assert run.id is not None
        ids.append(run.id)
        if number % 50 == 0:
            await backend.runs.add(_fresh_run(other))  # interleaved runs of another agent

    seen: list[int] = []
    pages: list[int] = []
    before_id: int | None = None
    while page := await backend.runs.list_for_workflow(workflow.id, limit=40, before_id=before_id):
        assert all(run.workflow_id == workflow.id for run in page)
        pages.append(len(page))
        seen.extend(run.id for run in page if run.id is not None)
        before_id = page[-1].id

    assert seen == sorted(ids, reverse=True)
    assert pages == [40] * 6 + [10]


async def test_a_page_holds_at_most_limit_runs_below_before_id(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    assert workflow.id is not None
    runs = [await backend.runs.add(_fresh_run(workflow)) for _ in range(5)]
    ids = [run.id for run in runs]

    first_page = await backend.runs.list_for_workflow(workflow.id, limit=2)
    assert [run.id for run in first_page] == [ids[4], ids[3]]
    assert first_page == [runs[4], runs[3]]

    middle = await backend.runs.list_for_workflow(workflow.id, limit=10, before_id=ids[3])
    assert [run.id for run in middle] == [ids[2], ids[1], ids[0]]

    assert await backend.runs.list_for_workflow(workflow.id, limit=10, before_id=ids[0]) == []


async def test_an_agent_without_runs_has_an_empty_page(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    assert workflow.id is not None

    assert await backend.runs.list_for_workflow(workflow.id, limit=50) == []


async def test_seconds_used_sums_the_users_runs_since_a_moment(backend: Backend) -> None:
    user = await backend.new_user()
    first_agent, second_agent = await backend.new_workflow(user), await backend.new_workflow(user)
    strangers_agent = await backend.new_workflow()
    since = EPOCH + timedelta(days=31)

    async def run(agent: Workflow, created_after_since: timedelta, duration: float | None) -> None:
        await backend.runs.add(
            _fresh_run(agent, created_at=since + created_after_since, duration_seconds=duration)
        )

    await run(first_agent, timedelta(0), 60.5)  # exactly at `since`: counts
    await run(first_agent, timedelta(days=3), 30.25)
    await run(second_agent, timedelta(hours=1), 9.25)
    await run(second_agent, timedelta(hours=2), None)  # still running: counts 0
    await run(first_agent, -timedelta(microseconds=1), 1000.0)  # last month
    await run(strangers_agent, timedelta(hours=1), 500.0)  # another user's agent
    assert user.id is not None

    assert await backend.runs.seconds_used(user.id, since) == pytest.approx(100.0)


async def test_seconds_used_compares_instants_not_wall_clocks(backend: Backend) -> None:
    user = await backend.new_user()
    agent = await backend.new_workflow(user)
    assert user.id is not None
    await backend.runs.add(_fresh_run(agent, created_at=EPOCH, duration_seconds=5.0))
    # one second before EPOCH, written in UTC+2 (its wall clock reads later than EPOCH's)
    since = (EPOCH - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2)))

    assert await backend.runs.seconds_used(user.id, since) == pytest.approx(5.0)
    assert await backend.runs.seconds_used(user.id, since + timedelta(seconds=2)) == 0.0


async def test_a_user_without_runs_used_nothing(backend: Backend) -> None:
    user = await backend.new_user()
    assert user.id is not None

    assert await backend.runs.seconds_used(user.id, EPOCH) == 0.0


async def test_save_recording_stores_only_the_recording(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    added = await backend.runs.add(_fresh_run(workflow))
    assert added.id is not None and added.recording is None
    recording = RunRecording(key=f"run-{added.id}.wav", url="https://x/rec", seconds=12.5, bytes=400_044)

    changed = dataclasses.replace(added, recording=recording, logs={"not": "stored"})
    await backend.runs.save_recording(changed)

    loaded = await backend.runs.get(added.id)
    assert loaded == dataclasses.replace(added, recording=recording)
    with pytest.raises(StorageError):
        await backend.runs.save_recording(dataclasses.replace(changed, id=added.id + 1000))
