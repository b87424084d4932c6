"""Contract of `CallRoutes`: the agent, its organisation, its owner and the owner's seconds since a
moment, read together for each call start."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from uuid import uuid4

import pytest

from domain.workflow_run import WorkflowRun
from tests.contract.conftest import Backend
from tests.contract.factories import EPOCH


async def test_a_route_holds_the_agent_its_organisation_and_owner(backend: Backend) -> None:
    organization = await backend.new_organization(max_concurrent_calls=7)
    user = await backend.new_user(organization)
    workflow = await backend.new_workflow(user)

    route = await backend.routes.route(workflow.uuid, EPOCH)

    assert route is not None
    assert route.workflow == workflow
    assert route.organization == organization
    assert route.owner == user
    assert route.seconds_used == 0.0


async def test_seconds_used_are_the_owners_since_the_moment(backend: Backend) -> None:
    user = await backend.new_user()
    routed, other_agent = await backend.new_workflow(user), await backend.new_workflow(user)
    strangers_agent = await backend.new_workflow()
    since = EPOCH + timedelta(days=31)

    async def run(agent_id: int | None, after_since: timedelta, duration: float | None) -> None:
        assert agent_id is not None
        template = WorkflowRun(
            name="WR-AGS-00000002",
            workflow_id=agent_id,
            agent_uuid=routed.uuid,
            mode="cloudonix",
            created_at=since + after_since,
        )
        await backend.runs.add(dataclasses.replace(template, duration_seconds=duration))

    await run(routed.id, timedelta(0), 60.5)  # exactly at `since`: counts
    await run(other_agent.id, timedelta(hours=1), 39.5)  # the owner's other agent counts too
    await run(routed.id, timedelta(hours=2), None)  # still running: counts 0
    await run(routed.id, -timedelta(microseconds=1), 1000.0)  # before `since`
    await run(strangers_agent.id, timedelta(hours=1), 500.0)  # another user's agent

    route = await backend.routes.route(routed.uuid, since)

    assert route is not None
    assert route.seconds_used == pytest.approx(100.0)
    assert user.id is not None
    assert route.seconds_used == pytest.approx(await backend.runs.seconds_used(user.id, since))


async def test_an_unknown_agent_has_no_route(backend: Backend) -> None:
    await backend.new_workflow()
    assert await backend.routes.route(uuid4(), EPOCH) is None
