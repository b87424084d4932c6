"""End-of-call webhooks: the delivery worker, the agents' signing secrets, the delivery's status.

Each instance runs `WebhookDeliveries.run` among its background tasks (off the call path): it
claims due outbox rows, POSTs each run's document signed with its agent's current secret, and
stores the attempt. A 2xx delivers it; anything else (another status, no answer, a refused
address, no secret yet) is retried with exponential back-off and jitter for 24 hours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from application.failure_log import FailureLog
from application.management import GetAgent
from application.ports.repositories import StorageError, WorkflowRunRepository
from application.ports.system import Clock
from application.ports.webhooks import (
    RunDocuments,
    WebhookOutbox,
    WebhookRefusedError,
    WebhookSecrets,
    WebhookSender,
)
from domain.webhooks import EVENT_TYPE, WebhookDelivery, new_secret, signed_headers
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often an instance looks for due deliveries
LEASE_SECONDS = 60.0  # a claimed delivery is due again after this if its attempt never finished
CLAIM_LIMIT = 20


class RotateWebhookSecret:
    def __init__(self, agents: GetAgent, secrets: WebhookSecrets, clock: Clock) -> None:
        self._agents = agents
        self._secrets = secrets
        self._clock = clock

    async def execute(self, organization_id: int, agent_uuid: UUID) -> str:
        """A new `whsec_` secret for the agent, returned once; the old one stops signing at once.
        Raises `NotFoundError` unless the agent belongs to `organization_id`."""
        workflow = await self._agents.execute(organization_id, agent_uuid)
        secret = new_secret()
        await self._secrets.replace(workflow.stored_id, secret, self._clock.now())
        return secret


class WebhookStatus:
    def __init__(self, outbox: WebhookOutbox) -> None:
        self._outbox = outbox

    async def of(self, run: WorkflowRun) -> WebhookDelivery | None:
        """The run's delivery (state, attempts, last status), if its agent had a webhook."""
        return await self._outbox.for_run(run.stored_id)


class WebhookDeliveries:
    """Delivers the outbox: every instance runs one; they share the rows (`claim`)."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        secrets: WebhookSecrets,
        runs: WorkflowRunRepository,
        sender: WebhookSender,
        documents: RunDocuments,
        clock: Clock,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._secrets = secrets
        self._runs = runs
        self._sender = sender
        self._documents = documents
        self._clock = clock
        self._jitter = jitter
        self._failures = FailureLog(log, "webhook_outbox_unavailable", "webhook_outbox_recovered")

    async def run(self, every: float = POLL_SECONDS) -> None:
        """Deliver what is due, forever (cancel to stop); a database failure waits for the next round."""
        while True:
            try:
                await self.deliver_due()
            except StorageError as exc:  # logged once per kind of failure, not once a round
                self._failures.failed(exc)
            except Exception:  # a bug must not stop the deliveries of this instance for good
                log.exception("webhook_round_failed")
            else:
                self._failures.succeeded()
            await asyncio.sleep(every)

    async def deliver_due(self) -> int:
        """One round: claim what is due and attempt each; how many were attempted."""
        claimed = await self._outbox.claim(self._clock.now(), LEASE_SECONDS, CLAIM_LIMIT)
        if claimed:
            await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _attempt(self, delivery: WebhookDelivery) -> None:
        status = await self._post(delivery)
        delivery.attempted(self._clock.now(), status, self._jitter())
        await self._outbox.save_attempt(delivery)
        log.info(
            "webhook_attempted",
            extra={
                "run_id": delivery.run_id,
                "host": urlsplit(delivery.url).hostname,
                "status": status,
                "attempts": delivery.attempts,
                "state": str(delivery.state),
            },
        )

    async def _post(self, delivery: WebhookDelivery) -> int | None:
        """The attempt's HTTP status, or None when none came (or it could not be sent)."""
        run = await self._runs.get(delivery.run_id)
        if run is None:
            return None
        secret = await self._secrets.get(run.workflow_id)
        if secret is None:
            log.warning("webhook_secret_missing", extra={"run_id": delivery.run_id})
            return None
        body = json.dumps(
            {"type": EVENT_TYPE, "timestamp": _iso(run.ended_at), "data": self._documents.document(run)},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        headers = signed_headers(secret, delivery.message_id, int(self._clock.now().timestamp()), body)
        try:
            return await self._sender.post(delivery.url, headers, body)
        except WebhookRefusedError as exc:
            log.warning("webhook_refused", extra={"run_id": delivery.run_id, "reason": str(exc)[:200]})
        except (OSError, TimeoutError) as exc:
            log.info("webhook_unanswered", extra={"run_id": delivery.run_id, "error": type(exc).__name__})
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
