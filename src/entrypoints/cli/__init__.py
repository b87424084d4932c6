"""`agent-stream`: the command line of Agent Stream.

`serve` and `demo` run the service; `org`, `agent`, `telephony` and `runs` manage what it stores
(the database of AGENT_STREAM_DATABASE_URL); `call` plays the Cloudonix side of a call. The create
commands and `runs list` print JSON for scripts (interfaces.md); the list and show commands print a
table for people, and JSON with `--json`.

`parser` declares the commands, `commands/` runs them (one module a group), `output` prints, and
`main` here turns what went wrong into one line and an exit status.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from application.management import InvalidInputError, NotFoundError
from application.ports.repositories import DuplicateError, StorageError
from domain.agents import InvalidDefinitionError
from entrypoints.cli.parser import build_parser
from entrypoints.cli.support import CliError
from entrypoints.settings import Settings, SettingsError

__all__ = ["CliError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import DBAPIError

    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"agent-stream: {exc}\n")
        return 2
    try:
        result: int = args.func(args, settings)
    except (CliError, SettingsError, InvalidDefinitionError, InvalidInputError) as exc:
        sys.stderr.write(f"agent-stream: {exc}\n")
        return 2
    except NotFoundError as exc:
        sys.stderr.write(f"agent-stream: {exc} not found\n")
        return 1
    except DuplicateError:
        sys.stderr.write("agent-stream: that configuration already exists in this organisation\n")
        return 1
    except (StorageError, DBAPIError) as exc:  # the database failed after it first answered
        from entrypoints.database_check import describe

        sys.stderr.write(f"agent-stream: {describe(exc, settings.database_url, settings.db_timeout)}\n")
        return 2
    return result
