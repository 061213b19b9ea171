//! Network benchmarks on in-process loopback networks, printed as JSON lines. Each node is
//! a real vrm node (its own sled store, TCP, Noise, yamux, gossipsub); every node of a
//! network shares the machine's cores. Topology: sparse (`dials`): the persons' nodes carry
//! all 8 shards and form one mesh, each dialing the one before it and a pseudo-random
//! earlier one; vendors carry only their own categories' shards and dial two earlier
//! persons' nodes; Kademlia off, so it stays sparse.
//!
//! **Latency** (`latency_cast_to_first_offer`): on networks of `VRM_BENCH_SIZES` (10, 50,
//! 100) nodes, one vendor in five (books), `VRM_BENCH_CASTS` (200) casts per size, one at a
//! time from the persons in turn, each timed from the call to cast until the first offer is
//! stored at the caster (`stages_p50_ms` splits that time at the caster's publication, the
//! answering vendor's store and its offer). A cast with no offer within 10 s is counted as missed and sorted
//! last, so a percentile that falls on it is `null`, never a figure without it. Baseline,
//! measured in the same run on the same topology: bare libp2p swarms doing the same hops
//! (`support/bare_network.rs`: hand-over to a neighbour, gossip to the vendors, every
//! vendor's reply to a mailbox neighbour, pushed from there to the caster), nothing of vrm.
//! `latency_light_cast_to_first_offer` is the same from a light node attached to two of the
//! network's non-vendor nodes, against a bare node attached the same way.
//!
//! **Throughput** (`throughput_step`, `throughput_held`): 20 nodes, 8 of them vendors, two
//! for each of 4 categories on 4 different shards; the 12 others publish intents of the 4
//! categories in turn at a total rate, for `VRM_BENCH_THROUGHPUT_SECS` (60; 0 skips it) per
//! step, on a fresh network per step. The intents are signed beforehand (persons' own nodes
//! sign them) and published as a service node publishes what light clients hand it
//! (checked, kept, relayed: `NodeHandle::publish_handed_over`), since one node's own casts
//! are paced by its neighbours' light-push limits (20/s each). (Before 2026-11-29 they went
//! out raw, unknown to the publishing node, whose catch-up then fetched each one back: one
//! extra intake per intent.) An intent
//! counts as delivered only if every vendor of its category stored it within 1 s of its
//! publication; the delivery times of every
//! (intent, vendor) pair are reported as a distribution, with lost pairs (never stored)
//! sorted last. Steps go from `VRM_BENCH_RATE_START` (500) by `VRM_BENCH_RATE_STEP` (500)
//! to `VRM_BENCH_GOAL` (2000) and stop at the first step that is not held (a late or lost
//! intent, or casting that fell more than 2 % behind the rate); a held goal is run a second
//! time. After a step that failed, 10 s at 100/s on the same network tell whether it
//! recovers. Baseline: the one-core `verify_strict` rate of the same run.
//!
//! **Flood** (`VRM_BENCH_FLOOD_CASTS`, 200; 0 skips it): on 20 nodes, cast-to-first-offer
//! over that many casts while quiet, then again while one node of the network publishes
//! forged intents (a flipped signature byte) on the books shard as fast as its event loop
//! takes them; with how many it sent, how many the others rejected, how many banned it, and
//! its score at those still connected to it. The quiet run of the same network is the
//! baseline.
//!
//! **Messages** (`message_vendor_to_person`, `VRM_BENCH_MESSAGES`, 200; 0 skips it): a
//! service node, a vendor and a light person's node attached to the service node; the
//! person accepts an offer, then the vendor writes that many messages into the
//! relationship, one at a time, each timed from the vendor's call until the person's node
//! has stored it (its `relationship-entry` event; the message sealed to the person,
//! deposited in the person's queue at the service node, pushed on), 100 ms apart (a
//! conversation's pace, under the mailbox's rate per depositor). A message not there
//! within 10 s is missed and sorted last. Baseline, same run: three bare libp2p swarms doing
//! the same two hops (a deposit at the middle one, its push to the third) with a message of
//! about the same size.
//!
//! **Grants** (`grant_to_held_receipt`, `revoke_to_deleted_receipt`, `VRM_BENCH_GRANTS`,
//! 60, at most the 64 grants a log holds; 0 skips it): the same three nodes; the person,
//! 100 ms apart, writes a message, grants two vault fields, revokes the grant, each timed
//! from the person's call until the vendor's answer is stored at the person's node: the
//! vendor's acknowledgement of the message (the baseline: the same hops both ways), its
//! `held` receipt (the values kept in a file of their own, synced), its `deleted` receipt
//! (the file overwritten, synced, unlinked). Only p50, p90 and max: 60 samples hold no p99.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench network`). `VRM_BENCH_DIR` chooses where
//! the nodes' data directories go (default: the system's temporary directory).

#[path = "support/file_system.rs"]
mod file_system;

#[path = "support/bare_network.rs"]
mod bare_network;
#[path = "support/nodes.rs"]
mod nodes;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::broadcast::Receiver;
use vrm::config::Role;
use vrm::node::relationships::{Draft, GrantDraft};
use vrm::node::{CastRequest, NodeEvent, NodeHandle};
use vrm::proto::{Constraints, IntentId, Price, shard_of};

use bare_network::BareNetwork;
use nodes::{addr, percentile};

struct Net {
    root: tempfile::TempDir,
    nodes: Vec<NodeHandle>,
    /// Vendor nodes by index, with the category each serves.
    vendors: Vec<(usize, String)>,
}

impl Net {
    fn is_vendor(&self, i: usize) -> bool {
        self.vendors.iter().any(|(v, _)| *v == i)
    }

    fn persons(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| !self.is_vendor(*i))
            .collect()
    }
}

