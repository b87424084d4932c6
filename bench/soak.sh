#!/usr/bin/env bash
# Issue 10's soak: the linetest agent served on one pinned core (PostgreSQL, the stand-in Cloudonix
# API), CALLS real callers kept going for DURATION seconds, each call CALL_SECONDS of paced µ-law
# media then `stop`, started again as soon as it ends (bench/soak_driver.py, built on
# ../shared/loadcall's Call). The server is sampled every SAMPLE seconds; at the end the database must
# hold no slot and no `running` run, and no call may have failed.
#
# usage: bash bench/soak.sh
#   env: DURATION      seconds of soak (default 600)
#        CALLS         concurrent calls (default 50)
#        CALL_SECONDS  seconds of media per call (default 20)
#        SAMPLE        seconds between samples (default 10)
#        LOADCALL      path to the shared loadcall folder (default: ../shared/loadcall)
#        OUT           results folder (default: bench/out/soak-<date>)
# writes OUT/samples.csv, OUT/samples.json, OUT/calls.json, OUT/summary.json, OUT/summary.md
set -euo pipefail
cd "$(dirname "$0")/.."
LOADCALL="${LOADCALL:-../shared/loadcall}"
OUT="${OUT:-bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${DURATION:-600}"
CALLS="${CALLS:-50}"
CALL_SECONDS="${CALL_SECONDS:-20}"
SAMPLE="${SAMPLE:-10}"
PORT="${PORT:-8765}"
CX_PORT="${CX_PORT:-8766}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
UV="python3 -m uv"

source bench/common.sh
bench_prepare
AGENT=$(bench_agent linetest '{"engine": "linetest", "max_call_seconds": 600}')
export TASKS_FILE="$OUT/tasks.jsonl" TASKS_EVERY=5
SERVER_CMD=".venv/bin/python bench/serve_counted.py" bench_serve
trap 'kill $SERVER_PID $CX_PID 2>/dev/null || true' EXIT
DSN="${AGENT_STREAM_DATABASE_URL/+asyncpg/}"

URL="ws://127.0.0.1:$PORT/api/v1/agent-stream/$AGENT?provider=cloudonix&Domain=acme&callId={i}"
taskset -c 0 /tmp/loadvenv/bin/python bench/soak_driver.py --loadcall "$LOADCALL" --url "$URL" \
  --base "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --dsn "$DSN" --tasks-file "$TASKS_FILE" \
  --calls "$CALLS" --call-seconds "$CALL_SECONDS" --duration "$DURATION" --sample "$SAMPLE" \
  --wav "$OUT/speech.wav" --out "$OUT" | tee "$OUT/samples.txt"

# idle again: let the last releases land (and a heartbeat pass), then the final sample
sleep 15
/tmp/loadvenv/bin/python bench/soak_summary.py --out "$OUT" --base "http://127.0.0.1:$PORT" \
  --server-pid "$SERVER_PID" --dsn "$DSN" --tasks-file "$TASKS_FILE" --server-log "$OUT/server.log" \
  | tee "$OUT/summary.md"
echo "results in $OUT"
