//! A running node: the swarm task, the handlers it dispatches to, the vendor role's task,
//! and the handle the rest of the program uses.
//!
//! ```text
//!   NodeHandle (clone) ──Command + oneshot──▶ EventLoop ──owns──▶ Swarm<Behaviour>
//!     │  (cast, withdraw: signed,               │   dispatches to handlers that return
//!     │   made durable, then one Command)       │   Actions: gossip, outbox, expiry,
//!     ▼                                         │   peers, profile, light push,
//!                                               │   mailbox (served), replies (fetched)
//!   Store (typed operations, read models) ◀─────┤
//!     ▲                                         ├──Action::Answer──▶ Answering (vendor role)
//!     └─────────────────────────────────────────┼──◀──Action::Queue── (offers to deliver)
//!                              NodeEvent (broadcast) ◀── everyone
//! ```
//!
//! The event loop alone owns the swarm; nothing locks it. Handlers own their state and
//! never call back into the loop: they return [`action::Action`]s. Rules for messages from
//! the network are plain functions in [`ingest`].

pub mod action;
pub mod answering;
pub mod bans;
pub mod catch_up;
pub mod crm;
pub mod data;
pub mod discovery;
pub mod event_loop;
pub mod events;
pub mod expiry;
pub mod filter;
pub mod gossip;
pub mod group_orders;
pub mod groups;
pub mod handle;
pub mod ingest;
pub mod ip_limit;
pub mod light_push;
pub mod mailbox;
pub mod metrics;
pub mod network;
pub mod outbox;
pub mod peer_exchange;
pub mod peers;
pub mod profile;
pub mod pruning;
pub mod reachability;
pub mod relationships;
pub mod replies;
pub mod requests;
pub mod reviews;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use libp2p::Multiaddr;
use tokio::sync::{broadcast, mpsc, watch};

pub use events::{NodeEvent, Stats};
pub use handle::{CastRequest, NodeError, NodeHandle, PeerInfo};

use crate::clock::unix_now;
use crate::config::{Config, MailboxConfig, Role, VendorConfig};
use crate::identity::Identity;
use crate::proto::{SHARDS, shard_of};
use crate::store::Store;
use answering::{Answering, Surroundings};
use event_loop::{Channels, EventLoop, Handlers};

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (keys, config, store).
    pub data_dir: PathBuf,
    /// Service node or light node, at start.
    pub role: Role,
    /// Follow AutoNAT (`role = "auto"` without a vendor role): a service node while it finds
    /// this node reachable from outside, a light node otherwise.
    pub auto_role: bool,
    /// AutoNAT counts private and loopback addresses (a LAN or a test network).
    pub autonat_private_addresses: bool,
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
    /// The shards a service node carries (a vendor's node adds its categories' shards).
    pub shards: Vec<u8>,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: u32,
    /// Loopback connections do not count against `max_inbound_per_ip` (a test network).
    pub loopback_exempt: bool,
    /// Other service nodes a service node keeps; past it, it prunes.
    pub target_peers: u32,
    /// How often a service node prunes.
    pub prune_every: Duration,
    /// sled cache in bytes.
    pub cache_bytes: u64,
    /// How long an intent and its offers are kept after the intent expired.
    pub keep_expired: Duration,
    /// The mailbox's bounds, on service nodes.
    pub mailbox: MailboxConfig,
    /// The vendor role, if this node has one.
    pub vendor: Option<VendorConfig>,
    /// The person's standing terms, proffered with every intent and grant.
    pub standing_terms: Vec<String>,
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
        let vendor = config.vendor.is_some();
        let role = config.network.role.resolve(vendor);
        let auto_role = config.network.role.follows_autonat(vendor);
        if let Some(shard) = config.network.shards.iter().find(|s| **s >= SHARDS) {
            anyhow::bail!(
                "[network] shards: {shard} is no shard (they are 0 to {})",
                SHARDS - 1
            );
        }
        if let Some(term) = config
            .person
            .terms
            .iter()
            .find(|t| !crate::proto::taxonomy::is_known_term(t))
        {
            anyhow::bail!("[person] terms: {term:?} is not a term of proto/terms.json");
        }
        // A light node needs no inbound connection: by default it listens nowhere, unless
        // AutoNAT is to find out whether it could serve.
        let listen = if config.network.listen.is_empty() && role == Role::Light && !auto_role {
            Vec::new()
        } else if config.network.listen.is_empty() {
            vec![
                format!("/ip4/0.0.0.0/tcp/{port}"),
                format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
            ]
        } else {
            config.network.listen.clone()
        };
        Ok(NodeConfig {
            data_dir,
            role,
            auto_role,
            autonat_private_addresses: config.network.autonat_private_addresses,
            listen: parse_addrs(&listen).context("[network] listen")?,
            bootstrap: parse_addrs(&config.network.bootstrap).context("[network] bootstrap")?,
            mdns: config.network.mdns,
            kademlia: config.network.kademlia,
            max_connections: config.network.max_connections,
            shards: config.network.shards.clone(),
            max_inbound_per_ip: config.network.max_inbound_per_ip,
            loopback_exempt: config.network.loopback_exempt,
            target_peers: config.network.target_peers,
            prune_every: pruning::PRUNE_EVERY,
            cache_bytes: config.store.cache_mb * 1024 * 1024,
            keep_expired: Duration::from_secs(config.store.keep_expired_secs),
            mailbox: config.mailbox.clone(),
            vendor: config.vendor.clone(),
            standing_terms: config.person.terms.clone(),
            heartbeat: Duration::from_millis(500),
            profile_interval: Duration::from_secs(600),
            metrics: None,
        })
    }
}

