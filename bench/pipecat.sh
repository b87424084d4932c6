#!/usr/bin/env bash
# The `pipecat` engine under load: a Pipecat voice agent (OpenAI-compatible STT/LLM/TTS, Silero VAD)
# served on one pinned core (PostgreSQL, the stand-in Cloudonix API), its providers played by the
# OpenAI stand-in answering at once, driven by ../shared/loadcall on the other core at increasing
# concurrency. First, with the server idle, bench/pipecat_startup.py measures pipeline start-up
# (`start` -> greeting) and voice-to-voice latency. Follows bench/run.sh (the linetest benchmark).
#
# usage: bash bench/pipecat.sh [LEVELS...]    (default: 10 30 45 60 75)
#   env: LOADCALL   path to the shared loadcall folder (default: ../shared/loadcall)
#        OUT        results folder (default: bench/out/pipecat-<date>)
#        DURATION   seconds per level (default 20)
#        STARTUP_CALLS  calls of the start-up measurement (default 50; 0 skips it)
#        PROFILE=1  also py-spy the server: over 100 start-ups, and at the PROFILE_LEVEL level (default 10)
#        SPY_FLAGS  py-spy sampling flags (default "--nonblocking --gil": the thread holding the GIL only)
#        PACED=1    the stand-in answers paced like real services (its --paced: STT 200 ms; LLM first
#                   token 300 ms, then 40 tokens/s; TTS first byte 150 ms, then 2x real time)
#        SERVER_CMD another build's agent-stream to serve (its migrations must be this tree's: the
#                   database is migrated with this tree's `agent-stream db upgrade`)
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS="${*:-10 30 45 60 75}"
LOADCALL="${LOADCALL:-../shared/loadcall}"
OUT="${OUT:-bench/out/pipecat-$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${DURATION:-20}"
STARTUP_CALLS="${STARTUP_CALLS:-50}"
PORT="${PORT:-8765}"
CX_PORT="${CX_PORT:-8766}"
OA_PORT="${OA_PORT:-8767}"
mkdir -p "$OUT"
UV="python3 -m uv"

# shared with bench/run.sh: the generator's venv, the speech, a fresh database
source bench/common.sh
bench_prepare

