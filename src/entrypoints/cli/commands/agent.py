"""`agent create`, `agent list` and `agent show`."""

from __future__ import annotations

import argparse
import sys
from operator import itemgetter
from typing import Any

from dishka import AsyncContainer

from application.management import AgentDraft, CreateAgent, FindAgent, ListAllAgents
from entrypoints.cli.output import Column, fields, print_json, print_list
from entrypoints.cli.support import json_arg, prepare_database, uuid_arg, with_container
from entrypoints.settings import Settings


def _agent_json(workflow: Any) -> dict[str, Any]:
    from entrypoints.serialization import agent_to_dict

    return {**agent_to_dict(workflow), "organization_id": workflow.organization_id}


def cmd_agent_create(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)
    draft = AgentDraft(
        name=args.name,
        definition=json_arg(args.definition, "--definition"),
        status=args.status,
        template_variables=json_arg(args.template_variables, "--template-variables"),
    )

    async def work(c: AsyncContainer) -> dict[str, Any]:
        workflow = await (await c.get(CreateAgent)).execute(args.org, draft)
        return {"agent_uuid": str(workflow.uuid), "id": workflow.id}

    print_json(with_container(settings, work))
    return 0


def cmd_agent_list(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)

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
    return print_list(with_container(settings, work), columns, args.json)


def cmd_agent_show(args: argparse.Namespace, settings: Settings) -> int:
    prepare_database(settings)
    agent_uuid = uuid_arg(args.uuid)

    async def work(c: AsyncContainer) -> dict[str, Any]:
        return _agent_json(await (await c.get(FindAgent)).execute(agent_uuid))

    agent = with_container(settings, work)
    if args.json:
        print_json(agent)
        return 0
    order = ["uuid", "id", "organization_id", "name", "status", "created_at", "updated_at"]
    rest = [key for key in agent if key not in order]
    sys.stdout.write(fields([(key, agent[key]) for key in [*order, *rest]]))
    return 0
