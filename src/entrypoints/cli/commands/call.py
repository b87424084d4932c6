"""`call` and `demo`: the Cloudonix side of a call, and a first call offline."""

from __future__ import annotations

import argparse

from entrypoints.cli.support import CliError
from entrypoints.settings import Settings


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
