#!/usr/bin/env bash
# The issue-4 load benchmark: the linetest agent served on one pinned core (PostgreSQL, the demo's
# stand-in Cloudonix API), driven by ../shared/loadcall on the other core at increasing concurrency.
#
# usage: bash bench/run.sh [LEVELS...]        (default: 10 50 100 200 300 400)
#   env: LOADCALL   path to the shared loadcall folder (default: ../shared/loadcall)
#        OUT        results folder (default: bench/out/<date>)
#        DURATION   seconds per level (default 20)
#        PROFILE=1  also record a py-spy profile of the server at the PROFILE_LEVEL level (default 200)
#        RECORDING=1  every call recorded (`recording: true`, into $OUT/recordings); the disk write
#                   rate per call is written to $OUT/recording.md (bench/recording.sh runs both ladders)
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS="${*:-10 50 100 200 300 400}"
LOADCALL="${LOADCALL:-../shared/loadcall}"
OUT="${OUT:-bench/out/$(date -u +%Y%m%dT%H%M%SZ)}"
DURATION="${DURATION:-20}"
PORT="${PORT:-8765}"
CX_PORT="${CX_PORT:-8766}"
mkdir -p "$OUT"
UV="python3 -m uv"

# shared with bench/pipecat.sh: the generator's venv, the speech, a fresh database, the server
source bench/common.sh
bench_prepare
RECORDING_KEY=""
if [ "${RECORDING:-0}" = 1 ]; then
  RECORDING_KEY=', "recording": true'
  export AGENT_STREAM_RECORDINGS_URL="file://$(cd "$OUT" && pwd)/recordings"
fi
AGENT=$(bench_agent linetest "{\"engine\": \"linetest\", \"max_call_seconds\": 600$RECORDING_KEY}")
bench_serve
trap 'kill $SERVER_PID $CX_PID 2>/dev/null || true' EXIT
WRITTEN_BEFORE=$(awk '/^write_bytes/ {print $2}' "/proc/$SERVER_PID/io" 2>/dev/null || echo 0)

URL="ws://127.0.0.1:$PORT/api/v1/agent-stream/$AGENT?provider=cloudonix&Domain=acme&callId={i}"
EXTRA="--wav $OUT/speech.wav --spurt-gap-ms 300 --linger 3" \
SERVER_PID=$SERVER_PID CLIENT_CPUS=0 PY=/tmp/loadvenv/bin/python DURATION=$DURATION \
  bash "$LOADCALL/ladder.sh" "$URL" "$OUT" $LEVELS | tee "$OUT/ladder.txt"

if [ "${PROFILE:-0}" = 1 ]; then
  LEVEL="${PROFILE_LEVEL:-200}"
  taskset -c 0 /tmp/loadvenv/bin/python "$LOADCALL/loadcall.py" --url "$URL" --calls "$LEVEL" \
    --duration 30 --wav "$OUT/speech.wav" --spurt-gap-ms 300 --quiet --json-out "$OUT/profile_run.json" &
  LOAD_PID=$!
  sleep 12
  /tmp/loadvenv/bin/py-spy record --pid "$SERVER_PID" --duration 15 --rate 250 --format raw \
    --output "$OUT/profile.txt" --nonblocking >/dev/null 2>&1 || true
  wait $LOAD_PID || true
fi
/tmp/loadvenv/bin/python "$LOADCALL/summarize.py" "$OUT"/calls_*.json | tee "$OUT/summary.md"
if [ "${RECORDING:-0}" = 1 ]; then
  WRITTEN_AFTER=$(awk '/^write_bytes/ {print $2}' "/proc/$SERVER_PID/io" 2>/dev/null || echo 0)
  $UV run python bench/recording_rate.py "$OUT/recordings" $((WRITTEN_AFTER - WRITTEN_BEFORE)) \
    | tee "$OUT/recording.md"
fi
echo "results in $OUT"
