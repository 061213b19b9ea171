//! The libp2p stack of a node: transports, the combined behaviour and its configuration.
//!
//! TCP + Noise + Yamux and QUIC, with DNS names resolved; identify and ping; mDNS (optional); Kademlia (server mode
//! on service nodes, client mode on light vendors, none on persons' light nodes); relay client, DCUtR and AutoNAT; connection
//! limits (gossipsub keeps every connection open whatever the idle timeout); gossipsub with
//! anonymous authenticity, the envelope hash as message id, explicit validation and peer
//! scoring; request-response for the service protocols (light push, mailbox, mailbox push,
//! filter, filter push, catch-up, peer exchange), served by service nodes and only used by
//! light ones.

use std::time::Duration;

use crate::config::Role;
use crate::proto::service::{
    CATCH_UP_PROTOCOL, CatchUpRequest, CatchUpResponse, FILTER_PROTOCOL, FILTER_PUSH_PROTOCOL,
    FilterPush, FilterRequest, FilterResponse, LIGHT_PUSH_PROTOCOL, LightPushRequest,
    LightPushResponse, MAILBOX_PROTOCOL, MAILBOX_PUSH_PROTOCOL, MAX_EXCHANGED, MAX_FETCHED,
    MAX_FILTER_TOPICS, MAX_ITEMS_PER_FETCH, MAX_RECORD_FIELD_BYTES, MailboxItem, MailboxRequest,
    MailboxResponse, PEERS_PROTOCOL, PeersRequest, PeersResponse, PushAnswer,
};
use crate::proto::{DIRECTORY_TOPIC, MessageId, limits, shard_topic};
use crate::store::mailbox::MAX_SEALED_BYTES;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns,
    noise, ping, request_response, tcp, yamux,
};

pub use combined::{Behaviour, BehaviourEvent};

mod combined {
    // The derive generates `BehaviourEvent` without docs.
    #![allow(missing_docs)]

    use libp2p::swarm::NetworkBehaviour;
    use libp2p::swarm::behaviour::toggle::Toggle;
    use libp2p::{
        autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns, ping, relay,
        request_response,
    };

    use crate::proto::service::{
        CatchUpRequest, CatchUpResponse, FilterPush, FilterRequest, FilterResponse,
        LightPushRequest, LightPushResponse, MailboxItem, MailboxRequest, MailboxResponse,
        PeersRequest, PeersResponse, PushAnswer,
    };

    /// Every protocol a node speaks, as one behaviour.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Broadcast kinds.
        pub gossipsub: gossipsub::Behaviour,
        /// Light push: served by service nodes, used by light ones.
        pub light_push: request_response::cbor::Behaviour<LightPushRequest, LightPushResponse>,
        /// Mailboxes: served by service nodes; vendors deposit, owners fetch.
        pub mailbox: request_response::cbor::Behaviour<MailboxRequest, MailboxResponse>,
        /// A mailbox pushes new items to their connected owner.
        pub mailbox_push: request_response::cbor::Behaviour<MailboxItem, PushAnswer>,
        /// Filter subscriptions: served by service nodes, used by light vendors.
        pub filter: request_response::cbor::Behaviour<FilterRequest, FilterResponse>,
        /// A service node pushes its filter subscribers what they subscribed to.
        pub filter_push: request_response::cbor::Behaviour<FilterPush, PushAnswer>,
        /// Catch-up of open intents: served by service nodes, used by all that want shards.
        pub catch_up: request_response::cbor::Behaviour<CatchUpRequest, CatchUpResponse>,
        /// Peer exchange: served by service nodes, used by light ones to find more of them.
        pub peer_exchange: request_response::cbor::Behaviour<PeersRequest, PeersResponse>,
        /// Peer routing, when enabled.
        pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
        /// Exchange of listen addresses and protocols.
        pub identify: identify::Behaviour,
        /// Liveness.
        pub ping: ping::Behaviour,
        /// Local network discovery, when enabled.
        pub mdns: Toggle<mdns::tokio::Behaviour>,
        /// Reachability through relays.
        pub relay: relay::client::Behaviour,
        /// Hole punching through relayed connections.
        pub dcutr: dcutr::Behaviour,
        /// Learns whether this node is publicly reachable.
        pub autonat: autonat::Behaviour,
        /// Caps on connections.
        pub limits: connection_limits::Behaviour,
        /// Cap on inbound connections per IP address.
        pub ip_limit: crate::node::ip_limit::IpLimit,
        /// Peers banned for their gossip score (`node::bans`).
        pub blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    }
}