# the pipecat agent: every service is the OpenAI stand-in; the server reads the key from
# BENCH_OPENAI_KEY at call time. Greeting ~1 s of audio, every reply ~1.6 s (0.06 s per character).
export BENCH_OPENAI_KEY="${BENCH_OPENAI_KEY:-sk-bench-0123456789}"
OA_URL="http://127.0.0.1:$OA_PORT/v1"
DEFINITION=$(OA_URL="$OA_URL" python3 -c '
import json, os
block = {"provider": "openai", "base_url": os.environ["OA_URL"], "api_key_env": "BENCH_OPENAI_KEY"}
print(json.dumps({
    "engine": "pipecat", "greeting": "Hi, this is Acme.", "max_call_seconds": 600,
    "llm": {**block, "model": "gpt-4o-mini"},
    "stt": {**block, "model": "gpt-4o-transcribe", "language": "en"},
    "tts": {**block, "model": "gpt-4o-mini-tts", "voice": "alloy"},
}))')
AGENT=$(bench_agent pipecat "$DEFINITION")

# the stand-in OpenAI API (answers at once, on core 0 with the generator: it is the providers'
# side, not ours), then the stand-in Cloudonix API and the server pinned to core 1
taskset -c 0 .venv/bin/python -m entrypoints.simulator.standins.openai_api --port "$OA_PORT" --api-key "$BENCH_OPENAI_KEY" \
  $([ "${PACED:-0}" = 1 ] && echo --paced || echo --latency-llm 0 --latency-stt 0 --latency-tts 0) \
  --transcript "I would like to book a table." \
  --reply "Sure, I can help with that." > "$OUT/openai.log" 2>&1 &
OA_PID=$!
bench_serve
trap 'kill $SERVER_PID $CX_PID $OA_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$OUT/openai.log" && break; sleep 0.2; done

URL="ws://127.0.0.1:$PORT/api/v1/agent-stream/$AGENT?provider=cloudonix&Domain=acme&callId={i}"

# pipeline start-up and voice-to-voice, server idle (one call at a time)
if [ "$STARTUP_CALLS" -gt 0 ]; then
  taskset -c 0 .venv/bin/python bench/pipecat_startup.py --url "$URL" --calls "$STARTUP_CALLS" \
    --v2v-calls 5 --wav "$OUT/speech.wav" --agent "$AGENT" --json-out "$OUT/startup.json" \
    2> >(tee "$OUT/startup.txt" >&2) >/dev/null || echo "start-up measurement failed" >&2
  sleep 3
fi

# the ladder: the agent is silent between turns, so underruns >= 300 ms are talk-spurt boundaries
EXTRA="--wav $OUT/speech.wav --spurt-gap-ms 300 --linger 3" \
SERVER_PID=$SERVER_PID CLIENT_CPUS=0 PY=/tmp/loadvenv/bin/python DURATION=$DURATION \
  bash "$LOADCALL/ladder.sh" "$URL" "$OUT" $LEVELS | tee "$OUT/ladder.txt"

# PROFILE=1: py-spy over 100 start-ups (server otherwise idle), then over PROFILE_LEVEL calls of load;
# profile_top.md lists the top 15 functions by self time of each (raw stacks collapsed by function)
if [ "${PROFILE:-0}" = 1 ]; then
  SPY_FLAGS="${SPY_FLAGS:---nonblocking --gil}"
  # shellcheck disable=SC2086
  /tmp/loadvenv/bin/py-spy record --pid "$SERVER_PID" --rate 250 --format raw --output "$OUT/profile_startup.txt" \
    $SPY_FLAGS >/dev/null 2>&1 &
  SPY_PID=$!
  sleep 1
  taskset -c 0 .venv/bin/python bench/pipecat_startup.py --url "$URL" --calls 100 --v2v-calls 0 >/dev/null 2>&1 || true
  kill -INT $SPY_PID; wait $SPY_PID || true
  LEVEL="${PROFILE_LEVEL:-10}"
  taskset -c 0 /tmp/loadvenv/bin/python "$LOADCALL/loadcall.py" --url "$URL" --calls "$LEVEL" \
    --duration 30 --wav "$OUT/speech.wav" --spurt-gap-ms 300 --quiet --json-out "$OUT/profile_run.json" &
  LOAD_PID=$!
  sleep 12
  # shellcheck disable=SC2086
  /tmp/loadvenv/bin/py-spy record --pid "$SERVER_PID" --duration 15 --rate 250 --format raw \
    --output "$OUT/profile.txt" $SPY_FLAGS >/dev/null 2>&1 || true
  wait $LOAD_PID || true
  python3 - "$OUT/profile_startup.txt" "$OUT/profile.txt" > "$OUT/profile_top.md" <<'PY'
import collections, re, sys
for path in sys.argv[1:]:
    self_time, total = collections.Counter(), 0
    for line in open(path):
        stack, _, count = line.rstrip().rpartition(" ")
        leaf = re.sub(r":\d+\)$", ")", stack.split(";")[-1])  # "func (file:line)" -> "func (file)"
        self_time[leaf] += int(count)
        total += int(count)
    print(f"\n{path}: {total} samples\n\n| self % | function |\n|---|---|")
    for leaf, n in self_time.most_common(15):
        print(f"| {100 * n / total:.1f} | `{leaf}` |")
PY
fi

# the summary: loadcall's table, then per level what it cannot show here. Its echo matcher ends a
# talk spurt only on received quiet frames, and this agent sends nothing between turns, so
# echo.from_end_ms stays empty: the reply latency comes from the server's own record of each turn
# (gathered_context.turns of the runs started during the level), next to the failed verdict checks.
.venv/bin/agent-stream runs list --agent "$AGENT" --limit 100000 > "$OUT/runs.jsonl"
{
  /tmp/loadvenv/bin/python "$LOADCALL/summarize.py" "$OUT"/calls_*.json
  echo
  echo "| calls | server CPU % | turns answered / utterances sent | server voice-to-voice p50/p95 ms | stt / llm 1st token / tts 1st byte p50 ms | echo.from_end p50 ms | failed checks |"
  echo "|---|---|---|---|---|---|---|"
  /tmp/loadvenv/bin/python - "$OUT/runs.jsonl" "$OUT"/calls_*.json <<'PY'
import json, statistics, sys
from datetime import datetime, timedelta
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def pcts(values, qs):
    v = sorted(values)
    return "/".join(str(round(v[min(len(v) - 1, int(q * len(v)))])) for q in qs) if v else "-"
rows = []
for path in sys.argv[2:]:
    s = json.load(open(path))
    t0 = datetime.fromisoformat(s["started_at"])
    t1 = t0 + timedelta(seconds=s["wall_s"] + 1)
    turns = [t for r in runs if r["started_at"] and t0 <= datetime.fromisoformat(r["started_at"]) <= t1
             for t in (r["gathered_context"] or {}).get("turns", [])]
    med = lambda k: pcts([t[k] for t in turns if t.get(k) is not None], [0.5])
    cpu = next(iter(s.get("server", {}).values()), {}).get("cpu_pct")
    failed = [k for k, v in s["verdict"].items() if k != "pass" and not v]
    if failed:
        failed.append(f"(stall {s['stall_pct']}%, late p99/max {s['lateness_ms'].get('p99')}/{s['lateness_ms'].get('max')} ms,"
                      f" outcomes {s['calls']['outcomes']}, client lag p99 {s['client']['send_lag_ms'].get('p99')} ms)")
    rows.append((s["config"]["calls"], f"| {s['config']['calls']} | {cpu} | {len(turns)}/{s['echo']['bursts_sent']}"
                 f" | {pcts([t['voice_to_voice_ms'] for t in turns if t.get('voice_to_voice_ms') is not None], [0.5, 0.95])}"
                 f" | {med('stt_ms')} / {med('llm_first_token_ms')} / {med('tts_first_byte_ms')}"
                 f" | {s['echo']['from_end_ms'].get('p50', '-')} | {' '.join(failed) or '-'} |"))
print("\n".join(r for _, r in sorted(rows)))
PY
  if [ -f "$OUT/startup.json" ]; then echo; echo "start-up (server idle): \`$(tail -n 1 "$OUT/startup.txt")\`"; fi
} | tee "$OUT/summary.md"
echo "results in $OUT"