/// Starts node `i` in `root`: a vendor of `category` (carrying only its shard) or a
/// person's node (carrying all shards as a service node, or light).
async fn node(
    root: &std::path::Path,
    i: usize,
    category: Option<&str>,
    bootstrap: Vec<libp2p::Multiaddr>,
    role: Role,
) -> NodeHandle {
    let config = nodes::prepare(root, i, category, role, bootstrap);
    vrm::node::start(config).await.expect("node starts")
}

/// The nodes node `i` dials, given which nodes are vendors: a person's node dials the
/// person's node before it and a pseudo-random earlier one; a vendor's node dials two such
/// earlier persons' nodes. So the persons' nodes, which carry every shard, form one sparse
/// mesh, and vendors, which carry only their own shard, hang off it and never stand between
/// two parts of another shard's mesh. (Until this version node i dialed i-1 and
/// `i * 7919 % i`, which is always node 0: every network was a line plus a hub linked to
/// everyone, and that is what every figure measured before then describes.)
fn dials(i: usize, is_vendor: impl Fn(usize) -> bool) -> Vec<usize> {
    let persons: Vec<usize> = (0..i).filter(|j| !is_vendor(*j)).collect();
    let Some(&last) = persons.last() else {
        return Vec::new();
    };
    let hash = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as usize;
    let other = persons[hash % persons.len()];
    let first = if is_vendor(i) {
        persons[(hash / 7) % persons.len()]
    } else {
        last
    };
    let mut to = vec![first];
    if other != first {
        to.push(other);
    }
    to
}

/// Where a bench's nodes keep their data: `VRM_BENCH_DIR` puts them elsewhere (for example
/// on tmpfs, to see what the disk's flushes cost); each line names the file system.
fn bench_root() -> tempfile::TempDir {
    match std::env::var_os("VRM_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("tempdir")
}

/// A sparse network of `size` nodes; node i is a vendor of `vendor_of(i)`, if any.
async fn network(size: usize, vendor_of: impl Fn(usize) -> Option<String>) -> Net {
    let root = bench_root();
    let mut nodes = Vec::new();
    let mut addrs: Vec<libp2p::Multiaddr> = Vec::new();
    let mut vendors = Vec::new();
    for i in 0..size {
        let category = vendor_of(i);
        let bootstrap = dials(i, |j| vendor_of(j).is_some())
            .into_iter()
            .map(|j| addrs[j].clone())
            .collect();
        let handle = node(
            root.path(),
            i,
            category.as_deref(),
            bootstrap,
            Role::Service,
        )
        .await;
        addrs.push(addr(&handle).await);
        if let Some(category) = category {
            vendors.push((i, category));
        }
        nodes.push(handle);
    }
    // Let connections, subscriptions and meshes settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Net {
        root,
        nodes,
        vendors,
    }
}

/// The latency network: one vendor of books in five nodes.
fn books_vendor(i: usize) -> Option<String> {
    (i % 5 == 2).then(|| "books".to_owned())
}

fn cast(n: usize) -> CastRequest {
    nodes::cast_request("books", n)
}

/// The first of `events` that `want` maps to something, within 10 s.
async fn wait_for<T>(
    events: &mut Receiver<NodeEvent>,
    mut want: impl FnMut(&NodeEvent) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return None,
            event = events.recv() => match event {
                Ok(e) => if let Some(found) = want(&e) { return Some(found) },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            },
        }
    }
}

/// Four categories on four different shards, for the throughput network.
fn throughput_categories() -> Vec<String> {
    nodes::categories_on_distinct_shards(4)
}

/// The throughput network's vendors: nodes 2 and 4 of every five, the four categories in
/// turn, so two vendors for each.
fn throughput_vendor(i: usize) -> Option<String> {
    let ordinal = match i % 5 {
        2 => (i / 5) * 2,
        4 => (i / 5) * 2 + 1,
        _ => return None,
    };
    let categories = throughput_categories();
    Some(categories[ordinal % categories.len()].clone())
}

/// One intent cast: its id, category and when the call to cast it began.
type Cast = (IntentId, String, Instant);

/// A vendor's node and what its listener saw: when each intent (hex id) arrived, and how
/// many events it missed.
type Arrivals = (
    usize,
    tokio::task::JoinHandle<(HashMap<String, Instant>, u64)>,
);

/// Every vendor's arrival times, from its events, until `stop`.
fn listen_for_arrivals(net: &Net, stop: &Arc<AtomicBool>) -> Vec<Arrivals> {
    use tokio::sync::broadcast::error::RecvError;
    net.vendors
        .iter()
        .map(|(v, _)| {
            let mut events = net.nodes[*v].subscribe();
            let stop = stop.clone();
            let listener = tokio::spawn(async move {
                let mut arrived = HashMap::new();
                let mut lagged = 0;
                while !stop.load(Ordering::Relaxed) {
                    let next = tokio::time::timeout(Duration::from_millis(100), events.recv());
                    match next.await {
                        Ok(Ok(NodeEvent::IntentReceived { intent, .. })) => {
                            arrived.entry(intent).or_insert_with(Instant::now);
                        }
                        Ok(Err(RecvError::Lagged(n))) => lagged += n,
                        Ok(Err(RecvError::Closed)) => break,
                        _ => {}
                    }
                }
                (arrived, lagged)
            });
            (*v, listener)
        })
        .collect()
}

