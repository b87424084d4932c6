"""`tests/pg.py` falls back to a throwaway pgserver when no PostgreSQL answers where it looks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from sqlalchemy import text

from adapters.sql.database import create_engine
from tests.pg import ENV_VAR, resolve_url

pytestmark = pytest.mark.postgres

NOBODY_LISTENS = "postgresql+asyncpg://postgres@127.0.0.1:1/test"


async def _select_one(url: str) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text("select 1"))
    finally:
        await engine.dispose()


def test_the_configured_url_wins() -> None:
    with contextlib.ExitStack() as servers:
        url = resolve_url({ENV_VAR: "postgresql+asyncpg://u@db.example:5432/x"}, NOBODY_LISTENS, servers)

    assert url == "postgresql+asyncpg://u@db.example:5432/x"


def test_without_a_local_server_a_pgserver_is_started_and_stopped() -> None:
    with contextlib.ExitStack() as servers:
        url = resolve_url({}, NOBODY_LISTENS, servers)

        assert url.startswith("postgresql+asyncpg://")
        assert asyncio.run(_select_one(url)) == 1

    with pytest.raises(FileNotFoundError):  # stopped and deleted: its socket is gone
        asyncio.run(_select_one(url))
