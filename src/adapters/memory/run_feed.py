"""Run changes within one process: the embedded SQLite database, the memory store, and the local
end of the PostgreSQL feed (which hands what other instances publish to `deliver`).

Each subscriber has a bounded queue of its own; when it is full the oldest change is dropped, so a
subscriber that stops reading loses changes, never holds up a publisher or the other subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from application.ports.run_feed import RunChange, RunFeed

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256  # changes one subscriber may fall behind by before the oldest are dropped


class Subscription:
    """One subscriber's changes; `async for` them. Waiting for the next one may be cancelled."""

    def __init__(self, organization_id: int, size: int) -> None:
        self.organization_id = organization_id
        self._queue: asyncio.Queue[RunChange] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def put(self, change: RunChange) -> None:
        while True:
            try:
                self._queue.put_nowait(change)
            except asyncio.QueueFull:
                self._queue.get_nowait()  # the oldest goes: the subscriber re-reads what it needs
                self.dropped += 1
            else:
                return

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RunChange:
        return await self._queue.get()


class InMemoryRunFeed(RunFeed):
    """Fans each change out to this process's subscribers of its organisation."""

    def __init__(self, queue_size: int = SUBSCRIBER_QUEUE) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[int, set[Subscription]] = {}

    def publish(self, change: RunChange) -> None:
        self.deliver(change)

    def deliver(self, change: RunChange) -> None:
        """Hand `change` to this process's subscribers of its organisation (never blocks)."""
        for subscription in list(self._subscribers.get(change.organization_id, ())):
            subscription.put(change)

    def subscribers(self, organization_id: int | None = None) -> int:
        if organization_id is not None:
            return len(self._subscribers.get(organization_id, ()))
        return sum(len(subscriptions) for subscriptions in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, organization_id: int) -> AsyncIterator[AsyncIterator[RunChange]]:
        subscription = Subscription(organization_id, self._queue_size)
        self._subscribers.setdefault(organization_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscriptions = self._subscribers.get(organization_id)
            if subscriptions is not None:
                subscriptions.discard(subscription)
                if not subscriptions:
                    del self._subscribers[organization_id]
            if subscription.dropped:
                log.info(
                    "run_feed_subscriber_fell_behind",
                    extra={"organization_id": organization_id, "dropped": subscription.dropped},
                )
