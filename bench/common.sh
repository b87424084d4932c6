# Sourced by bench/run.sh and bench/pipecat.sh, after they set LOADCALL, OUT and UV.

# The load generator's own environment (exactly as its README pins it), the caller's speech, and a
# fresh PostgreSQL database, migrated, with an organisation (ORG) and a Cloudonix configuration for
# domain acme (token bench-token-0123456789).
bench_prepare() {
  if [ ! -x /tmp/loadvenv/bin/python ]; then
    python3 -m venv /tmp/loadvenv
    /tmp/loadvenv/bin/pip install -q -r "$LOADCALL/requirements.txt" py-spy
  fi
  $UV run python bench/make_speech_wav.py "$OUT/speech.wav"
  local db_url db_name
  db_url=$($UV run python -c 'from tests.pg import postgres_url; print(postgres_url())')
  db_name="agent_stream_bench_$(date +%s)"
  export AGENT_STREAM_DATABASE_URL="${db_url%/*}/$db_name"
  export AGENT_STREAM_SECRET_KEY="${AGENT_STREAM_SECRET_KEY:-bench-secret-key-not-for-production}"
  $UV run python - "$db_url" "$db_name" <<'PY'
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
  ORG=$($UV run agent-stream org create --name bench --max-concurrent-calls 2000 --monthly-minutes 100000000 \
    | $UV run python -c 'import json,sys; print(json.load(sys.stdin)["organization_id"])')
  echo "bench-token-0123456789" | $UV run agent-stream telephony add-cloudonix --org "$ORG" --domain acme >/dev/null
}

# The agent created by `agent-stream agent create --org ORG --name NAME --definition DEFINITION`.
bench_agent() {
  $UV run agent-stream agent create --org "$ORG" --name "$1" --definition "$2" \
    | $UV run python -c 'import json,sys; print(json.load(sys.stdin)["agent_uuid"])'
}

# The stand-in Cloudonix API on CX_PORT (any session validates) and the server on PORT, pinned to
# core 1 (SERVER_PID, CX_PID); returns once the server answers /health. SERVER_CMD replaces
# `agent-stream` (bench/soak.sh serves through bench/serve_counted.py to count asyncio tasks).
bench_serve() {
  .venv/bin/python -m entrypoints.simulator.standins.cloudonix_api --port "$CX_PORT" --token bench-token-0123456789 \
    --domain acme > "$OUT/cloudonix.log" 2>&1 &
  CX_PID=$!
  export AGENT_STREAM_CLOUDONIX_API_URL="http://127.0.0.1:$CX_PORT" AGENT_STREAM_LOG_FORMAT=json
  export AGENT_STREAM_LOOKUP_FAILURES_PER_MINUTE=0
  taskset -c 1 ${SERVER_CMD:-.venv/bin/agent-stream} serve --port "$PORT" > "$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
}
