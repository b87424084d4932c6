"""`webhook-listen`: receive and verify end-of-call webhooks."""

from __future__ import annotations

import argparse
import sys

from entrypoints.cli.support import CliError
from entrypoints.settings import Settings


def cmd_webhook_listen(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.webhook_listener import make_listener

    if not args.secret.startswith("whsec_"):
        raise CliError(
            "--secret must be the agent's whsec_ secret (POST /api/v1/agents/{uuid}/webhook-secret)"
        )

    def out(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        server = make_listener(args.host, args.port, args.secret, out)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except Exception:  # the secret is no base64 key; the message must not repeat it  # noqa: BLE001
        raise CliError("--secret is not a valid whsec_ secret") from None
    out(f"listening on http://{args.host}:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
