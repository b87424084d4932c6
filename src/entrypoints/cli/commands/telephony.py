"""`telephony add-cloudonix`: the bearer token comes from the environment or standard input."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dishka import AsyncContainer

from application.management import AddCloudonixConfiguration
from entrypoints.cli.output import print_json
from entrypoints.cli.support import CliError, prepare_database, with_container
from entrypoints.settings import Settings


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
    prepare_database(settings)
    token = _read_bearer_token()

    async def work(c: AsyncContainer) -> dict[str, Any]:
        config = await (await c.get(AddCloudonixConfiguration)).execute(
            args.org, args.domain, token, args.name or ""
        )
        return {"id": config.id, "domain_id": config.domain_id}

    print_json(with_container(settings, work))
    return 0
