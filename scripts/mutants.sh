#!/usr/bin/env bash
# Mutation testing with cargo-mutants over the code whose bugs would lose or forge data:
# the protocol (src/proto), the store (src/store) and the node's ingest rules and outbox
# planner. Each mutant (a one-line change such as `>` for `>=`, or a function body replaced
# by a default) is built and the in-process tests that guard these files are run against it:
# a mutant no test fails on is "missed", and either a new test kills it or the README says
# why it cannot matter.
#   scripts/mutants.sh                  every mutant (about 420; hours on 2 cores)
#   scripts/mutants.sh --iterate        only those missed or timed out in the last run
#   scripts/mutants.sh --list           what would be tried
# Results: mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt, outcomes.json).
# Extra arguments go to cargo-mutants; VRM_MUTANTS_TARGET is its build folder.
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants > /dev/null || cargo install --locked cargo-mutants
export CARGO_TARGET_DIR=${VRM_MUTANTS_TARGET:-target/mutants}
# Only these test targets are built and run for each mutant (building all of them would
# take most of each mutant's time).
tests=(--lib --test=store --test=outbox --test=ingest --test=matching --test=vectors --test=rejections --test=proto_props
  --test=fuzz_regressions)
files=(-f 'src/store/**' -f src/node/ingest.rs -f src/node/outbox.rs -f 'src/proto/**')
cargo mutants --profile mutants --cap-lints true --timeout 180 --gitignore true "${files[@]}" \
  "${tests[@]/#/--cargo-arg=}" "$@"
