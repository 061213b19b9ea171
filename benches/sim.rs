//! A network past what one machine's daemons reach: `VRM_SIM_SIZES` (250 and 1000) real vrm
//! nodes in one process (each its own keys, sled store, TCP + Noise + yamux on loopback,
//! gossipsub, request-response), printed as JSON lines, one per size, then one with the
//! growth from the smallest size to the largest.
//!
//! Roles, for a size of N: N/10 service nodes carrying all 8 shards, N/10 vendors (service
//! role, carrying only their own category's shard; 8 categories, one per shard, in turn), and
//! the rest persons' light nodes. Service nodes dial the one before them and a pseudo-random
//! earlier one; vendors and light nodes dial two pseudo-random service nodes. Kademlia is
//! off (so is the DHT's traffic), everything else as a daemon runs it.
//!
//! After the network settles (`VRM_SIM_SETTLE`, 20 s), `VRM_SIM_CASTS` (200) intents are cast
//! from light nodes picked in turn, `VRM_SIM_RATE` (10) per second, each in one of the
//! vendors' categories in turn; every vendor of that category makes an offer (its catalog's price is
//! under the intent's limit), sealed into the person's mailbox and pushed to it. Reported per
//! size: the delivery ratio (offers stored at the casters within 30 s of the last cast, over
//! offers expected), cast to first offer and cast to last offer p50/p99 (a cast with none
//! sorted last: a percentile on it is `null`), connections per role (mean, max), gossip
//! duplicates per message (copies received beyond the first, per distinct intent, summed
//! over the nodes, from gossipsub's own counters), bytes sent and received per node by role
//! during the casts (from the transports' counters), the process's resident memory per
//! node, and how many of the machine's cores the whole network kept busy while idle (the
//! last half of the settling time) and while casting.
//!
//! Run: `cargo bench --bench sim` (about 10 minutes on 2 cores). `VRM_SIM_DIR` chooses where
//! the data directories go (default: /dev/shm, so that 1,000 stores do not measure the disk;
//! each line names the file system).

#[path = "support/file_system.rs"]
mod file_system;
#[path = "support/nodes.rs"]
mod nodes;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use nodes::{addr, percentile};
use serde_json::{Value, json};
use vrm::config::Role;
use vrm::node::{NodeEvent, NodeHandle};

/// What a node of the simulation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Service,
    Vendor,
    Light,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Vendor => "vendor",
            Kind::Light => "light",
        }
    }
}

struct Node {
    kind: Kind,
    category: Option<String>,
    handle: NodeHandle,
}

