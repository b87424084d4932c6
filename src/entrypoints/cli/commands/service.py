"""`serve` and `db upgrade`: the service and its database."""

from __future__ import annotations

import argparse
from dataclasses import replace

from entrypoints.cli.output import print_json
from entrypoints.cli.support import prepare_database
from entrypoints.settings import Settings, instance_name


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import structlog

    from entrypoints.database_check import DatabaseSettingError
    from entrypoints.ioc import make_container
    from entrypoints.logging import configure_logging
    from entrypoints.web.app import create_app
    from entrypoints.web.server import draining_server

    configure_logging(settings.log_format)
    try:
        prepare_database(settings, migrated=True)
    except DatabaseSettingError as exc:
        if not exc.unreachable:
            raise
        # A database that does not answer yet (starting with the service, a network blip): serve
        # anyway, `/ready` answers 503 and streams close 1011 until it does, then all recovers.
        structlog.get_logger("entrypoints.cli").warning("database_unreachable_at_start", reason=str(exc))
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
    print_json({"applied": applied})
    return 0
