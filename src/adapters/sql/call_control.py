"""Call control between instances over PostgreSQL `LISTEN`/`NOTIFY`.

Every instance listens on one channel, on a connection of its own (asyncpg's listener; not one of
the SQLAlchemy pool, which hands connections back and forth). Messages are small JSON payloads
addressed to an instance id:

    {"kind": "request", "id": ..., "from": A, "to": B, "run_id": 7, "run_name": "WR-AGS-...",
     "action": "hangup" | "transfer", "destination": "+1555..." | null}
    {"kind": "ack", "id": ..., "from": B, "to": A, "answer": "taken" | "not_live"}

The request id matches an acknowledgement to the request waiting for it. The connection is
watched and made again after it drops (`adapters.sql.notifications.PgListener`); each kind of
failure is logged once. On the embedded SQLite database (one process) the same port is served in
memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import make_url

from adapters.memory.call_control import InMemoryCallControlHub
from adapters.sql.notifications import PING_SECONDS, PgListener, asyncpg_dsn
from application.ports.call_control import (
    CallControlChannel,
    ControlAction,
    ControlAnswer,
    ControlHandler,
    ControlRequest,
    HolderUnavailableError,
)

log = logging.getLogger(__name__)

CHANNEL = "agent_stream_call_control"
APPLICATION_NAME = "agent-stream call control"  # how the listener shows in pg_stat_activity
ACK_TIMEOUT_SECONDS = 2.5
MAX_FIELD_CHARS = 256

__all__ = ["APPLICATION_NAME", "CHANNEL", "PgCallControl", "asyncpg_dsn", "call_control_channel"]


class PgCallControl(CallControlChannel):
    def __init__(
        self,
        database_url: str,
        instance_id: str,
        handler: ControlHandler,
        *,
        db_timeout: float,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        self._instance_id = instance_id
        self._handler = handler
        self._ack_timeout = ack_timeout
        self._waiting: dict[str, asyncio.Future[ControlAnswer]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._listener = PgListener(
            database_url,
            CHANNEL,
            self._on_payload,
            name="call_control",
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
        """Start listening; waits (bounded by the database timeout) for the first connection, and
        keeps trying in the background when the database does not answer yet."""
        await self._listener.start()

    async def stop(self) -> None:
        tasks = list(self._serving)
        for task in tasks:
            task.cancel()
        await asyncio.gather(self._listener.stop(), *tasks, return_exceptions=True)

    # -- asking another instance -----------------------------------------------------------------

    async def ask(self, holder: str, request: ControlRequest) -> ControlAnswer:
        request_id = uuid.uuid4().hex
        answered: asyncio.Future[ControlAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answered
        message = {
            "kind": "request",
            "id": request_id,
            "from": self._instance_id,
            "to": holder,
            "run_id": request.run_id,
            "run_name": request.run_name,
            "action": str(request.action),
            "destination": request.destination,
        }
        try:
            async with asyncio.timeout(self._ack_timeout):
                await self._notify(message)
                return await answered
        except Exception as exc:  # noqa: BLE001 - whatever kept the request from its answer: 503
            log.warning(
                "call_control_unanswered",
                extra={"holder": holder, "action": str(request.action), "error": type(exc).__name__},
            )
            raise HolderUnavailableError(holder) from None
        finally:
            self._waiting.pop(request_id, None)

    async def _notify(self, message: dict[str, Any]) -> None:
        await self._listener.notify(json.dumps(message, separators=(",", ":")))

    # -- what the listener hears -----------------------------------------------------------------

    def _on_payload(self, payload: str) -> None:
        message = _message_of(payload)
        if message is None or message.get("to") != self._instance_id:
            return
        kind = message.get("kind")
        if kind == "ack":
            waiting = self._waiting.get(str(message.get("id")))
            answer = _answer_of(message.get("answer"))
            if waiting is not None and answer is not None and not waiting.done():
                waiting.set_result(answer)
        elif kind == "request":
            request = _request_of(message)
            if request is None:
                log.warning("call_control_bad_request")
                return
            task = asyncio.get_running_loop().create_task(
                self._serve(str(message["id"]), str(message["from"]), request), name="call-control-serve"
            )
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)

    async def _serve(self, request_id: str, sender: str, request: ControlRequest) -> None:
        try:
            async with asyncio.timeout(self._ack_timeout):
                answer = await self._handler(request)
                await self._notify(
                    {
                        "kind": "ack",
                        "id": request_id,
                        "from": self._instance_id,
                        "to": sender,
                        "answer": answer,
                    }
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the asking instance answers 503 on its own
            log.warning("call_control_ack_failed", extra={"error": type(exc).__name__})


def _message_of(payload: str) -> dict[str, Any] | None:
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _answer_of(value: object) -> ControlAnswer | None:
    try:
        return ControlAnswer(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _short_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_FIELD_CHARS


def _request_of(message: dict[str, Any]) -> ControlRequest | None:
    run_id, action, destination = message.get("run_id"), message.get("action"), message.get("destination")
    if not (
        type(run_id) is int
        and run_id > 0
        and _short_text(message.get("id"))
        and _short_text(message.get("from"))
        and _short_text(message.get("run_name"))
        and action in tuple(ControlAction)
        and (destination is None or _short_text(destination))
    ):
        return None
    return ControlRequest(run_id, message["run_name"], ControlAction(action), destination)


@contextlib.asynccontextmanager
async def call_control_channel(
    database_url: str, instance_id: str, handler: ControlHandler, db_timeout: float
) -> AsyncIterator[CallControlChannel]:
    """The channel for this database: `LISTEN`/`NOTIFY` on PostgreSQL, in memory on the embedded
    SQLite database (one process)."""
    if make_url(database_url).get_backend_name() != "postgresql":
        channel = InMemoryCallControlHub().join(instance_id, handler)
        try:
            yield channel
        finally:
            channel.close()
        return
    listener = PgCallControl(database_url, instance_id, handler, db_timeout=db_timeout)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop()
