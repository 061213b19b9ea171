#!/usr/bin/env bash
# Benchmarks as JSON lines: {"bench", "value", "unit", "baseline", "baseline_value", "ratio", …}.
# Each figure comes with a baseline measured in the same run on the same machine.
#   scripts/bench.sh            # VRM_BENCH_N=5000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench core 2>/dev/null
