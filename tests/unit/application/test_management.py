"""Management use cases on the in-memory store: organisation scoping, validation, paging."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from adapters.memory.repositories import InMemoryStore
from adapters.system.clock import FixedClock
from application.authentication import Authenticate, Caller, NotAuthenticatedError
from application.management import (
    AddCloudonixConfiguration,
    AgentChanges,
    AgentDraft,
    ConfigurationExistsError,
    CreateAgent,
    CreateOrganization,
    DeleteConfiguration,
    GetAgent,
    GetRun,
    InvalidInputError,
    ListAgents,
    ListRuns,
    NotFoundError,
    UpdateAgent,
)
from application.ports.repositories import DuplicateError
from domain.agents import InvalidDefinitionError, WorkflowStatus
from domain.workflow_run import WorkflowRun, run_name
from tests.unit.application.conftest import T0


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


async def _org(store: InMemoryStore) -> tuple[int, str]:
    created = await CreateOrganization(store.organizations, store.api_keys).execute("acme")
    return created.organization_id, created.api_key


async def _agent(store: InMemoryStore, organization_id: int, **draft: object):
    return await CreateAgent(store.organizations, store.workflows, FixedClock(T0)).execute(
        organization_id,
        AgentDraft(name="desk", **draft),  # type: ignore[arg-type]
    )


async def test_authenticate_finds_the_keys_organisation(store: InMemoryStore):
    organization_id, key = await _org(store)

    assert await Authenticate(store.api_keys).execute(key) == Caller(organization_id)
    for bad in (None, "", "ask_unknown", "x" * 10_000):
        with pytest.raises(NotAuthenticatedError):
            await Authenticate(store.api_keys).execute(bad)


async def test_agents_are_scoped_to_their_organisation(store: InMemoryStore):
    mine, _ = await _org(store)
    other, _ = await _org(store)
    agent = await _agent(store, mine)

    assert [a.uuid for a in await ListAgents(store.workflows).execute(mine)] == [agent.uuid]
    assert await ListAgents(store.workflows).execute(other) == []
    with pytest.raises(NotFoundError):
        await GetAgent(store.workflows).execute(other, agent.uuid)
    with pytest.raises(NotFoundError):
        await UpdateAgent(store.workflows, FixedClock(T0)).execute(other, agent.uuid, AgentChanges(name="x"))


async def test_update_changes_given_fields_keeps_the_uuid_and_stamps_the_time(store: InMemoryStore):
    organization_id, _ = await _org(store)
    agent = await _agent(store, organization_id)
    clock = FixedClock(T0 + timedelta(minutes=5))

    updated = await UpdateAgent(store.workflows, clock).execute(
        organization_id,
        agent.uuid,
        AgentChanges(status="published", definition={"engine": "pipecat", "max_call_seconds": 30}),
    )

    assert updated.uuid == agent.uuid
    assert updated.name == "desk"
    assert updated.status is WorkflowStatus.PUBLISHED
    assert (updated.definition.engine, updated.definition.max_call_seconds) == ("pipecat", 30)
    assert (updated.created_at, updated.updated_at) == (T0, clock.now())
    assert await GetAgent(store.workflows).execute(organization_id, agent.uuid) == updated


async def test_update_refuses_what_create_refuses(store: InMemoryStore):
    organization_id, _ = await _org(store)
    agent = await _agent(store, organization_id)
    update = UpdateAgent(store.workflows, FixedClock(T0))

    with pytest.raises(InvalidDefinitionError) as engine:
        await update.execute(organization_id, agent.uuid, AgentChanges(definition={"engine": "x"}))
    with pytest.raises(InvalidInputError) as status:
        await update.execute(organization_id, agent.uuid, AgentChanges(status="archived"))
    with pytest.raises(InvalidInputError) as name:
        await update.execute(organization_id, agent.uuid, AgentChanges(name=" \t "))

    assert (engine.value.field, status.value.field, name.value.field) == ("engine", "status", "name")
    assert await GetAgent(store.workflows).execute(organization_id, agent.uuid) == agent


async def test_create_refuses_nul_characters_anywhere(store: InMemoryStore):
    organization_id, _ = await _org(store)

    with pytest.raises(InvalidInputError) as raised:
        await _agent(store, organization_id, template_variables={"deep": [{"k": "a\x00"}]})

    assert raised.value.field == "template_context_variables"


async def test_configurations_validate_normalise_and_refuse_duplicates(store: InMemoryStore):
    organization_id, _ = await _org(store)
    add = AddCloudonixConfiguration(store.telephony_configs)

    config = await add.execute(organization_id, " Acme. ", " token-1 ")

    assert (config.domain_id, config.name, config.bearer_token.reveal()) == (
        "acme.cloudonix.net",
        "acme.cloudonix.net",
        "token-1",
    )
    with pytest.raises(ConfigurationExistsError) as duplicate:
        await add.execute(organization_id, "acme.cloudonix.net", "token-2")
    assert isinstance(duplicate.value, DuplicateError)
    for domain, token, field in [
        ("", "t", "domain_id"),
        ("bad domain", "t", "domain_id"),
        ("-acme", "t", "domain_id"),
        ("acme2", "", "bearer_token"),
        ("acme2", "tok en", "bearer_token"),
        ("acme2", "tökén", "bearer_token"),
    ]:
        with pytest.raises(InvalidInputError) as raised:
            await add.execute(organization_id, domain, token)
        assert raised.value.field == field


async def test_delete_configuration_is_scoped(store: InMemoryStore):
    mine, _ = await _org(store)
    other, _ = await _org(store)
    config = await AddCloudonixConfiguration(store.telephony_configs).execute(mine, "acme", "t")
    assert config.id is not None

    with pytest.raises(NotFoundError):
        await DeleteConfiguration(store.telephony_configs).execute(other, config.id)
    await DeleteConfiguration(store.telephony_configs).execute(mine, config.id)
    with pytest.raises(NotFoundError):
        await DeleteConfiguration(store.telephony_configs).execute(mine, config.id)


async def _runs(store: InMemoryStore, organization_id: int, count: int):
    agent = await _agent(store, organization_id)
    assert agent.id is not None
    ids = []
    for n in range(count):
        run = await store.runs.add(
            WorkflowRun(
                name=run_name(n), workflow_id=agent.id, agent_uuid=agent.uuid, mode="cloudonix", created_at=T0
            )
        )
        ids.append(run.id)
    return agent, ids


async def test_pages_of_runs_chain_without_gaps(store: InMemoryStore):
    organization_id, _ = await _org(store)
    agent, ids = await _runs(store, organization_id, 7)
    runs = ListRuns(store.workflows, store.runs)

    first = await runs.page(organization_id, agent.uuid, limit=3)
    second = await runs.page(organization_id, agent.uuid, limit=3, before_id=first.next_before_id)
    third = await runs.page(organization_id, agent.uuid, limit=3, before_id=second.next_before_id)

    assert [r.id for r in first.items + second.items + third.items] == ids[::-1]
    assert third.next_before_id is None
    assert (await runs.page(organization_id, agent.uuid, limit=7)).next_before_id is None


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_a_page_size_outside_1_to_200_is_refused(store: InMemoryStore, limit: int):
    organization_id, _ = await _org(store)
    agent = await _agent(store, organization_id)

    with pytest.raises(InvalidInputError) as raised:
        await ListRuns(store.workflows, store.runs).page(organization_id, agent.uuid, limit=limit)

    assert raised.value.field == "limit"


async def test_runs_are_scoped_to_their_agents_organisation(store: InMemoryStore):
    mine, _ = await _org(store)
    other, _ = await _org(store)
    agent, [run_id] = await _runs(store, mine, 1)

    assert (await GetRun(store.workflows, store.runs).execute(mine, run_id)).id == run_id
    with pytest.raises(NotFoundError):
        await GetRun(store.workflows, store.runs).execute(other, run_id)
    with pytest.raises(NotFoundError):
        await GetRun(store.workflows, store.runs).execute(mine, run_id + 1000)
    with pytest.raises(NotFoundError):
        await ListRuns(store.workflows, store.runs).page(other, agent.uuid)
    with pytest.raises(NotFoundError):
        await ListRuns(store.workflows, store.runs).page(mine, uuid4())