/// A signed intent of `category`, number `n` of this run, as a person's node would hand it
/// to a service node: its id and its envelope. Its price limit is below every catalog
/// item, so vendors store and decline it (the figure is the spread of intents, not of
/// offers).
fn signed_intent(n: u64, category: &str) -> (IntentId, Vec<u8>) {
    let mut seed = [0x42; 32];
    seed[..8].copy_from_slice(&n.to_be_bytes());
    let persona = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut id = [0x17; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let now = vrm::clock::unix_now();
    let intent = vrm::proto::Intent {
        id: id.into(),
        category: category.into(),
        subcategory: None,
        text: format!("Any good offer, request {n}"),
        constraints: Constraints {
            max_price: Some(Price {
                amount: 1,
                currency: "EUR".into(),
            }),
            ..Constraints::default()
        },
        terms: vec![],
        created: now,
        expires: now + 600,
        reply_to: vrm::proto::ReplyTo::new(
            &libp2p::PeerId::random(),
            &"/ip4/127.0.0.1/tcp/9".parse().expect("addr"),
            [7; 16],
            [9; 32],
        ),
        group: None,
    };
    let envelope = vrm::proto::Envelope::seal(&intent, &persona);
    (id.into(), envelope.as_bytes().to_vec())
}

/// Publishes intents from every person of `net`, at `rate` per second in total for `secs`,
/// the categories of the network's vendors in turn. The intents are signed beforehand, as
/// persons' light nodes sign them, and each person's node publishes them as a service node
/// publishes what light clients push to it (without its own check of them).
async fn cast_at(net: &Net, secs: u64, rate: u64) -> Vec<Cast> {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut categories: Vec<String> = net.vendors.iter().map(|(_, c)| c.clone()).collect();
    categories.sort();
    categories.dedup();
    let persons = net.persons();
    let per_person = (rate * secs).div_ceil(persons.len() as u64) + 1;
    let first = RUN.fetch_add(persons.len() as u64 * per_person, Ordering::Relaxed);
    let interval = Duration::from_secs_f64(persons.len() as f64 / rate as f64);
    let mut casters = tokio::task::JoinSet::new();
    let mut prepared = Vec::new();
    for (k, &p) in persons.iter().enumerate() {
        let intents: Vec<(IntentId, String, Vec<u8>)> = (0..per_person)
            .map(|j| {
                let category = categories[(k + j as usize) % categories.len()].clone();
                let n = first + k as u64 * per_person + j;
                let (id, bytes) = signed_intent(n, &category);
                (id, category, bytes)
            })
            .collect();
        prepared.push((net.nodes[p].clone(), intents));
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    for (node, intents) in prepared {
        casters.spawn(async move {
            let mut casts: Vec<Cast> = Vec::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for (id, category, bytes) in intents {
                tick.tick().await;
                if Instant::now() >= deadline {
                    break;
                }
                let topic = vrm::proto::intent_topic(&category);
                let at = Instant::now();
                if node.publish_handed_over(&topic, bytes).await.is_ok() {
                    casts.push((id, category, at));
                }
            }
            casts
        });
    }
    let mut casts = Vec::new();
    while let Some(done) = casters.join_next().await {
        casts.extend(done.expect("caster"));
    }
    casts
}

/// How the messages of one throughput step reached the vendors of their categories.
#[derive(Default)]
struct Tally {
    /// Delay of every (message, vendor) pair that arrived, ms, sorted.
    delays: Vec<f64>,
    /// Pairs never stored.
    lost_pairs: usize,
    /// Pairs stored but not seen arrive (counted as late).
    unmeasured_pairs: usize,
    /// Messages that reached all their vendors, one of them after 1 s.
    late: usize,
    /// Messages that missed at least one of their vendors.
    lost: usize,
    /// Lost pairs by vendor node.
    lost_at: std::collections::BTreeMap<usize, usize>,
}

impl Tally {
    /// Tallies `sent` (key, category, when its publication began) against `vendors`:
    /// `arrived(v, key)` is when vendor node `v` got it, `stored(v, key)` whether it has it
    /// anyway.
    fn of(
        sent: &[(String, String, Instant)],
        vendors: &[(usize, String)],
        arrived: impl Fn(usize, &str) -> Option<Instant>,
        stored: impl Fn(usize, &str) -> bool,
    ) -> Tally {
        let on_time = Duration::from_secs(1);
        let mut tally = Tally::default();
        for (key, category, at) in sent {
            let (mut late, mut lost) = (false, false);
            for (v, _) in vendors.iter().filter(|(_, c)| c == category) {
                match arrived(*v, key) {
                    Some(arrival) => {
                        let delay = arrival.saturating_duration_since(*at);
                        late |= delay > on_time;
                        tally.delays.push(delay.as_secs_f64() * 1000.0);
                    }
                    // Stored without its arrival seen (a listener lagged): not known to be
                    // on time, so late.
                    None if stored(*v, key) => {
                        tally.unmeasured_pairs += 1;
                        late = true;
                    }
                    None => {
                        tally.lost_pairs += 1;
                        *tally.lost_at.entry(*v).or_default() += 1;
                        lost = true;
                    }
                }
            }
            tally.late += usize::from(late && !lost);
            tally.lost += usize::from(lost);
        }
        tally.delays.sort_by(f64::total_cmp);
        tally
    }

    /// The delivery-time distribution, the missing pairs sorted last.
    fn delivery_json(&self) -> serde_json::Value {
        let missing = self.lost_pairs + self.unmeasured_pairs;
        let delays = &self.delays;
        json!({
            "pairs": delays.len() + missing,
            "p50": percentile(delays, missing, 0.5),
            "p90": percentile(delays, missing, 0.9),
            "p99": percentile(delays, missing, 0.99),
            "max": if missing == 0 { percentile(delays, 0, 1.0) } else { None },
            "lost_pairs": self.lost_pairs,
            "lost_pairs_by_vendor_node": self.lost_at,
            "unmeasured_pairs": self.unmeasured_pairs,
        })
    }
}

/// The same step on bare libp2p (`support/bare_network.rs`): the same 20-node topology,
/// one topic per category joined as the shards are, messages of an intent's size published
/// by the same nodes at the same rate, nothing checked or stored: whether it was held.
async fn bare_throughput(secs: u64, rate: u64) -> bool {
    let size = 20;
    let categories = throughput_categories();
    let is_vendor = |i: usize| throughput_vendor(i).is_some();
    let vendors: Vec<(usize, String)> = (0..size)
        .filter_map(|i| throughput_vendor(i).map(|c| (i, c)))
        .collect();
    let vendor_nodes: Vec<usize> = vendors.iter().map(|(v, _)| *v).collect();
    let topics = |i: usize| throughput_vendor(i).map_or_else(|| categories.clone(), |c| vec![c]);
    let settle = Duration::from_secs(3);
    let bare = BareNetwork::start(
        size,
        |i| dials(i, is_vendor),
        topics,
        &vendor_nodes,
        false,
        settle,
    )
    .await;
    let persons: Vec<usize> = (0..size).filter(|i| !is_vendor(*i)).collect();
    let started = Instant::now();
    let sent = bare.publish_at(&persons, &categories, secs, rate).await;
    let cast_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let arrivals: HashMap<usize, HashMap<u64, Instant>> = vendor_nodes
        .iter()
        .map(|&v| (v, bare.arrivals(v)))
        .collect();
    bare.stop().await;
    let keyed: Vec<(String, String, Instant)> = sent
        .iter()
        .map(|(nonce, topic, at)| (nonce.to_string(), topic.clone(), *at))
        .collect();
    let tally = Tally::of(
        &keyed,
        &vendors,
        |v, key| arrivals[&v].get(&key.parse().ok()?).copied(),
        |_, _| false,
    );
    let behind = (sent.len() as f64) < 0.98 * (rate * secs) as f64;
    let held = tally.late == 0 && tally.lost == 0 && !behind;
    let on_time = sent.len() - tally.late - tally.lost;
    println!(
        "{}",
        json!({
            "bench": "throughput_step_bare_libp2p",
            "value": (on_time as f64 / cast_secs).round(),
            "unit": "messages/s delivered to every vendor of their topic within 1 s",
            "held": held,
            "offered_rate": rate,
            "seconds": (cast_secs * 10.0).round() / 10.0,
            "cast": sent.len(),
            "casting_fell_behind": behind,
            "on_time": on_time,
            "late": tally.late,
            "lost": tally.lost,
            "delivery_ms": tally.delivery_json(),
            "nodes": size,
            "vendors": vendors.len(),
        })
    );
    held
}

/// One throughput step (see the top of this file): whether it was held.
async fn throughput(net: &Net, secs: u64, rate: u64, verify_rate: f64, phase: &str) -> bool {
    let stop = Arc::new(AtomicBool::new(false));
    let listeners = listen_for_arrivals(net, &stop);
    let stored_before: Vec<usize> = net
        .vendors
        .iter()
        .map(|(v, _)| net.nodes[*v].counts().intents)
        .collect();
    let stats_before: Vec<_> = net.nodes.iter().map(|n| n.stats().snapshot()).collect();
    let started = Instant::now();
    let casts = cast_at(net, secs, rate).await;
    let cast_secs = started.elapsed().as_secs_f64();
    // Until every vendor stored what it should, or 5 s (anything after 1 s is late anyway;
    // the wait tells late from lost).
    let wanted: Vec<usize> = net
        .vendors
        .iter()
        .map(|(_, category)| casts.iter().filter(|c| &c.1 == category).count())
        .collect();
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(5)
        && net
            .vendors
            .iter()
            .zip(stored_before.iter().zip(&wanted))
            .any(|((v, _), (before, want))| net.nodes[*v].counts().intents < before + want)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut arrivals = HashMap::new();
    let mut lagged = 0;
    for (v, listener) in listeners {
        let (arrived, missed_events) = listener.await.expect("listener");
        lagged += missed_events;
        arrivals.insert(v, arrived);
    }
    // What each vendor stored, for pairs whose event its listener missed.
    let stored: HashMap<usize, std::collections::HashSet<String>> = net
        .vendors
        .iter()
        .map(|(v, _)| {
            let intents = net.nodes[*v].intents().expect("intents");
            let ids = intents.into_iter().map(|i| hex::encode(*i.intent.id));
            (*v, ids.collect())
        })
        .collect();
    let keyed: Vec<(String, String, Instant)> = casts
        .iter()
        .map(|(id, category, at)| (hex::encode(**id), category.clone(), *at))
        .collect();
    let tally = Tally::of(
        &keyed,
        &net.vendors,
        |v, key| arrivals[&v].get(key).copied(),
        |v, key| stored[&v].contains(key),
    );
    // What the nodes counted meanwhile, summed: refusals, bans, failed pings, drops.
    let mut counted = std::collections::BTreeMap::<String, u64>::new();
    for (node, before) in net.nodes.iter().zip(&stats_before) {
        for (name, n) in node.stats().snapshot() {
            let grew = n - before.get(&name).copied().unwrap_or(0);
            let notable = !matches!(name.as_str(), "accepted" | "published");
            if grew > 0 && notable {
                *counted.entry(name).or_default() += grew;
            }
        }
    }
    // Links as gossip sees them now: connected peers it lists no shard of (gossip is off on
    // that connection), and the lowest score any node gives a peer.
    let (mut silent_links, mut lowest_score) = (0, f64::INFINITY);
    for node in &net.nodes {
        for peer in node.peers().await.unwrap_or_default() {
            silent_links += usize::from(peer.shards.is_empty());
            lowest_score = lowest_score.min(peer.score.unwrap_or(0.0));
        }
    }
    let behind = (casts.len() as f64) < 0.98 * (rate * secs) as f64;
    let held = tally.late == 0 && tally.lost == 0 && !behind;
    let on_time_intents = casts.len() - tally.late - tally.lost;
    let achieved = on_time_intents as f64 / cast_secs;
    println!(
        "{}",
        json!({
            "bench": "throughput_step",
            "value": achieved.round(),
            "unit": "intents/s delivered to every vendor of their category within 1 s",
            "baseline": "ed25519_verify_strict_one_core",
            "baseline_value": verify_rate.round(),
            "ratio": ((achieved / verify_rate) * 1000.0).round() / 1000.0,
            "held": held,
            "phase": phase,
            "offered_rate": rate,
            "seconds": (cast_secs * 10.0).round() / 10.0,
            "cast": casts.len(),
            "casting_fell_behind": behind,
            "on_time": on_time_intents,
            "late": tally.late,
            "lost": tally.lost,
            "delivery_ms": tally.delivery_json(),
            "events_lagged": lagged,
            "nodes": net.nodes.len(),
            "vendors": net.vendors.len(),
            "shards": throughput_categories().iter().map(|c| shard_of(c)).collect::<Vec<u8>>(),
            "data_dir_fs": file_system::of(net.root.path()),
            "node_counters": counted,
            "links_without_gossip": silent_links,
            "lowest_peer_score": (lowest_score * 10.0).round() / 10.0,
        })
    );
    held
}

async fn shut_down(net: Net) {
    for n in &net.nodes {
        n.shutdown().await;
    }
}

/// Raw ed25519-dalek `verify_strict` per second on one core, for the throughput baseline.
fn verify_strict_rate() -> f64 {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[5; 32]);
    let messages: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_be_bytes().repeat(100)).collect();
    let signed: Vec<_> = messages.iter().map(|m| (m, key.sign(m))).collect();
    let public = key.verifying_key();
    let started = Instant::now();
    for (m, sig) in &signed {
        public.verify_strict(m, sig).expect("valid");
    }
    signed.len() as f64 / started.elapsed().as_secs_f64()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let sizes: Vec<usize> = std::env::var("VRM_BENCH_SIZES")
        .unwrap_or_else(|_| "10,50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let casts: usize = env_or("VRM_BENCH_CASTS", 200);
    let throughput_secs: u64 = env_or("VRM_BENCH_THROUGHPUT_SECS", 60);
    if throughput_secs > 0 {
        held_rate(throughput_secs).await;
    }
    let flood_casts: usize = env_or("VRM_BENCH_FLOOD_CASTS", 200);
    if flood_casts > 0 {
        flood(flood_casts).await;
    }
    for size in sizes {
        latency(size, casts).await;
    }
    let messages: usize = env_or("VRM_BENCH_MESSAGES", 200);
    if messages > 0 {
        message_latency(messages).await;
    }
    let grants: usize = env_or("VRM_BENCH_GRANTS", 60);
    if grants > 0 {
        grant_round_trips(grants.min(vrm::proto::grants::MAX_GRANTS)).await;
    }
}

/// Times from the person's call until the vendor's answer is stored at the person's node.
async fn round_trip(
    person: &NodeHandle,
    events: &mut Receiver<NodeEvent>,
    rel: &str,
    draft: Draft,
    answer: impl Fn(&NodeEvent, u32) -> bool,
) -> Option<f64> {
    let started = Instant::now();
    let seq = person.relationship_write(rel, draft).await.expect("write");
    wait_for(events, |e| answer(e, seq).then_some(()))
        .await
        .map(|()| started.elapsed().as_secs_f64() * 1000.0)
}

/// The grant bench (see the top of this file).
async fn grant_round_trips(rounds: usize) {
    let root = bench_root();
    let ([service, vendor, person], mut events, rel) = relationship_network(root.path()).await;
    person
        .vault_set("email", "reader@example.org")
        .await
        .expect("vault");
    person
        .vault_set("postal-address", "1 Library Lane, Springfield")
        .await
        .expect("vault");
    let receipt = |status: &'static str| {
        move |e: &NodeEvent, _: u32| {
            matches!(e, NodeEvent::RelationshipEntry { kind, status: Some(s), .. }
                if kind == "receipt" && s == status)
        }
    };
    let acked = |e: &NodeEvent, seq: u32| matches!(e, NodeEvent::RelationshipAcknowledged { seq: s, .. } if *s == seq);
    let (mut messages, mut grants, mut revokes) = (Vec::new(), Vec::new(), Vec::new());
    let mut missed = [0usize; 3];
    let pace = Duration::from_millis(100);
    for k in 0..rounds {
        tokio::time::sleep(pace).await;
        let text = Draft::Message(format!("Question {k} about my order."));
        match round_trip(&person, &mut events, &rel, text, acked).await {
            Some(ms) => messages.push(ms),
            None => missed[0] += 1,
        }
        tokio::time::sleep(pace).await;
        let grant = Draft::Grant(GrantDraft {
            fields: vec!["email".into(), "postal-address".into()],
            purpose: "delivery".into(),
            expires: vrm::clock::unix_now() + 30 * 86_400,
            terms: Vec::new(),
            replaces: None,
        });
        match round_trip(&person, &mut events, &rel, grant, receipt("held")).await {
            Some(ms) => grants.push(ms),
            None => missed[1] += 1,
        }
        let detail = person.relationship(&rel).expect("relationship");
        let Some(id) = detail.grants.last().map(|g| g.id.clone()) else {
            continue;
        };
        let id: [u8; 32] = hex::decode(id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("id");
        tokio::time::sleep(pace).await;
        match round_trip(
            &person,
            &mut events,
            &rel,
            Draft::Revoke(id),
            receipt("deleted"),
        )
        .await
        {
            Some(ms) => revokes.push(ms),
            None => missed[2] += 1,
        }
    }
    let fs = file_system::of(root.path());
    for handle in [&person, &vendor, &service] {
        handle.shutdown().await;
    }
    for times in [&mut messages, &mut grants, &mut revokes] {
        times.sort_by(f64::total_cmp);
    }
    let p50 = |times: &[f64], missed: usize| percentile(times, missed, 0.5);
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a / b * 100.0).round() / 100.0);
    let base_missed = missed[0];
    for (bench, times, missed) in [
        ("grant_to_held_receipt", &grants, missed[1]),
        ("revoke_to_deleted_receipt", &revokes, missed[2]),
    ] {
        println!(
            "{}",
            json!({
                "bench": bench,
                "value": p50(times, missed),
                "unit": "ms (p50)",
                "p90": percentile(times, missed, 0.9),
                "max": times.last().copied().filter(|_| missed == 0),
                "baseline": "message_to_vendor_ack_p50",
                "baseline_value": p50(&messages, base_missed),
                "baseline_p90": percentile(&messages, base_missed, 0.9),
                "ratio": ratio(p50(times, missed), p50(&messages, base_missed)),
                "rounds": times.len() + missed,
                "missed": missed,
                "baseline_missed": base_missed,
                "data_dir_fs": fs,
            })
        );
    }
}

