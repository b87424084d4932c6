"""`agent-stream`: the command line of interfaces.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from uuid import UUID

from dishka import AsyncContainer

from application.management import (
    AddCloudonixConfiguration,
    AgentDraft,
    CreateAgent,
    CreateOrganization,
    InvalidInputError,
    ListRuns,
    NotFoundError,
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
    from entrypoints.ioc import make_container
    from entrypoints.logging import configure_logging
    from entrypoints.web.app import create_app
    from entrypoints.web.server import draining_server

    configure_logging(settings.log_format)
    _prepare_database(settings, migrated=True)
    if settings.secret_key is not None or not settings.embedded_database:
        from entrypoints.ioc import credential_cipher

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


def cmd_call(args: argparse.Namespace, _: Settings) -> int:
    from pathlib import Path

    from entrypoints.call import DEFAULT_SECONDS, CallOptions, CallUsageError, run_call

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-stream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve HTTP and WebSocket")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)

    org = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command", required=True)
    org_create = org.add_parser("create", help="an organisation, its owner and an API key")
    org_create.add_argument("--name", required=True)
    org_create.add_argument("--max-concurrent-calls", type=int, default=10)
    org_create.add_argument("--monthly-minutes", type=int, default=1000)
    org_create.set_defaults(func=cmd_org_create)

    agent = sub.add_parser("agent", help="agents").add_subparsers(dest="agent_command", required=True)
    agent_create = agent.add_parser("create", help="an agent owned by the organisation's user")
    agent_create.add_argument("--org", type=int, required=True)
    agent_create.add_argument("--name", required=True)
    agent_create.add_argument("--definition", default='{"engine": "linetest"}')
    agent_create.add_argument("--status", choices=["draft", "published"], default="draft")
    agent_create.add_argument("--template-variables", default="{}")
    agent_create.set_defaults(func=cmd_agent_create)

    telephony = sub.add_parser("telephony", help="telephony configurations").add_subparsers(
        dest="telephony_command", required=True
    )
    add_cx = telephony.add_parser(
        "add-cloudonix",
        help="a Cloudonix configuration; the token comes from CLOUDONIX_BEARER_TOKEN or stdin",
    )
    add_cx.add_argument("--org", type=int, required=True)
    add_cx.add_argument("--domain", required=True)
    add_cx.add_argument("--name")
    add_cx.set_defaults(func=cmd_telephony_add_cloudonix)

    runs = sub.add_parser("runs", help="workflow runs").add_subparsers(dest="runs_command", required=True)
    runs_list = runs.add_parser("list", help="an agent's runs, newest first")
    runs_list.add_argument("--agent", required=True)
    runs_list.add_argument("--limit", type=int, default=50)
    runs_list.set_defaults(func=cmd_runs_list)

    demo = sub.add_parser(
        "demo",
        help="a first call, offline: embedded database, demo agent, stand-in Cloudonix API, the server",
    )
    demo.add_argument("--port", type=int, default=8000)
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
    settings: Settings | None = None
    try:
        settings = Settings.from_env()
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

        assert settings is not None  # noqa: S101 - only commands that read the settings use a database
        sys.stderr.write(f"agent-stream: {describe(exc, settings.database_url, settings.db_timeout)}\n")
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
