//! Cast-to-first-offer latency on in-process loopback networks of 10, 50 and 100 nodes
//! (sparse: each node dials two earlier ones; Kademlia off, so the topology stays sparse),
//! one vendor in five, printed as JSON lines with p50/p90/p99. Baseline, measured in the same
//! run: one raw gossipsub hop between two bare libp2p swarms; for context, also the one-hop
//! time from a vrm cast to the intent being stored by a directly connected vendor.
//! `latency_light_cast_to_first_offer` is the same from a light node (a person's laptop)
//! attached to two of the network's nodes: light push to one of them, gossip, then the offer
//! sealed into a mailbox there and pushed back; the raw request-response round trip of two
//! bare swarms is given beside it for the two extra hops.
//!
//! Throughput: intents cast across 20 nodes (four vendors) at `VRM_BENCH_RATE` (750) per
//! second for `VRM_BENCH_THROUGHPUT_SECS` (60; 0 skips it), then in 10 s steps from 1000/s up
//! to `VRM_BENCH_GOAL` (2000) until a step loses intents, and then, 10 s after it, 10 s at
//! 100/s on the same network (does it recover?); each with the count cast, delivered to every
//! vendor, and lost; baseline the one-core `verify_strict` rate of the same run.
//!
//! Flood (`VRM_BENCH_FLOOD_CASTS`, 200; 0 skips it): on 20 nodes, cast-to-first-offer over
//! that many casts while quiet, then again while one node of the network publishes forged
//! intents (a flipped signature byte) on the books shard as fast as its event loop takes
//! them; with how many it sent, how many the others rejected, how many banned it, and its
//! score at those still connected to it. The quiet run of the same network is the
//! baseline.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench network`). `VRM_BENCH_SIZES=10,50`
//! chooses the network sizes, `VRM_BENCH_CASTS` the casts per size.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::broadcast::Receiver;
use vrm::config::{MailboxConfig, Role, VendorConfig};
use vrm::identity::Identity;
use vrm::node::{CastRequest, NodeConfig, NodeEvent, NodeHandle};
use vrm::proto::{Constraints, Price};

struct Net {
    root: tempfile::TempDir,
    nodes: Vec<NodeHandle>,
    vendors: Vec<usize>,
}

async fn node(
    root: &std::path::Path,
    i: usize,
    vendor: bool,
    bootstrap: Vec<libp2p::Multiaddr>,
) -> NodeHandle {
    node_with_role(root, i, vendor, bootstrap, Role::Service).await
}

