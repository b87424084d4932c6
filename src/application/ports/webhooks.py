"""Ports of the end-of-call webhooks: the outbox, the agents' signing secrets, the sender.

The outbox row of a run is written by the run stores themselves, in the same transaction as the
run's end (`WorkflowRunRepository.save`/`save_end`, `Instances.reap`): a run whose agent has a
`webhook_url` gets exactly one row, whichever path ended it, and whatever crashes afterwards.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any, Protocol

from domain.webhooks import WebhookDelivery
from domain.workflow_run import WorkflowRun


class WebhookOutbox(Protocol):
    @abstractmethod
    async def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[WebhookDelivery]:
        """Pending deliveries due at `now`, at most `limit`, leased to the caller: their next
        attempt moves to `now + lease_seconds`, so no other instance takes them meanwhile (and
        if the caller dies mid-attempt, they are due again when the lease ends). Instances
        claiming at once get different rows (`SKIP LOCKED` on PostgreSQL)."""

    @abstractmethod
    async def save_attempt(self, delivery: WebhookDelivery) -> None:
        """Store what an attempt left: state, attempts, last status, next attempt."""

    @abstractmethod
    async def for_run(self, run_id: int) -> WebhookDelivery | None:
        """The run's delivery, if its agent had a webhook when it ended."""


class WebhookSecrets(Protocol):
    @abstractmethod
    async def replace(self, workflow_id: int, secret: str, now: datetime) -> None:
        """The agent's signing secret from now on (stored encrypted); the old one is gone."""

    @abstractmethod
    async def get(self, workflow_id: int) -> str | None: ...


class WebhookRefusedError(Exception):
    """The URL may not be called: its host resolves to a private, loopback or link-local address
    (and private addresses are not allowed), or it cannot be resolved."""


class WebhookSender(Protocol):
    @abstractmethod
    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """POST `body` to `url`; the answer's status. Raises `WebhookRefusedError` for an address
        it may not call, `OSError` (or a timeout) when no answer came. Never logs the body, the
        headers (the signature) or the answer's body."""


class RunDocuments(Protocol):
    @abstractmethod
    def document(self, run: WorkflowRun) -> dict[str, Any]:
        """The run as the REST API shows it (the webhook's `data`)."""
