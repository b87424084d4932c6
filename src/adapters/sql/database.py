"""Engine, sessions and schema migrations for SQLite (aiosqlite) and PostgreSQL (asyncpg).

`upgrade`/`downgrade` are synchronous: call them from sync code (the CLI before the server
starts, a test fixture). The migration environment runs its own event loop; when the caller's
thread already runs one, the migration runs on a fresh thread instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = (
    "APPLIED_REVISIONS",
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "create_engine",
    "create_sessionmaker",
    "downgrade",
    "make_config",
    "upgrade",
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_versions"  # advanced-alchemy's default, so its `alchemy` CLI agrees
SQLITE_BUSY_TIMEOUT_SECONDS = 30
DEFAULT_TIMEOUT_SECONDS = 5.0  # `AGENT_STREAM_DB_TIMEOUT`'s default
TRANSACTION_TIMEOUT = "transaction_timeout"  # the sessionmaker `info` key the adapters read
APPLIED_REVISIONS = "applied_revisions"  # the `Config.attributes` list env.py appends to


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> AsyncEngine:
    """An async engine for `url`: SQLite gets WAL and foreign keys, PostgreSQL a checked pool.

    On PostgreSQL every wait on the server is bounded by `timeout` seconds: connecting, waiting for
    a pooled connection, and each statement (asyncpg's `command_timeout`, which also bounds the
    rollback SQLAlchemy sends when a transaction is abandoned). A server that stops answering
    then fails fast instead of hanging the caller; the connection that timed out is discarded.
    SQLite keeps its own busy timeout (a local file has no network to stall).
    Statement parameters stay out of logs and error messages: they may hold credentials.
    """
    if _is_sqlite(url):
        engine = create_async_engine(
            url, hide_parameters=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        hide_parameters=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=timeout,
        pool_recycle=1800,
        connect_args={"timeout": timeout, "command_timeout": timeout},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout) is swapped for a
    new one at checkout. asyncpg sees the close as it happens, so this needs no round trip, where
    SQLAlchemy's `pool_pre_ping` costs one per transaction (0.6 ms of CPU, ten times a call)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def _sqlite_pragmas(dbapi_connection: Any, _connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def create_sessionmaker(
    engine: AsyncEngine, transaction_timeout: float | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`. With `transaction_timeout`, the SQL adapters bound each of their
    transactions (pool wait, connect, statements, commit) by that many seconds on PostgreSQL."""
    info = {TRANSACTION_TIMEOUT: transaction_timeout} if transaction_timeout is not None else {}
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


def make_config(url: str) -> Config:
    """The Alembic configuration for `url`, built in code (there is no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    # `Config` is a ConfigParser: a literal % (e.g. in an encoded password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes[APPLIED_REVISIONS] = []
    return config


def upgrade(url: str, revision: str = "head") -> list[str]:
    """Apply migrations up to `revision`; returns the revision ids applied, in order."""
    config = make_config(url)
    _run_outside_loop(lambda: command.upgrade(config, revision))
    return list(config.attributes[APPLIED_REVISIONS])


def downgrade(url: str, revision: str) -> list[str]:
    """Revert migrations down to `revision` (`"base"` for none); returns the revision ids reverted."""
    config = make_config(url)
    _run_outside_loop(lambda: command.downgrade(config, revision))
    return list(config.attributes[APPLIED_REVISIONS])


def _run_outside_loop(migrate: Callable[[], object]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        migrate()
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrations") as pool:
        pool.submit(migrate).result()
