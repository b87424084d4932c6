"""Alembic environment for `adapters.sql.database.make_config`: async URLs, batch mode for SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sql.database import APPLIED_REVISIONS, VERSION_TABLE
from adapters.sql.models import metadata

config = context.config


def _record_step(
    ctx: MigrationContext, step: MigrationInfo, heads: Iterable[Any], run_args: dict[str, Any]
) -> None:
    if step.is_migration and step.up_revision_id is not None:
        config.attributes.setdefault(APPLIED_REVISIONS, []).append(step.up_revision_id)


def _options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": metadata,
        "version_table": config.get_main_option("version_table", VERSION_TABLE),
        "render_as_batch": True,  # SQLite cannot ALTER most things; batch mode copies the table
        # SQLite reflects types by affinity (a BINARY(16) UUID comes back NUMERIC): autogenerate
        # against PostgreSQL to see type changes.
        "compare_type": dialect != "sqlite",
        "user_module_prefix": "",  # render `GUID(...)`, `DateTimeUTC(...)`: script.py.mako imports them
        "on_version_apply": _record_step,
    }


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(make_url(url or "sqlite://").get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("the Alembic config has no sqlalchemy.url; build it with make_config(url)")
    # A plain engine (no foreign-key pragma on SQLite) so batch table copies can drop and rename.
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
