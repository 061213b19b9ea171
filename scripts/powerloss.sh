#!/usr/bin/env bash
# Simulated power cuts: a real daemon's data directory lives on LazyFS, a FUSE file system
# that keeps every write not yet fsynced in its own cache and drops that cache on command.
# Each cycle starts the daemon, checks that every intent acknowledged so far is still there,
# casts through the CLI (recording each acknowledged id), and at a random moment kills the
# daemon (kill -9) and drops the unsynced data, as a power cut would.
# Prints one JSON line per cycle and a summary line; exits 1 if anything acknowledged was lost.
#   scripts/powerloss.sh [CYCLES]      default 10
#   VRM_BIN=target/release/vrm         the binary to test (default target/debug/vrm)
#   VRM_LAZYFS=/path/to/lazyfs         a built LazyFS; otherwise built with VRM_LAZYFS_SRC/build-lazyfs.sh
#   VRM_LAZYFS_SRC=../shared/tools/lazyfs
# Needs root (or a user allowed to mount FUSE) and /dev/fuse.
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-10}
bin=$(realpath "${VRM_BIN:-target/debug/vrm}")
lazyfs=${VRM_LAZYFS:-$("${VRM_LAZYFS_SRC:-../shared/tools/lazyfs}/build-lazyfs.sh" | tail -n 1)}

work=$(mktemp -d)
root=$work/root mnt=$work/mnt fifo=$work/faults.fifo data=$work/mnt/vrm
acked=$work/acked lazy_pid="" daemon_pid="" caster_pid=""
mkdir -p "$root" "$mnt"
: > "$acked"
cat > "$work/lazyfs.toml" <<EOF
[faults]
fifo_path="$fifo"
[cache]
apply_eviction=false
[cache.simple]
custom_size="1gb"
blocks_per_page=1
[filesystem]
log_all_operations=false
logfile=""
EOF

mount_lazyfs() {
  "$lazyfs" "$mnt" --config-path "$work/lazyfs.toml" -o allow_other -o modules=subdir \
    -o subdir="$root" -f > "$work/lazyfs.log" 2>&1 &
  lazy_pid=$!
  for _ in $(seq 100); do
    mountpoint -q "$mnt" && [ -p "$fifo" ] && return 0
    sleep 0.1
  done
  echo "LazyFS did not mount (see $work/lazyfs.log)" >&2
  exit 2
}

unmount_lazyfs() {
  for _ in $(seq 50); do
    mountpoint -q "$mnt" || break
    fusermount3 -u "$mnt" 2>/dev/null || sleep 0.1
  done
  mountpoint -q "$mnt" && umount -l "$mnt"
  kill "$lazy_pid" 2>/dev/null || true
  wait "$lazy_pid" 2>/dev/null || true
}

cleanup() {
  [ -n "$caster_pid" ] && kill "$caster_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill -9 "$daemon_pid" 2>/dev/null
  unmount_lazyfs
  rm -rf "$work"
}
trap cleanup EXIT

# A CLI call never hangs the run, even on a mount that died.
cli() { timeout 20 "$bin" --data-dir "$data" "$@"; }

start_daemon() {
  # The binary itself in the background (not a shell function), so $! is the daemon.
  # A bootstrap service node that is never there: the person casts offline, naming it as
  # mailbox, and its intents wait in the outbox (as on a laptop without a network).
  "$bin" --data-dir "$data" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --no-mdns \
    --bootstrap /ip4/127.0.0.1/tcp/9/p2p/12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt \
    > "$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 200); do
    grep -q "API on" "$work/daemon.log" && cli status > /dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "the daemon did not start after a cut:" >&2
  tail -n 5 "$work/daemon.log" >&2
  return 1
}

# How many acknowledged intents the running daemon does not hold.
missing() {
  local held
  held=$(cli --json intent list | grep -o '"id": "[0-9a-f]*"' | cut -d'"' -f4 | sort -u)
  sort -u "$acked" | comm -23 - <(echo "$held") | wc -l
}

# Casts until killed, appending each acknowledged intent id.
cast_forever() {
  local n=0
  while :; do
    n=$((n + 1))
    if out=$(cli intent cast --category books --text "book $n" 2>/dev/null); then
      echo "${out##* }" >> "$acked"
    fi
  done
}

mount_lazyfs
cli init > /dev/null
lost_total=0 cut_total=0 failed_starts=0 missing=0
for cycle in $(seq "$cycles"); do
  if ! start_daemon; then
    failed_starts=$((failed_starts + 1))
    break
  fi
  missing=$(missing)
  [ "$missing" -gt "$lost_total" ] && lost_total=$missing
  cast_forever &
  caster_pid=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.5 + (r % 200) / 100 }')"
  # The cut: the process dies and every write it did not fsync is gone.
  kill -9 "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
  echo "lazyfs::clear-cache" > "$fifo"
  kill "$caster_pid" 2>/dev/null; wait "$caster_pid" 2>/dev/null || true
  caster_pid=""
  cut_total=$((cut_total + 1))
  unmount_lazyfs
  mount_lazyfs
  echo "{\"cycle\":$cycle,\"acknowledged\":$(sort -u "$acked" | wc -l),\"missing_at_start\":$missing}"
done
# After the last cut. Lost: the most acknowledged intents found missing at any start.
if start_daemon; then
  missing=$(missing)
  [ "$missing" -gt "$lost_total" ] && lost_total=$missing
  kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
else
  failed_starts=$((failed_starts + 1))
fi
acknowledged=$(sort -u "$acked" | wc -l)
echo "{\"bench\":\"powerloss\",\"cuts\":$cut_total,\"acknowledged\":$acknowledged,\"lost\":$lost_total,\"failed_starts\":$failed_starts}"
[ "$lost_total" -eq 0 ] && [ "$failed_starts" -eq 0 ]
