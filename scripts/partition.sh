#!/usr/bin/env bash
# A network cut in two and healed, in Linux network namespaces made for this run (needs
# root, ip, nft and jq; .ci/run installs them):
#
#   side a (10.99.0.1): service node sa, vendors ba (books) and ea (electronics), light person pa
#   side b (10.99.0.2): service node sb, vendors bb (books) and eb (electronics), light person pb
#
# sb and the vendors dial the service nodes of both sides; each person dials its own side's.
# Once every vendor answers a first intent from each side, nftables drops every packet
# between the sides for CUT_S seconds (default 75: long enough for two pings in a row to time
# out and the links to close). Each person casts INTENTS books and INTENTS electronics intents during
# the cut; the link comes back. Then every vendor must hold every intent of its category from
# both sides and each person must have exactly one offer from each vendor of the category
# for each intent: nothing lost, nothing twice. Prints one JSON line; exits 1 if anything
# failed.
#
#   scripts/partition.sh      VRM_BIN=target/debug/vrm (default), CUT_S=75, INTENTS=5
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "partition.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in ip nft jq; do
  command -v "$tool" > /dev/null || { echo "partition.sh: needs $tool" >&2; exit 2; }
done
bin=$(realpath "${VRM_BIN:-target/debug/vrm}")
[ -x "$bin" ] || { echo "partition.sh: no binary at $bin (cargo build first)" >&2; exit 2; }
cut_s=${CUT_S:-75}
per_side=${INTENTS:-5}

tag=vp$$
side_a=$tag-a side_b=$tag-b
work=$(mktemp -d /tmp/vrm-partition.XXXXXX)
nodes=(sa ba ea pa sb bb eb pb)

cleanup() {
  local ns
  for ns in "$side_a" "$side_b"; do
    ip netns pids "$ns" 2> /dev/null | xargs -r kill 2> /dev/null || true
  done
  wait 2> /dev/null || true
  for ns in "$side_a" "$side_b"; do ip netns del "$ns" 2> /dev/null || true; done
}
trap cleanup EXIT
fail() {
  echo "partition.sh: $*" >&2
  local node
  for node in "${nodes[@]}"; do
    [ -f "$work/$node.log" ] && { echo "--- $node log" >&2; tail -n 8 "$work/$node.log" >&2; }
  done
  exit 1
}

ip netns add "$side_a"
ip netns add "$side_b"
ip link add a0 netns "$side_a" type veth peer name b0 netns "$side_b"
ip netns exec "$side_a" ip addr add 10.99.0.1/24 dev a0
ip netns exec "$side_b" ip addr add 10.99.0.2/24 dev b0
for ns in "$side_a" "$side_b"; do
  ip netns exec "$ns" ip link set lo up
done
ip netns exec "$side_a" ip link set a0 up
ip netns exec "$side_b" ip link set b0 up

ns_of() { case $1 in *a) echo "$side_a" ;; *) echo "$side_b" ;; esac; }
ip_of() { case $1 in *a) echo 10.99.0.1 ;; *) echo 10.99.0.2 ;; esac; }
vrm() { local node=$1; shift; ip netns exec "$(ns_of "$node")" timeout 60 "$bin" --data-dir "$work/$node" "$@"; }

port=4100
start() {
  local node=$1
  shift
  port=$((port + 1))
  ip netns exec "$(ns_of "$node")" "$bin" --data-dir "$work/$node" daemon --no-mdns \
    --listen "/ip4/$(ip_of "$node")/tcp/$port" --api 127.0.0.1:0 "$@" > "$work/$node.log" 2>&1 &
  local i
  for i in $(seq 300); do
    grep -qs "API on" "$work/$node.log" && return 0
    sleep 0.1
  done
  fail "$node did not start"
}
addr_of() {
  grep -o "listening on /ip4/$(ip_of "$1")/[^ ]*" "$work/$1.log" | head -1 | sed 's/listening on //'
}

for node in "${nodes[@]}"; do
  case $node in
    b?) "$bin" --data-dir "$work/$node" init --vendor "Books $node" --category books > /dev/null ;;
    e?) "$bin" --data-dir "$work/$node" init --vendor "Electronics $node" --category electronics > /dev/null ;;
    *) "$bin" --data-dir "$work/$node" init > /dev/null ;;
  esac
