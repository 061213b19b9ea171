#!/usr/bin/env bash
# Benchmarks as JSON lines: {"bench", "value", "unit", "baseline", "baseline_value", "ratio", …}.
# Each figure comes with a baseline measured in the same run on the same machine.
#   scripts/bench.sh                      # all; VRM_BENCH_N (20000) intents for ingest/store
#   VRM_BENCH_SIZES=10,50 scripts/bench.sh   # latency on smaller networks only
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench core 2>/dev/null
cargo bench --quiet --bench network 2>/dev/null
cargo bench --quiet --bench footprint 2>/dev/null
