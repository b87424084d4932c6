#!/usr/bin/env bash
# Turn latency at the caller's ear with real-paced services (issue 13): the `pipecat` engine served on
# one pinned core (core 1), its providers played by the OpenAI stand-in with --paced (STT 200 ms;
# LLM first token 300 ms, then 40 tokens/s; TTS first byte 150 ms, then 2x real time in 100 ms
# pieces), driven by bench/turns_driver.py on the other core. For each turn detection (`silence`,
# `smart_turn`) and each level of concurrent calls: voice-to-voice from the caller's last voiced
# frame to the first voiced reply frame, p50/p95, beside the configured silence plus the services'
# own times (the difference is what the service adds), and the server's calls per core.
#
# usage: bash bench/turns.sh [LEVELS...]    (default: 1 30 60)
#   env: OUT        results folder (default: bench/out/turns-<date>)
#        TURNS      turns per call (default 5)
#        DETECTIONS turn detections to measure (default "silence smart_turn")
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS="${*:-1 30 60}"
OUT="${OUT:-bench/out/turns-$(date -u +%Y%m%dT%H%M%SZ)}"
TURNS="${TURNS:-5}"
DETECTIONS="${DETECTIONS:-silence smart_turn}"
PORT="${PORT:-8765}"
CX_PORT="${CX_PORT:-8766}"
OA_PORT="${OA_PORT:-8767}"
LOADCALL="${LOADCALL:-../shared/loadcall}"
mkdir -p "$OUT"
UV="python3 -m uv"
source bench/common.sh
bench_prepare

# What a turn costs before the service adds anything: the configured silence (the VAD's stop_secs
# 0.2 s + the turn's 0.4 s; with smart_turn only the VAD's 0.2 s, when the model calls the turn
# finished) plus the paced services' own times (STT 200 + LLM first token 300 + TTS first byte 150).
SERVICES_MS=650
declare -A SILENCE_MS=([silence]=600 [smart_turn]=200)

export BENCH_OPENAI_KEY="${BENCH_OPENAI_KEY:-sk-bench-0123456789}"
OA_URL="http://127.0.0.1:$OA_PORT/v1"
declare -A AGENTS
for detection in $DETECTIONS; do
  DEFINITION=$(OA_URL="$OA_URL" DETECTION="$detection" python3 -c '
import json, os
block = {"provider": "openai", "base_url": os.environ["OA_URL"], "api_key_env": "BENCH_OPENAI_KEY"}
print(json.dumps({
    "engine": "pipecat", "greeting": "Hi, this is Acme.", "max_call_seconds": 600,
    "turn_detection": os.environ["DETECTION"],
    "llm": {**block, "model": "gpt-4o-mini"},
    "stt": {**block, "model": "gpt-4o-transcribe", "language": "en"},
    "tts": {**block, "model": "gpt-4o-mini-tts", "voice": "alloy"},
}))')
  AGENTS[$detection]=$(bench_agent "turns-$detection" "$DEFINITION")
done

taskset -c 0 .venv/bin/python -m entrypoints.simulator.standins.openai_api --port "$OA_PORT" \
  --api-key "$BENCH_OPENAI_KEY" --paced --transcript "I would like to book a table for two." \
  --reply "Sure, I can help with that. For which evening would you like the table?" \
  > "$OUT/openai.log" 2>&1 &
OA_PID=$!
bench_serve
trap 'kill $SERVER_PID $CX_PID $OA_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$OUT/openai.log" && break; sleep 0.2; done

FIRST=0
for detection in $DETECTIONS; do
  URL="ws://127.0.0.1:$PORT/api/v1/agent-stream/${AGENTS[$detection]}?provider=cloudonix&Domain=acme&callId={i}"
  for level in $LEVELS; do
    echo "== $detection, $level calls" >&2
    taskset -c 0 .venv/bin/python bench/turns_driver.py --url "$URL" --calls "$level" --first-call "$FIRST" \
      --turns "$TURNS" --wav "$OUT/speech.wav" --server-pid "$SERVER_PID" \
      --expected-ms $((SILENCE_MS[$detection] + SERVICES_MS)) --json-out "$OUT/${detection}_$level.json" \
      2> >(tee "$OUT/${detection}_$level.txt" >&2) || echo "level $level failed" >&2
    FIRST=$((FIRST + level))
    sleep 3
  done
done

{
  echo "| turn detection | calls | v2v p50/p95 ms | expected ms | service adds p50/p95 ms | missed turns | server CPU | calls per core |"
  echo "|---|---|---|---|---|---|---|---|"
  for detection in $DETECTIONS; do
    for level in $LEVELS; do
      f="$OUT/${detection}_$level.json"
      [ -f "$f" ] || continue
      python3 - "$detection" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
v, a = r["voice_to_voice_ms"], r["service_adds_ms"]
print(f"| {sys.argv[1]} | {r['calls']} | {v['p50']}/{v['p95']} | {r['expected_ms']:.0f} | {a['p50']}/{a['p95']}"
      f" | {r['missed_turns']}/{r['calls'] * r['turns_per_call']} | {r.get('server_cpu_share')} | {r.get('calls_per_core')} |")
PY
    done
  done
} | tee "$OUT/summary.md"
echo "results in $OUT"
