"""What every command shares: the input error, argument readers, the database and the container."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

from dishka import AsyncContainer

from entrypoints.settings import Settings

T = TypeVar("T")


class CliError(Exception):
    """A mistake in the command's input: printed as one line, exit status 2."""


def json_arg(raw: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise CliError(f"{flag} must be valid JSON") from None
    if not isinstance(value, dict):
        raise CliError(f"{flag} must be a JSON object")
    return value


def uuid_arg(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise CliError(f"{raw!r} is not an agent UUID") from None


def with_container(settings: Settings, work: Callable[[AsyncContainer], Awaitable[T]]) -> T:
    from entrypoints.ioc import make_container

    async def runner() -> T:
        container = make_container(settings)
        try:
            async with container() as request:
                return await work(request)
        finally:
            await container.close()

    return asyncio.run(runner())


def prepare_database(settings: Settings, migrated: bool = False) -> None:
    """The database answers (else one line naming the variable, exit status 2); the embedded
    SQLite default is migrated on first use; PostgreSQL needs `db upgrade` (with `migrated`,
    checked here)."""
    from entrypoints.database_check import check_database

    check_database(settings, migrated=migrated)
    if settings.embedded_database:
        from adapters.sql.database import upgrade

        upgrade(settings.database_url)
