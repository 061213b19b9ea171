#!/usr/bin/env bash
# Persons and vendors behind NAT, in Linux network namespaces made for this run (needs root,
# ip and nft; .ci/run installs them):
#
#   public:  a service node S on 10.0.0.1 (its loopback), with routes to both homes
#   router1: NAT for home1 (masquerade out; every connection from outside is dropped)
#   home1:   the person's light node P, 192.168.1.2
#   router2: NAT for home2, the same rules
#   home2:   a vendor V, 192.168.2.2, its only peer S, a light node (`--role light`)
#
# Checks that nothing from the public side can open a connection into either home (the
# routes exist; only the NAT's rules stop it), that P casts, that V gets the intent (by its
# filter subscription at S: V is in no mesh) and answers, and that the offer reaches P through its mailbox on S, with no connection
# between P and V, and P's PeerId nowhere in V's log or data directory. Prints one JSON
# line; exits 1 if anything failed.
#
#   scripts/nat.sh            VRM_BIN=target/debug/vrm (default)
umask 077 # data directories are their owner's alone (vrm refuses others)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "nat.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in ip nft jq; do
  command -v "$tool" > /dev/null || { echo "nat.sh: needs $tool" >&2; exit 2; }
done
bin=$(realpath "${VRM_BIN:-target/debug/vrm}")
[ -x "$bin" ] || { echo "nat.sh: no binary at $bin (cargo build first)" >&2; exit 2; }

tag=vn$$
pub=$tag-pub r1=$tag-r1 h1=$tag-h1 r2=$tag-r2 h2=$tag-h2
work=$(mktemp -d /tmp/vrm-nat.XXXXXX)
pids=()

cleanup() {
  local pid ns
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  # Whatever still runs inside the namespaces (the daemons themselves), then the namespaces.
  for ns in "$pub" "$r1" "$h1" "$r2" "$h2"; do
    ip netns pids "$ns" 2> /dev/null | xargs -r kill 2> /dev/null || true
  done
  wait 2> /dev/null || true
  for ns in "$pub" "$r1" "$h1" "$r2" "$h2"; do ip netns del "$ns" 2> /dev/null || true; done
}
trap cleanup EXIT
fail() {
  echo "nat.sh: $*" >&2
  local node
  for node in s v p; do
    [ -f "$work/$node.log" ] && { echo "--- $node log" >&2; tail -n 15 "$work/$node.log" >&2; }
  done
  exit 1
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in "$pub" "$r1" "$h1" "$r2" "$h2"; do
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
done
in_ns "$pub" ip addr add 10.0.0.1/32 dev lo

# Router N joins the public side on 10.0.N.0/24 and its home on 192.168.N.0/24.
wire_home() {
  local n=$1 router=$2 home=$3
  ip link add "r$n-out" netns "$router" type veth peer name "pub-r$n" netns "$pub"
  ip link add "r$n-in" netns "$router" type veth peer name "home$n" netns "$home"
  in_ns "$pub" ip addr add "10.0.$n.1/24" dev "pub-r$n"
  in_ns "$pub" ip link set "pub-r$n" up
  in_ns "$pub" ip route add "192.168.$n.0/24" via "10.0.$n.2"
  in_ns "$router" ip addr add "10.0.$n.2/24" dev "r$n-out"
  in_ns "$router" ip addr add "192.168.$n.1/24" dev "r$n-in"
  in_ns "$router" ip link set "r$n-out" up
  in_ns "$router" ip link set "r$n-in" up
  in_ns "$router" ip route add default via "10.0.$n.1"
  in_ns "$router" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$home" ip addr add "192.168.$n.2/24" dev "home$n"
  in_ns "$home" ip link set "home$n" up
  in_ns "$home" ip route add default via "192.168.$n.1"
  in_ns "$router" nft -f - << EOF
table ip nat {
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "r$n-out" masquerade
  }
}
table ip filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "r$n-in" accept
  }
}
EOF
}
wire_home 1 "$r1" "$h1"
wire_home 2 "$r2" "$h2"

vrm() { local ns=$1 node=$2; shift 2; in_ns "$ns" timeout 60 "$bin" --data-dir "$work/$node" "$@"; }