/// A service node, a vendor of books and a light person's node on the service node, with
/// a relationship from the person's accepted offer; the person's events.
async fn relationship_network(
    root: &std::path::Path,
) -> ([NodeHandle; 3], Receiver<NodeEvent>, String) {
    let service = node(root, 0, None, Vec::new(), Role::Service).await;
    let service_addr = addr(&service).await;
    let vendor = node(
        root,
        1,
        Some("books"),
        vec![service_addr.clone()],
        Role::Service,
    )
    .await;
    let person = node(root, 2, None, vec![service_addr], Role::Light).await;
    while person.service_nodes().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut events = person.subscribe();
    person.cast(cast(0)).await.expect("cast");
    let offer = wait_for(&mut events, |e| match e {
        NodeEvent::OfferReceived { offer, .. } => Some(offer.clone()),
        _ => None,
    })
    .await
    .expect("an offer within 10 s");
    let offer = vrm::proto::MessageId(
        hex::decode(offer)
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("an offer id"),
    );
    let rel = person.accept(&offer, false, true).await.expect("accept");
    wait_for(&mut events, |e| match e {
        NodeEvent::RelationshipEntry { kind, .. } if kind == "order" => Some(()),
        _ => None,
    })
    .await
    .expect("the order within 10 s");
    ([service, vendor, person], events, rel)
}

