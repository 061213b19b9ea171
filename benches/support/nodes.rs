//! What the in-process network benchmarks share: how a node is set up, where it listens,
//! percentiles, and categories on distinct shards.

use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use vrm::config::{MailboxConfig, Role, VendorConfig};
use vrm::identity::Identity;
use vrm::node::{CastRequest, NodeConfig, NodeHandle};
use vrm::proto::{Constraints, Price, shard_of};

/// Node `i`'s data directory under `root`, with its keys and, for a vendor of `category`,
/// its catalog (one item, priced 5 to 14 EUR); and its configuration as the benches run
/// it: loopback, mDNS and Kademlia off, a vendor carrying only its own shard and every
/// other service node all 8, metrics off.
pub fn prepare(
    root: &Path,
    i: usize,
    category: Option<&str>,
    role: Role,
    bootstrap: Vec<Multiaddr>,
) -> NodeConfig {
    let dir = root.join(format!("n{i}"));
    std::fs::create_dir_all(&dir).expect("dir");
    Identity::create(&dir, category.is_some()).expect("keys");
    if let Some(category) = category {
        let catalog = format!(
            "[[item]]\ncategory = \"{category}\"\ntitle = \"Item {i}\"\nprice = \"{}.00\"\ncurrency = \"EUR\"\n",
            5 + i % 10
        );
        std::fs::write(dir.join("catalog.toml"), catalog).expect("catalog");
    }
    NodeConfig {
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
        shards: match category {
            Some(_) => Vec::new(),
            None => (0..vrm::proto::SHARDS).collect(),
        },
        max_inbound_per_ip: vrm::node::ip_limit::DEFAULT_MAX_PER_IP,
        loopback_exempt: true,
        cache_bytes: 4 << 20,
        keep_expired: Duration::from_secs(7 * 86_400),
        vendor: category.map(|c| VendorConfig {
            name: format!("vendor {i}"),
            categories: vec![c.into()],
            ..VendorConfig::default()
        }),
        standing_terms: Vec::new(),
        heartbeat: Duration::from_millis(500),
        profile_interval: Duration::from_secs(600),
        target_peers: 48,
        prune_every: vrm::node::pruning::PRUNE_EVERY,
        metrics: None,
    }
}

/// Where `node` listens, with its PeerId, once it does.
pub async fn addr(node: &NodeHandle) -> Multiaddr {
    loop {
        if let Some(a) = node.listen_addrs().into_iter().next() {
            return a.with(libp2p::multiaddr::Protocol::P2p(node.peer_id()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `p` percentile of `times` (sorted, ms) among `times.len() + missed` samples, the
/// missed ones sorted last: `None` when it falls on a missed one, so no figure leaves them
/// out. Rounded to 0.01 ms.
pub fn percentile(times: &[f64], missed: usize, p: f64) -> Option<f64> {
    let n = times.len() + missed;
    if n == 0 {
        return None;
    }
    let i = ((n - 1) as f64 * p).round() as usize;
    times.get(i).map(|t| (t * 100.0).round() / 100.0)
}

/// Up to `n` categories of the taxonomy, each on a shard none of the others is on.
pub fn categories_on_distinct_shards(n: usize) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for category in vrm::proto::taxonomy::categories() {
        if chosen.len() == n {
            break;
        }
        if chosen.iter().all(|c| shard_of(c) != shard_of(&category.id)) {
            chosen.push(category.id.clone());
        }
    }
    chosen
}

/// Cast number `n` of a bench, in `category`, open for 10 minutes, up to 50 EUR (every
/// bench catalog's item is cheaper: every vendor of the category offers).
pub fn cast_request(category: &str, n: usize) -> CastRequest {
    CastRequest {
        category: category.into(),
        subcategory: None,
        text: format!("Any good offer, request {n}"),
        constraints: Constraints {
            max_price: Some(Price {
                amount: 5_000,
                currency: "EUR".into(),
            }),
            ..Constraints::default()
        },
        terms: vec![],
        lifetime_secs: 600,
        group: None,
    }
}
