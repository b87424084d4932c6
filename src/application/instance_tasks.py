"""This instance's background work while it serves: the heartbeat, the event-loop lag sampler and
the delivery of end-of-call webhooks."""

from __future__ import annotations

import asyncio
import contextlib

from application.admission import LoopLag
from application.instance_life import InstanceLife
from application.webhooks import WebhookDeliveries


class InstanceTasks:
    """Started once before serving, stopped once after (the app's lifespan)."""

    def __init__(self, life: InstanceLife, lag: LoopLag, webhooks: WebhookDeliveries) -> None:
        self._life = life
        self._lag = lag
        self._webhooks = webhooks
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Register (and reap this instance's previous life) before returning, then beat and
        sample in the background."""
        await self._life.beat()
        self._tasks = [
            asyncio.create_task(self._life.run(), name="instance-heartbeat"),
            asyncio.create_task(self._lag.sample_forever(), name="loop-lag"),
            asyncio.create_task(self._webhooks.run(), name="webhook-delivery"),
        ]

    async def stop(self) -> None:
        """Cancel the tasks (the heartbeat first), then end this instance's life: last retries,
        and its row goes."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._life.end()
