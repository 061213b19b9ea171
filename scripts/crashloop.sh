#!/usr/bin/env bash
# Crash loops: real `vrm daemon` processes on loopback; one of them is killed with kill -9 at a
# random moment (0.2-2 s into a cycle) while one kind of write is in flight, restarted at once,
# and checked: nothing it acknowledged is lost, nothing reaches the user twice, its store opens.
#
#   scripts/crashloop.sh [PATH] [KILLS]   PATH: cast, ingest, answer, offer, withdraw or all
#                                         (default all); KILLS per path, default 100
#   VRM_BIN=target/debug/vrm              the binary to test (the default)
#   VRM_CRASH_DIR=/tmp/...                where data and logs go (default: a fresh temporary
#                                         folder, removed after a clean run, kept on failure)
#
# Prints one JSON line per kill and a summary line per path; exits 1 if anything acknowledged
# was lost or reached the user twice, or a store did not open.
#
# What "acknowledged" means on each path, and what is checked after each restart. Every write
# below acknowledges only after sled's flush and an fdatasync of its log (src/store/mod.rs).
#
# cast      A person's node alone (its one bootstrap service node is never there, so its
#           intents name that mailbox and wait in the outbox). A loop casts through the CLI and records an id only after the
#           CLI printed it (the API answers 201 after the durable write). Kill the person.
#           After each restart: every acknowledged id is in `vrm intent list` (lost otherwise);
#           duplicates: an id listed twice.
# ingest    A person P (never killed) casts books intents without pause; vendor V serves books
#           with a catalog that has nothing in books, so its only write is gossip ingest. Kill V.
#           Gossip acknowledges nothing to the sender; V's acknowledgement is the gossipsub
#           verdict Accept, given after the batch holding the intent was made durable, when V
#           also emits `intent-received` on its event stream (/api/v1/events, recorded with
#           curl): those ids are acknowledged (the stream reconnects after each start, so
#           what V stores before it is back is not counted). After each restart: V's store opens, every
#           acknowledged intent is in `vrm vendor intents`; duplicates: an id listed twice, or
#           `intent-received` twice for one id (stored anew after it was acknowledged).
#           Also, right before each kill V's intents are read through the CLI: an intent in that
#           read but gone after the restart and never acknowledged is counted apart
#           ("read_uncommitted": the API shows a batch's intents while its flush runs).
# answer    P casts without pause; V answers every intent with an offer from its catalog. Kill V.
#           Acknowledged: the intents V acknowledged (as for ingest). After each restart: V's
#           store opens and holds every acknowledged intent; duplicates: P holds two offers from
#           V for one intent. At the end (V up): within 90 s every acknowledged intent has its
#           one offer at P (outbox retries; intents stored but not answered before a kill are
#           answered at the next start); lost: those without. Intents P cast that V never
#           stored are counted as "not_reached" (a gossip message in flight when its receiver
#           dies is gone: gossip is not acknowledged), not as lost.
# offer     V (never killed) answers and keeps P's mailbox; P casts without pause and is killed
#           while offers arrive. P acknowledges an offer to its mailbox only once it is durable;
#           the mailbox then drops it. Acknowledged: deposits V's mailbox took minus items it
#           still holds (`vrm status`: counters.mailbox-deposited, mailbox.items), read right
#           after each kill. After each restart: P holds at least that many offers (lost
#           otherwise: a count, as items in the mailbox are sealed), and every cast P
#           acknowledged is still there; duplicates: an offer listed twice, or two offers from V
#           for one intent. At the end: within 60 s every offer V delivered to the mailbox is
#           at P.
# withdraw  V (never killed) serves books; a loop on P casts an intent, then withdraws the one
#           cast before it, through the CLI. Kill P. Acknowledged: the CLI printed "withdrew
#           intent ID". After each restart: each such intent is "withdrawn" at P (lost
#           otherwise). At the end: within 60 s, V holds none of them open (V either saw the
#           withdrawal or never got the intent, whose unsent publication a withdrawal drops);
#           "vendor_open": those V still holds open.
umask 077 # data directories are their owner's alone (vrm refuses others)
set -uo pipefail
cd "$(dirname "$0")/.."
which_path=${1:-all}
kills=${2:-100}
bin=$(realpath "${VRM_BIN:-target/debug/vrm}")
[ -x "$bin" ] || { echo "no binary at $bin (cargo build first, or set VRM_BIN)" >&2; exit 2; }
case $which_path in cast | ingest | answer | offer | withdraw | all) ;; *)
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
command -v jq > /dev/null && command -v curl > /dev/null || { echo "needs jq and curl" >&2; exit 2; }

