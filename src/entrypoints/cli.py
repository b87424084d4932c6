"""`agent-stream`: the command line of Agent Stream.

`serve` and `demo` run the service; `org`, `agent`, `telephony` and `runs` manage what it stores
(the database of AGENT_STREAM_DATABASE_URL); `call` plays the Cloudonix side of a call. The create
commands and `runs list` print JSON for scripts (interfaces.md); the list and show commands print a
table for people, and JSON with `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any, TypeVar
from uuid import UUID

from dishka import AsyncContainer

from application.management import (
    AddCloudonixConfiguration,
    AgentDraft,
    CreateAgent,
    CreateOrganization,
    FindAgent,
    FindRun,
    InvalidInputError,
    ListAllAgents,
    ListOrganizations,
    ListRuns,
    NotFoundError,
    RotateApiKey,
)
from application.ports.repositories import DuplicateError, StorageError
from domain.agents import InvalidDefinitionError
from entrypoints.settings import Settings, SettingsError, instance_name

T = TypeVar("T")


class CliError(Exception):
    """A mistake in the command's input: printed as one line, exit status 2."""


def _json_arg(raw: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise CliError(f"{flag} must be valid JSON") from None
    if not isinstance(value, dict):
        raise CliError(f"{flag} must be a JSON object")
    return value


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def _with_container(settings: Settings, work: Callable[[AsyncContainer], Awaitable[T]]) -> T:
    from entrypoints.ioc import make_container

    async def runner() -> T:
        container = make_container(settings)
        try:
            async with container() as request:
                return await work(request)
        finally:
            await container.close()

    return asyncio.run(runner())


def _prepare_database(settings: Settings, migrated: bool = False) -> None:
    """The database answers (else one line naming the variable, exit status 2); the embedded
    SQLite default is migrated on first use; PostgreSQL needs `db upgrade` (with `migrated`,
    checked here)."""
    from entrypoints.database_check import check_database

    check_database(settings, migrated=migrated)
    if settings.embedded_database:
        from adapters.sql.database import upgrade

        upgrade(settings.database_url)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import structlog

    from entrypoints.database_check import DatabaseSettingError
    from entrypoints.ioc import make_container
    from entrypoints.logging import configure_logging
    from entrypoints.web.app import create_app
    from entrypoints.web.server import draining_server

    configure_logging(settings.log_format)
    try:
        _prepare_database(settings, migrated=True)
    except DatabaseSettingError as exc:
        if not exc.unreachable:
            raise
        # A database that does not answer yet (starting with the service, a network blip): serve
        # anyway, `/ready` answers 503 and streams close 1011 until it does, then all recovers.
        structlog.get_logger(__name__).warning("database_unreachable_at_start", reason=str(exc))
    if settings.secret_key is not None or not settings.embedded_database:
        from entrypoints.secret_key import credential_cipher

        credential_cipher(settings)  # a missing or weak secret key: one line, before the server starts
    settings = replace(settings, instance_name=instance_name(args.port))
    container = make_container(settings)
    app = create_app(settings, container)
    draining_server(app, container, args.host, args.port, settings.drain_timeout).run()
    return 0


def cmd_db_upgrade(_: argparse.Namespace, settings: Settings) -> int:
    from adapters.sql.database import upgrade
    from entrypoints.database_check import check_database

    check_database(settings)
    applied = upgrade(settings.database_url)
    _print({"applied": applied})
    return 0


def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        created = await (await c.get(CreateOrganization)).execute(
            args.name, args.max_concurrent_calls, args.monthly_minutes
        )
        return {
            "organization_id": created.organization_id,
            "user_id": created.user_id,
            "api_key": created.api_key,
        }

    _print(_with_container(settings, work))
    return 0


def cmd_agent_create(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)
    draft = AgentDraft(
        name=args.name,
        definition=_json_arg(args.definition, "--definition"),
        status=args.status,
        template_variables=_json_arg(args.template_variables, "--template-variables"),
    )

    async def work(c: AsyncContainer) -> dict[str, Any]:
        workflow = await (await c.get(CreateAgent)).execute(args.org, draft)
        return {"agent_uuid": str(workflow.uuid), "id": workflow.id}

    _print(_with_container(settings, work))
    return 0


def _read_bearer_token() -> str:
    token = os.environ.get("CLOUDONIX_BEARER_TOKEN")
    if token is None:
        if sys.stdin.isatty():
            sys.stderr.write(
                "Cloudonix bearer token (input hidden is not supported; paste and press Enter): "
            )
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise CliError("no bearer token: set CLOUDONIX_BEARER_TOKEN or pass it on standard input")
    return token


def cmd_telephony_add_cloudonix(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)
    token = _read_bearer_token()

    async def work(c: AsyncContainer) -> dict[str, Any]:
        config = await (await c.get(AddCloudonixConfiguration)).execute(
            args.org, args.domain, token, args.name or ""
        )
        return {"id": config.id, "domain_id": config.domain_id}

    _print(_with_container(settings, work))
    return 0


def cmd_runs_list(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.serialization import run_to_dict

    _prepare_database(settings)
    try:
        agent_uuid = UUID(args.agent)
    except ValueError:
        raise CliError("--agent must be an agent UUID") from None

    async def work(c: AsyncContainer) -> list[dict[str, Any]]:
        runs = await (await c.get(ListRuns)).execute(agent_uuid, limit=args.limit)
        return [run_to_dict(run) for run in runs]

    for run in _with_container(settings, work):
        _print(run)
    return 0


# -- list and show: a table for people, JSON with --json ------------------------------------------


Column = Callable[[dict[str, Any]], Any]


def _print_list(rows: list[dict[str, Any]], columns: dict[str, Column], as_json: bool) -> int:
    """`rows` as a table of `columns` (header: what to show), or with `--json` one JSON object a line."""
    if as_json:
        for row in rows:
            _print(row)
    else:
        sys.stdout.write(_table(list(columns), [[cell(row) for cell in columns.values()] for row in rows]))
    return 0


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=True)]
    lines = [headers, *cells]
    return "".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def _fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`name   value` lines; a dict or list value is indented JSON under its name."""
    width = max(len(name) for name, _ in pairs)
    out = []
    for name, value in pairs:
        if isinstance(value, dict | list):
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str) if value else "{}"
            value_text = text.replace("\n", "\n" + " " * (width + 2))
        else:
            value_text = _cell(value)
        out.append(f"{name.ljust(width)}  {value_text}\n")
    return "".join(out)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def _agent_json(workflow: Any) -> dict[str, Any]:
    from entrypoints.serialization import agent_to_dict

    return {**agent_to_dict(workflow), "organization_id": workflow.organization_id}


def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)

    async def work(c: AsyncContainer) -> list[dict[str, Any]]:
        return [
            {
                "organization_id": summary.organization.id,
                "name": summary.organization.name,
                "max_concurrent_calls": summary.organization.max_concurrent_calls,
                "monthly_minutes": summary.monthly_minutes,
                "agents": summary.agents,
            }
            for summary in await (await c.get(ListOrganizations)).execute()
        ]

    columns: dict[str, Column] = {
        "ID": itemgetter("organization_id"),
        "NAME": itemgetter("name"),
        "CONCURRENT CALLS": itemgetter("max_concurrent_calls"),
        "MONTHLY MINUTES": itemgetter("monthly_minutes"),
        "AGENTS": itemgetter("agents"),
    }
    return _print_list(_with_container(settings, work), columns, args.json)


def cmd_org_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        rotated = await (await c.get(RotateApiKey)).execute(args.org)
        return {"organization_id": args.org, "api_key": rotated.api_key, "revoked": rotated.revoked}

    _print(_with_container(settings, work))
    sys.stderr.write(
        "agent-stream: the new key is shown once; every earlier key of the organisation stopped working\n"
    )
    return 0


def cmd_agent_list(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)

    async def work(c: AsyncContainer) -> list[dict[str, Any]]:
        return [_agent_json(w) for w in await (await c.get(ListAllAgents)).execute(args.org)]

    columns: dict[str, Column] = {
        "UUID": itemgetter("uuid"),
        "ORG": itemgetter("organization_id"),
        "NAME": itemgetter("name"),
        "STATUS": itemgetter("status"),
        "ENGINE": lambda agent: agent["definition"].get("engine"),
        "CREATED": itemgetter("created_at"),
    }
    return _print_list(_with_container(settings, work), columns, args.json)


def _uuid_arg(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise CliError(f"{raw!r} is not an agent UUID") from None


def cmd_agent_show(args: argparse.Namespace, settings: Settings) -> int:
    _prepare_database(settings)
    agent_uuid = _uuid_arg(args.uuid)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        return _agent_json(await (await c.get(FindAgent)).execute(agent_uuid))

    agent = _with_container(settings, work)
    if args.json:
        _print(agent)
        return 0
    order = ["uuid", "id", "organization_id", "name", "status", "created_at", "updated_at"]
    rest = [key for key in agent if key not in order]
    sys.stdout.write(_fields([(key, agent[key]) for key in [*order, *rest]]))
    return 0


def cmd_runs_show(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.serialization import run_to_dict

    _prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        return run_to_dict(await (await c.get(FindRun)).execute(args.run_id))

    run = _with_container(settings, work)
    if args.json:
        _print(run)
        return 0
    sys.stdout.write(_fields(list(run.items())))
    return 0


def cmd_call(args: argparse.Namespace, _: Settings) -> int:
    from pathlib import Path

    from entrypoints.simulator.caller import DEFAULT_SECONDS, CallOptions, CallUsageError, run_call

    options = CallOptions(
        url=args.url,
        wav=Path(args.wav) if args.wav else None,
        record=Path(args.record) if args.record else None,
        dtmf=args.dtmf or "",
        seconds=DEFAULT_SECONDS if args.seconds is None else args.seconds,
        account_sid=args.account_sid,
    )
    try:
        return run_call(options)
    except CallUsageError as exc:
        raise CliError(str(exc)) from None


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.database_check import check_database
    from entrypoints.demo import DemoError, run_demo

    check_database(settings)
    try:
        return run_demo(settings, port=args.port)
    except DemoError as exc:
        raise CliError(str(exc)) from None


def _run_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a run id (a positive integer)") from None
    if not 1 <= value <= MAX_RUN_ID:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a run id (a positive integer)")
    return value


MAX_RUN_ID = 2**63 - 1  # a PostgreSQL bigint
JSON_HELP = "print JSON (one object a line) instead of a table"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-stream",
        description="Agent Stream: answers Cloudonix (Twilio-compatible) media-stream WebSockets with a "
        "voice agent. Start with `agent-stream demo`; see README.md.",
        epilog="Settings come from AGENT_STREAM_* environment variables (the database: "
        "AGENT_STREAM_DATABASE_URL, by default the SQLite file ./agent-stream.db).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve HTTP and WebSocket", description="Serve HTTP and WebSocket.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND"
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    org = sub.add_parser("org", help="organisations").add_subparsers(
        dest="org_command", required=True, metavar="COMMAND"
    )
    org_create = org.add_parser("create", help="an organisation, its owner and an API key (JSON)")
    org_create.add_argument("--name", required=True, help="the organisation's name")
    org_create.add_argument(
        "--max-concurrent-calls", type=int, default=10, help="calls it may have at once (default 10)"
    )
    org_create.add_argument(
        "--monthly-minutes",
        type=int,
        default=1000,
        help="call minutes its owner may use a month (default 1000; 0 refuses every call)",
    )
    org_create.set_defaults(func=cmd_org_create)
    org_list = org.add_parser("list", help="every organisation: limits and number of agents")
    org_list.add_argument("--json", action="store_true", help=JSON_HELP)
    org_list.set_defaults(func=cmd_org_list)
    org_rotate = org.add_parser(
        "rotate-key",
        help="a new API key for the organisation, printed once (JSON); every earlier key stops working",
    )
    org_rotate.add_argument("--org", type=int, required=True, help="the organisation's id")
    org_rotate.set_defaults(func=cmd_org_rotate_key)

    agent = sub.add_parser("agent", help="agents").add_subparsers(
        dest="agent_command", required=True, metavar="COMMAND"
    )
    agent_create = agent.add_parser("create", help="an agent owned by the organisation's user (JSON)")
    agent_create.add_argument("--org", type=int, required=True, help="the organisation's id")
    agent_create.add_argument("--name", required=True, help="the agent's name")
    agent_create.add_argument(
        "--definition",
        default='{"engine": "linetest"}',
        help='the definition, a JSON object (default {"engine": "linetest"})',
    )
    agent_create.add_argument(
        "--status", choices=["draft", "published"], default="draft", help="draft (default) or published"
    )
    agent_create.add_argument(
        "--template-variables", default="{}", help="values for {{name}} placeholders, a JSON object"
    )
    agent_create.set_defaults(func=cmd_agent_create)
    agent_list = agent.add_parser("list", help="agents, oldest first")
    agent_list.add_argument(
        "--org", type=int, help="only this organisation's (default: every organisation's)"
    )
    agent_list.add_argument("--json", action="store_true", help=JSON_HELP)
    agent_list.set_defaults(func=cmd_agent_list)
    agent_show = agent.add_parser("show", help="one agent, its definition included")
    agent_show.add_argument("uuid", metavar="UUID", help="the agent's UUID")
    agent_show.add_argument("--json", action="store_true", help="print one JSON object instead")
    agent_show.set_defaults(func=cmd_agent_show)

    telephony = sub.add_parser("telephony", help="telephony configurations").add_subparsers(
        dest="telephony_command", required=True, metavar="COMMAND"
    )
    add_cx = telephony.add_parser(
        "add-cloudonix",
        help="a Cloudonix configuration; the token comes from CLOUDONIX_BEARER_TOKEN or stdin",
    )
    add_cx.add_argument("--org", type=int, required=True, help="the organisation's id")
    add_cx.add_argument(
        "--domain", required=True, help="the Cloudonix domain (acme means acme.cloudonix.net)"
    )
    add_cx.add_argument("--name", help="a label (default: the domain)")
    add_cx.set_defaults(func=cmd_telephony_add_cloudonix)

    runs = sub.add_parser("runs", help="workflow runs (calls)").add_subparsers(
        dest="runs_command", required=True, metavar="COMMAND"
    )
    runs_list = runs.add_parser("list", help="an agent's runs, newest first (JSON, one a line)")
    runs_list.add_argument("--agent", required=True, help="the agent's UUID")
    runs_list.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    runs_list.set_defaults(func=cmd_runs_list)
    runs_show = runs.add_parser("show", help="one run: state, how it ended, its context and logs")
    runs_show.add_argument("run_id", metavar="RUN_ID", type=_run_id, help="the run's id")
    runs_show.add_argument("--json", action="store_true", help="print one JSON object instead")
    runs_show.set_defaults(func=cmd_runs_show)

    demo = sub.add_parser(
        "demo",
        help="a first call, offline: embedded database, demo agent, stand-in Cloudonix API, the server",
    )
    demo.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    demo.set_defaults(func=cmd_demo)

    call = sub.add_parser(
        "call",
        help="play the Cloudonix side of a call against a stream URL and record what the agent says",
    )
    call.add_argument("--url", required=True, help="the agent's stream URL (ws:// or wss://)")
    call.add_argument("--wav", help="what the caller says: a 16-bit PCM WAV (default: a built-in phrase)")
    call.add_argument("--record", help="write what the agent said to this WAV (8 kHz, 16-bit, mono)")
    call.add_argument("--dtmf", default="", help="digits to press after the echo, one a second")
    call.add_argument(
        "--seconds", type=float, help="hang up after this long (default 24: the greeting, a phrase, its echo)"
    )
    call.add_argument("--account-sid", help="the start event's accountSid (default: the URL's Domain)")
    call.set_defaults(func=cmd_call)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
