"""`org create`, `org list` and `org rotate-key`."""

from __future__ import annotations

import argparse
import sys
from operator import itemgetter
from typing import Any

from dishka import AsyncContainer

from application.authentication import RotateApiKey
from application.management import CreateOrganization, ListOrganizations
from entrypoints.cli.output import Column, print_json, print_list
from entrypoints.cli.support import prepare_database, with_container
from entrypoints.settings import Settings


def cmd_org_create(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        created = await (await c.get(CreateOrganization)).execute(
            args.name, args.max_concurrent_calls, args.monthly_minutes
        )
        return {
            "organization_id": created.organization_id,
            "user_id": created.user_id,
            "api_key": created.api_key,
        }

    print_json(with_container(settings, work))
    return 0


def cmd_org_list(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)

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
    return print_list(with_container(settings, work), columns, args.json)


def cmd_org_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        rotated = await (await c.get(RotateApiKey)).execute(args.org)
        return {"organization_id": args.org, "api_key": rotated.api_key, "revoked": rotated.revoked}

    print_json(with_container(settings, work))
    sys.stderr.write(
        "agent-stream: the new key is shown once; every earlier key of the organisation stopped working\n"
    )
    return 0
