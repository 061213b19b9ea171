#!/usr/bin/env bash
# Fuzzes every decoder reachable from the network or the API, one target at a time on one
# core, and prints one JSON line per target from libFuzzer's final stats, then a total line.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 seconds, all targets)
#
# Writes the seed corpora from proto/vectors/*.json into fuzz/corpus/<target>/ (next to
# whatever earlier runs added there), builds with `cargo fuzz build -O -a` (optimised, debug
# assertions and overflow checks on), and runs each target for the given seconds. Extra
# libFuzzer flags: FUZZ_ARGS="-max_len=8192"; FUZZ_NO_BUILD=1 runs the binaries already in
# fuzz/target without asking cargo (which would rebuild after any source change). Exits non-zero if any target crashed; the
# input is then in fuzz/artifacts/<target>/ and `cargo fuzz run -O -a <target> <file>`
# replays it. Needs cargo-fuzz (`cargo install cargo-fuzz`) and python3; RUSTC_BOOTSTRAP=1
# lets the stable toolchain build with the sanitizer flags cargo-fuzz sets.
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-60}
shift || true
ALL=(envelope_decode signed_body body_intent body_withdraw body_offer body_profile body_review
     service_protocol api_json verify_batch relationship node_export)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
export RUSTC_BOOTSTRAP=1

python3 scripts/fuzz_seeds.py fuzz/corpus
cd fuzz
[ "${FUZZ_NO_BUILD:-0}" = 1 ] || cargo fuzz build -O -a
BIN=target/x86_64-unknown-linux-gnu/release

mkdir -p logs
total_execs=0 total_secs=0 crashed=0
for target in "${TARGETS[@]}"; do
    log="logs/$target.log"
    mkdir -p "artifacts/$target"
    start=$(date +%s)
    status=0
    # shellcheck disable=SC2086
    "$BIN/$target" "corpus/$target" -artifact_prefix="artifacts/$target/" \
        -max_total_time="$SECS" -print_final_stats=1 -timeout=60 ${FUZZ_ARGS:-} \
        >"$log" 2>&1 || status=$?
    secs=$(( $(date +%s) - start ))
    rm -rf "${TMPDIR:-/tmp}"/vrm-fuzz-service-*
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=${execs:-0}
    crashes=0
    if [ "$status" -ne 0 ]; then crashes=1; crashed=1; fi
    rate=$(( secs > 0 ? execs / secs : execs ))
    printf '{"target":"%s","execs":%d,"secs":%d,"execs_per_sec":%d,"crashes":%d}\n' \
        "$target" "$execs" "$secs" "$rate" "$crashes"
    if [ "$crashes" -ne 0 ]; then
        grep -m 5 -E "panicked|ERROR|SUMMARY|Test unit written" "$log" >&2 || true
    fi
    total_execs=$(( total_execs + execs ))
    total_secs=$(( total_secs + secs ))
done
printf '{"target":"total","execs":%d,"secs":%d,"crashes":%d,"date":"%s"}\n' \
    "$total_execs" "$total_secs" "$crashed" "$(date -u +%Y-%m-%dT%H:%MZ)"
exit "$crashed"
