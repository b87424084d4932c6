"""Contract of the webhooks' outbox and secrets: a row per ended run of an agent with a webhook,
written with the run's end on every path (save, save_end, reap) and only once; claims lease the
rows, so two instances never attempt the same delivery at once; secrets are replaced, not added."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.database import create_sessionmaker
from adapters.sql.models import WebhookSecretRow
from adapters.sql.repositories import SqlWebhookSecrets
from adapters.system.crypto import FernetCredentialCipher
from domain.agents import AgentDefinition, Workflow
from domain.close_policy import NORMAL_CLOSE
from domain.webhooks import DeliveryState
from domain.workflow_run import RunState, WorkflowRun
from tests.contract.conftest import CONTRACT_SECRET_KEY, Backend, sql_backend
from tests.contract.factories import WorkflowRunFactory

T0 = datetime(2031, 1, 1, tzinfo=UTC)  # later than every other test's rows: claims see only ours
URL = "https://hooks.example.com/agent"


async def _agent(backend: Backend, webhook_url: str | None = URL) -> Workflow:
    workflow = await backend.new_workflow()
    raw = {"engine": "linetest"} | ({"webhook_url": webhook_url} if webhook_url else {})
    return await backend.workflows.update(
        dataclasses.replace(workflow, definition=AgentDefinition.from_dict(raw))
    )


async def _live_run(backend: Backend, workflow: Workflow, instance_id: str = "i-1") -> WorkflowRun:
    run = WorkflowRunFactory.build(
        workflow_id=workflow.stored_id,
        agent_uuid=workflow.uuid,
        state=RunState.INITIALIZED,
        created_at=T0,
        started_at=None,
        ended_at=None,
        end_reason=None,
        close_code=None,
        close_reason=None,
        disposition=None,
        gathered_context={"transcript": [{"role": "caller", "text": "hi"}]},
        instance_id=instance_id,
    )
    run.start(T0)
    return await backend.runs.add(run)


async def test_an_ended_run_gets_one_delivery_whichever_store_ends_it(backend: Backend) -> None:
    workflow = await _agent(backend)
    by_save, by_save_end = await _live_run(backend, workflow), await _live_run(backend, workflow)
    await backend.runs.save(by_save)  # live: nothing yet
    assert await backend.webhooks.for_run(by_save.stored_id) is None
    for run in (by_save, by_save_end):
        run.complete(T0 + timedelta(seconds=5), "caller_hangup", NORMAL_CLOSE)
    await backend.runs.save(by_save)
    await backend.runs.save_end(by_save_end)
    await backend.runs.save(by_save)  # stored again: still one
    for run in (by_save, by_save_end):
        delivery = await backend.webhooks.for_run(run.stored_id)
        assert delivery is not None
        assert (delivery.url, delivery.state, delivery.attempts, delivery.last_status) == (
            URL,
            DeliveryState.PENDING,
            0,
            None,
        )
        assert delivery.next_attempt_at == T0 + timedelta(seconds=5)  # due at once
        stored = await backend.runs.get(run.stored_id)
        assert stored is not None and stored.disposition == "caller_hung_up"  # the caller had the last word


async def test_an_agent_without_a_webhook_gets_no_delivery(backend: Backend) -> None:
    run = await _live_run(backend, await _agent(backend, webhook_url=None))
    run.fail(T0, "error", NORMAL_CLOSE)
    await backend.runs.save(run)
    assert await backend.webhooks.for_run(run.stored_id) is None


async def test_a_reaped_run_gets_its_delivery_with_its_end(backend: Backend) -> None:
    workflow = await _agent(backend)
    await backend.instances.register("dead-outbox", "host:1", T0)
    run = await _live_run(backend, workflow, instance_id="dead-outbox")
    await backend.instances.reap(T0 + timedelta(seconds=61), 30)
    reaped = await backend.runs.get(run.stored_id)
    assert reaped is not None
    assert (reaped.end_reason, reaped.disposition) == ("instance_lost", "error")
    assert await backend.webhooks.for_run(run.stored_id) is not None


async def test_claims_lease_and_two_instances_never_share_a_delivery(backend: Backend) -> None:
    workflow = await _agent(backend)
    runs = [await _live_run(backend, workflow) for _ in range(6)]
    for run in runs:
        run.complete(T0, "agent_hangup", NORMAL_CLOSE)
        await backend.runs.save_end(run)
    now = T0 + timedelta(days=1)
    first, second = await asyncio.gather(
        backend.webhooks.claim(now, 60, 100), backend.other_webhooks.claim(now, 60, 100)
    )
    mine = {d.run_id for d in first} | {d.run_id for d in second}
    assert {run.stored_id for run in runs} <= mine
    assert not {d.run_id for d in first} & {d.run_id for d in second}
    assert await backend.webhooks.claim(now + timedelta(seconds=59), 60, 100) == []  # leased
    again = await backend.webhooks.claim(now + timedelta(seconds=60), 60, 100)  # its holder died
    assert {run.stored_id for run in runs} <= {d.run_id for d in again}


async def test_an_attempt_is_stored_and_a_delivered_one_is_never_claimed_again(backend: Backend) -> None:
    workflow = await _agent(backend)
    run = await _live_run(backend, workflow)
    run.complete(T0, "caller_hangup", NORMAL_CLOSE)
    await backend.runs.save(run)
    now = T0 + timedelta(minutes=1)
    [delivery] = [d for d in await backend.webhooks.claim(now, 60, 100) if d.run_id == run.stored_id]
    delivery.attempted(now, 500, jitter=1.0)
    await backend.webhooks.save_attempt(delivery)
    stored = await backend.webhooks.for_run(run.stored_id)
    assert stored is not None
    assert (stored.state, stored.attempts, stored.last_status) == (DeliveryState.PENDING, 1, 500)
    assert stored.next_attempt_at == now + timedelta(seconds=1)
    [retry] = [
        d
        for d in await backend.webhooks.claim(now + timedelta(seconds=1), 60, 100)
        if d.run_id == run.stored_id
    ]
    retry.attempted(now + timedelta(seconds=1), 200, jitter=1.0)
    await backend.webhooks.save_attempt(retry)
    assert all(
        d.run_id != run.stored_id for d in await backend.webhooks.claim(now + timedelta(days=1), 60, 100)
    )
    done = await backend.webhooks.for_run(run.stored_id)
    assert done is not None and (done.state, done.attempts, done.last_status) == (
        DeliveryState.DELIVERED,
        2,
        200,
    )


async def test_a_secret_is_replaced(backend: Backend) -> None:
    workflow = await _agent(backend)
    assert await backend.webhook_secrets.get(workflow.stored_id) is None
    await backend.webhook_secrets.replace(workflow.stored_id, "whsec_b2xk", T0)
    await backend.webhook_secrets.replace(workflow.stored_id, "whsec_bmV3", T0)
    assert await backend.webhook_secrets.get(workflow.stored_id) == "whsec_bmV3"


async def test_runs_are_listed_by_disposition(backend: Backend) -> None:
    workflow = await _agent(backend, webhook_url=None)
    spoke, silent = await _live_run(backend, workflow), await _live_run(backend, workflow)
    silent.gathered_context = {}
    spoke.complete(T0, "caller_hangup", NORMAL_CLOSE)
    silent.complete(T0, "caller_hangup", NORMAL_CLOSE)
    for run in (spoke, silent):
        await backend.runs.save(run)
    live = await _live_run(backend, workflow)
    listed = await backend.runs.list_for_workflow(workflow.stored_id, 10, disposition="no_speech")
    assert [run.id for run in listed] == [silent.id]
    assert [
        r.id
        for r in await backend.runs.list_for_workflow(workflow.stored_id, 10, disposition="caller_hung_up")
    ] == [spoke.id]
    assert len(await backend.runs.list_for_workflow(workflow.stored_id, 10)) == 3
    assert live.disposition is None


@pytest.mark.parametrize(
    "dialect",
    [pytest.param("sqlite", marks=pytest.mark.sqlite), pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def test_a_secret_is_stored_encrypted(request: pytest.FixtureRequest, dialect: str) -> None:
    engine: AsyncEngine = request.getfixturevalue(f"{dialect}_engines")[0]
    sessions = create_sessionmaker(engine)
    workflow = await _agent(sql_backend(dialect, engine, engine))
    secret = "whsec_" + "c2VjcmV0LWJ5dGVzLW9mLXRoZS1hZ2VudA=="
    await SqlWebhookSecrets(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY)).replace(
        workflow.stored_id, secret, T0
    )
    async with sessions() as session:
        stored = await session.scalar(
            select(WebhookSecretRow.secret).where(WebhookSecretRow.workflow_id == workflow.stored_id)
        )
    assert stored is not None and stored.startswith("v1:") and "c2VjcmV0" not in stored
