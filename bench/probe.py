"""What bench/soak_driver.py and bench/admission_driver.py read of the server, stdlib only (they run in
loadcall's own venv): /proc of its process, its /metrics and /ready, its asyncio task count (written
by bench/serve_counted.py), and its rows in PostgreSQL (through psql)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from typing import Any


def load_loadcall(folder: str) -> Any:
    """The shared instrument, imported from its folder (so its Call, verdict and summary are reused)."""
    import sys

    sys.path.insert(0, os.path.abspath(folder))
    import loadcall

    return loadcall


def proc(pid: int) -> dict[str, Any]:
    """RSS (MB), open file descriptors and threads of a local process; {} once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    threads = re.search(r"Threads:\s+(\d+)", status)
    return {
        "rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else None,
        "fds": fds,
        "threads": int(threads.group(1)) if threads else None,
    }


def metrics(base_url: str) -> dict[str, Any]:
    """Live calls, smoothed loop lag (ms) and streams ended by close code, from /metrics."""
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as r:  # noqa: S310 (the bench URL)
            text = r.read().decode()
    except (OSError, urllib.error.URLError):
        return {}
    out: dict[str, Any] = {"ended_by_code": {}}
    for line in text.splitlines():
        if line.startswith("agent_stream_live_calls "):
            out["live_calls"] = int(float(line.split()[1]))
        elif line.startswith("agent_stream_event_loop_lag_seconds "):
            out["loop_lag_ms"] = round(float(line.split()[1]) * 1000, 1)
        elif line.startswith("agent_stream_calls_total{"):
            code = re.search(r'close_code="(\d+)"', line)
            if code:
                out["ended_by_code"][code.group(1)] = int(float(line.split()[-1]))
    return out


def ready(base_url: str) -> int | None:
    """The HTTP status of /ready (200 admitting, 503 busy, draining or database down)."""
    try:
        with urllib.request.urlopen(base_url + "/ready", timeout=5) as r:  # noqa: S310 (the bench URL)
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return None


def tasks(path: str | None) -> int | None:
    """The server's latest count of pending asyncio tasks (bench/serve_counted.py), if recorded."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 512))
            last = f.read().decode(errors="replace").strip().splitlines()[-1]
        return int(json.loads(last)["tasks"])
    except (OSError, IndexError, ValueError, KeyError):
        return None


def database(dsn: str | None) -> dict[str, Any]:
    """Slots held, runs `running`, and runs by state, straight from PostgreSQL."""
    if not dsn:
        return {}
    query = (
        "select 'slots', count(*) from call_slots union all "
        "select 'state:' || state, count(*) from workflow_runs group by state"
    )
    try:
        text = subprocess.run(  # noqa: S603 (psql with the bench database)
            [  # noqa: S607 (psql from PATH, as the operator runs it)
                "psql",
                dsn,
                "-Atc",
                query,
                "-F",
                "\t",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    out: dict[str, Any] = {"slots": 0, "running": 0, "runs_by_state": {}}
    for line in text.splitlines():
        key, _, value = line.partition("\t")
        if key == "slots":
            out["slots"] = int(value)
        elif key.startswith("state:"):
            out["runs_by_state"][key[6:]] = int(value)
    out["running"] = out["runs_by_state"].get("running", 0)
    return out
