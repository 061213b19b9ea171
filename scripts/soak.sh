#!/usr/bin/env bash
# Soak: a network of 20 real `vrm daemon` processes on loopback (4 vendors, 16 persons; each
# node bootstrapped to the first and to the one before it, as scripts/testnet.sh does) under a
# steady load for MINUTES, with short intent lifetimes so that expiry happens during the run.
#
#   scripts/soak.sh [MINUTES] [RATE]     defaults 30 minutes, 50 intents/s
#
# RATE: intents cast per second in all, round robin over the persons' APIs. Each intent is
# in `books`, which every vendor serves at a price under the intent's ceiling, so each one
# is answered with one offer by every vendor (4 offers per intent). The default, 50/s, is
# half the capacity measured for this load with this script on the project's 2-core VM
# while other jobs kept its load average at 15-45 (2026-11-28): 100/s for 2 minutes with
# 180 s lifetimes lost no acknowledged intent (offers up to a minute late: 365 lost with
# 60 s lifetimes; in that run one person's API also refused 487 casts, not seen again),
# 300/s lost 90 %. The README's 750/s is another load (in-process nodes,
# vendors declining: no offers, no API, no separate processes), not reachable here.
#
# Every 30 s one JSON line: {"t_s", "rss_kib_total", "rss_kib_max" (VmRSS of each daemon),
# "store_bytes_total", "store_bytes_max" (du of each node's store folder), "records" (intents,
# offers, outbox entries held by all nodes), "intents_sent" (casts acknowledged),
# "offers_received" (offer-received events on the persons' streams, plus offers a stream
# missed and the person's store holds), "lost_so_far"}. Then one summary line.
#
# LOST: an acknowledged intent whose person's node does not hold an offer from every vendor
# GRACE (60) seconds after the cast (checked against the person's store, not only its event
# stream). The last intents get the same grace after the load stops.
#
# Exits 1 if anything was lost, a cast failed, any log has an ERROR line or a panic, or the
# total resident memory at the end is more than 20 % above its value after warm-up
# (VRM_SOAK_RSS_LIMIT=1.20; warm-up: minute 5, or a third of a shorter run). WARN lines are
# counted and listed but do not fail the run. The store's growth after warm-up is reported.
#
#   VRM_BIN                   binary (default bin/vrm, else target/release/vrm)
#   VRM_SOAK_DIR              working folder (default a fresh mktemp -d; kept afterwards)
#   VRM_SOAK_LIFETIME=120     intent lifetime in seconds
#   VRM_SOAK_KEEP_EXPIRED=60  [store] keep_expired_secs of every node ("" leaves the default)
#   VRM_SOAK_VENDORS=4  VRM_SOAK_NODES=20  VRM_SOAK_GRACE=60
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-30}
rate=${2:-50}
if [ -z "${VRM_BIN:-}" ]; then
  if [ -x "$ROOT/bin/vrm" ]; then VRM_BIN=$ROOT/bin/vrm; else VRM_BIN=$ROOT/target/release/vrm; fi
fi
[ -x "$VRM_BIN" ] || { echo "soak: no binary at $VRM_BIN (cargo build --release)" >&2; exit 2; }
NET=${VRM_SOAK_DIR:-$(mktemp -d /tmp/vrm-soak.XXXXXX)}
vendors=${VRM_SOAK_VENDORS:-4}
nodes=${VRM_SOAK_NODES:-20}
export VRM_SOAK_LIFETIME=${VRM_SOAK_LIFETIME:-120}
export VRM_SOAK_KEEP_EXPIRED=${VRM_SOAK_KEEP_EXPIRED-60}
mkdir -p "$NET"
[ -z "$(ls -A "$NET")" ] || { echo "soak: $NET is not empty" >&2; exit 2; }

started=()
stop_all() {
  local pid
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  started=()
}
trap 'stop_all' EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

vrm() { local node=$1; shift; "$VRM_BIN" --data-dir "$NET/$node" "$@"; }

FIRST="" PREVIOUS=""
start_node() {
  local name=$1 boot=()
  [ -n "$FIRST" ] && boot+=(--bootstrap "$FIRST")
  [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$FIRST" ] && boot+=(--bootstrap "$PREVIOUS")
  if [ -n "$VRM_SOAK_KEEP_EXPIRED" ]; then
    local config=$NET/$name/config.toml
    if grep -q '^keep_expired_secs' "$config"; then
      sed -i "s/^keep_expired_secs.*/keep_expired_secs = $VRM_SOAK_KEEP_EXPIRED/" "$config"
    else
      sed -i "s/^cache_mb = .*/&\nkeep_expired_secs = $VRM_SOAK_KEEP_EXPIRED/" "$config"
    fi
  fi
  # The binary itself in the background, so $! is the daemon.
  "$VRM_BIN" --data-dir "$NET/$name" daemon --no-mdns --loopback-exempt --listen /ip4/127.0.0.1/tcp/0 \
    --api 127.0.0.1:0 "${boot[@]}" >"$NET/$name/log" 2>&1 &
  started+=($!)
  echo $! >"$NET/$name/pid"
  local waited=0
  until [ -s "$NET/$name/api" ] && grep -q "listening on /ip4/127.0.0.1/tcp/" "$NET/$name/log"; do
    sleep 0.1; waited=$((waited + 1))
    if [ $waited -ge 300 ] || ! kill -0 "$(cat "$NET/$name/pid")" 2>/dev/null; then
      tail -n 20 "$NET/$name/log" >&2; echo "soak: $name did not start" >&2; exit 2
    fi
  done
  PREVIOUS=$(grep -o "listening on /ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*" "$NET/$name/log" | head -1 | cut -d' ' -f3)
  [ -n "$FIRST" ] || FIRST=$PREVIOUS
}

echo "soak: $nodes nodes ($vendors vendors) in $NET, $rate intents/s for $minutes min, lifetime ${VRM_SOAK_LIFETIME}s, keep_expired ${VRM_SOAK_KEEP_EXPIRED:-default}" >&2
for i in $(seq 1 "$vendors"); do
  vrm "v$i" init --vendor "Vendor $i" --category books >/dev/null
  cat >"$NET/v$i/catalog.toml" <<CATALOG
[[item]]
category = "books"
title = "Vendor $i paperback"
keywords = ["book"]
price = "$((10 + i * 3)).00"
currency = "EUR"
CATALOG
  start_node "v$i"
done
for i in $(seq 1 $((nodes - vendors))); do
  vrm "p$i" init >/dev/null
  start_node "p$i"
done
# Every node has a peer, and every vendor's profile has reached the persons (meshes formed).
for dir in "$NET"/*/; do
  name=$(basename "$dir")
  for _ in $(seq 300); do
    [ "$(vrm "$name" status --json | jq .peers)" -ge 1 ] && break
    sleep 0.1
  done
done
sleep 5

python3 "$ROOT/scripts/soak-load.py" load "$NET" "$minutes" "$rate"
stop_all
python3 "$ROOT/scripts/soak-load.py" finish "$NET"
