"""Admission past saturation: one loadcall run (its own `run_load`, ramp and calls) far beyond what
one instance holds, then loadcall's verdict over the calls the server admitted, the refusals counted
by close code, and a timeline of /ready and the loop lag sampled meanwhile.

A call counts as refused when the server closed it 1013 (Try Again Later); every other call was
admitted and is judged (a 1011, a timeout or a stutter fails the admitted verdict). Runs in
loadcall's venv; writes OUT (JSON) and prints one line.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe

REFUSED = 1013


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--loadcall", required=True, help="folder of loadcall.py")
    p.add_argument("--url", required=True)
    p.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the server")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--calls", type=int, default=750)
    p.add_argument("--ramp", type=float, default=50.0)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--linger", type=float, default=3.0)
    p.add_argument("--spurt-gap-ms", type=float, default=300.0)
    p.add_argument("--wav")
    p.add_argument("--dsn", help="libpq URL of the server's database (slots, running runs after)")
    p.add_argument("--settle", type=float, default=45.0, help="idle seconds before the database check")
    p.add_argument("--every", type=float, default=0.5, help="seconds between /ready and /metrics samples")
    p.add_argument("--out", required=True, help="JSON file")
    return p.parse_args()


def main() -> int:
    a = parse()
    lc = probe.load_loadcall(a.loadcall)
    made: list[Any] = []

    class Recorded(lc.Call):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    lc.Call = Recorded
    argv = ["--url", a.url, "--calls", str(a.calls), "--ramp", str(a.ramp), "--duration", str(a.duration)]
    argv += ["--linger", str(a.linger), "--spurt-gap-ms", str(a.spurt_gap_ms), "--quiet"]
    argv += ["--server-pid", str(a.server_pid)]
    if a.wav:
        argv += ["--wav", a.wav]
    cfg = lc.parse_args(argv)
    cfg.loop_name = "uvloop"
    if a.wav:
        sig = lc.wav_signal(a.wav, cfg.n_frames, cfg.active_thr, cfg.hang_s)
    else:
        sig = lc.generated_signal(cfg.n_frames, cfg.burst, cfg.silence, cfg.lead, cfg.level, cfg.seed)

    timeline: list[dict[str, Any]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while not stop.is_set():
            m = probe.metrics(a.base)
            timeline.append(
                {
                    "t_s": round(time.monotonic() - t0, 2),
                    "ready": probe.ready(a.base),
                    "live_calls": m.get("live_calls"),
                    "loop_lag_ms": m.get("loop_lag_ms"),
                }
            )
            stop.wait(a.every)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    import uvloop

    c0, w0 = os.times(), time.perf_counter()
    srv0 = {a.server_pid: lc.proc_cpu_seconds(a.server_pid)}
    whole = uvloop.run(lc.run_load(cfg, sig))
    wall = time.perf_counter() - w0
    c1, srv1 = os.times(), {a.server_pid: lc.proc_cpu_seconds(a.server_pid)}
    stop.set()
    thread.join()

    # idle, the server still up, for longer than the instance TTL (30 s): whatever is left is leaked
    time.sleep(a.settle)
    after = probe.database(a.dsn)
    after["live_calls"] = probe.metrics(a.base).get("live_calls")
    refused = [c for c in made if c.close_by == "server" and c.close_code == REFUSED]
    admitted = [c for c in made if not (c.close_by == "server" and c.close_code == REFUSED)]
    admitted_cfg = copy.copy(cfg)
    admitted_cfg.calls = len(admitted)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    judged = lc.build_summary(admitted_cfg, sig, admitted, wall, c0, c1, srv0, srv1, started, False, False)
    reasons = Counter(c.close_reason for c in refused)
    lags = [s["loop_lag_ms"] for s in timeline if s["loop_lag_ms"] is not None]
    busy = [s for s in timeline if s["ready"] == 503]
    first_refusal = min((c.t_connect - c.run_t0 for c in refused), default=None)
    out = {
        "busy_lag_ms_setting": os.environ.get("AGENT_STREAM_BUSY_LAG_MS", "150 (default)"),
        "attempted": len(made),
        "admitted": len(admitted),
        "refused_1013": len(refused),
        "refusal_reasons": dict(reasons.most_common(5)),
        "first_refusal_at_s": round(first_refusal, 2) if first_refusal is not None else None,
        "close_codes_all": whole["close_codes"],
        "admitted_verdict": judged["verdict"],
        "admitted_summary": judged,
        "peak_live_calls": max((s["live_calls"] or 0 for s in timeline), default=None),
        "loop_lag_ms_max": max(lags, default=None),
        "loop_lag_ms_p50": sorted(lags)[len(lags) // 2] if lags else None,
        "ready_503_samples": f"{len(busy)}/{len(timeline)}",
        "after_settle": after,
        "settle_s": a.settle,
        "whole_run": whole,
        "timeline": timeline,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    lat = judged["lateness_ms"]
    srv = next(iter(judged.get("server", {}).values()), {})
    v = judged["verdict"]
    print(
        f"attempted={len(made)} admitted={len(admitted)} refused_1013={len(refused)} "
        f"closes={whole['close_codes']} | admitted: ok={judged['calls']['succeeded']}/{len(admitted)} "
        f"lateness p99/max={lat.get('p99')}/{lat.get('max')} ms stall={judged['stall_pct']}% "
        f"echo={judged['echo']['matched']}/{judged['echo']['bursts_sent']} "
        f"send_lag_p99={judged['client']['send_lag_ms'].get('p99')} ms server_cpu={srv.get('cpu_pct')}% | "
        f"peak_live={out['peak_live_calls']} lag max={out['loop_lag_ms_max']} ms "
        f"/ready 503 {out['ready_503_samples']} | after {a.settle:.0f} s idle: slots={after.get('slots')} "
        f"running={after.get('running')} live={after.get('live_calls')} | "
        f"{'PASS' if v['pass'] else 'FAIL ' + ','.join(k for k, ok in v.items() if not ok)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
