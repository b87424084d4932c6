"""Call control between instances over PostgreSQL `LISTEN`/`NOTIFY`.

Every instance listens on one channel, on a connection of its own (asyncpg's listener; not one of
the SQLAlchemy pool, which hands connections back and forth). Messages are small JSON payloads
addressed to an instance id:

    {"kind": "request", "id": ..., "from": A, "to": B, "run_id": 7, "run_name": "WR-AGS-...",
     "action": "hangup" | "transfer", "destination": "+1555..." | null}
    {"kind": "ack", "id": ..., "from": B, "to": A, "answer": "taken" | "not_live"}

The request id matches an acknowledgement to the request waiting for it. The connection is
watched (a termination callback, and a ping that catches a silent network) and made again, with
back-off, after it drops or the database restarts; each kind of failure is logged once. On the
embedded SQLite database (one process) the same port is served in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from adapters.memory.call_control import InMemoryCallControlHub
from application.failure_log import FailureLog
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
PING_SECONDS = 2.0
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL's limit is 8000 bytes
MAX_FIELD_CHARS = 256


class ListenerConnectionLostError(ConnectionError):
    """The listener's connection closed (the server restarted, or ended our backend)."""


# Query keys of a SQLAlchemy URL that SQLAlchemy's asyncpg dialect takes as `connect()` arguments:
# in a DSN asyncpg would send them to the server as settings, which it refuses.
_CONNECT_ARGUMENTS = frozenset(
    {
        "prepared_statement_cache_size",
        "prepared_statement_name_func",
        "statement_cache_size",
        "max_cached_statement_lifetime",
        "max_cacheable_statement_size",
        "command_timeout",
        "timeout",
        "async_fallback",
    }
)


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg connects with, from the SQLAlchemy URL (`ssl=require` becomes
    `sslmode=require`). It holds the password: never log it."""
    url = make_url(database_url)
    query = {key: value for key, value in url.query.items() if key not in _CONNECT_ARGUMENTS}
    ssl = query.pop("ssl", None)
    if ssl is not None and "sslmode" not in query:
        query["sslmode"] = ssl
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


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
        self._dsn = asyncpg_dsn(database_url)
        self._instance_id = instance_id
        self._handler = handler
        self._db_timeout = db_timeout
        self._ack_timeout = ack_timeout
        self._ping_seconds = ping_seconds
        self._connection: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._waiting: dict[str, asyncio.Future[ControlAnswer]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._connections = 0  # made so far
        self._failures = FailureLog(log, "call_control_listener_failed", "call_control_listener_recovered")

    @property
    def listening(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Start listening; waits (bounded by the database timeout) for the first connection, and
        keeps trying in the background when the database does not answer yet."""
        self._listener = asyncio.get_running_loop().create_task(self._listen_forever(), name="call-control")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._db_timeout):
                await self._connected.wait()

    async def stop(self) -> None:
        tasks = [task for task in (self._listener, *self._serving) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._listener = None

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
        payload = json.dumps(message, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError("call-control message too large")
        async with asyncio.timeout(self._db_timeout):
            await self._connected.wait()
            async with self._lock:
                connection = self._connection
                if connection is None or connection.is_closed():
                    raise ListenerConnectionLostError("not connected")
                try:
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                except BaseException:
                    # A statement cut short (a time-out, a cancelled request) or refused leaves
                    # asyncpg's protocol mid-operation: drop the connection, the listener makes a
                    # new one, instead of every later statement failing on it.
                    connection.terminate()
                    raise

    # -- the listener ----------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            connections = self._connections
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke, the loop connects again
                self._failures.failed(exc)
            if self._connections != connections:  # it was connected: a drop, not a refusal
                delay = FIRST_RETRY_SECONDS
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _listen_once(self) -> None:
        async with asyncio.timeout(self._db_timeout):
            connection = await asyncpg.connect(
                self._dsn,
                timeout=self._db_timeout,
                server_settings={"application_name": APPLICATION_NAME},
            )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            async with asyncio.timeout(self._db_timeout):
                await connection.add_listener(CHANNEL, self._on_notification)
            self._connection = connection
            self._connections += 1
            self._connected.set()
            if self._failures.failing:
                self._failures.succeeded()
            else:
                log.info("call_control_listening", extra={"instance_id": self._instance_id})
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._ping_seconds):
                        await lost.wait()
                if lost.is_set():
                    break
                async with self._lock, asyncio.timeout(self._db_timeout):  # a silent network
                    await connection.fetchval("SELECT 1")
            raise ListenerConnectionLostError("the listener's connection closed")
        finally:
            self._connected.clear()
            self._connection = None
            connection.terminate()

    def _on_notification(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
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
