"""Contract of `WorkflowRepository` (agents)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from uuid import uuid4

import pytest

from application.ports.repositories import DuplicateError, StorageError
from domain.agents import AgentDefinition, WorkflowStatus
from tests.contract.conftest import Backend
from tests.contract.factories import WorkflowFactory, json_document


async def test_an_agent_round_trips(backend: Backend) -> None:
    user = await backend.new_user()
    assert user.id is not None
    built = WorkflowFactory.build(uuid=uuid4(), organization_id=user.organization_id, user_id=user.id)

    added = await backend.workflows.add(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    assert await backend.workflows.get_by_uuid(built.uuid) == added


async def test_datetimes_come_back_in_utc(backend: Backend) -> None:
    workflow = await backend.new_workflow()

    loaded = await backend.workflows.get_by_uuid(workflow.uuid)

    assert loaded is not None
    for value in (loaded.created_at, loaded.updated_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)


async def test_timestamps_may_be_left_empty(backend: Backend) -> None:
    user = await backend.new_user()
    assert user.id is not None
    built = WorkflowFactory.build(
        uuid=uuid4(), organization_id=user.organization_id, user_id=user.id, created_at=None, updated_at=None
    )

    added = await backend.workflows.add(built)

    assert await backend.workflows.get_by_uuid(built.uuid) == added
    assert added.created_at is None


async def test_update_stores_every_field_but_the_uuid(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    assert workflow.created_at is not None
    changed = dataclasses.replace(
        workflow,
        uuid=uuid4(),
        name="renamed",
        status=WorkflowStatus.PUBLISHED,
        definition=AgentDefinition(engine="pipecat", greeting="Hi", settings={"llm": {"model": "m"}}),
        template_variables=json_document(),
        updated_at=workflow.created_at + timedelta(hours=1),
    )

    updated = await backend.workflows.update(changed)

    assert updated == dataclasses.replace(changed, uuid=workflow.uuid)
    assert await backend.workflows.get_by_uuid(workflow.uuid) == updated
    assert await backend.workflows.get_by_uuid(changed.uuid) is None


async def test_updating_an_unknown_agent_fails(backend: Backend) -> None:
    workflow = await backend.new_workflow()

    with pytest.raises(StorageError):
        await backend.workflows.update(dataclasses.replace(workflow, id=10**9))


async def test_a_uuid_names_one_agent_only(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    other_user = await backend.new_user()
    assert other_user.id is not None

    with pytest.raises(DuplicateError):
        await backend.workflows.add(
            WorkflowFactory.build(
                uuid=workflow.uuid, organization_id=other_user.organization_id, user_id=other_user.id
            )
        )
    assert await backend.workflows.get_by_uuid(workflow.uuid) == workflow


async def test_an_agent_needs_an_existing_owner(backend: Backend) -> None:
    organization = await backend.new_organization()
    assert organization.id is not None

    with pytest.raises(StorageError):
        await backend.workflows.add(
            WorkflowFactory.build(uuid=uuid4(), organization_id=organization.id, user_id=10**9)
        )


async def test_naive_datetimes_are_refused(backend: Backend) -> None:
    user = await backend.new_user()
    assert user.id is not None
    built = WorkflowFactory.build(uuid=uuid4(), organization_id=user.organization_id, user_id=user.id)
    assert built.created_at is not None

    with pytest.raises(StorageError):
        await backend.workflows.add(
            dataclasses.replace(built, created_at=built.created_at.replace(tzinfo=None))
        )


async def test_an_unknown_uuid_is_none(backend: Backend) -> None:
    assert await backend.workflows.get_by_uuid(uuid4()) is None


async def test_list_for_organization_holds_its_agents_oldest_first(backend: Backend) -> None:
    user = await backend.new_user()
    mine = [await backend.new_workflow(user) for _ in range(3)]
    await backend.new_workflow()  # another organisation's

    assert await backend.workflows.list_for_organization(user.organization_id) == mine


async def test_list_for_an_organization_without_agents_is_empty(backend: Backend) -> None:
    organization = await backend.new_organization()
    assert organization.id is not None

    assert await backend.workflows.list_for_organization(organization.id) == []


async def test_the_store_keeps_its_own_copy(backend: Backend) -> None:
    workflow = await backend.new_workflow()
    workflow.template_variables["injected"] = True
    workflow.definition.settings["injected"] = True

    loaded = await backend.workflows.get_by_uuid(workflow.uuid)

    assert loaded is not None
    assert "injected" not in loaded.template_variables
    assert "injected" not in loaded.definition.settings
