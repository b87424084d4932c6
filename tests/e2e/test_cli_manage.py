"""The management commands as real `agent-stream` processes on the e2e PostgreSQL database:
`org list`, `org rotate-key`, `agent list`, `agent show`, `runs show`, beside the interfaces.md
commands whose output scripts read (kept exactly). A rotated key is tried on the served REST API.

The database is shared with the other e2e tests: each test looks only at what it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from adapters.sql.repositories import SqlWorkflowRunRepository
from domain.workflow_run import EndReason, RunState, WorkflowRun, run_name
from entrypoints.cli import build_parser
from entrypoints.serialization import run_to_dict
from tests.e2e.conftest import SECRET_KEY

AGENT_STREAM = str(Path(sys.executable).with_name("agent-stream"))


def cli(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_STREAM_", "CLOUDONIX_"))}
    env |= {"AGENT_STREAM_DATABASE_URL": database_url, "AGENT_STREAM_SECRET_KEY": SECRET_KEY}
    return subprocess.run(  # noqa: S603 - our own CLI
        [AGENT_STREAM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def new_org(database_url: str, name: str, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = json.loads(ok(cli(database_url, "org", "create", "--name", name, *extra)))
    assert set(created) == {"organization_id", "user_id", "api_key"}  # interfaces.md: scripts read it
    return created


def new_agent(database_url: str, org: int, name: str, *extra: str) -> dict[str, Any]:
    out = ok(cli(database_url, "agent", "create", "--org", str(org), "--name", name, *extra))
    created: dict[str, Any] = json.loads(out)
    assert set(created) == {"agent_uuid", "id"}
    return created


def test_org_list_shows_every_organisation_as_a_table_and_as_json(database_url: str):
    small = new_org(database_url, "CLI small org", "--max-concurrent-calls", "2", "--monthly-minutes", "30")
    busy = new_org(database_url, "CLI busy org")
    for name in ("one", "two"):
        new_agent(database_url, busy["organization_id"], name)

    table = ok(cli(database_url, "org", "list")).splitlines()
    listed = json_lines(ok(cli(database_url, "org", "list", "--json")))

    assert table[0].split() == ["ID", "NAME", "CONCURRENT", "CALLS", "MONTHLY", "MINUTES", "AGENTS"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert rows[str(small["organization_id"])].split() == [
        str(small["organization_id"]),
        "CLI",
        "small",
        "org",
        "2",
        "30",
        "0",
    ]
    assert rows[str(busy["organization_id"])].split()[-3:] == ["10", "1000", "2"]
    mine = {o["organization_id"]: o for o in listed}
    assert mine[small["organization_id"]] == {
        "organization_id": small["organization_id"],
        "name": "CLI small org",
        "max_concurrent_calls": 2,
        "monthly_minutes": 30,
        "agents": 0,
    }
    assert mine[busy["organization_id"]]["agents"] == 2
    ids = [o["organization_id"] for o in listed]
    assert ids == sorted(ids)  # oldest first


def test_agent_list_and_show(database_url: str):
    org = new_org(database_url, "CLI agents")["organization_id"]
    other = new_org(database_url, "CLI other agents")["organization_id"]
    first = new_agent(database_url, org, "Front desk", "--status", "published")
    second = new_agent(
        database_url,
        org,
        "Night line",
        "--definition",
        '{"engine": "linetest", "greeting": "Hello at night", "max_call_seconds": 60}',
        "--template-variables",
        '{"company": "Acme"}',
    )
    elsewhere = new_agent(database_url, other, "Elsewhere")

    table = ok(cli(database_url, "agent", "list", "--org", str(org))).splitlines()
    only_org = json_lines(ok(cli(database_url, "agent", "list", "--org", str(org), "--json")))
    everyone = json_lines(ok(cli(database_url, "agent", "list", "--json")))

    assert table[0].split() == ["UUID", "ORG", "NAME", "STATUS", "ENGINE", "CREATED"]
    assert [line.split()[:6] for line in table[1:]] == [
        [first["agent_uuid"], str(org), "Front", "desk", "published", "linetest"],
        [second["agent_uuid"], str(org), "Night", "line", "draft", "linetest"],
    ]
    assert [a["uuid"] for a in only_org] == [first["agent_uuid"], second["agent_uuid"]]
    assert {a["organization_id"] for a in only_org} == {org}
    assert {first["agent_uuid"], second["agent_uuid"], elsewhere["agent_uuid"]} <= {
        a["uuid"] for a in everyone
    }

    shown = json.loads(ok(cli(database_url, "agent", "show", second["agent_uuid"], "--json")))
    assert shown == only_org[1]
    assert (shown["name"], shown["organization_id"], shown["id"]) == ("Night line", org, second["id"])
    assert shown["definition"] == {"engine": "linetest", "greeting": "Hello at night", "max_call_seconds": 60}
    assert shown["template_context_variables"] == {"company": "Acme"}

    text = ok(cli(database_url, "agent", "show", second["agent_uuid"]))
    assert text.splitlines()[0].split() == ["uuid", second["agent_uuid"]]
    assert "name                        Night line" in text
    assert '"greeting": "Hello at night"' in text


def test_agent_list_and_show_say_what_is_not_there(database_url: str):
    unknown_agent = cli(database_url, "agent", "show", "00000000-0000-4000-8000-000000000000")
    not_a_uuid = cli(database_url, "agent", "show", "front-desk")
    unknown_org = cli(database_url, "agent", "list", "--org", str(2**40))

    assert (unknown_agent.returncode, unknown_agent.stderr) == (1, "agent-stream: agent not found\n")
    assert (not_a_uuid.returncode, not_a_uuid.stderr) == (
        2,
        "agent-stream: 'front-desk' is not an agent UUID\n",
    )
    assert (unknown_org.returncode, unknown_org.stderr) == (1, "agent-stream: organization not found\n")


async def test_runs_show_prints_one_run(database_url: str, sessions: Any):
    org = new_org(database_url, "CLI runs")["organization_id"]
    agent = new_agent(database_url, org, "With a run")
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    stored = await SqlWorkflowRunRepository(sessions).add(
        WorkflowRun(
            name=run_name(42),
            workflow_id=agent["id"],
            agent_uuid=UUID(agent["agent_uuid"]),
            mode="cloudonix",
            created_at=at,
            started_at=at,
            ended_at=at.replace(minute=32),
            state=RunState.COMPLETED,
            end_reason=EndReason.CALLER_HANGUP,
            close_code=1000,
            close_reason="",
            initial_context={"caller_number": "+15555550100", "company": "Acme"},
        )
    )
    assert stored.id is not None

    as_json = json.loads(ok(cli(database_url, "runs", "show", str(stored.id), "--json")))
    text = ok(cli(database_url, "runs", "show", str(stored.id)))
    listed = json_lines(ok(cli(database_url, "runs", "list", "--agent", agent["agent_uuid"])))

    assert as_json == run_to_dict(stored)
    assert listed == [as_json]  # `runs list` keeps its JSON lines, the same fields
    lines = {line.split()[0]: line.split(None, 1)[1] for line in text.splitlines() if line and line[0] != " "}
    assert lines["id"] == str(stored.id)
    assert lines["state"] == "completed"
    assert lines["end_reason"] == "caller_hangup"
    assert lines["close_reason"] == "-"
    assert '"caller_number": "+15555550100"' in text

    missing = cli(database_url, "runs", "show", str(2**52))
    not_an_id = cli(database_url, "runs", "show", "0")
    assert (missing.returncode, missing.stderr) == (1, "agent-stream: run not found\n")
    assert not_an_id.returncode == 2
    assert "'0' is not a run id" in not_an_id.stderr


async def test_rotate_key_prints_a_new_key_once_and_the_old_ones_stop_working(
    database_url: str, app_url: str
):
    created = new_org(database_url, "CLI rotation")
    org = created["organization_id"]
    other = new_org(database_url, "CLI rotation bystander")

    async with httpx.AsyncClient(base_url=app_url) as api:

        async def status(key: str) -> int:
            response = await api.get("/api/v1/agents", headers={"Authorization": f"Bearer {key}"})
            return response.status_code

        assert await status(created["api_key"]) == 200

        done = cli(database_url, "org", "rotate-key", "--org", str(org))
        rotated = json.loads(ok(done))

        assert set(rotated) == {"organization_id", "api_key", "revoked"}
        assert (rotated["organization_id"], rotated["revoked"]) == (org, 1)
        assert rotated["api_key"].startswith("ask_") and rotated["api_key"] != created["api_key"]
        assert "shown once" in done.stderr
        assert await status(created["api_key"]) == 401
        assert await status(rotated["api_key"]) == 200
        assert await status(other["api_key"]) == 200  # another organisation's key is untouched

        again = json.loads(ok(cli(database_url, "org", "rotate-key", "--org", str(org))))
        assert again["revoked"] == 1
        assert await status(rotated["api_key"]) == 401
        assert await status(again["api_key"]) == 200

    unknown = cli(database_url, "org", "rotate-key", "--org", str(2**40))
    assert (unknown.returncode, unknown.stderr) == (1, "agent-stream: organization not found\n")


def test_the_help_says_what_the_tool_is_and_every_option_is_explained():
    top = subprocess.run(  # noqa: S603
        [AGENT_STREAM, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout

    assert "Agent Stream: answers Cloudonix" in top
    assert "interfaces.md" not in top
    for command in ("serve", "demo", "call", "org", "agent", "runs", "telephony", "db"):
        assert f"    {command}" in top

    missing: list[str] = []

    def walk(parser: Any, path: str) -> None:
        for action in parser._actions:  # argparse keeps them here
            if action.choices and isinstance(action.choices, dict):  # subcommands
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "agent-stream")
    assert not missing, missing


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["org", "list", "--help"], ["--json"]),
        (["org", "rotate-key", "--help"], ["--org", "organisation's id"]),
        (["agent", "list", "--help"], ["--org", "--json"]),
        (["agent", "show", "--help"], ["UUID", "--json"]),
        (["runs", "show", "--help"], ["RUN_ID", "--json"]),
    ],
)
def test_each_new_command_has_its_help(args: list[str], words: list[str]):
    done = subprocess.run(  # noqa: S603
        [AGENT_STREAM, *args], capture_output=True, text=True, timeout=60, check=True
    )

    for word in words:
        assert word in done.stdout