/// Most connections a light node accepts that it did not open (peers on the local network).
pub const LIGHT_MAX_INCOMING: u32 = 8;

/// Most connections a service node with room for `max_connections` accepts that it did not
/// open: a quarter is kept for its own dials, so inbound traffic never takes the slots it
/// needs to reach mailboxes and service nodes.
pub fn service_max_incoming(max_connections: u32) -> u32 {
    max_connections - max_connections / 4
}

/// Settings the swarm is built with.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Service node or light node.
    pub role: Role,
    /// The shards whose topics a service node joins.
    pub shards: Vec<u8>,
    /// Discover peers with mDNS.
    pub mdns: bool,
    /// Find more peers with Kademlia beyond the ones dialed (service nodes and light
    /// vendors).
    pub kademlia: bool,
    /// This node has a vendor role.
    pub vendor: bool,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
    /// AutoNAT counts private and loopback addresses.
    pub autonat_private_addresses: bool,
    /// Most inbound connections from one IP address.
    pub max_inbound_per_ip: u32,
    /// Loopback connections are not counted against `max_inbound_per_ip`.
    pub loopback_exempt: bool,
}

/// Gossipsub topic parameters: a peer that sends invalid messages on a topic loses score
/// quickly; low traffic is never punished (intents are sparse by nature).
pub fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // Small rewards for staying and for delivering first, capped, so one invalid
        // message (-100, squared per message) always outweighs them.
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    }
}

fn gossipsub_behaviour(
    heartbeat: Duration,
    metrics: Option<&mut prometheus_client::registry::Registry>,
) -> Result<gossipsub::Behaviour, String> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message| {
            gossipsub::MessageId::from(MessageId::of(&message.data).0.to_vec())
        })
        .max_transmit_size(limits::MAX_ENVELOPE_BYTES + 4096)
        .heartbeat_interval(heartbeat)
        .build()
        .map_err(|e| e.to_string())?;
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config)?;
    if let Some(registry) = metrics {
        // Messages and bytes per topic, duplicates among them, mesh sizes.
        behaviour = behaviour.with_metrics(
            registry.sub_registry_with_prefix("gossipsub"),
            gossipsub::MetricsConfig::default(),
        );
    }
    behaviour.with_peer_score(
        gossipsub::PeerScoreParams {
            // Many peers on one IP is a sybil signal on the internet, but every node of a
            // local test network shares loopback: do not punish that.
            ip_colocation_factor_whitelist: [
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]
            .into(),
            // rust-libp2p penalises a peer whose send queue overflows. When a node is
            // overloaded every queue overflows, every peer looks slow, meshes are pruned with
            // a backoff, and the network stayed broken after the load had passed
            // (`benches/network.rs`, "recovery"). Slowness is handled by the queues' own
            // timeouts; the score stays for invalid messages and broken promises.
            slow_peer_weight: 0.0,
            ..Default::default()
        },
        gossipsub::PeerScoreThresholds::default(),
    )?;
    Ok(behaviour)
}

/// Ping every 10 s with libp2p's 20 s timeout: libp2p reports the second failure in a row,
/// so a link that went silent is known (and its connection closed, `EventLoop`) within 60 s
/// instead of the 70 s of libp2p's defaults (15 s, 20 s). A shorter timeout closed healthy
/// connections of nodes starved of CPU (300 daemons on 2 cores), whose reconnections then
/// starved them more.
fn ping_config() -> ping::Config {
    ping::Config::new()
        .with_interval(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(20))
}

/// Most bytes of a mailbox response: a full fetch answer of the largest items.
pub const MAX_MAILBOX_RESPONSE_BYTES: u64 = (MAX_ITEMS_PER_FETCH * (MAX_SEALED_BYTES + 128)) as u64;
/// Most bytes of a mailbox request: a deposit of the largest item, or a full fetch.
pub const MAX_MAILBOX_REQUEST_BYTES: u64 = 256 * 1024;

