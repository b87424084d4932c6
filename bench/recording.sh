#!/usr/bin/env bash
# Issue 14's recording benchmark: the linetest ladder without recordings, then the same ladder
# with `recording: true` on every call (bench/run.sh with RECORDING=1). Compare the calls one core
# holds in the two summaries (recording may cost at most 15 %); recording.md has the disk write
# rate per call.
#
# usage: bash bench/recording.sh [LEVELS...]     (default: as bench/run.sh)
#   env: OUT (default bench/out/recording-<date>), and bench/run.sh's DURATION, LOADCALL, PORT, CX_PORT
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/out/recording-$(date -u +%Y%m%dT%H%M%SZ)}"
OUT="$OUT/plain" RECORDING=0 bash bench/run.sh "$@"
OUT="$OUT/recording" RECORDING=1 bash bench/run.sh "$@"
echo "== without recording"; cat "$OUT/plain/summary.md"
echo "== with recording"; cat "$OUT/recording/summary.md"; cat "$OUT/recording/recording.md"
