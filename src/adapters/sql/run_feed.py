"""Run changes across instances over PostgreSQL `LISTEN`/`NOTIFY`.

Every instance listens on one channel on a connection of its own (`PgListener`, the same pattern
as call control's) and sends each change there as a small JSON payload:

    {"from": "<instance id>", "organization_id": 3, "run_id": 7, "agent_uuid": "...", "state": "running"}

A change is handed to this instance's own subscribers at once (the in-memory feed), so they need
not wait for the round trip nor the database; an instance ignores its own notifications when they
come back. Publishing only queues the change: a background task sends the queue, so a call never
waits on the database for it. When the database is out of reach the queue is bounded (the oldest
changes go) and the failure is logged once per kind; subscribers of the other instances miss what
could not be sent (they re-read the list when they reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import make_url

from adapters.memory.run_feed import InMemoryRunFeed
from adapters.sql.notifications import PING_SECONDS, PgListener
from application.failure_log import FailureLog
from application.ports.run_feed import RunChange, RunFeed

log = logging.getLogger(__name__)

CHANNEL = "agent_stream_runs"
APPLICATION_NAME = "agent-stream run feed"  # how the listener shows in pg_stat_activity
OUTBOX_SIZE = 1000  # changes waiting to be sent before the oldest are dropped
MAX_FIELD_CHARS = 64


class PgRunFeed(RunFeed):
    def __init__(
        self,
        database_url: str,
        instance_id: str,
        *,
        db_timeout: float,
        ping_seconds: float = PING_SECONDS,
        outbox_size: int = OUTBOX_SIZE,
    ) -> None:
        self._instance_id = instance_id
        self._local = InMemoryRunFeed()
        self._outbox: deque[RunChange] = deque(maxlen=outbox_size)
        self._waiting = asyncio.Event()  # set while the outbox holds changes
        self._sender: asyncio.Task[None] | None = None
        self._failures = FailureLog(log, "run_feed_send_failed", "run_feed_send_recovered")
        self._listener = PgListener(
            database_url,
            CHANNEL,
            self._on_payload,
            name="run_feed",
            application_name=APPLICATION_NAME,
            logger=log,
            db_timeout=db_timeout,
            ping_seconds=ping_seconds,
            log_extra={"instance_id": instance_id},
        )

    @property
    def listening(self) -> bool:
        return self._listener.listening

    async def start(self) -> None:
        """Listen (waiting for the first connection at most the database timeout) and send."""
        await self._listener.start()
        self._sender = asyncio.get_running_loop().create_task(self._send_forever(), name="run-feed-send")

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        await self._listener.stop()

    def publish(self, change: RunChange) -> None:
        try:
            self._local.deliver(change)
            self._outbox.append(change)  # a full outbox drops its oldest
            self._waiting.set()
        except Exception:
            log.exception("run_feed_publish_failed")

    def subscribe(
        self, organization_id: int
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[RunChange]]:
        return self._local.subscribe(organization_id)

    async def _send_forever(self) -> None:
        while True:
            await self._waiting.wait()
            while self._outbox:
                change = self._outbox[0]
                try:
                    await self._listener.notify(_payload(self._instance_id, change))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - kept, and tried again after a pause
                    self._failures.failed(exc)
                    await asyncio.sleep(PING_SECONDS)
                    continue
                self._failures.succeeded()
                if self._outbox and self._outbox[0] is change:
                    self._outbox.popleft()
            self._waiting.clear()

    def _on_payload(self, payload: str) -> None:
        message = _change_of(payload)
        if message is None:
            log.warning("run_feed_bad_notification")
            return
        sender, change = message
        if sender != self._instance_id:  # our own were delivered when published
            self._local.deliver(change)


def _payload(instance_id: str, change: RunChange) -> str:
    message = {
        "from": instance_id,
        "organization_id": change.organization_id,
        "run_id": change.run_id,
        "agent_uuid": change.agent_uuid,
        "state": change.state,
    }
    return json.dumps(message, separators=(",", ":"))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_FIELD_CHARS else None


def _positive_int(value: object) -> int | None:
    return value if type(value) is int and value > 0 else None


def _change_of(payload: str) -> tuple[str, RunChange] | None:
    """The sender and the change a notification carries; None when it is not one."""
    try:
        message: Any = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    sender, agent_uuid, state = (_text(message.get(key)) for key in ("from", "agent_uuid", "state"))
    organization_id, run_id = (_positive_int(message.get(key)) for key in ("organization_id", "run_id"))
    if sender is None or agent_uuid is None or state is None or organization_id is None or run_id is None:
        return None
    return sender, RunChange(organization_id, run_id, agent_uuid, state)


@contextlib.asynccontextmanager
async def run_feed(database_url: str, instance_id: str, db_timeout: float) -> AsyncIterator[RunFeed]:
    """The feed for this database: `LISTEN`/`NOTIFY` on PostgreSQL, in memory on the embedded SQLite
    database (one process)."""
    if make_url(database_url).get_backend_name() != "postgresql":
        yield InMemoryRunFeed()
        return
    feed = PgRunFeed(database_url, instance_id, db_timeout=db_timeout)
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()
