"""A soak: keep CALLS real callers going for DURATION seconds, each call a loadcall `Call` (a real
WebSocket client sending paced µ-law media for CALL_SECONDS, then `stop`), started again as soon as
it ends; lanes are offset so calls start and end all the time. Every SAMPLE seconds the server is
sampled (RSS, fds, threads, asyncio tasks, live calls, loop lag, slots and `running` runs).

Writes OUT/samples.csv, OUT/samples.json, OUT/calls.json (loadcall's summary and verdict over every
call, and per minute of the soak) and prints one line per sample. Runs in loadcall's venv.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import csv
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe

FIELDS = (
    "t_s",
    "rss_mb",
    "fds",
    "threads",
    "tasks",
    "live_calls",
    "loop_lag_ms",
    "slots",
    "running",
    "client_in_call",
    "client_done",
    "client_failed",
)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--loadcall", required=True, help="folder of loadcall.py")
    p.add_argument("--url", required=True, help="loadcall URL template ({i} is the call's number)")
    p.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the server")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--dsn", help="libpq URL of the server's database (slots, running runs)")
    p.add_argument("--tasks-file", help="the server's task counts (bench/serve_counted.py)")
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--call-seconds", type=float, default=20.0)
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--sample", type=float, default=10.0)
    p.add_argument("--out", required=True)
    p.add_argument("--wav")
    p.add_argument("--linger", type=float, default=3.0)
    p.add_argument("--spurt-gap-ms", type=float, default=300.0)
    return p.parse_args()


class Soak:
    def __init__(self, args: argparse.Namespace, loadcall: Any) -> None:
        self.args = args
        self.lc = loadcall
        argv = ["--url", args.url, "--calls", str(args.calls), "--duration", str(args.call_seconds)]
        argv += ["--linger", str(args.linger), "--spurt-gap-ms", str(args.spurt_gap_ms), "--quiet"]
        if args.wav:
            argv += ["--wav", args.wav]
        self.cfg = loadcall.parse_args(argv)
        self.cfg.loop_name = "uvloop"
        self.cfg.server_pid = [args.server_pid]
        if args.wav:
            self.sig = loadcall.wav_signal(args.wav, self.cfg.n_frames, self.cfg.active_thr, self.cfg.hang_s)
        else:
            self.sig = loadcall.generated_signal(
                self.cfg.n_frames, self.cfg.burst, self.cfg.silence, self.cfg.lead, self.cfg.level, 1
            )
        self.done: list[Any] = []
        self.in_call = 0
        self.numbers = 0
        self.t0 = 0.0

    async def lane(self, k: int, end: float) -> None:
        loop = asyncio.get_running_loop()
        period = self.args.call_seconds + self.args.linger + 0.5
        await asyncio.sleep(k * period / self.args.calls + random.random() * 0.02)
        while time.monotonic() + self.args.call_seconds <= end:
            call = self.lc.Call(self.numbers, self.cfg, self.sig, loop)
            self.numbers += 1
            call.run_t0 = time.monotonic()
            self.in_call += 1
            try:
                await call.run()
            finally:
                self.in_call -= 1
            call.ws = None  # its buffers are not needed for the summary
            call.t_end = time.monotonic()
            self.done.append(call)

    async def run(self) -> None:
        self.t0 = time.monotonic()
        end = self.t0 + self.args.duration
        await asyncio.gather(*(self.lane(k, end) for k in range(self.args.calls)))

    def sample(self) -> dict[str, Any]:
        a = self.args
        row: dict[str, Any] = {"t_s": round(time.monotonic() - self.t0, 1)}
        row.update(probe.proc(a.server_pid))
        row["tasks"] = probe.tasks(a.tasks_file)
        m = probe.metrics(a.base)
        row["live_calls"] = m.get("live_calls")
        row["loop_lag_ms"] = m.get("loop_lag_ms")
        db = probe.database(a.dsn)
        row["slots"] = db.get("slots")
        row["running"] = db.get("running")
        done = list(self.done)
        row["client_in_call"] = self.in_call
        row["client_done"] = len(done)
        row["client_failed"] = sum(1 for c in done if c.outcome != "ok")
        return row

    def summary(
        self, calls: list[Any], wall: float, c0: Any, c1: Any, srv0: Any, srv1: Any
    ) -> dict[str, Any]:
        cfg = copy.copy(self.cfg)
        cfg.calls = len(calls)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        return self.lc.build_summary(cfg, self.sig, calls, wall, c0, c1, srv0, srv1, started, False, False)


def main() -> int:
    args = parse()
    os.makedirs(args.out, exist_ok=True)
    soak = Soak(args, probe.load_loadcall(args.loadcall))
    samples: list[dict[str, Any]] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(args.sample):
            row = soak.sample()
            samples.append(row)
            print(" ".join(f"{k}={row.get(k)}" for k in FIELDS), flush=True)

    srv0 = {args.server_pid: soak.lc.proc_cpu_seconds(args.server_pid)}
    c0, w0 = os.times(), time.perf_counter()
    soak.t0 = time.monotonic()
    time.sleep(1.0)
    samples.append(soak.sample())  # before the first call: idle, warmed by nothing but start-up
    print(" ".join(f"{k}={samples[0].get(k)}" for k in FIELDS), flush=True)
    soak.t0 = time.monotonic()
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    import uvloop

    uvloop.run(soak.run())
    wall = time.perf_counter() - w0
    c1 = os.times()
    srv1 = {args.server_pid: soak.lc.proc_cpu_seconds(args.server_pid)}
    stop.set()
    thread.join()
    samples.append(soak.sample())  # once every call has ended

    calls = soak.done
    overall = soak.summary(calls, wall, c0, c1, srv0, srv1)
    minutes: list[dict[str, Any]] = []
    for minute in range(int(args.duration // 60) + 1):
        ended = [c for c in calls if minute * 60 <= c.t_end - soak.t0 < (minute + 1) * 60]
        if ended:
            s = soak.summary(ended, 60.0, c0, c0, {}, {})
            minutes.append(
                {
                    "minute": minute + 1,
                    "calls_ended": len(ended),
                    "failed": s["calls"]["failed"],
                    "lateness_p99_ms": s["lateness_ms"].get("p99"),
                    "lateness_max_ms": s["lateness_ms"].get("max"),
                    "stall_pct": s["stall_pct"],
                    "echo_matched": f"{s['echo']['matched']}/{s['echo']['bursts_sent']}",
                    "verdict": s["verdict"],
                }
            )
    failures = [c.summary() for c in calls if c.outcome != "ok"]
    with open(os.path.join(args.out, "calls.json"), "w") as f:
        json.dump({"overall": overall, "per_minute": minutes, "failed_calls": failures}, f, indent=2)
    with open(os.path.join(args.out, "samples.json"), "w") as f:
        json.dump(samples, f, indent=2)
    with open(os.path.join(args.out, "samples.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(samples)
    print(soak.lc.human_line(overall), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