done
start sa --role service
start sb --role service --bootstrap "$(addr_of sa)"
both=(--bootstrap "$(addr_of sa)" --bootstrap "$(addr_of sb)")
for node in ba ea bb eb; do start "$node" "${both[@]}"; done
start pa --role light --bootstrap "$(addr_of sa)"
start pb --role light --bootstrap "$(addr_of sb)"

cast() {
  local node=$1 category=$2 text=$3
  vrm "$node" intent cast --category "$category" --text "$text" --max-price 30 --currency EUR \
    --json | jq -r .id
}
offers_of() { vrm "$1" offers --intent "$2" --json | jq length; }
# Waits up to $1 seconds until every intent in $2 (a file of "person id" lines) has $3 offers.
wait_offers() {
  local patience=$1 list=$2 want=$3 i person id all
  for i in $(seq $((patience * 2))); do
    all=true
    while read -r person id; do
      [ "$(offers_of "$person" "$id")" -ge "$want" ] || { all=false; break; }
    done < "$list"
    [ "$all" = true ] && return 0
    sleep 0.5
  done
  return 1
}

# Warm-up: one intent from each side reaches both vendors of its category.
for i in $(seq 300); do
  [ "$(vrm pa status --json | jq '.service_nodes | length')" -ge 1 ] &&
    [ "$(vrm pb status --json | jq '.service_nodes | length')" -ge 1 ] && break
  sleep 0.1
done
: > "$work/warm"
echo "pa $(cast pa books "Warm-up from a")" >> "$work/warm"
echo "pb $(cast pb electronics "Warm-up from b")" >> "$work/warm"
wait_offers 60 "$work/warm" 2 || fail "the warm-up intents did not get both vendors' offers"

# The cut.
for ns in "$side_a" "$side_b"; do
  ip netns exec "$ns" nft -f - << EOF
table inet cut {
  chain input { type filter hook input priority 0; ip saddr 10.99.0.0/24 ip daddr 10.99.0.0/24 iifname != "lo" drop; }
  chain output { type filter hook output priority 0; ip daddr 10.99.0.0/24 oifname != "lo" drop; }
}
EOF
done
cut_at=$(date +%s)
: > "$work/cast"
for n in $(seq "$per_side"); do
  for person in pa pb; do
    echo "$person $(cast "$person" books "Novel $n from $person")" >> "$work/cast"
    echo "$person $(cast "$person" electronics "Laptop $n from $person")" >> "$work/cast"
  done
done
# During the cut each side answers its own intents.
wait_offers 60 "$work/cast" 1 || fail "the intents were not answered on their own side during the cut"
sleep $((cut_s - ($(date +%s) - cut_at)))
cross_links=0
for node in sa ba ea; do
  for other in sb bb eb; do
    other_id=$(addr_of "$other" | sed 's|.*/p2p/||')
    cross_links=$((cross_links + $(vrm "$node" peers --json | jq --arg p "$other_id" '[.[] | select(.peer == $p)] | length')))
  done
done
for ns in "$side_a" "$side_b"; do ip netns exec "$ns" nft delete table inet cut; done
healed_at=$(date +%s)

# Healed: every intent gets both vendors' offers.
wait_offers 150 "$work/cast" 2 || fail "not every intent got both vendors' offers within 150 s of the heal"
heal_s=$(($(date +%s) - healed_at))
total=0 duplicates=0
while read -r person id; do
  n=$(offers_of "$person" "$id")
  total=$((total + n))
  [ "$n" -eq 2 ] || duplicates=$((duplicates + n - 2))
done < "$work/cast"
for vendor in ba bb ea eb; do
  category=books
  [[ $vendor == e* ]] && category=electronics
  expected=$(($(grep -c . "$work/cast") / 2 + 1))
  held=$(vrm "$vendor" vendor intents --json | jq --arg c "$category" '[.[] | select(.category == $c)] | length')
  [ "$held" -eq "$expected" ] || fail "$vendor holds $held $category intents, not $expected"
done
[ "$duplicates" -eq 0 ] || fail "$duplicates offers more than one per vendor and intent"
caught_up=0
for node in "${nodes[@]}"; do
  caught_up=$((caught_up + $(vrm "$node" status --json | jq '.counters["caught-up"] // 0')))
done
printf '{"partition":"ok","cut_s":%d,"cross_links_at_heal":%d,"intents":%d,"offers":%d,"duplicates":%d,"heal_s":%d,"caught_up":%d}\n' \
  "$cut_s" "$cross_links" "$(grep -c . "$work/cast")" "$total" "$duplicates" "$heal_s" "$caught_up"
rm -rf "$work"
