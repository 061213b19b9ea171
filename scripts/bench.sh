#!/usr/bin/env bash
# Benchmarks as JSON lines: {"bench", "value", "unit", "baseline", "baseline_value", "ratio", …}.
# Each figure comes with a baseline measured in the same run on the same machine.
#   scripts/bench.sh                          # everything, about 4 minutes on 2 cores
#   VRM_BENCH_N=20000                         # intents for ingest and store
#   VRM_BENCH_SIZES=10,50  VRM_BENCH_CASTS=20 # latency: network sizes, casts per size
#   VRM_BENCH_RATE=750  VRM_BENCH_THROUGHPUT_SECS=60  VRM_BENCH_GOAL=2000
#                                             # throughput: held rate and time (0 skips), top step
#   VRM_BENCH_RECORDS=100000                  # footprint: records in the full node's store
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench core 2>/dev/null
cargo bench --quiet --bench network 2>/dev/null
cargo bench --quiet --bench footprint 2>/dev/null