/// Runs a store write that waits for the disk on a blocking thread, so the runtime worker
/// that awaits it goes on with other tasks (other nodes' loops, in one process) meanwhile.
pub(crate) async fn durably<T: Send + 'static>(
    store: &Arc<Store>,
    write: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, crate::store::StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || write(&store))
        .await
        .map_err(|e| crate::store::StoreError::Unflushed(std::io::Error::other(e)))?
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

/// Opens the store and keys of `config.data_dir`, starts the swarm task (and the vendor
/// role's, on vendor nodes), and returns the handle. The node runs until
/// [`NodeHandle::shutdown`].
pub async fn start(config: NodeConfig) -> anyhow::Result<NodeHandle> {
    crate::data_dir::owner_only();
    for stray in crate::data_dir::check(&config.data_dir)? {
        tracing::warn!(
            "{} can be read by other users; vrm did not write it (chmod go-rwx it)",
            stray.display()
        );
    }
    let identity = Arc::new(Identity::load(&config.data_dir)?);
    let store = Arc::new(Store::open(
        &config.data_dir.join("store"),
        config.cache_bytes,
    )?);
    let (command_tx, command_rx) = mpsc::channel(256);
    let (inbox_tx, inbox_rx) = mpsc::channel(256);
    let (event_tx, _) = broadcast::channel(1024);
    let (listen_tx, listen_rx) = watch::channel(Vec::new());
    let services = peers::ServiceNodes::with_bootstrap(&config.bootstrap);
    let (services_tx, services_rx) = watch::channel(services.mailboxes());
    let (role_tx, role_rx) = watch::channel(config.role);
    let stats = Arc::new(Stats::default());

    let mut profile = None;
    let mut vendor_tx = None;
    let mut vendor_task = None;
    if let Some(vendor_config) = &config.vendor {
        let key = identity
            .vendor_key()
            .context("config.toml has a [vendor] section but there is no vendor.key: run `vrm init --vendor NAME` in a fresh data directory")?
            .clone();
        let answering = Answering::new(
            vendor_config.clone(),
            key.clone(),
            config.data_dir.clone(),
            Surroundings {
                store: store.clone(),
                stats: stats.clone(),
                events: event_tx.clone(),
                to_loop: inbox_tx.clone(),
                inbox: Some((identity.clone(), listen_rx.clone())),
            },
        )?;
        let (inbox, receiver) = answering::inbox();
        vendor_task = Some(tokio::spawn(answering.run(receiver)));
        vendor_tx = Some(inbox);
        profile = Some(profile::ProfilePublisher::new(vendor_config.clone(), key));
    }
    let served = config
        .vendor
        .as_ref()
        .map(|v| v.categories.clone())
        .unwrap_or_default();
    let mut shards = config.shards.clone();
    shards.extend(served.iter().map(|c| shard_of(c)));
    shards.sort_unstable();
    shards.dedup();
    let scope = ingest::Scope::of_role(config.role, served.clone(), &shards);
    let handlers = Handlers {
        gossip: gossip::GossipIntake::new(scope.clone()),
        outbox: outbox::Outbox::load(&store)?,
        expiry: expiry::Expiry::load(&store, unix_now(), config.keep_expired.as_secs())?,
        profile,
        requests: requests::Requests::default(),
        light_push: light_push::LightPush::new(scope.clone()),
        pacer: light_push::Pacer::default(),
        mailbox: (config.role == Role::Service)
            .then(|| mailbox::MailboxService::new(&config.mailbox)),
        replies: replies::Replies::load(&store, identity.clone(), unix_now())?,
        filter: filter::FilterService::default(),
        subscriptions: filter::Subscriptions::new(served.clone(), config.role == Role::Light),
        catch_up_service: catch_up::CatchUpService::new(scope.kept()),
        catch_up: catch_up::CatchUp::new(&scope),
        peer_exchange: peer_exchange::PeerExchange::default(),
        inbox: config.vendor.as_ref().and_then(|v| {
            let policy = relationships::VendorPolicy {
                auto_confirm: !v.confirm_by_hand,
                accepted_terms: v.accepted_terms.clone(),
            };
            relationships::RelationshipInbox::new(identity.clone(), policy)
        }),
    };
    let carried = shards.clone();
    let settings = network::NetworkSettings {
        role: config.role,
        shards,
        mdns: config.mdns,
        kademlia: config.kademlia,
        vendor: config.vendor.is_some(),
        max_connections: config.max_connections,
        heartbeat: config.heartbeat,
        autonat_private_addresses: config.autonat_private_addresses,
        max_inbound_per_ip: config.max_inbound_per_ip,
        loopback_exempt: config.loopback_exempt,
    };
    let mut registry = config
        .metrics
        .map(|_| prometheus_client::registry::Registry::default());
    let mut swarm = network::build_swarm(
        identity.node_keypair().clone(),
        &settings,
        registry.as_mut(),
    )?;
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .with_context(|| format!("listening on {addr}"))?;
    }
    let (metrics, registry) = match (config.metrics, registry) {
        (Some(addr), Some(mut registry)) => {
            let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
            registry.register_collector(Box::new(metrics::NodeCollector {
                stats: stats.clone(),
                store: store.clone(),
            }));
            let registry = Arc::new(registry);
            metrics::serve(registry.clone(), addr).await?;
            (Some(libp2p_metrics), Some(registry))
        }
        _ => (None, None),
    };
    let (done_tx, done_rx) = watch::channel(false);
    let event_loop = EventLoop {
        swarm,
        channels: Channels {
            commands: command_rx,
            inbox: inbox_rx,
            to_self: inbox_tx.clone(),
            events: event_tx.clone(),
            listen: listen_tx,
            services: services_tx,
            role: role_tx,
            vendor: vendor_tx.clone(),
            vendor_task,
        },
        handlers,
        store: store.clone(),
        stats: stats.clone(),
        metrics,
        bootstrap: config.bootstrap.clone(),
        rebuild: reachability::Rebuild {
            keypair: identity.node_keypair().clone(),
            settings,
            listen: config.listen.clone(),
            mailbox: config.mailbox.clone(),
            auto_role: config.auto_role,
        },
        pending_listen: Vec::new(),
        profile_interval: config.profile_interval,
        target_peers: config.target_peers as usize,
        prune_every: config.prune_every,
        role: config.role,
        services,
        bans: bans::Bans::default(),
        discovery: Default::default(),
        flushing: Default::default(),
    };
    tokio::spawn(async move {
        event_loop.run().await;
        let _ = done_tx.send(true);
    });
    let handle = NodeHandle {
        commands: command_tx,
        events: event_tx,
        store,
        identity,
        stats,
        vendor_name: config.vendor.as_ref().map(|v| v.name.clone()),
        standing_terms: config.standing_terms.clone(),
        vendor: vendor_tx.map(|inbox| inbox.sender()),
        listen: listen_rx,
        services: services_rx,
        role: role_rx,
        shards: carried,
        done: done_rx,
        metrics: registry,
    };
    if let Some(program) = config.vendor.as_ref().and_then(|v| v.crm.clone()) {
        tokio::spawn(crm::run(handle.clone(), program));
    }
    Ok(handle)
}
