"""`runs list` (JSON, one run a line) and `runs show`."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from dishka import AsyncContainer

from application.management import FindRun, ListRuns
from entrypoints.cli.output import fields, print_json
from entrypoints.cli.support import CliError, prepare_database, with_container
from entrypoints.settings import Settings


def cmd_runs_list(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.serialization import run_to_dict

    prepare_database(settings)
    try:
        agent_uuid = UUID(args.agent)
    except ValueError:
        raise CliError("--agent must be an agent UUID") from None

    async def work(c: AsyncContainer) -> list[dict[str, Any]]:
        runs = await (await c.get(ListRuns)).execute(agent_uuid, limit=args.limit)
        return [run_to_dict(run) for run in runs]

    for run in with_container(settings, work):
        print_json(run)
    return 0


def cmd_runs_show(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.serialization import run_to_dict

    prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        return run_to_dict(await (await c.get(FindRun)).execute(args.run_id))

    run = with_container(settings, work)
    if args.json:
        print_json(run)
        return 0
    sys.stdout.write(fields(list(run.items())))
    return 0