/// The codec of light push, with its size limits.
pub fn light_push_codec()
-> request_response::cbor::codec::Codec<LightPushRequest, LightPushResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(limits::MAX_ENVELOPE_BYTES as u64 + 64)
        .set_response_size_maximum(1024)
}

/// The codec of mailboxes, with their size limits.
pub fn mailbox_codec() -> request_response::cbor::codec::Codec<MailboxRequest, MailboxResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_MAILBOX_REQUEST_BYTES)
        .set_response_size_maximum(MAX_MAILBOX_RESPONSE_BYTES)
}

/// The codec of mailbox push, with its size limits.
pub fn mailbox_push_codec() -> request_response::cbor::codec::Codec<MailboxItem, PushAnswer> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_SEALED_BYTES as u64 + 256)
        .set_response_size_maximum(64)
}

/// The codec of filter subscriptions, with their size limits.
pub fn filter_codec() -> request_response::cbor::codec::Codec<FilterRequest, FilterResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_FILTER_TOPICS as u64 * 64 + 64)
        .set_response_size_maximum(256)
}

/// The codec of filter push, with its size limits (a push is the shape of a light push).
pub fn filter_push_codec() -> request_response::cbor::codec::Codec<FilterPush, PushAnswer> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(limits::MAX_ENVELOPE_BYTES as u64 + 64)
        .set_response_size_maximum(64)
}

/// Most bytes of a catch-up response: a fetch answer of the largest envelopes (a full list
/// is about 43 KB).
pub const MAX_CATCH_UP_RESPONSE_BYTES: u64 =
    (MAX_FETCHED * (limits::MAX_ENVELOPE_BYTES + 16)) as u64;

/// The codec of catch-up, with its size limits.
pub fn catch_up_codec() -> request_response::cbor::codec::Codec<CatchUpRequest, CatchUpResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum((MAX_FETCHED * 40 + 64) as u64)
        .set_response_size_maximum(MAX_CATCH_UP_RESPONSE_BYTES)
}

/// The codec of peer exchange, with its size limits.
pub fn peer_exchange_codec() -> request_response::cbor::codec::Codec<PeersRequest, PeersResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(16)
        .set_response_size_maximum((MAX_EXCHANGED * (2 * MAX_RECORD_FIELD_BYTES + 16) + 32) as u64)
}

/// A request-response behaviour for `protocol`: served by service nodes when `served`,
/// only used otherwise.
fn service_protocol<Req, Resp>(
    codec: request_response::cbor::codec::Codec<Req, Resp>,
    protocol: &'static str,
    served: bool,
) -> request_response::cbor::Behaviour<Req, Resp>
where
    Req: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
    Resp: Send + Clone + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let support = if served {
        request_response::ProtocolSupport::Full
    } else {
        request_response::ProtocolSupport::Outbound
    };
    request_response::cbor::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(protocol), support)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
    )
}