/// The message bench (see the top of this file).
async fn message_latency(messages: usize) {
    let root = bench_root();
    let ([service, vendor, person], mut events, rel) = relationship_network(root.path()).await;
    let mut times = Vec::new();
    let mut missed = 0;
    for k in 0..messages {
        // A conversation's pace, under a mailbox's rate per depositor (20 deposits/s): a
        // hundred messages a second from one vendor would measure the rate limit instead.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let draft = Draft::Message(format!(
            "Message number {k} from the shop, about your order."
        ));
        let seq = vendor.relationship_write(&rel, draft).await.expect("write");
        let arrived = wait_for(&mut events, |e| match e {
            NodeEvent::RelationshipEntry {
                relationship,
                seq: s,
                ..
            } => (*relationship == rel && *s == seq).then_some(()),
            _ => None,
        })
        .await;
        match arrived {
            Some(()) => times.push(started.elapsed().as_secs_f64() * 1000.0),
            None => missed += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    let fs = file_system::of(root.path());
    for handle in [&person, &vendor, &service] {
        handle.shutdown().await;
    }
    // Bare: node 1 (vendor) and node 2 (person) dial node 0 (the mailbox).
    let bare = BareNetwork::start(
        3,
        |i| if i == 0 { Vec::new() } else { vec![0] },
        |_| Vec::new(),
        &[],
        false,
        Duration::from_secs(2),
    )
    .await;
    let (base, base_missed) = bare.reply_through(1, 0, 2, messages).await;
    bare.stop().await;
    let p50 = percentile(&times, missed, 0.5);
    let base_p50 = percentile(&base, base_missed, 0.5);
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a / b * 100.0).round() / 100.0);
    println!(
        "{}",
        json!({
            "bench": "message_vendor_to_person",
            "value": p50,
            "unit": "ms (p50)",
            "p90": percentile(&times, missed, 0.9),
            "p99": percentile(&times, missed, 0.99),
            "max": times.last().copied().filter(|_| missed == 0),
            "baseline": "bare_libp2p_deposit_and_push_p50",
            "baseline_value": base_p50,
            "baseline_p99": percentile(&base, base_missed, 0.99),
            "ratio": ratio(p50, base_p50),
            "p99_ratio": ratio(percentile(&times, missed, 0.99), percentile(&base, base_missed, 0.99)),
            "messages": times.len() + missed,
            "missed": missed,
            "baseline_missed": base_missed,
            "data_dir_fs": fs,
        })
    );
}

