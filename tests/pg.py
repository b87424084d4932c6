"""PostgreSQL for tests: find a server once per process, hand each suite its own fresh database.

The server, in order of preference:
1. `AGENT_STREAM_TEST_DATABASE_URL` (an async SQLAlchemy URL, `postgresql+asyncpg://...`);
2. a local server at 127.0.0.1:5432 that lets user `postgres` in without a password;
3. a throwaway server started with the `pgserver` package, stopped and deleted at exit.
When none works, `RuntimeError`: tests that need PostgreSQL fail, they never skip.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import asyncpg
from sqlalchemy.engine import URL, make_url

__all__ = (
    "ENV_VAR",
    "LOCAL_URL",
    "fresh_postgres_database",
    "pgserver_instance",
    "postgres_url",
    "resolve_url",
)

ENV_VAR = "AGENT_STREAM_TEST_DATABASE_URL"
LOCAL_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")

_servers = contextlib.ExitStack()
atexit.register(_servers.close)


@functools.cache
def postgres_url() -> str:
    """The server's URL for this process (found, or started, on the first call)."""
    return resolve_url(os.environ, LOCAL_URL, _servers)


def resolve_url(environ: Mapping[str, str], local_url: str, servers: contextlib.ExitStack) -> str:
    """Where to find PostgreSQL; a pgserver started on the way is entered into `servers`."""
    configured = environ.get(ENV_VAR, "").strip()
    if configured:
        return configured
    if _run(lambda: _answers(local_url)):
        return local_url
    try:
        return servers.enter_context(pgserver_instance())
    except Exception as exc:
        raise RuntimeError(
            f"no PostgreSQL for the tests: set {ENV_VAR}, run one at {local_url}, "
            f"or install pgserver ({type(exc).__name__}: {exc})"
        ) from exc


@contextlib.contextmanager
def pgserver_instance() -> Iterator[str]:
    """A throwaway PostgreSQL server from the `pgserver` package; yields its asyncpg URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver.postgres_server import get_server

    pgdata = Path(tempfile.mkdtemp(prefix="agent-stream-pg-"))
    server = get_server(pgdata, cleanup_mode="delete")
    try:
        yield _asyncpg_url(server.get_uri())
    finally:
        server.cleanup()


def _asyncpg_url(libpq_uri: str) -> str:
    """`postgresql://postgres:@/postgres?host=/socket/dir` -> the asyncpg URL for SQLAlchemy."""
    parts = urlsplit(libpq_uri)
    host = parse_qs(parts.query).get("host", [None])[0]
    url = URL.create(
        "postgresql+asyncpg",
        username=parts.username or "postgres",
        host=parts.hostname,
        port=parts.port,
        database=parts.path.lstrip("/") or "postgres",
        query={"host": host} if host else {},
    )
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "agent_stream_test") -> Iterator[str]:
    """A new, empty database on the test server; yields its URL and drops it afterwards."""
    server = make_url(postgres_url())
    name = f"{prefix}_{uuid4().hex[:12]}"
    _run(lambda: _admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _run(lambda: _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _connect_kwargs(url: URL) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "user": url.username,
        "password": url.password,
        "host": url.query.get("host") or url.host,
        "port": url.port,
        "database": url.database,
        "timeout": CONNECT_TIMEOUT_SECONDS,
    }
    return {key: value for key, value in kwargs.items() if value is not None}


async def _answers(url: str) -> bool:
    try:
        connection = await asyncpg.connect(**_connect_kwargs(make_url(url)))
    except (OSError, asyncpg.PostgresError):  # refused, timed out, or no such user/database
        return False
    try:
        return bool(await connection.fetchval("select 1") == 1)
    finally:
        await connection.close()


async def _admin(url: URL, statement: str) -> None:
    connection = await asyncpg.connect(**_connect_kwargs(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work from sync code; on a fresh thread when this one already runs a loop."""

    async def main() -> T:
        return await work()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


async def call_control_listeners(database_url: str, application_name: str | None = None) -> list[int]:
    """The backend pids of the call-control listeners connected to this database (or of the
    listeners that show as `application_name`, e.g. the run feed's)."""
    from adapters.sql.call_control import APPLICATION_NAME, asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
            application_name or APPLICATION_NAME,
            make_url(database_url).database,
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def terminate_backends(database_url: str, pids: list[int]) -> None:
    """End these backends, as a database restart or an administrator would (pg_terminate_backend)."""
    from adapters.sql.call_control import asyncpg_dsn

    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for pid in pids:
            assert await connection.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()
