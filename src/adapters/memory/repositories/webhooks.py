"""The webhooks' outbox and the agents' signing secrets, in memory."""

from __future__ import annotations

import copy
import itertools
import uuid
from datetime import datetime, timedelta

from adapters.memory.repositories.times import utc
from application.ports.webhooks import WebhookOutbox, WebhookSecrets
from domain.webhooks import DeliveryState, WebhookDelivery
from domain.workflow_run import WorkflowRun


class InMemoryWebhookOutbox(WebhookOutbox):
    def __init__(self) -> None:
        self._deliveries: dict[int, WebhookDelivery] = {}
        self._by_run: dict[int, int] = {}
        self._ids = itertools.count(1)

    def enqueue(self, run: WorkflowRun, url: str | None) -> None:
        """The run stores call this as they store a run's end: one delivery per ended run."""
        if url is None or not run.state.terminal or run.stored_id in self._by_run:
            return
        due = utc(run.ended_at or datetime.now().astimezone())
        delivery_id = next(self._ids)
        self._deliveries[delivery_id] = WebhookDelivery(
            run_id=run.stored_id,
            url=url,
            message_id=f"msg_{uuid.uuid4().hex}",
            created_at=due,
            next_attempt_at=due,
            id=delivery_id,
        )
        self._by_run[run.stored_id] = delivery_id

    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[WebhookDelivery]:
        now = utc(now)
        due = sorted(
            (
                d
                for d in self._deliveries.values()
                if d.state is DeliveryState.PENDING and d.next_attempt_at <= now
            ),
            key=lambda d: d.next_attempt_at,
        )[: max(limit, 0)]
        for delivery in due:
            delivery.next_attempt_at = now + timedelta(seconds=lease_seconds)
        return [copy.deepcopy(delivery) for delivery in due]

    async def save_attempt(self, delivery: WebhookDelivery) -> None:
        stored = self._deliveries[delivery.stored_id]
        stored.state = delivery.state
        stored.attempts = delivery.attempts
        stored.last_status = delivery.last_status
        stored.next_attempt_at = utc(delivery.next_attempt_at)

    async def for_run(self, run_id: int) -> WebhookDelivery | None:
        delivery_id = self._by_run.get(run_id)
        return None if delivery_id is None else copy.deepcopy(self._deliveries[delivery_id])


class InMemoryWebhookSecrets(WebhookSecrets):
    def __init__(self) -> None:
        self._secrets: dict[int, str] = {}

    async def replace(self, workflow_id: int, secret: str, now: datetime) -> None:
        self._secrets[workflow_id] = secret

    async def get(self, workflow_id: int) -> str | None:
        return self._secrets.get(workflow_id)
