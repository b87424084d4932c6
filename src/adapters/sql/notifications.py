"""PostgreSQL `LISTEN`/`NOTIFY` on a connection of its own, kept alive across drops and restarts.

What call control and the run feed share: each listens on one channel, on a dedicated asyncpg
connection (not one of the SQLAlchemy pool, which hands connections back and forth), and sends its
notifications on the same connection. The connection is watched (a termination callback, and a ping
that catches a silent network) and made again, with back-off, after it drops or the database
restarts; each kind of failure is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from application.failure_log import FailureLog

PING_SECONDS = 2.0
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL's limit is 8000 bytes


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


class PgListener:
    """Listens on `channel` and hands each payload to `on_payload` (on the event loop; it must not
    block). `name` prefixes its log events (`<name>_listening`, `<name>_listener_failed`,
    `<name>_listener_recovered`, on `logger`); `application_name` is how the connection shows in
    `pg_stat_activity`."""

    def __init__(
        self,
        database_url: str,
        channel: str,
        on_payload: Callable[[str], None],
        *,
        name: str,
        application_name: str,
        logger: logging.Logger,
        db_timeout: float,
        ping_seconds: float = PING_SECONDS,
        log_extra: dict[str, Any] | None = None,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._on_payload = on_payload
        self._name = name
        self._application_name = application_name
        self._log = logger
        self._log_extra = log_extra or {}
        self._db_timeout = db_timeout
        self._ping_seconds = ping_seconds
        self._connection: asyncpg.Connection | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._listener: asyncio.Task[None] | None = None
        self._connections = 0  # made so far
        self._listening_event = f"{name}_listening"
        self._failures = FailureLog(logger, f"{name}_listener_failed", f"{name}_listener_recovered")

    @property
    def listening(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Start listening; waits (bounded by the database timeout) for the first connection, and
        keeps trying in the background when the database does not answer yet."""
        self._listener = asyncio.get_running_loop().create_task(self._listen_forever(), name=self._name)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._db_timeout):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        self._listener = None

    async def notify(self, payload: str) -> None:
        """Send `payload` on the channel (to every listener, this one included); waits for the
        connection (bounded by the database timeout). Raises when it cannot be sent."""
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"{self._name} message too large")
        async with asyncio.timeout(self._db_timeout):
            await self._connected.wait()
            async with self._lock:
                connection = self._connection
                if connection is None or connection.is_closed():
                    raise ListenerConnectionLostError("not connected")
                try:
                    await connection.execute("SELECT pg_notify($1, $2)", self._channel, payload)
                except BaseException:
                    # A statement cut short (a time-out, a cancelled request) or refused leaves
                    # asyncpg's protocol mid-operation: drop the connection, the listener makes a
                    # new one, instead of every later statement failing on it.
                    connection.terminate()
                    raise

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
                server_settings={"application_name": self._application_name},
            )
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        try:
            async with asyncio.timeout(self._db_timeout):
                await connection.add_listener(self._channel, self._on_notification)
            self._connection = connection
            self._connections += 1
            self._connected.set()
            if self._failures.failing:
                self._failures.succeeded()
            else:
                self._log.info(self._listening_event, extra=self._log_extra)
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
        self._on_payload(payload)
