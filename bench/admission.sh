#!/usr/bin/env bash
# Issue 10's admission benchmark: ONE instance (the linetest agent on one pinned core, PostgreSQL,
# the stand-in Cloudonix API) driven far past what it holds (~250 calls, docs/benchmarks.md) by
# ../shared/loadcall on the other core. The calls the server admits must keep passing loadcall's
# verdict; the excess must be refused 1013 (bench/admission_driver.py counts closes by code,
# samples /ready and the loop lag meanwhile, and checks the database after 45 s idle: no slot, no
# `running` run may be left).
#
# usage: bash bench/admission.sh [LEVELS...]     (default: 750, three times what one core holds)
#   env: BUSY_LAG_MS   AGENT_STREAM_BUSY_LAG_MS for the server (default: the service's, 150)
#        RAMP          new calls per second (default 50)
#        DURATION      seconds of media per call (default 20)
#        LOADCALL      path to the shared loadcall folder (default: ../shared/loadcall)
#        OUT           results folder (default: bench/out/admission-<date>)
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS="${*:-750}"
LOADCALL="${LOADCALL:-../shared/loadcall}"
OUT="${OUT:-bench/out/admission-$(date -u +%Y%m%dT%H%M%SZ)}"
RAMP="${RAMP:-50}"
DURATION="${DURATION:-20}"
PORT="${PORT:-8765}"
CX_PORT="${CX_PORT:-8766}"
mkdir -p "$OUT"
UV="python3 -m uv"
if [ -n "${BUSY_LAG_MS:-}" ]; then export AGENT_STREAM_BUSY_LAG_MS="$BUSY_LAG_MS"; fi

source bench/common.sh
bench_prepare
AGENT=$(bench_agent linetest '{"engine": "linetest", "max_call_seconds": 600}')
bench_serve
trap 'kill $SERVER_PID $CX_PID 2>/dev/null || true' EXIT
DSN="${AGENT_STREAM_DATABASE_URL/+asyncpg/}"

URL="ws://127.0.0.1:$PORT/api/v1/agent-stream/$AGENT?provider=cloudonix&Domain=acme&callId={i}"
for n in $LEVELS; do
  taskset -c 0 /tmp/loadvenv/bin/python bench/admission_driver.py --loadcall "$LOADCALL" --url "$URL" \
    --base "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --dsn "$DSN" --calls "$n" --ramp "$RAMP" \
    --duration "$DURATION" --wav "$OUT/speech.wav" --out "$OUT/admission_$n.json" \
    | sed "s/^/calls=$n busy_lag_ms=${AGENT_STREAM_BUSY_LAG_MS:-150} /" | tee -a "$OUT/admission.txt"
done
echo "results in $OUT"