/// Builds the swarm for `keypair`; with a `metrics` registry, its transports count bytes
/// and gossipsub its messages there.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    settings: &NetworkSettings,
    metrics: Option<&mut prometheus_client::registry::Registry>,
) -> anyhow::Result<Swarm<Behaviour>> {
    let settings = settings.clone();
    // Bytes are counted either way (a few atomic additions per read and write), into a
    // registry no one reads unless metrics are on: one transport type for both.
    let mut unread = prometheus_client::registry::Registry::default();
    let gossip_metrics = metrics.is_some();
    let registry = metrics.unwrap_or(&mut unread);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        // `/dns4`, `/dns6` and `/dnsaddr` addresses, resolved with the system's configuration
        // (its hosts file first).
        .with_dns()
        .map_err(|e| anyhow::anyhow!("reading the system's DNS configuration: {e}"))?
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let gossipsub =
                gossipsub_behaviour(settings.heartbeat, gossip_metrics.then_some(registry))?;
            let service = settings.role == Role::Service;
            let light_push = service_protocol(light_push_codec(), LIGHT_PUSH_PROTOCOL, service);
            let mailbox = service_protocol(mailbox_codec(), MAILBOX_PROTOCOL, service);
            // Every node takes pushes for its own queues.
            let mailbox_push = service_protocol(mailbox_push_codec(), MAILBOX_PUSH_PROTOCOL, true);
            let filter = service_protocol(filter_codec(), FILTER_PROTOCOL, service);
            // Only a light node subscribes, so only a light node takes pushes.
            let filter_push = service_protocol(filter_push_codec(), FILTER_PUSH_PROTOCOL, !service);
            let catch_up = service_protocol(catch_up_codec(), CATCH_UP_PROTOCOL, service);
            let peer_exchange = service_protocol(peer_exchange_codec(), PEERS_PROTOCOL, service);
            // A person's light node runs no Kademlia: it finds service nodes by peer
            // exchange (`node::peer_exchange`). A light vendor looks up its shards' carriers.
            let kad = (settings.kademlia && (service || settings.vendor)).then(|| {
                let mut config = kad::Config::new(StreamProtocol::new("/vrm/2/kad"));
                // Its periodic lookups connected a light node to a score of service nodes,
                // which it then pruned: every 5 minutes that churn cost the network more CPU
                // than anything else at 300 nodes.
                if !service {
                    config.set_periodic_bootstrap_interval(None);
                }
                // Shard providers come and go with their nodes (`node::discovery`).
                config
                    .set_provider_record_ttl(Some(crate::node::discovery::RECORD_TTL))
                    .set_provider_publication_interval(Some(
                        crate::node::discovery::PUBLICATION_INTERVAL,
                    ));
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    kad::store::MemoryStore::new(peer_id),
                    config,
                );
                // Service nodes serve the DHT whatever AutoNAT says (a small network of them
                // must route); light nodes only ask, so they are never stored as contacts.
                kad.set_mode(Some(if service {
                    kad::Mode::Server
                } else {
                    kad::Mode::Client
                }));
                kad
            });
            let mdns = if settings.mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            Ok(Behaviour {
                gossipsub,
                light_push,
                mailbox,
                mailbox_push,
                filter,
                filter_push,
                catch_up,
                peer_exchange,
                kad: Toggle::from(kad),
                // A neutral agent string; light nodes tell no one where they listen.
                identify: identify::Behaviour::new(
                    identify::Config::new("/vrm/2".into(), key.public())
                        .with_agent_version("vrm".into())
                        .with_hide_listen_addrs(!service),
                ),
                ping: ping::Behaviour::new(ping_config()),
                mdns: Toggle::from(mdns),
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::Behaviour::new(
                    peer_id,
                    autonat::Config {
                        only_global_ips: !settings.autonat_private_addresses,
                        ..autonat::Config::default()
                    },
                ),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(settings.max_connections))
                        // A light node takes few connections it did not open itself.
                        .with_max_established_incoming(Some(match settings.role {
                            Role::Service => service_max_incoming(settings.max_connections),
                            Role::Light => LIGHT_MAX_INCOMING,
                        }))
                        // One connection each way (simultaneous dials) and one for an
                        // AutoNAT dial-back, which must be a new connection.
                        .with_max_established_per_peer(Some(3))
                        .with_max_pending_incoming(Some(64)),
                ),
                ip_limit: crate::node::ip_limit::IpLimit::new(
                    settings.max_inbound_per_ip,
                    settings.loopback_exempt,
                ),
                blocked: Default::default(),
            })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

/// Subscribes to the topics of the node's role, each with its score parameters. A service
/// node joins the topics of the shards it carries (all by default: a sparse network only
/// stays connected if everyone forwards; vendors act only on the categories they serve) and
/// the directory. A light node joins the directory alone: vendor profiles are few and
/// public, and no intent passes through it.
pub fn subscribe(gossipsub: &mut gossipsub::Behaviour, settings: &NetworkSettings) {
    let intent_topics = match settings.role {
        Role::Service => settings.shards.iter().map(|s| shard_topic(*s)).collect(),
        Role::Light => Vec::new(),
    };
    for name in intent_topics
        .into_iter()
        .chain([DIRECTORY_TOPIC.to_owned()])
    {
        let topic = gossipsub::IdentTopic::new(name.clone());
        if let Err(e) = gossipsub.subscribe(&topic) {
            tracing::warn!("cannot subscribe to {name}: {e}");
        }
        if let Err(e) = gossipsub.set_topic_params(topic, topic_score_params()) {
            tracing::warn!("cannot score {name}: {e}");
        }
    }
}