/// Throughput steps up to the goal (see the top of this file), then the highest rate held,
/// against the highest rate bare libp2p holds on the same ladder.
async fn held_rate(secs: u64) {
    let verify_rate = verify_strict_rate();
    let start: u64 = env_or("VRM_BENCH_RATE_START", 500);
    let step: u64 = env_or("VRM_BENCH_RATE_STEP", 500);
    let goal: u64 = env_or("VRM_BENCH_GOAL", 2000);
    let (mut rate, mut held, mut goal_held) = (start.min(goal), 0, 0);
    loop {
        let net = network(20, throughput_vendor).await;
        let ok = throughput(&net, secs, rate, verify_rate, "step").await;
        if !ok {
            // Does the network recover once the overload is over?
            let pause = env_or("VRM_BENCH_RECOVERY_PAUSE", 10);
            tokio::time::sleep(Duration::from_secs(pause)).await;
            throughput(&net, 10, 100, verify_rate, "recovery").await;
        }
        shut_down(net).await;
        if !ok {
            break;
        }
        held = rate;
        if rate >= goal {
            goal_held += 1;
            if goal_held == 2 {
                break;
            }
        }
        rate = (rate + step).min(goal);
    }
    let mut bare_held = 0;
    let mut rate = start.min(goal);
    while bare_throughput(secs, rate).await {
        bare_held = rate;
        if rate >= goal {
            break;
        }
        rate = (rate + step).min(goal);
    }
    println!(
        "{}",
        json!({
            "bench": "throughput_held",
            "value": held,
            "unit": "intents/s held with none late or lost",
            "baseline": "bare_libp2p_same_topology_held_rate",
            "baseline_value": bare_held,
            "ratio": (bare_held > 0).then(|| ((held as f64 / bare_held as f64) * 100.0).round() / 100.0),
            "ed25519_verify_strict_one_core": verify_rate.round(),
            "seconds_per_step": secs,
            "goal": goal,
            "goal_held_runs": goal_held,
        })
    );
}

