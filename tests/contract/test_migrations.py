"""The migrations: a stairway (up, down, up again per revision) and no drift from the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sql.database import VERSION_TABLE, downgrade, make_config, upgrade
from adapters.sql.models import metadata
from tests.pg import fresh_postgres_database

APPLICATION_TABLES = {
    "organizations",
    "instances",
    "users",
    "api_keys",
    "workflows",
    "telephony_configurations",
    "workflow_runs",
    "call_slots",
    "webhook_deliveries",
    "webhook_secrets",
}


def _revisions_oldest_first() -> list[Script]:
    scripts = ScriptDirectory.from_config(make_config("sqlite+aiosqlite://"))
    return list(reversed(list(scripts.walk_revisions("base", "heads"))))


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


async def _inspect(url: str, look: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _schema_diff(connection: Connection) -> list[Any]:
    # SQLite reflects column types by affinity (a BINARY(16) UUID comes back NUMERIC): compare
    # types on PostgreSQL only.
    context = MigrationContext.configure(
        connection,
        opts={"version_table": VERSION_TABLE, "compare_type": connection.dialect.name != "sqlite"},
    )
    return list(compare_metadata(context, metadata))


def test_every_revision_goes_up_down_and_up_again(empty_database: str) -> None:
    for script in _revisions_oldest_first():
        previous = script.down_revision if isinstance(script.down_revision, str) else "base"

        assert upgrade(empty_database, script.revision) == [script.revision]
        assert downgrade(empty_database, previous) == [script.revision]
        assert upgrade(empty_database, script.revision) == [script.revision]


async def test_head_creates_the_schema_and_base_removes_it(empty_database: str) -> None:
    revisions = [script.revision for script in _revisions_oldest_first()]

    assert upgrade(empty_database) == revisions
    assert upgrade(empty_database) == []
    assert await _inspect(empty_database, _table_names) == APPLICATION_TABLES | {VERSION_TABLE}

    assert downgrade(empty_database, "base") == list(reversed(revisions))
    assert await _inspect(empty_database, _table_names) == {VERSION_TABLE}


async def test_the_models_match_the_migrated_schema(empty_database: str) -> None:
    upgrade(empty_database)

    assert await _inspect(empty_database, _schema_diff) == []