fn pseudo_random(i: usize, salt: u64) -> usize {
    ((i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as usize
}

async fn start(
    root: &std::path::Path,
    i: usize,
    kind: Kind,
    category: Option<&str>,
    bootstrap: Vec<libp2p::Multiaddr>,
) -> NodeHandle {
    let role = if kind == Kind::Light {
        Role::Light
    } else {
        Role::Service
    };
    let mut config = nodes::prepare(root, i, category, role, bootstrap);
    config.max_connections = 128;
    config.cache_bytes = 1 << 20;
    config.keep_expired = Duration::from_secs(86_400);
    // Metrics on (gossipsub's counters, the transports' bytes), served on a port of its own
    // that nothing reads: the simulation reads them in process.
    config.metrics = Some("127.0.0.1:0".parse().expect("addr"));
    vrm::node::start(config).await.expect("node starts")
}

/// Starts a network of `size` nodes in `root`.
async fn network(root: &std::path::Path, size: usize) -> Vec<Node> {
    let services = (size / 10).max(4);
    let vendors = size / 10;
    let categories = nodes::categories_on_distinct_shards(usize::from(vrm::proto::SHARDS));
    let mut nodes: Vec<Node> = Vec::new();
    let mut service_addrs: Vec<libp2p::Multiaddr> = Vec::new();
    for i in 0..size {
        let (kind, category) = if i < services {
            (Kind::Service, None)
        } else if i < services + vendors {
            let k = i - services;
            (Kind::Vendor, Some(categories[k % categories.len()].clone()))
        } else {
            (Kind::Light, None)
        };
        let bootstrap: Vec<libp2p::Multiaddr> = match (kind, service_addrs.len()) {
            (_, 0) => Vec::new(),
            (Kind::Service, n) => {
                let other = pseudo_random(i, 1) % n;
                let mut to = vec![service_addrs[n - 1].clone()];
                if other != n - 1 {
                    to.push(service_addrs[other].clone());
                }
                to
            }
            (_, n) => {
                let (a, b) = (pseudo_random(i, 2) % n, pseudo_random(i, 3) % n);
                let mut to = vec![service_addrs[a].clone()];
                if b != a {
                    to.push(service_addrs[b].clone());
                }
                to
            }
        };
        let handle = start(root, i, kind, category.as_deref(), bootstrap).await;
        if kind == Kind::Service {
            service_addrs.push(addr(&handle).await);
        }
        nodes.push(Node {
            kind,
            category,
            handle,
        });
    }
    nodes
}

/// Sum of the values of the Prometheus text's series named `name` (any labels) whose labels
/// contain `label` (an empty `label` matches all).
fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, labels) = series.split_once('{').unwrap_or((series, ""));
            (series_name == name && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// What one node's counters say now.
#[derive(Default, Clone, Copy)]
struct Counters {
    bytes: f64,
    shard_received: f64,
    shard_unique: f64,
}

fn counters(node: &NodeHandle) -> Counters {
    let text = node.metrics_text().unwrap_or_default();
    Counters {
        bytes: metric(&text, "libp2p_bandwidth_bytes_total", ""),
        shard_received: metric(
            &text,
            "gossipsub_topic_msg_recv_counts_unfiltered_total",
            "/vrm/2/shard/",
        ),
        shard_unique: metric(
            &text,
            "gossipsub_topic_msg_recv_counts_total",
            "/vrm/2/shard/",
        ),
    }
}

/// CPU seconds this process has used (user and system), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One cast's outcome: ms to its first and to its last expected offer (None: not all came).
struct Outcome {
    expected: usize,
    received: usize,
    first_ms: Option<f64>,
    all_ms: Option<f64>,
}

/// Casts one intent of `category` from `caster` and follows its offers until `expected`
/// arrived or `until`.
async fn cast_and_follow(
    caster: NodeHandle,
    n: usize,
    category: String,
    expected: usize,
    until: Instant,
) -> Outcome {
    let mut events = caster.subscribe();
    let started = Instant::now();
    let request = nodes::cast_request(&category, n);
    let mut outcome = Outcome {
        expected,
        received: 0,
        first_ms: None,
        all_ms: None,
    };
    let Ok(id) = caster.cast(request).await else {
        return outcome;
    };
    let id = hex::encode(*id);
    let mut offers = HashSet::new();
    while offers.len() < expected {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(NodeEvent::OfferReceived { intent, offer, .. })) if intent == id => {
                if offers.insert(offer) && offers.len() == 1 {
                    outcome.first_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    outcome.received = offers.len();
    if offers.len() == expected {
        outcome.all_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    }
    outcome
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mean and max of `values`.
fn spread(values: &[f64]) -> Value {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let max = values.iter().copied().fold(0.0, f64::max);
    json!({"mean": (mean * 10.0).round() / 10.0, "max": max.round()})
}

/// Runs one size and prints its line; returns it.
async fn simulate(size: usize) -> Value {
    let base = std::env::var_os("VRM_SIM_DIR").unwrap_or_else(|| "/dev/shm".into());
    let root = tempfile::tempdir_in(base).expect("tempdir");
    let rss_before = rss_kib();
    let started = Instant::now();
    let nodes = network(root.path(), size).await;
    let start_secs = started.elapsed().as_secs_f64();
    // The last half of the settling time, idle, tells what the network costs doing nothing.
    let settle = Duration::from_secs(env_or("VRM_SIM_SETTLE", 20));
    tokio::time::sleep(settle / 2).await;
    let (idle_cpu, idle_started) = (cpu_secs(), Instant::now());
    tokio::time::sleep(settle / 2).await;
    let idle_cores = (cpu_secs() - idle_cpu) / idle_started.elapsed().as_secs_f64();

    let casts: usize = env_or("VRM_SIM_CASTS", 200);
    let rate: f64 = env_or("VRM_SIM_RATE", 10.0);
    // The categories some vendor serves (all 8 from 80 nodes up).
    let vendors_of: BTreeMap<String, usize> =
        nodes
            .iter()
            .filter_map(|n| n.category.clone())
            .fold(BTreeMap::new(), |mut count, c| {
                *count.entry(c).or_default() += 1;
                count
            });
    let categories: Vec<String> = vendors_of.keys().cloned().collect();
    let lights: Vec<&Node> = nodes.iter().filter(|n| n.kind == Kind::Light).collect();
    let before: Vec<Counters> = nodes.iter().map(|n| counters(&n.handle)).collect();
    let (cast_cpu, cast_started) = (cpu_secs(), Instant::now());
    let last_cast = cast_started + Duration::from_secs_f64(casts as f64 / rate);
    let until = last_cast + Duration::from_secs(30);
    let mut follow = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    for n in 0..casts {
        tick.tick().await;
        let caster = lights[pseudo_random(n, 7) % lights.len()].handle.clone();
        let category = categories[n % categories.len()].clone();
        let expected = vendors_of[category.as_str()];
        follow.spawn(cast_and_follow(caster, n, category, expected, until));
    }
    let mut outcomes = Vec::new();
    while let Some(done) = follow.join_next().await {
        outcomes.push(done.expect("cast"));
    }
    let window = cast_started.elapsed().as_secs_f64();
    let casting_cores = (cpu_secs() - cast_cpu) / window;
    let after: Vec<Counters> = nodes.iter().map(|n| counters(&n.handle)).collect();

    let expected: usize = outcomes.iter().map(|o| o.expected).sum();
    let received: usize = outcomes.iter().map(|o| o.received).sum();
    let sorted = |pick: fn(&Outcome) -> Option<f64>| {
        let mut times: Vec<f64> = outcomes.iter().filter_map(pick).collect();
        times.sort_by(f64::total_cmp);
        let missed = outcomes.len() - times.len();
        (times, missed)
    };
    let (first, first_missed) = sorted(|o| o.first_ms);
    let (all, all_missed) = sorted(|o| o.all_ms);

    let mut connections: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut bytes: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let (mut received_copies, mut unique) = (0.0, 0.0);
    for ((node, b), a) in nodes.iter().zip(&before).zip(&after) {
        let peers = node.handle.peers().await.unwrap_or_default().len() as f64;
        connections.entry(node.kind.name()).or_default().push(peers);
        bytes
            .entry(node.kind.name())
            .or_default()
            .push(a.bytes - b.bytes);
        received_copies += a.shard_received - b.shard_received;
        unique += a.shard_unique - b.shard_unique;
    }
    let rss = rss_kib().saturating_sub(rss_before);
    let count = |k: Kind| nodes.iter().filter(|n| n.kind == k).count();
    let line = json!({
        "bench": "sim",
        "nodes": size,
        "service_nodes": count(Kind::Service),
        "vendors": count(Kind::Vendor),
        "light_nodes": count(Kind::Light),
        "start_s": (start_secs * 10.0).round() / 10.0,
        "casts": casts,
        "offers_expected": expected,
        "offers_received": received,
        "delivery_ratio": ((received as f64 / expected.max(1) as f64) * 10_000.0).round() / 10_000.0,
        "first_offer_ms": {
            "p50": percentile(&first, first_missed, 0.5),
            "p99": percentile(&first, first_missed, 0.99),
            "missed": first_missed,
        },
        "all_offers_ms": {
            "p50": percentile(&all, all_missed, 0.5),
            "p99": percentile(&all, all_missed, 0.99),
            "incomplete": all_missed,
        },
        "connections": connections.iter().map(|(k, v)| (*k, spread(v))).collect::<BTreeMap<_, _>>(),
        "gossip_duplicates_per_intent": ((received_copies - unique) / casts.max(1) as f64 * 10.0).round() / 10.0,
        "gossip_copies_per_intent": (received_copies / casts.max(1) as f64 * 10.0).round() / 10.0,
        "bytes_per_node_per_s": bytes
            .iter()
            .map(|(k, v)| {
                let per_s: Vec<f64> = v.iter().map(|b| b / window).collect();
                (*k, spread(&per_s))
            })
            .collect::<BTreeMap<_, _>>(),
        "window_s": window.round(),
        "rss_kib_per_node": rss / size as u64,
        "cpu_cores_busy": {
            "idle": (idle_cores * 100.0).round() / 100.0,
            "while_casting": (casting_cores * 100.0).round() / 100.0,
            "machine": std::thread::available_parallelism().map_or(0, |n| n.get()),
        },
        "data_dir_fs": file_system::of(root.path()),
    });
    println!("{line}");
    for node in &nodes {
        node.handle.shutdown().await;
    }
    line
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sizes: Vec<usize> = std::env::var("VRM_SIM_SIZES")
        .unwrap_or_else(|_| "250,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut lines = Vec::new();
    for size in sizes {
        lines.push(simulate(size).await);
    }
    if let (Some(small), Some(large)) = (lines.first(), lines.last())
        && lines.len() > 1
    {
        let ratio = |path: &[&str]| {
            let get = |v: &Value| path.iter().try_fold(v, |v, k| v.get(k))?.as_f64();
            get(large)
                .zip(get(small))
                .map(|(l, s)| (l / s * 100.0).round() / 100.0)
        };
        println!(
            "{}",
            json!({
                "bench": "sim_growth",
                "baseline": format!("sim at {} nodes", small["nodes"]),
                "value": large["nodes"],
                "ratio_nodes": ratio(&["nodes"]),
                "ratio_first_offer_p50": ratio(&["first_offer_ms", "p50"]),
                "ratio_first_offer_p99": ratio(&["first_offer_ms", "p99"]),
                "ratio_delivery": ratio(&["delivery_ratio"]),
                "ratio_duplicates_per_intent": ratio(&["gossip_duplicates_per_intent"]),
                "ratio_bytes_per_service_node": ratio(&["bytes_per_node_per_s", "service", "mean"]),
                "ratio_bytes_per_light_node": ratio(&["bytes_per_node_per_s", "light", "mean"]),
                "ratio_rss_per_node": ratio(&["rss_kib_per_node"]),
            })
        );
    }
}
