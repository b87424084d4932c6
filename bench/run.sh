#!/usr/bin/env bash
# The issue-4 load benchmark: the linetest agent served on one pinned core (PostgreSQL, the demo's
# stand-in Cloudonix API), driven by ../shared/loadcall on the other core at increasing concurrency.
#
# usage: bash bench/run.sh [LEVELS...]        (default: 10 50 100 200 300 400)
#   env: LOADCALL   path to the shared loadcall folder (default: ../shared/loadcall)
#        OUT        results folder (default: bench/out/<date>)
#        DURATION   seconds per level (default 20)
#        PROFILE=1  also record a py-spy profile of the server at the PROFILE_LEVEL level (default 200)
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

# the load generator's own environment, exactly as its README pins it
if [ ! -x /tmp/loadvenv/bin/python ]; then
  python3 -m venv /tmp/loadvenv
  /tmp/loadvenv/bin/pip install -q -r "$LOADCALL/requirements.txt" py-spy
fi
$UV run python bench/make_speech_wav.py "$OUT/speech.wav"

# a fresh PostgreSQL database, migrated and seeded
DB_URL=$($UV run python -c 'from tests.pg import postgres_url; print(postgres_url())')
DB_NAME="agent_stream_bench_$(date +%s)"
export AGENT_STREAM_DATABASE_URL="${DB_URL%/*}/$DB_NAME"
export AGENT_STREAM_SECRET_KEY="${AGENT_STREAM_SECRET_KEY:-bench-secret-key-not-for-production}"
$UV run python - "$DB_URL" "$DB_NAME" <<'PY'
import asyncio, sys
import asyncpg
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
async def main():
    conn = await asyncpg.connect(user=url.username, host=url.query.get("host") or url.host, port=url.port, database=url.database)
    await conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
    await conn.close()
asyncio.run(main())
PY
$UV run agent-stream db upgrade >/dev/null
ORG=$($UV run agent-stream org create --name bench --max-concurrent-calls 2000 --monthly-minutes 100000000 | $UV run python -c 'import json,sys; print(json.load(sys.stdin)["organization_id"])')
AGENT=$($UV run agent-stream agent create --org "$ORG" --name linetest --definition '{"engine": "linetest", "max_call_seconds": 600}' | $UV run python -c 'import json,sys; print(json.load(sys.stdin)["agent_uuid"])')
echo "bench-token-0123456789" | $UV run agent-stream telephony add-cloudonix --org "$ORG" --domain acme >/dev/null

# the stand-in Cloudonix API (any session validates) and the server, pinned to core 1
$UV run python -m entrypoints.standins.cloudonix --port "$CX_PORT" --token bench-token-0123456789 --domain acme \
  > "$OUT/cloudonix.log" 2>&1 &
CX_PID=$!
export AGENT_STREAM_CLOUDONIX_API_URL="http://127.0.0.1:$CX_PORT" AGENT_STREAM_LOG_FORMAT=json
export AGENT_STREAM_LOOKUP_FAILURES_PER_MINUTE=0
taskset -c 1 .venv/bin/agent-stream serve --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID $CX_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done

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
echo "results in $OUT"
