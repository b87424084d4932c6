"""What the command line says when the database of `AGENT_STREAM_DATABASE_URL` cannot be used.

Every command that touches the database first checks it (`check_database`): one connection,
bounded by `AGENT_STREAM_DB_TIMEOUT`. A missing SQLite folder, an unreachable or silent
PostgreSQL, a refused login or a database that does not exist each become one line naming the
variable and what is wrong (`DatabaseSettingError`, exit status 2), never a traceback.
`describe` turns a database failure met later (a command's own work) into the same kind of line.
Neither ever repeats the URL: it may hold a password.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from entrypoints.settings import DATABASE_URL_VARIABLE, Settings, SettingsError

_PG_UNDEFINED_TABLE: Final = "42P01"
_PG_INVALID_DATABASE: Final = "3D000"
_PG_LOGIN_REFUSED: Final = frozenset({"28000", "28P01"})


class DatabaseSettingError(SettingsError):
    """The database of `AGENT_STREAM_DATABASE_URL` cannot be used; the message says why.

    `unreachable`: nothing answered (refused, no route, timed out) -- a state the database may
    leave by itself, unlike a wrong setting (a missing folder or database, a refused login, no
    schema). `serve` starts anyway on an unreachable database and recovers when it answers."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def check_database(settings: Settings, migrated: bool = False) -> None:
    """Connect once (`SELECT 1`), within `db_timeout`; raises `DatabaseSettingError` if that fails.

    An embedded SQLite file's folder must exist (the file itself is created on first use). With
    `migrated`, PostgreSQL must also hold the latest migration (`serve` needs the schema it knows;
    the embedded SQLite database is migrated by the commands themselves)."""
    url = make_url(settings.database_url)
    if _is_sqlite(url):
        folder = _sqlite_folder(url)
        if folder is not None and not folder.is_dir():
            raise DatabaseSettingError(
                f"{DATABASE_URL_VARIABLE}: the folder {str(folder)!r} of the SQLite database does not exist"
            )
    try:
        revisions = asyncio.run(
            _ping(settings.database_url, settings.db_timeout, migrated and not _is_sqlite(url))
        )
    # only connecting happens here: whatever fails, the database cannot be used
    except Exception as exc:  # noqa: BLE001
        unreachable = isinstance(_root(exc), OSError) and not isinstance(_root(exc), socket.gaierror)
        raise DatabaseSettingError(
            describe(exc, settings.database_url, settings.db_timeout), unreachable=unreachable
        ) from None
    if revisions is not None and not _latest(settings.database_url) <= revisions:
        raise DatabaseSettingError(
            f"{DATABASE_URL_VARIABLE}: the database at {_where(url)} is not at the latest migration: "
            "run `agent-stream db upgrade` first"
        )


async def _ping(database_url: str, seconds: float, revisions: bool) -> set[str] | None:
    """`SELECT 1`; with `revisions`, the migrations the database holds (raises if it holds none)."""
    from adapters.sql.database import VERSION_TABLE, create_engine

    engine = create_engine(database_url, timeout=seconds)
    try:
        async with asyncio.timeout(seconds + 1.0), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            if not revisions:
                return None
            result = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))  # noqa: S608
            return {str(row[0]) for row in result}
    finally:
        await engine.dispose()


def _latest(database_url: str) -> set[str]:
    from alembic.script import ScriptDirectory

    from adapters.sql.database import make_config

    return set(ScriptDirectory.from_config(make_config(database_url)).get_heads())


def describe(exc: BaseException, database_url: str, timeout: float) -> str:
    """One line naming the variable and what is wrong with its database; never the URL."""
    url = make_url(database_url)
    cause = _root(exc)
    if _is_sqlite(url):
        return f"{DATABASE_URL_VARIABLE}: cannot use the SQLite database {url.database!r}: {_message(cause)}"
    where = _where(url)
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(cause, TimeoutError):
        reason = f"PostgreSQL at {where} did not answer within {timeout:g} s"
    elif isinstance(cause, socket.gaierror):
        reason = f"cannot resolve the host {url.host!r}"
    elif isinstance(cause, ConnectionRefusedError):
        reason = f"nothing accepts connections at {where} (connection refused)"
    elif isinstance(cause, OSError):
        reason = f"cannot reach PostgreSQL at {where} ({cause.strerror or _message(cause)})"
    elif sqlstate in _PG_LOGIN_REFUSED:
        reason = f"PostgreSQL at {where} refused the login: {_message(cause)}"
    elif sqlstate == _PG_INVALID_DATABASE:
        reason = f"PostgreSQL at {where}: {_message(cause)}"
    elif sqlstate == _PG_UNDEFINED_TABLE:
        reason = f"the database at {where} has no agent-stream tables: run `agent-stream db upgrade` first"
    else:
        reason = f"the database at {where} failed: {type(cause).__name__}: {_message(cause)}"
    return f"{DATABASE_URL_VARIABLE}: {reason}"


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _root(exc: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's and the adapters' wrappers."""
    seen: set[int] = set()
    while id(exc) not in seen and not isinstance(exc, OSError):  # a timeout is one, caused by a cancel
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            exc = exc.orig
        elif exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            break
    return exc


def _message(exc: BaseException) -> str:
    """The first line of the driver's message, without SQLAlchemy's "<class '...'>: " prefix."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else type(exc).__name__
    if message.startswith("<class '") and ">: " in message:
        message = message.split(">: ", 1)[1]
    return message[:300]


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_folder(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).parent
