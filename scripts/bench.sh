#!/usr/bin/env bash
# Benchmarks as JSON lines: {"bench", "value", "unit", "baseline", "baseline_value", "ratio", …}.
# Each figure comes with a baseline measured in the same run on the same machine.
# Targets (issue 13): throughput on 20 nodes over 4 shards, 2,000 intents/s held 60 s with
# none late or lost, twice ("throughput_held"); cast -> first offer p50 <= 5 ms and p99 <= 25 ms
# on 50 nodes ("latency_cast_to_first_offer"); idle node resident memory <= 15 MiB.
#   scripts/bench.sh                          # everything, about 20 minutes on 2 cores
#   VRM_BENCH_N=20000                         # intents for ingest and store
#   VRM_BENCH_SIZES=10,50  VRM_BENCH_CASTS=200 # latency: network sizes, casts per size
#   VRM_BENCH_RATE_START=500  VRM_BENCH_RATE_STEP=500  VRM_BENCH_GOAL=2000
#   VRM_BENCH_THROUGHPUT_SECS=60              # throughput: steps, seconds per step (0 skips)
#   VRM_BENCH_FLOOD_CASTS=200                 # flood: casts quiet and flooded (0 skips)
#   VRM_BENCH_MESSAGES=200                    # relationship messages vendor -> person through
#                                             # the mailbox, vs bare deposit+push (0 skips)
#   VRM_BENCH_SIM=1                           # also the 250- and 1,000-node simulation
#                                             # (benches/sim.rs, about 10 more minutes)
#   VRM_BENCH_RECORDS=100000                  # footprint: records in the full node's store
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench core 2>/dev/null
cargo bench --quiet --bench network 2>/dev/null
cargo bench --quiet --bench footprint 2>/dev/null
if [ "${VRM_BENCH_SIM:-0}" = 1 ]; then
  cargo bench --quiet --bench sim 2>/dev/null
fi
