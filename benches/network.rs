//! Cast-to-first-offer latency on in-process loopback networks of 10, 50 and 100 nodes
//! (sparse: each node dials two earlier ones; Kademlia off, so the topology stays sparse),
//! one vendor in five, printed as JSON lines with p50/p90/p99. Baseline, measured in the same
//! run: the one-hop time from a cast to the intent being stored by a directly connected vendor.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench network`). `VRM_BENCH_SIZES=10,50`
//! chooses the network sizes, `VRM_BENCH_CASTS` the casts per size.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::broadcast::Receiver;
use vrm::config::VendorConfig;
use vrm::identity::Identity;
use vrm::node::{CastRequest, NodeConfig, NodeEvent, NodeHandle};
use vrm::proto::{Constraints, Price};

struct Net {
    _root: tempfile::TempDir,
    nodes: Vec<NodeHandle>,
    vendors: Vec<usize>,
}

async fn node(
    root: &std::path::Path,
    i: usize,
    vendor: bool,
    bootstrap: Vec<libp2p::Multiaddr>,
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
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        bootstrap,
        mdns: false,
        kademlia: false,
        max_connections: 64,
        cache_bytes: 4 << 20,
        vendor: vendor.then(|| VendorConfig {
            name: format!("vendor {i}"),
            categories: vec!["books".into()],
            ..VendorConfig::default()
        }),
        heartbeat: Duration::from_millis(500),
        profile_interval: Duration::from_secs(600),
        metrics: None,
    };
    vrm::node::start(config).await.expect("node starts")
}

async fn addr(node: &NodeHandle) -> libp2p::Multiaddr {
    loop {
        if let Some(a) = node.listen_addrs().await.expect("addrs").into_iter().next() {
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
        _root: root,
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

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sizes: Vec<usize> = std::env::var("VRM_BENCH_SIZES")
        .unwrap_or_else(|_| "10,50,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let casts: usize = std::env::var("VRM_BENCH_CASTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let baseline = one_hop_baseline(casts).await;
    for size in sizes {
        let net = network(size).await;
        let persons: Vec<usize> = (0..size).filter(|i| !net.vendors.contains(i)).collect();
        let mut times = Vec::new();
        let mut missed = 0;
        for n in 0..casts {
            let caster = &net.nodes[persons[(n * 31) % persons.len()]];
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
        let p50 = percentile(&times, 0.5);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        println!(
            "{}",
            json!({
                "bench": "latency_cast_to_first_offer",
                "value": round(p50),
                "unit": "ms (p50)",
                "p90": round(percentile(&times, 0.9)),
                "p99": round(percentile(&times, 0.99)),
                "baseline": "one_hop_cast_to_intent_stored_p50",
                "baseline_value": round(baseline),
                "ratio": round(p50 / baseline),
                "nodes": size,
                "vendors": net.vendors.len(),
                "casts": casts,
                "missed": missed,
            })
        );
        for n in &net.nodes {
            n.shutdown().await;
        }
    }
}