/// The latency lines of one network size (see the top of this file).
async fn latency(size: usize, casts: usize) {
    let net = network(size, books_vendor).await;
    let persons = net.persons();
    let caster_indices: Vec<usize> = (0..casts)
        .map(|n| persons[(n * 31) % persons.len()])
        .collect();
    let casters: Vec<&NodeHandle> = caster_indices.iter().map(|&i| &net.nodes[i]).collect();
    let timeline = record_events(&net.nodes);
    let (times, missed, traces) = traced_casts(&casters).await;
    let stages = stages(&traces, &timeline, |n| caster_indices[n]);
    let full = (times, missed);
    // A light node attached to two service nodes that are not vendors.
    let bootstrap = vec![addr(&net.nodes[0]).await, addr(&net.nodes[1]).await];
    let light = node(net.root.path(), size, None, bootstrap, Role::Light).await;
    while light.service_nodes().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let light_times = cast_to_first_offer(&vec![&light; casts]).await;
    let vendors = net.vendors.len();
    let fs = file_system::of(net.root.path());
    light.shutdown().await;
    shut_down(net).await;
    // The same topology and hops, bare; the light caster is node `size`.
    let vendor_indices: Vec<usize> = (0..size).filter(|i| books_vendor(*i).is_some()).collect();
    let bare_dials = |i: usize| {
        if i == size {
            vec![0, 1]
        } else {
            dials(i, |j| books_vendor(j).is_some())
        }
    };
    let settle = Duration::from_secs(3);
    // Every bare node but the light one joins the topic.
    let topics = |i: usize| {
        if i == size {
            Vec::new()
        } else {
            vec![bare_network::LATENCY_TOPIC.to_owned()]
        }
    };
    let bare =
        BareNetwork::start(size + 1, bare_dials, topics, &vendor_indices, true, settle).await;
    let bare_full = bare.cast_to_first_reply(&caster_indices).await;
    let bare_light = bare.cast_to_first_reply(&vec![size; casts]).await;
    bare.stop().await;
    let lines = [
        ("latency_cast_to_first_offer", full, bare_full, stages),
        (
            "latency_light_cast_to_first_offer",
            light_times,
            bare_light,
            serde_json::Value::Null,
        ),
    ];
    for (bench, (times, missed), (base, base_missed), stages) in lines {
        let p50 = percentile(&times, missed, 0.5);
        let base_p50 = percentile(&base, base_missed, 0.5);
        let ratio =
            |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (a / b * 100.0).round() / 100.0);
        println!(
            "{}",
            json!({
                "bench": bench,
                "value": p50,
                "unit": "ms (p50)",
                "p90": percentile(&times, missed, 0.9),
                "p99": percentile(&times, missed, 0.99),
                "baseline": "bare_libp2p_same_topology_same_hops_p50",
                "baseline_value": base_p50,
                "baseline_p99": percentile(&base, base_missed, 0.99),
                "ratio": ratio(p50, base_p50),
                "p99_ratio": ratio(percentile(&times, missed, 0.99), percentile(&base, base_missed, 0.99)),
                "nodes": size,
                "vendors": vendors,
                "casts": times.len() + missed,
                "missed": missed,
                "baseline_missed": base_missed,
                "data_dir_fs": fs,
                "stages_p50_ms": stages,
            })
        );
    }
}

