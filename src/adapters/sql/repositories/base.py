"""The base of every SQL adapter: one short session and transaction per method, library errors
turned into the ports' `StorageError`/`DuplicateError`."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import asyncpg
from sqlalchemy import CursorResult, Executable
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.database import TRANSACTION_TIMEOUT
from application.ports.repositories import DuplicateError, StorageError

_PG_UNIQUE_VIOLATION = "23505"
_SQLITE_UNIQUE_VIOLATIONS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_Row = TypeVar("_Row")
_Entity = TypeVar("_Entity")


# What the drivers raise unwrapped: connection-time errors (SQLAlchemy 2.0 does not wrap asyncpg's
# errors while connecting), and OSError when the server cannot be reached at all.
_STORAGE_FAILURES: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)


class SqlAdapter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._dialect: str | None = None if bind is None else bind.dialect.name
        self._row_locks = self._dialect == "postgresql"  # `SELECT ... FOR UPDATE` means something
        self._timeout = _transaction_timeout(sessions, self._dialect)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A fresh session in a transaction that commits on exit; library errors become ours.

        With a transaction timeout (PostgreSQL), the whole transaction -- pool wait, connect,
        statements, commit -- must finish within it, else `StorageError`. The connection it was
        cancelled on is invalidated by SQLAlchemy and never returns to the pool.
        """
        try:
            async with asyncio.timeout(self._timeout), self._sessions() as session, session.begin():
                yield session
        except TimeoutError as exc:  # ours above, or asyncpg's connect/command timeout
            raise StorageError("TimeoutError: the database did not answer in time") from exc
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise DuplicateError(_describe(exc)) from exc
            raise StorageError(_describe(exc)) from exc
        except _STORAGE_FAILURES as exc:
            raise StorageError(_describe(exc)) from exc

    async def _insert(self, row: _Row, stored: Callable[[_Row], _Entity]) -> _Entity:
        """Insert `row` in a transaction of its own; `stored(row)` once its id is known."""
        async with self._transaction() as session:
            session.add(row)
            await session.flush()
            return stored(row)


def _transaction_timeout(sessions: async_sessionmaker[AsyncSession], dialect: str | None) -> float | None:
    """The bound set by `create_sessionmaker`; none on SQLite, whose waits are local and whose
    driver thread would go on with a cancelled statement anyway."""
    if dialect is None or dialect == "sqlite":
        return None
    timeout = sessions.kw.get("info", {}).get(TRANSACTION_TIMEOUT)
    return float(timeout) if timeout is not None else None


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE_VIOLATION:
        return True
    return getattr(orig, "sqlite_errorname", None) in _SQLITE_UNIQUE_VIOLATIONS


def _describe(exc: BaseException) -> str:
    """The driver's message, without the statement (parameters may hold credentials)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(exc).__name__}: {cause}".splitlines()[0]


async def rowcount(session: AsyncSession, statement: Executable) -> int:
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount
