"""A store that cannot answer surfaces as `StorageError`, never as a driver's own exception."""

from __future__ import annotations

from pathlib import Path

import pytest
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
