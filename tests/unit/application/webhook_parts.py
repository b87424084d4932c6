"""The webhook delivery's real parts for unit tests: the HTTP sender (private addresses allowed,
as the tests' receivers are on loopback) and the run documents of the REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from adapters.memory.repositories import InMemoryStore
from adapters.system.clock import FixedClock
from adapters.webhooks.sender import HttpxWebhookSender, webhook_client
from application.webhooks import WebhookDeliveries
from entrypoints.serialization import RunJson


@asynccontextmanager
async def deliveries(
    store: InMemoryStore, clock: FixedClock, jitter: float = 0.0
) -> AsyncIterator[WebhookDeliveries]:
    async with webhook_client() as client:
        yield WebhookDeliveries(
            store.webhooks,
            store.webhook_secrets,
            store.runs,
            HttpxWebhookSender(client, allow_private=True),
            RunJson(),
            clock,
            jitter=lambda: jitter,
        )
