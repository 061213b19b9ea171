//! A running node: the swarm task and the handle the rest of the program uses.
//!
//! ```text
//!   NodeHandle (clone) ── Command + oneshot ──▶ EventLoop ──owns──▶ Swarm<Behaviour>
//!        │   ▲                                     │  │
//!        │   └────────── NodeEvent (broadcast) ◀───┘  ├─ ingest::{gossip, direct}  (rules)
//!        ▼                                            ├─ vendor::answer            (offers)
//!      Store (sled, shared) ◀─────────────────────────┘  outbox in the store      (delivery)
//! ```
//!
//! The event loop alone owns the swarm; nothing locks it. The handle signs and stores what
//! the person does (cast, withdraw), puts it in the outbox and kicks the loop; the loop
//! delivers the outbox (gossip publish, or request-response with retries and backoff),
//! validates everything that arrives through [`ingest`], answers intents as a vendor, and
//! reports what happened as [`NodeEvent`]s. Reads go straight to the store.

pub mod event_loop;
pub mod handle;
pub mod ingest;
pub mod metrics;
pub mod network;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use libp2p::Multiaddr;
use tokio::sync::{broadcast, mpsc};

pub use handle::{CastRequest, NodeError, NodeEvent, NodeHandle, PeerInfo, Stats};

use crate::config::{Config, VendorConfig};
use crate::identity::Identity;
use crate::ratelimit::RateLimiter;
use crate::store::Store;
use crate::vendor::catalog::Catalog;
use crate::vendor::responder::Responder;

/// Intents per second one persona may have answered by a vendor, after a burst of
/// [`PERSONA_BURST`]. Personas are fresh per intent, so a normal person never comes near.
pub const PERSONA_INTENTS_PER_SEC: f64 = 0.2;
/// Burst allowed per persona.
pub const PERSONA_BURST: u32 = 5;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (keys, config, store).
    pub data_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// mDNS discovery.
    pub mdns: bool,
    /// Kademlia peer discovery.
    pub kademlia: bool,
    /// Most established connections.
    pub max_connections: u32,
    /// sled cache in bytes.
    pub cache_bytes: u64,
    /// The vendor role, if this node has one.
    pub vendor: Option<VendorConfig>,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// How often a vendor re-publishes its profile.
    pub profile_interval: Duration,
    /// Serve Prometheus metrics on this address.
    pub metrics: Option<std::net::SocketAddr>,
}

impl NodeConfig {
    /// The node configuration from a data directory's `config.toml` (flags override later).
    pub fn from_config(data_dir: PathBuf, config: &Config) -> anyhow::Result<NodeConfig> {
        let port = config.network.port;
        let listen = if config.network.listen.is_empty() {
            vec![
                format!("/ip4/0.0.0.0/tcp/{port}"),
                format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
            ]
        } else {
            config.network.listen.clone()
        };
        Ok(NodeConfig {
            data_dir,
            listen: parse_addrs(&listen).context("[network] listen")?,
            bootstrap: parse_addrs(&config.network.bootstrap).context("[network] bootstrap")?,
            mdns: config.network.mdns,
            kademlia: config.network.kademlia,
            max_connections: config.network.max_connections,
            cache_bytes: config.store.cache_mb * 1024 * 1024,
            vendor: config.vendor.clone(),
            heartbeat: Duration::from_millis(500),
            profile_interval: Duration::from_secs(600),
            metrics: None,
        })
    }
}

/// Parses multiaddrs, naming the bad one.
pub fn parse_addrs(addrs: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    addrs
        .iter()
        .map(|a| {
            a.parse()
                .with_context(|| format!("{a:?} is not a multiaddr"))
        })
        .collect()
}

/// Opens the store and keys of `config.data_dir`, starts the swarm task, and returns the
/// handle. The node runs until [`NodeHandle::shutdown`].
pub async fn start(config: NodeConfig) -> anyhow::Result<NodeHandle> {
    let identity = Arc::new(Identity::load(&config.data_dir)?);
    let store = Arc::new(Store::open(
        &config.data_dir.join("store"),
        config.cache_bytes,
    )?);
    let vendor = match &config.vendor {
        Some(vendor_config) => {
            let key = identity
                .vendor_key()
                .context("config.toml has a [vendor] section but there is no vendor.key: run `vrm init --vendor NAME` in a fresh data directory")?
                .clone();
            let catalog = Catalog::load(&config.data_dir)?;
            let responder = vendor_config.responder.clone().map(|command| {
                Arc::new(Responder::new(
                    command,
                    Duration::from_secs(vendor_config.responder_timeout_secs),
                    vendor_config.responder_max_concurrent,
                ))
            });
            Some(event_loop::VendorRole {
                config: vendor_config.clone(),
                key,
                catalog,
                responder,
                per_persona: RateLimiter::new(PERSONA_INTENTS_PER_SEC, PERSONA_BURST),
            })
        }
        None => None,
    };
    let mut swarm = network::build_swarm(
        identity.node_keypair().clone(),
        &network::NetworkSettings {
            mdns: config.mdns,
            kademlia: config.kademlia,
            max_connections: config.max_connections,
            heartbeat: config.heartbeat,
        },
    )?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("listening on {addr}"))?;
    }
    let (command_tx, command_rx) = mpsc::channel(256);
    let (event_tx, _) = broadcast::channel(1024);
    let stats = Arc::new(Stats::default());
    let metrics = match config.metrics {
        Some(addr) => {
            let mut registry = prometheus_client::registry::Registry::default();
            let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
            registry.register_collector(Box::new(metrics::NodeCollector {
                stats: stats.clone(),
                store: store.clone(),
            }));
            metrics::serve(registry, addr).await?;
            Some(libp2p_metrics)
        }
        None => None,
    };
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let event_loop = event_loop::EventLoop::new(
        swarm,
        (command_rx, event_tx.clone()),
        store.clone(),
        vendor,
        stats.clone(),
        metrics,
        &config,
    );
    tokio::spawn(async move {
        event_loop.run().await;
        let _ = done_tx.send(true);
    });
    Ok(NodeHandle {
        commands: command_tx,
        events: event_tx,
        store,
        identity,
        stats,
        vendor_name: config.vendor.as_ref().map(|v| v.name.clone()),
        done: done_rx,
    })
}