# Starts node $2 in namespace $1 listening on $3; further daemon flags follow.
start() {
  local ns=$1 node=$2 listen=$3
  shift 3
  ip netns exec "$ns" "$bin" --data-dir "$work/$node" daemon --no-mdns --listen "$listen" \
    --api 127.0.0.1:0 "$@" > "$work/$node.log" 2>&1 &
  pids+=($!)
  local i
  for i in $(seq 300); do
    grep -q "API on" "$work/$node.log" && return 0
    sleep 0.1
  done
  fail "$node did not start"
}
peer_id() { grep -o "listening on [^ ]*" "$work/$1.log" | head -1 | sed 's|.*/p2p/||'; }

mkdir -p "$work/v" "$work/s" "$work/p"
"$bin" --data-dir "$work/v" init --vendor "Vendor behind NAT" --category books > /dev/null
"$bin" --data-dir "$work/s" init > /dev/null
"$bin" --data-dir "$work/p" init > /dev/null
# Every address here is private: AutoNAT must count them (P, `role = "auto"`, asks S to dial
# it back, and S answers such probes).
for node in s p; do
  sed -i '/^\[network\]/a autonat_private_addresses = true' "$work/$node/config.toml"
done
start "$pub" s /ip4/10.0.0.1/tcp/4001 --role service
s_addr=/ip4/10.0.0.1/tcp/4001/p2p/$(peer_id s)
start "$h2" v /ip4/192.168.2.2/tcp/4002 --bootstrap "$s_addr" --role light
start "$h1" p /ip4/192.168.1.2/tcp/4003 --bootstrap "$s_addr"

# The NAT: from the public side, no connection reaches into either home.
inbound_blocked=true
for target in 192.168.1.2/4003 192.168.2.2/4002; do
  if in_ns "$pub" timeout 3 bash -c "exec 3<>/dev/tcp/${target%/*}/${target#*/}" 2> /dev/null; then
    inbound_blocked=false
  fi
done
[ "$inbound_blocked" = true ] || fail "a connection from outside reached a home"

# P knows S as its service node, V is subscribed at S: then P casts.
for i in $(seq 300); do
  [ "$(vrm "$h1" p status --json | jq '.service_nodes | length')" -ge 1 ] &&
    grep -q "subscribed to this vendor's intent topics" "$work/v.log" && break
  sleep 0.1
done
cast=$(vrm "$h1" p intent cast --category books --text "A used paperback" \
  --max-price 30 --currency EUR --json) || fail "the cast failed"
id=$(jq -r .id <<< "$cast")
start_ms=$(date +%s%3N)
offers=0
for i in $(seq 600); do
  offers=$(vrm "$h1" p offers --intent "$id" --json | jq length)
  [ "$offers" -ge 1 ] && break
  sleep 0.1
done
ms=$(($(date +%s%3N) - start_ms))
[ "$offers" -ge 1 ] || fail "no offer reached the person behind NAT within 60 s"
p_id=$(peer_id p)
together=$(vrm "$h2" v peers --json | jq --arg p "$p_id" '[.[] | select(.peer == $p)] | length')
[ "$together" -eq 0 ] || fail "the vendor is connected to the person's node"
! grep -q "$p_id" "$work/v.log" || fail "the vendor's log names the person's node"
! grep -rqa "$p_id" "$work/v" || fail "the vendor's data directory holds the person's PeerId"
# P follows AutoNAT: S's dial-back cannot pass the NAT, so P stays a light node.
for i in $(seq 400); do
  grep -q "AutoNAT finds this node" "$work/p.log" && break
  sleep 0.1
done
grep -q "AutoNAT finds this node not reachable from outside (it stays a light node)" "$work/p.log" ||
  fail "AutoNAT did not find the person behind NAT unreachable: $(grep AutoNAT "$work/p.log")"
role=$(vrm "$h1" p status --json | jq -r .role)
[ "$role" = light ] || fail "the person behind NAT runs as a $role node"
vendor_role=$(vrm "$h2" v status --json | jq -r .role)
[ "$vendor_role" = light ] || fail "the vendor behind NAT runs as a $vendor_role node"
printf '{"nat":"ok","inbound_blocked":%s,"offers":%d,"cast_to_offer_ms":%d,"vendor_connected_to_person":false,"autonat":"private","role":"%s","vendor_role":"%s"}\n' \
  "$inbound_blocked" "$offers" "$ms" "$role" "$vendor_role"
rm -rf "$work"
