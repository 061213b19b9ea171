#!/usr/bin/env bash
# A local vrm test network: N persons and M vendors as real `vrm daemon` processes on
# loopback, each with its own data directory under one testnet folder.
#
#   scripts/testnet.sh up --persons 3 --vendors 6 [--categories books,travel]
#   scripts/testnet.sh status
#   scripts/testnet.sh cast p1 --category books --text "Any Le Guin novel" [vrm intent cast flags]
#   scripts/testnet.sh scenario        # every person casts; who got which offers, how fast
#   scripts/testnet.sh relationships   # after a scenario: every person accepts an offer and
#                                      # the order runs to received; both logs must match
#   scripts/testnet.sh logs [NODE]
#   scripts/testnet.sh down            # stops exactly the processes `up` started
#
# VRM_BIN picks the binary (default target/release/vrm, else target/debug/vrm);
# VRM_TESTNET_DIR the folder (default ./testnet).
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NET=${VRM_TESTNET_DIR:-$ROOT/testnet}
if [ -z "${VRM_BIN:-}" ]; then
  if [ -x "$ROOT/target/release/vrm" ]; then VRM_BIN=$ROOT/target/release/vrm; else VRM_BIN=$ROOT/target/debug/vrm; fi
fi

die() { echo "testnet: $*" >&2; exit 1; }
vrm() { local node=$1; shift; "$VRM_BIN" --data-dir "$NET/$node" "$@"; }
nodes() { [ -d "$NET" ] && find "$NET" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V; }
persons() { nodes | grep '^p' || true; }
now_ms() { date +%s%3N; }
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }

# A catalog for vendor number $1 in category $2: prices differ from vendor to vendor.
catalog() {
  local n=$1 category=$2
  cat <<CATALOG
[[item]]
category = "$category"
title = "Vendor $n standard"
keywords = ["standard"]
price = "$((10 + n * 3)).00"
currency = "EUR"

[[item]]
category = "$category"
title = "Vendor $n premium"
keywords = ["premium", "best"]
price = "$((40 + n * 5)).50"
currency = "EUR"
CATALOG
}

start_node() {
  local name=$1; shift
  "$VRM_BIN" --data-dir "$NET/$name" daemon --no-mdns --loopback-exempt --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 "$@" \
    >"$NET/$name/log" 2>&1 &
  echo $! >"$NET/$name/pid"
  local waited=0
  until [ -s "$NET/$name/api" ] && grep -q "listening on /ip4/127.0.0.1/tcp/" "$NET/$name/log"; do
    sleep 0.1; waited=$((waited + 1))
    if [ $waited -ge 300 ] || ! kill -0 "$(cat "$NET/$name/pid")" 2>/dev/null; then
      cat "$NET/$name/log" >&2; die "$name did not start"
    fi
  done
  grep -o "listening on /ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*" "$NET/$name/log" | head -1 | cut -d' ' -f3 >"$NET/$name/addr"
  printf '  %-4s %s\n' "$name" "$(cat "$NET/$name/addr")"
}

