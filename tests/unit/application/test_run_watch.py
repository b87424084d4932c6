"""`WatchRuns`: an organisation's runs as they change, re-read organisation-scoped, with keep-alives,
until the instance drains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

from application.management import GetRun
from application.ports.run_feed import RunChange
from application.run_watch import WatchRuns
from domain.agents import AgentDefinition, Organization, User, Workflow, WorkflowStatus
from domain.workflow_run import WorkflowRun
from tests.unit.application.conftest import T0, World


def _watch(world: World) -> WatchRuns:
    return WatchRuns(world.feed, GetRun(world.store.workflows, world.store.runs), world.live_calls)


async def _other_organisations_agent(world: World) -> Workflow:
    store = world.store
    org = await store.organizations.add(Organization(name="org-b", max_concurrent_calls=1))
    user = await store.organizations.add_user(User(organization_id=org.id or 0, monthly_minutes=10))
    return await store.workflows.add(
        Workflow(
            uuid=uuid4(),
            organization_id=org.id or 0,
            user_id=user.id or 0,
            name="theirs",
            definition=AgentDefinition(),
            status=WorkflowStatus.DRAFT,
            created_at=T0,
            updated_at=T0,
        )
    )


async def _next(seen: AsyncIterator[WorkflowRun | None], within: float = 2.0) -> WorkflowRun | None:
    async with asyncio.timeout(within):
        return await anext(seen)


def _change(world: World, run: WorkflowRun) -> RunChange:
    return RunChange(world.organization.id or 0, run.stored_id, str(run.agent_uuid), str(run.state))


async def test_a_watch_opens_with_a_keep_alive_then_shows_each_changed_run(world: World):
    run = await world.store.runs.add(world.live_run())
    seen = _watch(world).execute(world.organization.id or 0)

    assert await _next(seen) is None  # subscribed
    world.feed.publish(_change(world, run))
    shown = await _next(seen)

    assert shown is not None
    assert (shown.id, shown.name, shown.state) == (run.id, run.name, "running")
    await seen.aclose()
    assert world.feed.subscribers() == 0


async def test_a_change_naming_another_organisations_run_shows_nothing(world: World):
    theirs = await world.store.runs.add(world.live_run(workflow=await _other_organisations_agent(world)))
    ours = await world.store.runs.add(world.live_run())
    seen = _watch(world).execute(world.organization.id or 0)
    assert await _next(seen) is None

    world.feed.publish(_change(world, theirs))  # published under our organisation: re-read, refused
    world.feed.publish(_change(world, ours))

    shown = await _next(seen)
    assert shown is not None
    assert shown.id == ours.id
    await seen.aclose()


async def test_a_quiet_watch_gets_keep_alives(world: World):
    seen = _watch(world).execute(world.organization.id or 0, keep_alive_seconds=0.2)
    assert await _next(seen) is None

    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await _next(seen) is None
    assert 0.15 < loop.time() - began < 1.0
    await seen.aclose()


async def test_a_watch_ends_when_the_instance_drains(world: World):
    seen = _watch(world).execute(world.organization.id or 0)
    assert await _next(seen) is None

    world.live_calls.draining = True

    async with asyncio.timeout(3):
        assert [item async for item in seen] == []
    assert world.feed.subscribers() == 0