/// The flood bench (see the top of this file).
async fn flood(casts: usize) {
    use std::sync::atomic::AtomicU64;

    let net = network(20, books_vendor).await;
    let persons = net.persons();
    let flooder_index = persons[persons.len() / 2];
    let honest: Vec<usize> = persons
        .into_iter()
        .filter(|i| *i != flooder_index)
        .collect();
    let casters: Vec<&NodeHandle> = (0..casts)
        .map(|n| &net.nodes[honest[(n * 31) % honest.len()]])
        .collect();
    let (quiet, quiet_missed) = cast_to_first_offer(&casters).await;

    let flooder = net.nodes[flooder_index].clone();
    let flooder_id = flooder.peer_id().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooding = {
        let (stop, sent) = (stop.clone(), sent.clone());
        tokio::spawn(async move {
            let topic = vrm::proto::intent_topic("books");
            let key = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
            let intent = vrm::proto::Intent {
                id: [0x66; 16].into(),
                category: "books".into(),
                subcategory: None,
                text: "forged".into(),
                constraints: Constraints::default(),
                terms: vec![],
                created: vrm::clock::unix_now(),
                expires: vrm::clock::unix_now() + 600,
                reply_to: vrm::proto::ReplyTo::new(
                    &libp2p::PeerId::random(),
                    &"/ip4/127.0.0.1/tcp/9".parse().expect("addr"),
                    [7; 16],
                    [9; 32],
                ),
                group: None,
            };
            let honest = vrm::proto::Envelope::seal(&intent, &key)
                .as_bytes()
                .to_vec();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                // The signature is the envelope's last 64 bytes: each forgery differs there.
                let mut forged = honest.clone();
                let end = forged.len();
                forged[end - 8..].copy_from_slice(&n.to_be_bytes());
                n += 1;
                if flooder.publish_raw(&topic, forged).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (flooded, flooded_missed) = cast_to_first_offer(&casters).await;
    stop.store(true, Ordering::Relaxed);
    let _ = flooding.await;
    let mut scores = Vec::new();
    let (mut rejected, mut banned_by) = (0, 0);
    for (i, node) in net.nodes.iter().enumerate() {
        if i == flooder_index {
            continue;
        }
        rejected += node.stats().get("rejected:bad-signature");
        banned_by += node.stats().get("banned");
        let peers = node.peers().await.unwrap_or_default();
        if let Some(score) = peers
            .iter()
            .find(|p| p.peer == flooder_id)
            .and_then(|p| p.score)
        {
            scores.push((score * 10.0).round() / 10.0);
        }
    }
    let p99 = |t: &[f64], missed| percentile(t, missed, 0.99);
    let ratio = p99(&flooded, flooded_missed)
        .zip(p99(&quiet, quiet_missed))
        .map(|(f, q)| (f / q * 100.0).round() / 100.0);
    println!(
        "{}",
        json!({
            "bench": "latency_cast_to_first_offer_under_flood",
            "value": p99(&flooded, flooded_missed),
            "unit": "ms (p99)",
            "p50": percentile(&flooded, flooded_missed, 0.5),
            "baseline": "quiet_run_p99",
            "baseline_value": p99(&quiet, quiet_missed),
            "baseline_p50": percentile(&quiet, quiet_missed, 0.5),
            "ratio": ratio,
            "casts": casters.len(),
            "missed": flooded_missed,
            "quiet_missed": quiet_missed,
            "forged_sent": sent.load(Ordering::Relaxed),
            "rejected_by_others": rejected,
            "banned_by": banned_by,
            "flooder_score_at_neighbours": scores,
            "nodes": 20,
            "vendors": net.vendors.len(),
        })
    );
    shut_down(net).await;
}

/// Casts once from each of `casters` in turn: the sorted times to the first offer to that
/// cast, in ms, and how many casts got none within 10 s.
async fn cast_to_first_offer(casters: &[&NodeHandle]) -> (Vec<f64>, usize) {
    let (times, missed, _) = traced_casts(casters).await;
    (times, missed)
}

/// One cast that got an offer: who cast (its index in the casts), when, and its first
/// offer.
struct CastTrace {
    caster: usize,
    started: Instant,
    intent: String,
    offer: String,
}

/// [`cast_to_first_offer`], with a trace of each cast that got an offer (`caster` is the
/// cast's index in `casters`).
async fn traced_casts(casters: &[&NodeHandle]) -> (Vec<f64>, usize, Vec<CastTrace>) {
    let mut times = Vec::new();
    let mut traces = Vec::new();
    let mut missed = 0;
    for (n, caster) in casters.iter().enumerate() {
        let mut events = caster.subscribe();
        let started = Instant::now();
        let id = hex::encode(*caster.cast(cast(n)).await.expect("cast"));
        // An offer to this cast: a late offer to an earlier one does not count.
        let offer = wait_for(&mut events, |e| match e {
            NodeEvent::OfferReceived { intent, offer, .. } if *intent == id => Some(offer.clone()),
            _ => None,
        })
        .await;
        match offer {
            Some(offer) => {
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                traces.push(CastTrace {
                    caster: n,
                    started,
                    intent: id,
                    offer,
                });
            }
            None => missed += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    (times, missed, traces)
}

/// Events of a network's nodes, each with the node's index and the moment it was seen.
type Timeline = Arc<std::sync::Mutex<Vec<(usize, Instant, NodeEvent)>>>;

/// Records every event of `nodes` from now on until they stop, each node's on a thread of
/// its own (which the kernel wakes when an event is sent, whatever the runtime's workers
/// are doing), so the moments are those of the events, not of a busy worker's next turn.
fn record_events(nodes: &[NodeHandle]) -> Timeline {
    let timeline: Timeline = Arc::default();
    for (key, node) in nodes.iter().enumerate() {
        let (mut events, timeline) = (node.subscribe(), timeline.clone());
        std::thread::spawn(move || {
            loop {
                match events.blocking_recv() {
                    Ok(event) => timeline.lock().unwrap().push((key, Instant::now(), event)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
    }
    timeline
}

/// Where the time of the casts' first offers went, p50 of each stage in ms: the cast until
/// the caster's node says its intent left on gossip (`Published`), on to the answering
/// vendor's store (`IntentReceived`), its offer made (signed, sealed, on disk:
/// `OfferSent`), and on to the caster's store (deposit, push, storing: `OfferReceived`).
/// `node_of` gives the network index of a cast's caster. A cast whose trace is incomplete
/// is left out.
fn stages(
    traces: &[CastTrace],
    timeline: &Timeline,
    node_of: impl Fn(usize) -> usize,
) -> serde_json::Value {
    let timeline = timeline.lock().unwrap();
    let mut parts: [Vec<f64>; 4] = Default::default();
    for trace in traces {
        let caster = node_of(trace.caster);
        let at_caster = |want: &dyn Fn(&NodeEvent) -> bool| {
            timeline.iter().find_map(|(key, at, e)| {
                (*key == caster && *at >= trace.started && want(e)).then_some(*at)
            })
        };
        let published = at_caster(&|e| matches!(e, NodeEvent::Published { .. }));
        let received = at_caster(
            &|e| matches!(e, NodeEvent::OfferReceived { offer, .. } if *offer == trace.offer),
        );
        let sent = timeline.iter().find_map(|(key, at, e)| match e {
            NodeEvent::OfferSent { offer, .. } if *offer == trace.offer => Some((*key, *at)),
            _ => None,
        });
        let stored = sent.and_then(|(vendor, sent)| {
            timeline.iter().rev().find_map(|(key, at, e)| match e {
                NodeEvent::IntentReceived { intent, .. }
                    if *key == vendor && *intent == trace.intent && *at <= sent =>
                {
                    Some(*at)
                }
                _ => None,
            })
        });
        if let (Some(published), Some(stored), Some((_, sent)), Some(received)) =
            (published, stored, sent, received)
        {
            let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1000.0;
            parts[0].push(ms(trace.started, published));
            parts[1].push(ms(published, stored));
            parts[2].push(ms(stored, sent));
            parts[3].push(ms(sent, received));
        }
    }
    let traced = parts[0].len();
    let mut p50 = parts.into_iter().map(|mut v| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 0, 0.5)
    });
    json!({
        "traced_casts": traced,
        "cast_to_published": p50.next(),
        "published_to_vendor_stored": p50.next(),
        "vendor_stored_to_offer_made": p50.next(),
        "offer_made_to_caster_stored": p50.next(),
    })
}
