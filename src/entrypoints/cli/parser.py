"""`build_parser`: every command, its flags and help, and the function that runs it."""

from __future__ import annotations

import argparse

from entrypoints.cli.commands.agent import cmd_agent_create, cmd_agent_list, cmd_agent_show
from entrypoints.cli.commands.call import cmd_call, cmd_demo
from entrypoints.cli.commands.org import cmd_org_create, cmd_org_list, cmd_org_rotate_key
from entrypoints.cli.commands.runs import cmd_runs_list, cmd_runs_show
from entrypoints.cli.commands.service import cmd_db_upgrade, cmd_serve
from entrypoints.cli.commands.telephony import cmd_telephony_add_cloudonix
from entrypoints.cli.commands.webhooks import cmd_webhook_listen


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

    listen = sub.add_parser(
        "webhook-listen",
        help="receive end-of-call webhooks: print each POST whose signature verifies, refuse others (401)",
    )
    listen.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001)")
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    listen.add_argument(
        "--secret",
        required=True,
        help="the agent's whsec_ secret (from POST /api/v1/agents/UUID/webhook-secret)",
    )
    listen.set_defaults(func=cmd_webhook_listen)
    return parser
