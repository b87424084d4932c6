"""A store that cannot answer surfaces as `StorageError`, never as a driver's own exception."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.sql.database import create_engine, create_sessionmaker
from adapters.sql.repositories import SqlCallSlots, SqlOrganizationRepository
from application.ports.repositories import StorageError
from tests.contract.factories import EPOCH
from tests.pg import postgres_url


async def _get_fails_with_storage_error(url: str) -> None:
    engine = create_engine(url)
    try:
        with pytest.raises(StorageError):
            await SqlOrganizationRepository(create_sessionmaker(engine)).get(1)
        with pytest.raises(StorageError):
            await SqlCallSlots(create_sessionmaker(engine)).acquire(1, 5, "instance-a", EPOCH, 30.0)
    finally:
        await engine.dispose()


@pytest.mark.sqlite
async def test_a_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    await _get_fails_with_storage_error(f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")


@pytest.mark.sqlite
async def test_a_sqlite_database_without_the_schema(tmp_path: Path) -> None:
    await _get_fails_with_storage_error(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.postgres
async def test_a_postgres_server_that_does_not_answer() -> None:
    await _get_fails_with_storage_error("postgresql+asyncpg://postgres@127.0.0.1:1/test")


@pytest.mark.postgres
async def test_a_postgres_database_that_does_not_exist() -> None:
    missing = make_url(postgres_url()).set(database="agent_stream_no_such_database")
    await _get_fails_with_storage_error(missing.render_as_string(hide_password=False))


NO_SUCH_ID = 2**62


@pytest.mark.postgres
async def test_a_pooled_connection_the_server_dropped_is_replaced(postgres_database_url: str) -> None:
    """A restart or an idle-session timeout on the server leaves dead connections in the pool;
    the next use gets a live one instead of failing (checked without a round trip per use)."""
    engine = create_engine(postgres_database_url)
    organizations = SqlOrganizationRepository(create_sessionmaker(engine))
    try:
        async with engine.connect() as other:
            await organizations.get(NO_SUCH_ID)  # a second connection, now waiting in the pool
            await other.execute(
                text(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = current_database() and pid <> pg_backend_pid()"
                )
            )
        await asyncio.sleep(0.2)  # the server's close reaches the pooled connection
        for _ in range(2):  # whichever connection the pool hands out first
            assert await organizations.get(NO_SUCH_ID) is None  # no StorageError
    finally:
        await engine.dispose()