if [ -n "${VRM_CRASH_DIR:-}" ]; then
  root=$VRM_CRASH_DIR
  mkdir -p "$root"
else
  root=$(mktemp -d /tmp/vrm-crashloop.XXXXXX)
fi
declare -A PID=()
BG=()
work=""

cleanup() {
  local p
  for p in "${BG[@]}"; do kill "$p" 2> /dev/null; done
  for p in "${PID[@]}"; do kill -9 "$p" 2> /dev/null; done
  wait 2> /dev/null
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

# A CLI call on node $1 never hangs the run.
cli() {
  local node=$1
  shift
  timeout 120 "$bin" --data-dir "$work/$node" "$@"
}

# A bootstrap service node that is never there (nothing listens on loopback's discard port).
AWAY=/ip4/127.0.0.1/tcp/9/p2p/12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt

rand_sleep() { sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + (r % 181) / 100 }')"; }

# Starts node $1 (extra daemon flags after it); its log is appended to across restarts.
start_node() {
  local node=$1
  shift
  rm -f "$work/$node/api"
  echo "=== crashloop: start $(date +%T.%N)" >> "$work/$node/log"
  "$bin" --data-dir "$work/$node" daemon --no-mdns --loopback-exempt --listen /ip4/127.0.0.1/tcp/0 \
    --api 127.0.0.1:0 "$@" >> "$work/$node/log" 2>&1 &
  PID[$node]=$!
  local i
  for i in $(seq 600); do
    if [ -s "$work/$node/api" ] && cli "$node" status > /dev/null 2>&1; then return 0; fi
    kill -0 "${PID[$node]}" 2> /dev/null || break
    sleep 0.02
  done
  echo "$node did not start:" >&2
  tail -n 5 "$work/$node/log" >&2
  return 1
}

kill_node() {
  local node=$1
  kill -9 "${PID[$node]}" 2> /dev/null
  wait "${PID[$node]}" 2> /dev/null
  echo "=== crashloop: kill -9 $(date +%T.%N)" >> "$work/$node/log"
  unset "PID[$node]"
}

stop_node() {
  local node=$1
  [ -n "${PID[$node]:-}" ] || return 0
  kill "${PID[$node]}" 2> /dev/null
  wait "${PID[$node]}" 2> /dev/null
  unset "PID[$node]"
}

# The node's /p2p address on loopback, from its log (the last start's).
addr_of() {
  grep -o "listening on /ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*" "$work/$1/log" | tail -n 1 | cut -d' ' -f3
}

# Records node $1's event stream (one JSON object per line) into $2 until the node dies.
record_events() {
  local node=$1 file=$2 base token
  base=$(cat "$work/$node/api")
  token=$(cat "$work/$node/api.cookie")
  curl -sN -H "Authorization: Bearer $token" "$base/api/v1/events" 2> /dev/null |
    sed -un 's/^data: *//p' >> "$file" &
  BG+=($!)
  # The stream is open once curl is connected; give it that moment.
  sleep 0.05
}

# An initialised vendor serving books, with catalog $2 ("answers" or "declines").
make_vendor() {
  local node=$1 kind=$2 category=books
  "$bin" --data-dir "$work/$node" init --vendor "Crash Vendor" --category books > /dev/null
  [ "$kind" = declines ] && category=travel
  cat > "$work/$node/catalog.toml" << EOF
[[item]]
category = "$category"
title = "Any book"
keywords = ["book"]
price = "12.00"
currency = "EUR"
EOF
}

make_person() {
  mkdir -p "$work/$1"
  "$bin" --data-dir "$work/$1" init > /dev/null
}

# Casts through the CLI on node $1, appending each acknowledged id to $2, until a cast fails
# (the daemon died) or $work/stop exists. Pauses $3 seconds between casts.
cast_loop() {
  local node=$1 file=$2 pause=${3:-0} n=0 out
  while [ ! -e "$work/stop" ]; do
    out=$(cli "$node" intent cast --category books --text "book number $n" 2> /dev/null) || break
    echo "${out##* }" >> "$file"
    n=$((n + 1))
    [ "$pause" = 0 ] || sleep "$pause"
  done
}

# Ids in $1 (one a line) not in $2: how many.
missing() { sort -u "$1" | comm -23 - <(sort -u "$2") | wc -l; }
count() { sort -u "$1" | grep -c . ; }
# Lines of $1 that occur more than once.
dupes() { sort "$1" | uniq -d | grep -c . ; }

json_line() { # path kill key=value...
  local path=$1 kill=$2 out
  shift 2
  out="{\"path\":\"$path\",\"kill\":$kill"
  local kv
  for kv in "$@"; do out+=",\"${kv%%=*}\":${kv#*=}"; done
  echo "$out}"
}

summary() { # path key=value...
  local path=$1 out
  shift
  out="{\"path\":\"$path\",\"summary\":true"
  local kv
  for kv in "$@"; do out+=",\"${kv%%=*}\":${kv#*=}"; done
  echo "$out}"
}

new_work() {
  work=$root/$1
  rm -rf "$work"
  mkdir -p "$work"
}

# Ends a path: stops what is running, returns 0 if clean.
end_path() {
  local p
  touch "$work/stop"
  for p in "${BG[@]}"; do kill "$p" 2> /dev/null; done
  for p in "${BG[@]}"; do wait "$p" 2> /dev/null; done
  BG=()
  for p in "${!PID[@]}"; do stop_node "$p"; done
}

# ---------------------------------------------------------------------------------------
path_cast() {
  new_work cast
  make_person p
  local acked=$work/acked held=$work/held lost=0 dups=0 failed=0 k=0
  : > "$acked"
  start_node p --bootstrap "$AWAY" || failed=1
  while [ "$failed" -eq 0 ] && [ "$k" -lt "$kills" ]; do
    k=$((k + 1))
    cast_loop p "$acked" &
    local caster=$!
    rand_sleep
    kill_node p
    wait "$caster"
    start_node p --bootstrap "$AWAY" || { failed=$((failed + 1)); break; }
    cli p --json intent list | jq -r '.[].id' > "$held" || { failed=$((failed + 1)); break; }
    local l d
    l=$(missing "$acked" "$held")
    d=$(dupes "$held")
    lost=$((l > lost ? l : lost))
    dups=$((d > dups ? d : dups))
    json_line cast "$k" acknowledged="$(count "$acked")" lost="$l" duplicates="$d"
  done
  end_path
  summary cast kills="$k" acknowledged="$(count "$acked")" lost="$lost" duplicates="$dups" failed_starts="$failed"
  [ "$lost" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------------------------------
# ingest and answer: P steady, V killed. $1: the path name, $2: V's catalog kind.
path_vendor_killed() {
  local name=$1 kind=$2
  new_work "$name"
  make_person p
  make_vendor v "$kind"
  local cast=$work/p-acked events=$work/v-events acked=$work/acked held=$work/v-held
  local read=$work/v-read offers=$work/p-offers
  : > "$cast"
  : > "$events"
  start_node p || { summary "$name" failed_starts=1; return 1; }
  local p_addr
  p_addr=$(addr_of p)
  (while [ ! -e "$work/stop" ]; do cast_loop p "$cast" 0.05; sleep 0.1; done) &
  BG+=($!)
  local lost=0 dups=0 failed=0 uncommitted=0 k=0
  start_node v --bootstrap "$p_addr" || failed=1
  while [ "$failed" -eq 0 ] && [ "$k" -lt "$kills" ]; do
    k=$((k + 1))
    record_events v "$events"
    rand_sleep
    # The last read right before the kill (ingest), then the kill.
    if [ "$name" = ingest ]; then
      cli v --json vendor intents 2> /dev/null | jq -r '.[].id' > "$read" || : > "$read"
    fi
    kill_node v
    start_node v --bootstrap "$p_addr" || { failed=$((failed + 1)); break; }
    jq -r 'select(.type == "intent-received") | .intent' "$events" > "$acked"
    cli v --json vendor intents | jq -r '.[].id' > "$held" || { failed=$((failed + 1)); break; }
    local l d u=0
    l=$(missing "$acked" "$held")
    d=$(($(dupes "$held") + $(dupes "$acked")))
    if [ "$name" = ingest ]; then
      u=$(sort -u "$read" | comm -23 - <(sort -u "$held") | comm -23 - <(sort -u "$acked") | wc -l)
      uncommitted=$((uncommitted + u))
      json_line "$name" "$k" acknowledged="$(count "$acked")" lost="$l" duplicates="$d" \
        read_before_kill="$(count "$read")" read_uncommitted="$u"
    else
      cli p --json offers | jq -r '.[] | "\(.intent) \(.vendor)"' > "$offers" || : > "$offers"
      d=$((d + $(dupes "$offers")))
      json_line "$name" "$k" acknowledged="$(count "$acked")" lost="$l" duplicates="$d" \
        offers_at_person="$(count "$offers")"
    fi
    lost=$((l > lost ? l : lost))
    dups=$((d > dups ? d : dups))
  done
  touch "$work/stop"
  local extra=()
  if [ "$name" = answer ] && [ "$failed" -eq 0 ]; then
    # Every intent V acknowledged gets its one offer, once V is back.
    local waited=0 unanswered
    while :; do
      cli p --json offers | jq -r '.[] | "\(.intent) \(.vendor)"' > "$offers" || : > "$offers"
      unanswered=$(sort -u "$acked" | comm -23 - <(cut -d' ' -f1 "$offers" | sort -u) | wc -l)
      [ "$unanswered" -eq 0 ] || [ "$waited" -ge 90 ] && break
      sleep 1
      waited=$((waited + 1))
    done
    local d
    d=$(dupes "$offers")
    dups=$((d > dups ? d : dups))
    lost=$((unanswered > lost ? unanswered : lost))
    cli v --json vendor intents | jq -r '.[].id' > "$held"
    extra=(unanswered_at_end="$unanswered" offers_at_person="$(count "$offers")"
      cast_by_person="$(count "$cast")" not_reached="$(missing "$cast" "$held")")
  fi
  [ "$name" = ingest ] && extra=(read_uncommitted="$uncommitted")
  end_path
  summary "$name" kills="$k" acknowledged="$(count "$acked")" lost="$lost" duplicates="$dups" \
    failed_starts="$failed" "${extra[@]}"
  [ "$lost" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------------------------------
path_offer() {
  new_work offer
  make_person p
  make_vendor v answers
  local cast=$work/p-acked delivered=$work/delivered offers=$work/p-offers held=$work/p-held
  local pairs=$work/p-pairs
  : > "$cast"
  : > "$delivered"
  start_node v || { summary offer failed_starts=1; return 1; }
  local v_addr lost=0 dups=0 failed=0 k
  v_addr=$(addr_of v)
  start_node p --bootstrap "$v_addr" || failed=1
  k=0
  while [ "$failed" -eq 0 ] && [ "$k" -lt "$kills" ]; do
    k=$((k + 1))
    cast_loop p "$cast" 0.05 &
    local caster=$!
    rand_sleep
    kill_node p
    wait "$caster"
    # Acknowledged up to the kill: the items P took from V's mailbox (deposited, not held).
    local acks
    acks=$(cli v status --json | jq '(.counters["mailbox-deposited"] // 0) - .mailbox.items')
    start_node p --bootstrap "$v_addr" || { failed=$((failed + 1)); break; }
    cli p --json offers > "$work/offers.json" || { failed=$((failed + 1)); break; }
    jq -r '.[].id' "$work/offers.json" > "$offers"
    jq -r '.[] | "\(.intent) \(.vendor)"' "$work/offers.json" > "$pairs"
    cli p --json intent list | jq -r '.[].id' > "$held"
    local l lc d held_offers
    held_offers=$(count "$offers")
    l=$((acks > held_offers ? acks - held_offers : 0))
    lc=$(missing "$cast" "$held")
    d=$(($(dupes "$offers") + $(dupes "$pairs")))
    json_line offer "$k" acknowledged="$acks" lost="$l" duplicates="$d" \
      offers_at_person="$held_offers" casts_acknowledged="$(count "$cast")" casts_lost="$lc"
    l=$((l + lc))
    lost=$((l > lost ? l : lost))
    dups=$((d > dups ? d : dups))
  done
  # At the end (P up): every offer V delivered to the mailbox reaches P.
  local waited=0 undelivered=0
  if [ "$failed" -eq 0 ]; then
    touch "$work/stop"
    while :; do
      cli v --json vendor offers | jq -r '.[] | select(.delivery == "delivered") | .id' > "$delivered"
      cli p --json offers | jq -r '.[].id' > "$offers" || : > "$offers"
      undelivered=$(missing "$delivered" "$offers")
      [ "$undelivered" -eq 0 ] || [ "$waited" -ge 60 ] && break
      sleep 1
      waited=$((waited + 1))
    done
  fi
  lost=$((undelivered > lost ? undelivered : lost))
  end_path
  summary offer kills="$k" delivered_to_mailbox="$(count "$delivered")" lost="$lost" \
    duplicates="$dups" failed_starts="$failed" not_at_person_at_end="$undelivered" \
    casts_acknowledged="$(count "$cast")"
  [ "$lost" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$failed" -eq 0 ]
}

# ---------------------------------------------------------------------------------------
# Casts one intent, then withdraws the one cast before it, until a CLI call fails or stop.
withdraw_loop() {
  local node=$1 file=$2 previous="" n=0 out id
  while [ ! -e "$work/stop" ]; do
    out=$(cli "$node" intent cast --category books --text "book number $n" 2> /dev/null) || break
    id=${out##* }
    n=$((n + 1))
    if [ -n "$previous" ]; then
      out=$(cli "$node" intent withdraw "$previous" 2> /dev/null) || break
      echo "${out##* }" >> "$file"
    fi
    previous=$id
  done
}

path_withdraw() {
  new_work withdraw
  make_person p
  make_vendor v declines
  local acked=$work/acked list=$work/p-list withdrawn=$work/p-withdrawn
  : > "$acked"
  start_node v || { summary withdraw failed_starts=1; return 1; }
  local v_addr lost=0 dups=0 failed=0 k
  v_addr=$(addr_of v)
  start_node p --bootstrap "$v_addr" || failed=1
  k=0
  while [ "$failed" -eq 0 ] && [ "$k" -lt "$kills" ]; do
    k=$((k + 1))
    withdraw_loop p "$acked" &
    local looper=$!
    rand_sleep
    kill_node p
    wait "$looper"
    start_node p --bootstrap "$v_addr" || { failed=$((failed + 1)); break; }
    cli p --json intent list > "$list" || { failed=$((failed + 1)); break; }
    jq -r '.[] | select(.status == "withdrawn") | .id' "$list" > "$withdrawn"
    local l d
    l=$(missing "$acked" "$withdrawn")
    d=$(jq -r '.[].id' "$list" | sort | uniq -d | grep -c .)
    json_line withdraw "$k" acknowledged="$(count "$acked")" lost="$l" duplicates="$d"
    lost=$((l > lost ? l : lost))
    dups=$((d > dups ? d : dups))
  done
  # V holds none of the acknowledged withdrawals' intents open.
  local waited=0 open=0
  if [ "$failed" -eq 0 ]; then
    while :; do
      open=$(cli v --json vendor intents | jq -r '.[] | select(.status == "open") | .id' |
        sort -u | comm -12 - <(sort -u "$acked") | wc -l)
      [ "$open" -eq 0 ] || [ "$waited" -ge 60 ] && break
      sleep 1
      waited=$((waited + 1))
    done
  fi
  local at_vendor
  at_vendor=$(cli v --json vendor intents | jq -r '.[].id' | sort -u | comm -12 - <(sort -u "$acked") | wc -l)
  end_path
  summary withdraw kills="$k" acknowledged="$(count "$acked")" lost="$lost" duplicates="$dups" \
    failed_starts="$failed" vendor_open="$open" vendor_held="$at_vendor" drained_after_s="$waited"
  [ "$lost" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$open" -eq 0 ]
}

run_path() {
  BG=()
  case $1 in
    cast) path_cast ;;
    ingest) path_vendor_killed ingest declines ;;
    answer) path_vendor_killed answer answers ;;
    offer) path_offer ;;
    withdraw) path_withdraw ;;
  esac
}

status=0
paths=$which_path
[ "$which_path" = all ] && paths="cast ingest answer offer withdraw"
for path in $paths; do
  if ! run_path "$path"; then
    status=1
    echo "crashloop: $path FAILED; data and logs (log in each node's folder) in $root/$path" >&2
  fi
done
if [ "$status" -eq 0 ] && [ -z "${VRM_CRASH_DIR:-}" ]; then
  rm -rf "$root"
else
  echo "crashloop: data and logs in $root" >&2
fi
exit "$status"