# Starts vendor node $1 bootstrapped to the first vendor and to the one started before it,
# so the vendors' network is connected but sparse.
FIRST="" PREVIOUS="" SERVICE_NODES=()
join_network() {
  local name=$1 boot=()
  [ -n "$FIRST" ] && boot+=(--bootstrap "$FIRST")
  [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$FIRST" ] && boot+=(--bootstrap "$PREVIOUS")
  start_node "$name" "${boot[@]}"
  PREVIOUS=$(cat "$NET/$name/addr")
  [ -n "$FIRST" ] || FIRST=$PREVIOUS
  SERVICE_NODES+=("$PREVIOUS")
}

# Starts person number $2 (node $1), a light node, bootstrapped to two of the vendors'
# service nodes, taken in turn, so that no one service node takes every person.
join_as_person() {
  local name=$1 i=$2 n=${#SERVICE_NODES[@]} boot=()
  if [ "$n" -eq 0 ]; then start_node "$name"; return; fi
  boot+=(--bootstrap "${SERVICE_NODES[$((i % n))]}")
  [ "$n" -gt 1 ] && boot+=(--bootstrap "${SERVICE_NODES[$(((i + 1) % n))]}")
  start_node "$name" "${boot[@]}"
}

cmd_up() {
  local persons=2 vendors=3 categories=books,travel
  while [ $# -gt 0 ]; do
    case $1 in
      --persons) persons=$2; shift 2 ;;
      --vendors) vendors=$2; shift 2 ;;
      --categories) categories=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -x "$VRM_BIN" ] || die "no binary at $VRM_BIN: run cargo build --release first"
  if [ -n "$(nodes)" ]; then die "$NET already holds a network: run down first"; fi
  mkdir -p "$NET"
  trap 'echo; echo "interrupted: stopping what was started"; cmd_down; exit 130' INT TERM
  IFS=, read -r -a cats <<<"$categories"
  echo "starting $persons persons and $vendors vendors in $NET"
  FIRST="" PREVIOUS=""
  local i name
  for i in $(seq 1 "$vendors"); do
    name=v$i
    local category=${cats[$(((i - 1) % ${#cats[@]}))]}
    vrm "$name" init --vendor "Vendor $i" --category "$category" >/dev/null
    catalog "$i" "$category" >"$NET/$name/catalog.toml"
    join_network "$name"
  done
  for i in $(seq 1 "$persons"); do
    name=p$i
    mkdir -p "$NET/$name"
    vrm "$name" init >/dev/null
    join_as_person "$name" "$i"
  done
  trap - INT TERM
  echo "waiting for every node to have a peer"
  for name in $(nodes); do
    local waited=0
    until [ "$(vrm "$name" status --json | json_field "d['peers']")" -ge 1 ]; do
      sleep 0.1; waited=$((waited + 1)); [ $waited -lt 300 ] || die "$name found no peer"
    done
  done
  echo "up: $(nodes | wc -l) nodes"
}

cmd_status() {
  printf '%-5s %-54s %5s %7s %6s %6s\n' NODE PEER PEERS INTENTS OFFERS OUTBOX
  for name in $(nodes); do
    if [ -f "$NET/$name/pid" ] && kill -0 "$(cat "$NET/$name/pid")" 2>/dev/null; then
      vrm "$name" status --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('%-5s %-54s %5d %7d %6d %6d' % ('$name', d['peer_id'], d['peers'], d['intents'], d['offers'], d['outbox']))"
    else
      printf '%-5s %s\n' "$name" "(not running)"
    fi
  done
}

cmd_cast() {
  local name=${1:?which person? e.g. p1}; shift
  vrm "$name" intent cast "$@"
}

# Every person casts in a category some vendor serves; prints who got which offers and the
# cast-to-first-offer latency; fails if any expected offer is missing after the timeout.
cmd_scenario() {
  local timeout_s=${VRM_SCENARIO_TIMEOUT:-30} failed=0
  local -A served=()
  for v in $(nodes | grep '^v' || true); do
    local c; c=$(grep -m1 '^categories' "$NET/$v/config.toml" | sed 's/.*\["\([^"]*\)".*/\1/')
    served[$c]=$(( ${served[$c]:-0} + 1 ))
  done
  [ ${#served[@]} -gt 0 ] || die "no vendors in the network"
  local cats=("${!served[@]}") i=0 results=$NET/scenario-results
  : >"$results"
  for p in $(persons); do
    local category=${cats[$((i % ${#cats[@]}))]} expected
    expected=${served[$category]}
    i=$((i + 1))
    # Offers are timed as they arrive on the person's event stream, not by polling.
    local arrivals=$NET/$p/arrivals watcher
    : >"$arrivals"
    # In its own process group, so the whole pipeline can be stopped at once.
    setsid bash -c '"$0" --data-dir "$1" offers --watch --json | while read -r _; do date +%s%3N >>"$2"; done' \
      "$VRM_BIN" "$NET/$p" "$arrivals" &
    watcher=$!
    sleep 0.3
    local before start id
    before=$(wc -l <"$arrivals")   # offers that were already there are printed first
    start=$(now_ms)
    id=$(vrm "$p" intent cast --category "$category" --text "$p wants something standard" \
      --max-price 200 --currency EUR --expires 1h --json | json_field "d['id']")
    local count=0 deadline=$(( $(now_ms) + timeout_s * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
      count=$(( $(wc -l <"$arrivals") - before ))
      [ "$count" -ge "$expected" ] && break
      sleep 0.02
    done
    kill -- -"$watcher" 2>/dev/null || true
    count=$(vrm "$p" offers --intent "$id" --json | json_field "len(d)")
    local first_ms="?" all_ms="?"
    if [ "$(wc -l <"$arrivals")" -gt "$before" ]; then
      first_ms=$(( $(sed -n "$((before + 1))p" "$arrivals") - start )); all_ms=$(( $(tail -1 "$arrivals") - start ))
    fi
    echo "$p cast $id in $category: $count of $expected offers, first after ${first_ms} ms, last after ${all_ms} ms"
    echo "$count $expected $first_ms $all_ms" >>"$results"
    vrm "$p" offers --intent "$id" | sed 's/^/    /'
    if [ "$count" -lt "$expected" ]; then echo "    MISSING $((expected - count)) offer(s)"; failed=1; fi
  done
  summary "$results"
  return $failed
}

# One JSON line: offers expected and received; cast to first and to last offer (p50, p90,
# max over every cast, a cast with no offer counted as never); every node's peers by role
# (persons: service nodes kept; vendors: other service nodes, light clients aside); the
# nodes' memory (PSS: shared pages split between the processes that share them; RSS counts
# the binary once per process).
summary() {
  local results=$1 peers=$NET/scenario-peers pids=()
  : >"$peers"
  for name in $(nodes); do
    vrm "$name" status --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('$name', len(d['service_nodes']))" >>"$peers"
    pids+=("$(cat "$NET/$name/pid")")
  done
  python3 - "$results" "$peers" "${pids[@]}" <<'PY'
import json, sys
results, peers, pids = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [line.split() for line in open(results)]
def ms(v):
    return float("inf") if v == "?" else int(v)
def pct(values, p):
    values = sorted(values)
    v = values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]
    return None if v == float("inf") else v
def spread(values):
    return {"p50": pct(values, 50), "p90": pct(values, 90), "max": pct(values, 100)}
first = [ms(r[2]) for r in rows]
last = [ms(r[3]) if int(r[0]) >= int(r[1]) else float("inf") for r in rows]
by_role = {}
for line in open(peers):
    name, n = line.split()
    by_role.setdefault("vendor" if name.startswith("v") else "person", []).append(int(n))
def memory(field):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return round(total / 1024)
print(json.dumps({
    "casts": len(rows),
    "offers": sum(int(r[0]) for r in rows),
    "expected": sum(int(r[1]) for r in rows),
    "first_offer_ms": spread(first),
    "all_offers_ms": spread(last),
    "service_peers": {role: {"min": min(v), "mean": round(sum(v) / len(v), 1), "max": max(v)}
                      for role, v in by_role.items()},
    "nodes": len(pids),
    "pss_mib": memory("Pss"),
    "rss_mib": memory("Rss"),
}))
PY
}

# Polls `vrm NODE ARGS… --json` until the Python expression COND holds of its output `d`;
# false after the timeout.
until_json() {
  local node=$1 cond=$2 timeout_s=$3; shift 3
  local deadline=$(( $(now_ms) + timeout_s * 1000 ))
  while [ "$(now_ms)" -lt $deadline ]; do
    if vrm "$node" "$@" --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($cond) else 1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# After `scenario`: every person accepts the newest offer it got, as a new customer; the
# vendor (through its CLI) answers a message, ships and fulfils, the person says received.
# Every relationship's log must end byte-identical on both sides and verify offline. Then
# every person reviews its vendor (4 stars), and every node must show all those reviews.
cmd_relationships() {
  local timeout_s=${VRM_SCENARIO_TIMEOUT:-30} failed=0 results=$NET/relationship-results
  local settled="d['state']['received'] and all(e['acknowledged'] and not e['pending'] for e in d['log'])"
  : >"$results"
  for p in $(persons); do
    local offer rel v="" start agreed_ms
    offer=$(vrm "$p" offers --json | json_field "d[-1]['id'] if d else ''")
    if [ -z "$offer" ]; then echo "$p: no offer to accept"; failed=1; continue; fi
    start=$(now_ms)
    rel=$(vrm "$p" accept "$offer" --keep-intent --json | json_field "d['id']")
    if ! until_json "$p" "d['state']['stage'] == 'agreed' and all(e['acknowledged'] for e in d['log'])" "$timeout_s" relationship show "$rel"; then
      echo "$p: relationship $rel never agreed"; failed=1; continue
    fi
    agreed_ms=$(( $(now_ms) - start ))
    for vendor in $(nodes | grep '^v'); do
      if vrm "$vendor" relationship show "$rel" >/dev/null 2>&1; then v=$vendor; fi
    done
    vrm "$p" message "$rel" "Hello from $p: can it come on Tuesday?" >/dev/null
    until_json "$v" "any(e['kind'] == 'message' for e in d['log'])" "$timeout_s" relationship show "$rel" || true
    vrm "$v" vendor message "$rel" "Tuesday it is." >/dev/null
    vrm "$v" vendor ship "$rel" --tracking "T-$p" >/dev/null
    vrm "$v" vendor fulfil "$rel" >/dev/null
    until_json "$p" "d['state']['fulfilled']" "$timeout_s" relationship show "$rel" || true
    vrm "$p" order received "$rel" >/dev/null
    local same=no valid=no
    if until_json "$p" "$settled" "$timeout_s" relationship show "$rel" \
      && until_json "$v" "$settled" "$timeout_s" relationship show "$rel"; then
      vrm "$p" relationship export "$rel" -o "$NET/$p/$rel.log" >/dev/null
      vrm "$v" relationship export "$rel" -o "$NET/$v/$rel.log" >/dev/null
      cmp -s "$NET/$p/$rel.log" "$NET/$v/$rel.log" && same=yes
      "$VRM_BIN" relationship verify "$NET/$p/$rel.log" >/dev/null && valid=yes
    fi
    echo "$p with $v: relationship ${rel:0:12}, agreed after ${agreed_ms} ms, logs identical: $same, verified: $valid"
    echo "$agreed_ms $same $valid" >>"$results"
    [ "$same" = yes ] && [ "$valid" = yes ] || failed=1
    vrm "$p" review "$rel" --rating 4 --text "Tuesday, as promised." >/dev/null || failed=1
  done
  local reviewed
  reviewed=$(wc -l <"$results")
  for node in $(nodes); do
    if ! until_json "$node" "sum(r['reviews'] for r in d) == $reviewed" "$timeout_s" reputation; then
      echo "$node: does not show the $reviewed reviews"; failed=1
    fi
  done
  python3 - "$results" <<'PY'
import json, sys
rows = [line.split() for line in open(sys.argv[1])]
ms = sorted(int(r[0]) for r in rows)
print(json.dumps({
    "relationships": len(rows),
    "identical": sum(r[1] == "yes" for r in rows),
    "verified": sum(r[2] == "yes" for r in rows),
    "accept_to_agreed_ms": {"p50": ms[len(ms) // 2], "max": ms[-1]} if ms else None,
}))
PY
  return $failed
}

cmd_logs() {
  if [ $# -gt 0 ]; then tail -n 50 "$NET/$1/log"; else for n in $(nodes); do echo "== $n"; tail -n 5 "$NET/$n/log"; done; fi
}

cmd_down() {
  local stopped=0
  for name in $(nodes); do
    local pidfile=$NET/$name/pid
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; stopped=$((stopped + 1)); fi
  done
  for name in $(nodes); do
    local pidfile=$NET/$name/pid
    [ -f "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile") waited=0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
  done
  echo "down: stopped $stopped node(s); data stays in $NET (rm -r it to start afresh)"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  status) cmd_status ;;
  cast) shift; cmd_cast "$@" ;;
  scenario) cmd_scenario ;;
  relationships) cmd_relationships ;;
  logs) shift; cmd_logs "$@" ;;
  down) cmd_down ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