async fn node_with_role(
    root: &std::path::Path,
    i: usize,
    vendor: bool,
    bootstrap: Vec<libp2p::Multiaddr>,
    role: Role,
) -> NodeHandle {
    let dir = root.join(format!("n{i}"));
    std::fs::create_dir_all(&dir).expect("dir");
    Identity::create(&dir, vendor).expect("keys");
    if vendor {
        let catalog = format!(
            "[[item]]\ncategory = \"books\"\ntitle = \"Book {i}\"\nprice = \"{}.00\"\ncurrency = \"EUR\"\n",
            5 + i % 10
        );
        std::fs::write(dir.join("catalog.toml"), catalog).expect("catalog");
    }
    let config = NodeConfig {
        data_dir: dir,
        role,
        auto_role: false,
        autonat_private_addresses: false,
        mailbox: MailboxConfig::default(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        bootstrap,
        mdns: false,
        kademlia: false,
        max_connections: 64,
        shards: (0..vrm::proto::SHARDS).collect(),
        max_inbound_per_ip: vrm::node::ip_limit::DEFAULT_MAX_PER_IP,
        loopback_exempt: true,
        cache_bytes: 4 << 20,
        keep_expired: Duration::from_secs(7 * 86_400),
        vendor: vendor.then(|| VendorConfig {
            name: format!("vendor {i}"),
            categories: vec!["books".into()],
            ..VendorConfig::default()
        }),
        heartbeat: Duration::from_millis(500),
        profile_interval: Duration::from_secs(600),
        target_peers: 48,
        prune_every: vrm::node::pruning::PRUNE_EVERY,
        metrics: None,
    };
    vrm::node::start(config).await.expect("node starts")
}

async fn addr(node: &NodeHandle) -> libp2p::Multiaddr {
    loop {
        if let Some(a) = node.listen_addrs().into_iter().next() {
            return a.with(libp2p::multiaddr::Protocol::P2p(node.peer_id()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A sparse network: node i dials nodes i-1 and a pseudo-random earlier one.
async fn network(size: usize) -> Net {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = Vec::new();
    let mut addrs: Vec<libp2p::Multiaddr> = Vec::new();
    let mut vendors = Vec::new();
    for i in 0..size {
        let vendor = i % 5 == 2;
        let mut bootstrap = Vec::new();
        if i > 0 {
            bootstrap.push(addrs[i - 1].clone());
            let other = (i * 7919) % i;
            if other != i - 1 {
                bootstrap.push(addrs[other].clone());
            }
        }
        let handle = node(root.path(), i, vendor, bootstrap).await;
        addrs.push(addr(&handle).await);
        if vendor {
            vendors.push(i);
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

fn cast(n: usize) -> CastRequest {
    CastRequest {
        category: "books".into(),
        subcategory: None,
        text: format!("Any good book, request {n}"),
        constraints: Constraints {
            max_price: Some(Price {
                amount: 5_000,
                currency: "EUR".into(),
            }),
            ..Constraints::default()
        },
        terms: vec![],
        lifetime_secs: 600,
    }
}

async fn wait_for(events: &mut Receiver<NodeEvent>, want: impl Fn(&NodeEvent) -> bool) -> bool {
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return false,
            event = events.recv() => match event {
                Ok(e) if want(&e) => return true,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return false,
            },
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn one_hop_baseline(casts: usize) -> f64 {
    let root = tempfile::tempdir().expect("tempdir");
    let person = node(root.path(), 0, false, vec![]).await;
    let vendor = node(root.path(), 2, true, vec![addr(&person).await]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times = Vec::new();
    for n in 0..casts {
        let mut events = vendor.subscribe();
        let started = Instant::now();
        person.cast(cast(n)).await.expect("cast");
        if wait_for(&mut events, |e| {
            matches!(e, NodeEvent::IntentReceived { .. })
        })
        .await
        {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for n in [&person, &vendor] {
        n.shutdown().await;
    }
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

/// p50 of one raw request-response round trip in milliseconds: two bare libp2p swarms (TCP,
/// Noise, yamux, CBOR request-response, nothing of vrm) on loopback, 600-byte requests one at
/// a time over an open connection, as a light push or a mailbox deposit goes.
async fn raw_request_response_rtt(requests: usize) -> f64 {
    use libp2p::futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{StreamProtocol, noise, request_response, tcp, yamux};

    type Rr = request_response::cbor::Behaviour<Vec<u8>, bool>;
    fn swarm() -> libp2p::Swarm<Rr> {
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|_| {
                Rr::new(
                    [(
                        StreamProtocol::new("/raw-rr"),
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default(),
                )
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }
    let (mut a, mut b) = (swarm(), swarm());
    b.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .expect("listen");
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    let b_id = *b.local_peer_id();
    a.dial(addr).expect("dial");
    loop {
        tokio::select! {
            e = a.select_next_some() => if matches!(e, SwarmEvent::ConnectionEstablished { .. }) { break },
            _ = b.select_next_some() => {}
        }
    }
    let mut times = Vec::new();
    for _ in 0..requests {
        let started = Instant::now();
        a.behaviour_mut().send_request(&b_id, vec![0u8; 600]);
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                tokio::select! {
                    e = a.select_next_some() => if matches!(e, SwarmEvent::Behaviour(request_response::Event::Message { message: request_response::Message::Response { .. }, .. })) { break },
                    e = b.select_next_some() => if let SwarmEvent::Behaviour(request_response::Event::Message { message: request_response::Message::Request { channel, .. }, .. }) = e {
                        let _ = b.behaviour_mut().send_response(channel, true);
                    },
                }
            }
        })
        .await;
        if answered.is_ok() {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

/// p50 of one raw gossipsub hop in milliseconds: two bare libp2p swarms (TCP, Noise, yamux,
/// gossipsub, nothing of vrm) on loopback, publishing envelope-sized messages one at a time.
async fn raw_gossipsub_hop(messages: usize) -> f64 {
    use libp2p::futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    use libp2p::{gossipsub, noise, tcp, yamux};

    fn swarm() -> libp2p::Swarm<gossipsub::Behaviour> {
        libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("tcp")
            .with_behaviour(|_| {
                let config = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::Anonymous)
                    .heartbeat_interval(Duration::from_millis(500))
                    .build()
                    .expect("config");
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)
                    .expect("gossipsub")
            })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    }
    let topic = gossipsub::IdentTopic::new("raw");
    let (mut a, mut b) = (swarm(), swarm());
    a.behaviour_mut().subscribe(&topic).expect("subscribe");
    b.behaviour_mut().subscribe(&topic).expect("subscribe");
    b.listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .expect("listen");
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    a.dial(addr).expect("dial");
    loop {
        tokio::select! {
            e = a.select_next_some() => if matches!(e, SwarmEvent::Behaviour(gossipsub::Event::Subscribed { .. })) { break },
            _ = b.select_next_some() => {}
        }
    }
    let mut times = Vec::new();
    for i in 0..messages {
        let mut data = vec![0u8; 600];
        data[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let started = Instant::now();
        if a.behaviour_mut().publish(topic.clone(), data).is_err() {
            continue;
        }
        let received = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                tokio::select! {
                    _ = a.select_next_some() => {}
                    e = b.select_next_some() => if matches!(e, SwarmEvent::Behaviour(gossipsub::Event::Message { .. })) { break },
                }
            }
        })
        .await;
        if received.is_ok() {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

/// Intents cast across a 20-node network at `rate` per second for `secs`, counted at every
/// vendor. Vendors decline them (the price limit is below every catalog item), so the figure
/// is the spread of intents, not of offers.
async fn throughput(net: &Net, secs: u64, rate: u64, verify_rate: f64, phase: &str) -> bool {
    let size = net.nodes.len();
    let persons: Vec<usize> = (0..size).filter(|i| !net.vendors.contains(i)).collect();
    let held_before: Vec<usize> = net
        .vendors
        .iter()
        .map(|&v| net.nodes[v].counts().intents)
        .collect();
    let per_person = Duration::from_secs_f64(persons.len() as f64 / rate as f64);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut casters = tokio::task::JoinSet::new();
    for &p in &persons {
        let node = net.nodes[p].clone();
        casters.spawn(async move {
            let mut ids = Vec::new();
            let mut tick = tokio::time::interval(per_person);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < deadline {
                tick.tick().await;
                let mut request = cast(ids.len());
                request.constraints.max_price = Some(Price {
                    amount: 1,
                    currency: "EUR".into(),
                });
                ids.push(node.cast(request).await.expect("cast"));
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = casters.join_next().await {
        ids.extend(done.expect("caster"));
    }
    let cast_secs = started.elapsed().as_secs_f64();
    // Give the last intents time to arrive, then count what every vendor holds.
    let expected = ids.len();
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(30)
        && net
            .vendors
            .iter()
            .zip(&held_before)
            .any(|(&v, before)| net.nodes[v].counts().intents < before + expected)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered_to_all = ids
        .iter()
        .filter(|id| {
            net.vendors
                .iter()
                .all(|&v| matches!(net.nodes[v].intent(id), Ok(Some(_))))
        })
        .count();
    let sustained = delivered_to_all as f64 / cast_secs;
    println!(
        "{}",
        json!({
            "bench": "throughput_intents",
            "value": sustained.round(),
            "unit": "intents/s",
            "baseline": "ed25519_verify_strict_one_core",
            "baseline_value": verify_rate.round(),
            "ratio": ((sustained / verify_rate) * 1000.0).round() / 1000.0,
            "nodes": size,
            "vendors": net.vendors.len(),
            "seconds": (cast_secs * 10.0).round() / 10.0,
            "offered_rate": rate,
            "cast": expected,
            "delivered_to_every_vendor": delivered_to_all,
            "lost": expected - delivered_to_all,
            "phase": phase,
        })
    );
    delivered_to_all == expected
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
    let casts: usize = env_or("VRM_BENCH_CASTS", 20);
    let throughput_secs: u64 = env_or("VRM_BENCH_THROUGHPUT_SECS", 60);
    if throughput_secs > 0 {
        let verify_rate = verify_strict_rate();
        // Held for the full time at the sustained rate, then 10 s steps up to the goal on
        // fresh networks until one loses intents: the short-term peak.
        let sustained: u64 = env_or("VRM_BENCH_RATE", 750);
        let net = network(20).await;
        throughput(&net, throughput_secs, sustained, verify_rate, "sustained").await;
        shut_down(net).await;
        let goal: u64 = env_or("VRM_BENCH_GOAL", 2000);
        for rate in [1000, 1250, 1500, 2000, 3000, 4000]
            .into_iter()
            .filter(|&r| r <= goal)
        {
            let net = network(20).await;
            let lossless = throughput(&net, 10, rate, verify_rate, "step").await;
            if !lossless {
                // Does the network recover once the overload is over?
                tokio::time::sleep(Duration::from_secs(10)).await;
                throughput(&net, 10, 100, verify_rate, "recovery").await;
            }
            shut_down(net).await;
            if !lossless {
                break;
            }
        }
    }
    let flood_casts: usize = env_or("VRM_BENCH_FLOOD_CASTS", 200);
    if flood_casts > 0 {
        flood(flood_casts).await;
    }
    let baseline = raw_gossipsub_hop(casts.max(50)).await;
    let rr_rtt = raw_request_response_rtt(casts.max(50)).await;
    let vrm_hop = one_hop_baseline(casts).await;
    for size in sizes {
        let net = network(size).await;
        let persons: Vec<usize> = (0..size).filter(|i| !net.vendors.contains(i)).collect();
        let casters: Vec<&NodeHandle> = (0..casts)
            .map(|n| &net.nodes[persons[(n * 31) % persons.len()]])
            .collect();
        let (times, missed) = cast_to_first_offer(&casters).await;
        report(
            "latency_cast_to_first_offer",
            &times,
            missed,
            baseline,
            vrm_hop,
            &net,
            size,
            json!({}),
        );
        // A light node attached to two service nodes that are not vendors.
        let light = node_with_role(
            net.root.path(),
            size,
            false,
            vec![addr(&net.nodes[0]).await, addr(&net.nodes[1]).await],
            Role::Light,
        )
        .await;
        while light.service_nodes().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (times, missed) = cast_to_first_offer(&vec![&light; casts]).await;
        report(
            "latency_light_cast_to_first_offer",
            &times,
            missed,
            baseline,
            vrm_hop,
            &net,
            size,
            json!({"raw_request_response_rtt_ms": (rr_rtt * 100.0).round() / 100.0}),
        );
        light.shutdown().await;
        shut_down(net).await;
    }
}

/// The flood bench (see the top of this file).
async fn flood(casts: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let net = network(20).await;
    let persons: Vec<usize> = (0..20).filter(|i| !net.vendors.contains(i)).collect();
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
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let p99 = |t: &[f64]| round(percentile(t, 0.99));
    println!(
        "{}",
        json!({
            "bench": "latency_cast_to_first_offer_under_flood",
            "value": p99(&flooded),
            "unit": "ms (p99)",
            "p50": round(percentile(&flooded, 0.5)),
            "baseline": "quiet_run_p99",
            "baseline_value": p99(&quiet),
            "baseline_p50": round(percentile(&quiet, 0.5)),
            "ratio": round(percentile(&flooded, 0.99) / percentile(&quiet, 0.99)),
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

/// Casts once from each of `casters` in turn: the sorted times to the first offer, in ms,
/// and how many casts got none in time.
async fn cast_to_first_offer(casters: &[&NodeHandle]) -> (Vec<f64>, usize) {
    let mut times = Vec::new();
    let mut missed = 0;
    for (n, caster) in casters.iter().enumerate() {
        let mut events = caster.subscribe();
        let started = Instant::now();
        caster.cast(cast(n)).await.expect("cast");
        if wait_for(&mut events, |e| {
            matches!(e, NodeEvent::OfferReceived { .. })
        })
        .await
        {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            missed += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    (times, missed)
}

/// One latency line.
#[allow(clippy::too_many_arguments)]
fn report(
    bench: &str,
    times: &[f64],
    missed: usize,
    baseline: f64,
    vrm_hop: f64,
    net: &Net,
    size: usize,
    extra: serde_json::Value,
) {
    let p50 = percentile(times, 0.5);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let mut line = json!({
                "bench": bench,
                "value": round(p50),
                "unit": "ms (p50)",
                "p90": round(percentile(times, 0.9)),
                "p99": round(percentile(times, 0.99)),
                "baseline": "raw_gossipsub_hop_p50",
                "baseline_value": round(baseline),
                "ratio": round(p50 / baseline),
                "vrm_one_hop_p50": round(vrm_hop),
                "nodes": size,
                "vendors": net.vendors.len(),
                "casts": times.len() + missed,
                "missed": missed,
    });
    if let (Some(o), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        o.extend(extra.clone());
    }
    println!("{line}");
}
