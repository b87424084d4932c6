"""The soak's summary: the server at the start, after the first minute (warm), at the end of the
load and idle after it; the database's slots and `running` runs once every call ended; failed calls;
the server's streams by close code; its log lines by level. Writes OUT/summary.json, prints markdown."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("--out", "--base", "--dsn", "--tasks-file", "--server-log"):
        p.add_argument(name, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    a = p.parse_args()
    with open(os.path.join(a.out, "samples.json")) as f:
        samples: list[dict[str, Any]] = json.load(f)
    with open(os.path.join(a.out, "calls.json")) as f:
        calls = json.load(f)
    idle: dict[str, Any] = {"t_s": "idle"}
    idle.update(probe.proc(a.server_pid))
    idle["tasks"] = probe.tasks(a.tasks_file)
    m = probe.metrics(a.base)
    idle["live_calls"] = m.get("live_calls")
    idle["loop_lag_ms"] = m.get("loop_lag_ms")
    db = probe.database(a.dsn)
    idle.update(slots=db.get("slots"), running=db.get("running"))
    # "loaded": every lane in a call or connecting (the first and last call-length are ramps)
    most = max(s.get("client_in_call") or 0 for s in samples)
    loaded = [s for s in samples if (s.get("client_in_call") or 0) >= 0.9 * most] or samples
    warm = next((s for s in loaded if s["t_s"] >= 60), loaded[0])
    points = {
        "before the first call": samples[0],
        "warm (1 min)": warm,
        "end of load": loaded[-1],
        "idle after (15 s)": idle,
    }
    levels: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    tracebacks = 0
    with open(a.server_log, errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                tracebacks += line.startswith("Traceback")
                continue
            levels[rec.get("level", "?")] += 1
            if rec.get("level") in ("warning", "error", "critical"):
                warnings[f"{rec.get('level')}:{rec.get('event')}"] += 1
            tracebacks += "exception" in rec
    overall = calls["overall"]
    rss = [s["rss_mb"] for s in loaded if s.get("rss_mb") is not None]
    summary = {
        "points": points,
        "rss_mb_min_max_under_load": [min(rss), max(rss)] if rss else None,
        "database_at_end": db,
        "calls": overall["calls"],
        "client_close_codes": overall["close_codes"],
        "server_streams_by_close_code": m.get("ended_by_code"),
        "lateness_ms": overall["lateness_ms"],
        "stall_pct": overall["stall_pct"],
        "echo": {k: overall["echo"][k] for k in ("matched", "bursts_sent")},
        "verdict": overall["verdict"],
        "client_send_lag_ms": overall["client"]["send_lag_ms"],
        "server_cpu_pct": next(iter(overall.get("server", {}).values()), {}).get("cpu_pct"),
        "per_minute": calls["per_minute"],
        "server_log_levels": dict(levels),
        "server_log_warnings": dict(warnings),
        "server_log_tracebacks": tracebacks,
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    cols = ("rss_mb", "fds", "threads", "tasks", "live_calls", "loop_lag_ms", "slots", "running")
    print("| point | t s | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    for name, s in points.items():
        print(f"| {name} | {s.get('t_s')} | " + " | ".join(str(s.get(c)) for c in cols) + " |")
    print()
    c = overall["calls"]
    print(f"calls: {c['succeeded']}/{c['attempted']} ok, failed {c['failed']} {c['outcomes']}")
    print(f"client close codes: {overall['close_codes']}")
    print(f"server streams by close code: {m.get('ended_by_code')}")
    print(f"database at end: {db}")
    lat = overall["lateness_ms"]
    print(
        f"lateness p50/p95/p99/max {lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')}/{lat.get('max')} ms, "
        f"stall {overall['stall_pct']}%, echo {overall['echo']['matched']}/{overall['echo']['bursts_sent']}, "
        f"verdict {'PASS' if overall['verdict']['pass'] else 'FAIL'} {overall['verdict']}"
    )
    print(
        f"server CPU {summary['server_cpu_pct']}% of its core; "
        f"RSS under load min/max {summary['rss_mb_min_max_under_load']}"
    )
    print(f"server log: {dict(levels)}; warnings {dict(warnings)}; tracebacks {tracebacks}")
    print()
    print("| minute | calls ended | failed | lateness p99/max ms | stall % | echo | verdict |")
    print("|---|---|---|---|---|---|---|")
    for row in calls["per_minute"]:
        failed = ",".join(k for k, ok in row["verdict"].items() if not ok)
        v = "PASS" if row["verdict"]["pass"] else "FAIL " + failed
        print(
            f"| {row['minute']} | {row['calls_ended']} | {row['failed']} | {row['lateness_p99_ms']}/"
            f"{row['lateness_max_ms']} | {row['stall_pct']} | {row['echo_matched']} | {v} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
