"""The README's "Management API" walk-through, run as written against a real `agent-stream demo`.

The ```sh block of that section is taken from README.md as it is, its first two lines replaced by
the `KEY=` and `API=` lines the demo printed (what the README tells a reader to do), and run by bash
from the repository's root, as a reader would in a second terminal: curl, `python3` and
`python3 -m uv run agent-stream call` are the reader's own (the test's virtualenv is left off PATH).
Each step's answer is checked; a step is found by its `# N.` comment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_call_demo import DemoProcess, clean_env, free_port, start_demo, stop_demo

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WALK_TIMEOUT = 180.0  # a `uv run` that checks the environment, a 5 s call, a few curls
STEP = re.compile(r"^# (\d+)\. ")
MARK = "@@ step "


def walkthrough(readme: str) -> list[str]:
    """The lines of the first ```sh block of the "Management API" section."""
    section = readme.split("\n## Management API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```sh\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert match, "no ```sh block in the Management API section"
    return match.group(1).splitlines()


def printed_line(demo: DemoProcess, name: str) -> str:
    line = next((line.strip() for line in demo.lines if line.strip().startswith(f"{name}=")), None)
    assert line, f"the demo printed no {name}= line:\n{demo.text}"
    return line


def script_for(demo: DemoProcess, lines: list[str]) -> str:
    assert lines[0].startswith("KEY=") and lines[1].startswith("API="), lines[:2]
    body = [printed_line(demo, "KEY"), printed_line(demo, "API")]
    for line in lines[2:]:
        if step := STEP.match(line):
            body.append(f"echo '{MARK}{step.group(1)}'")
        body.append(line)
    return "\n".join(body) + "\n"


def readers_env() -> dict[str, str]:
    """A reader's shell: no AGENT_STREAM_* or CLOUDONIX_* variable, and not this test's virtualenv."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("CLOUDONIX_")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    return env


def steps_of(out: str) -> dict[int, str]:
    steps: dict[int, list[str]] = {}
    current = 0
    for line in out.splitlines():
        if line.startswith(MARK):
            current = int(line[len(MARK) :])
            steps[current] = []
        elif current:
            steps[current].append(line)
    return {n: "\n".join(lines).strip() for n, lines in steps.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = start_demo(tmp_path_factory.mktemp("walkthrough"), free_port())
    try:
        yield process
    finally:
        stop_demo(process)


def test_the_readme_rest_walkthrough_runs_as_written_against_the_demo(demo: DemoProcess) -> None:
    port = demo.call_url.split("127.0.0.1:", 1)[1].split("/", 1)[0]
    assert printed_line(demo, "API") == f"API=http://127.0.0.1:{port}/api/v1"
    assert printed_line(demo, "KEY") == f"KEY={demo.api_key}"
    script = script_for(demo, walkthrough(README.read_text(encoding="utf-8")))

    done = subprocess.run(  # noqa: S603
        ["bash", "-e", "-o", "pipefail", "-c", script],  # noqa: S607 - the reader's bash
        cwd=ROOT,
        env=readers_env(),
        capture_output=True,
        text=True,
        timeout=WALK_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    steps = steps_of(done.stdout)
    assert sorted(steps) == [1, 2, 3, 4, 5, 6], done.stdout

    agent: dict[str, Any] = json.loads(steps[1])
    assert (agent["name"], agent["status"], agent["definition"]["engine"]) == (
        "Front desk",
        "published",
        "linetest",
    )
    agent_uuid = agent["uuid"]

    config = json.loads(steps[2])
    assert (config["provider"], config["domain_id"]) == ("cloudonix", "acme.cloudonix.net")
    assert "placeholder-token-for-the-demo" not in steps[2]  # masked

    address = json.loads(steps[3])
    url = f"ws://127.0.0.1:{port}/api/v1/agent-stream/{agent_uuid}?provider=cloudonix&Domain=acme"
    assert address["url"] == url
    assert url.replace("&", "&amp;") in address["cxml"]

    assert "first media received" in steps[4], steps[4]  # the agent made through the API answered

    page = json.loads(steps[5])
    [run] = page["items"]
    assert (run["agent_uuid"], run["state"], run["end_reason"]) == (agent_uuid, "completed", "caller_hangup")
    assert run["logs"]["inbound_webhook"]["domain"] == "acme"
    assert page["next_before_id"] is None

    assert json.loads(steps[6])["detail"] == "Invalid request: name: is required"
