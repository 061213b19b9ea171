//! The libp2p stack of a node: transports, the combined behaviour and its configuration.
//!
//! TCP + Noise + Yamux and QUIC; identify and ping; mDNS (optional); Kademlia in server mode;
//! relay client, DCUtR and AutoNAT so a laptop behind NAT stays reachable; connection limits
//! (gossipsub keeps every connection open whatever the idle timeout); gossipsub with
//! anonymous authenticity, the envelope hash as message id, explicit validation and peer
//! scoring; request-response for direct messages.

use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, Swarm, autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns,
    noise, ping, request_response, tcp, yamux,
};
use serde::{Deserialize, Serialize};

use crate::proto::{DIRECT_PROTOCOL, DIRECTORY_TOPIC, MessageId, intent_topic, limits, taxonomy};

/// A direct message: the envelope bytes, carried as one CBOR byte string.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectRequest(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// The error code of a direct response that asks the sender to try again later: the
/// receiver could not store the message just now (`proto/README.md`, "Network names").
pub const UNAVAILABLE: &str = "unavailable";

/// The answer to a direct message: stored, or refused with the rejection code, or
/// [`UNAVAILABLE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectResponse {
    /// True if the receiver stored the message (or had it already).
    pub ok: bool,
    /// The rejection code when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

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

    use super::{DirectRequest, DirectResponse};

    /// Every protocol a node speaks, as one behaviour.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Broadcast kinds.
        pub gossipsub: gossipsub::Behaviour,
        /// Direct kinds.
        pub direct: request_response::cbor::Behaviour<DirectRequest, DirectResponse>,
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
    }
}

/// Settings the swarm is built with.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Discover peers with mDNS.
    pub mdns: bool,
    /// Find more peers with Kademlia beyond the ones dialed.
    pub kademlia: bool,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Gossipsub heartbeat.
    pub heartbeat: Duration,
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

fn gossipsub_behaviour(heartbeat: Duration) -> Result<gossipsub::Behaviour, String> {
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

/// The codec of the direct protocol: how requests and responses are framed and decoded,
/// with their size limits.
pub fn direct_codec() -> request_response::cbor::codec::Codec<DirectRequest, DirectResponse> {
    request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(limits::MAX_ENVELOPE_BYTES as u64 + 64)
        .set_response_size_maximum(4096)
}

/// Builds the swarm for `keypair`.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    settings: &NetworkSettings,
) -> anyhow::Result<Swarm<Behaviour>> {
    let settings = settings.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)?
        .with_behaviour(|key, relay| {
            let peer_id = key.public().to_peer_id();
            let gossipsub = gossipsub_behaviour(settings.heartbeat)?;
            let direct = request_response::cbor::Behaviour::with_codec(
                direct_codec(),
                [(
                    StreamProtocol::new(DIRECT_PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            );
            let kad = settings.kademlia.then(|| {
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    kad::store::MemoryStore::new(peer_id),
                    kad::Config::new(StreamProtocol::new("/vrm/1/kad")),
                );
                // A laptop is rarely confirmed publicly reachable; serve the DHT anyway so
                // small networks of laptops can route.
                kad.set_mode(Some(kad::Mode::Server));
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
                direct,
                kad: Toggle::from(kad),
                identify: identify::Behaviour::new(identify::Config::new(
                    "/vrm/1".into(),
                    key.public(),
                )),
                ping: ping::Behaviour::new(ping::Config::new()),
                mdns: Toggle::from(mdns),
                relay,
                dcutr: dcutr::Behaviour::new(peer_id),
                autonat: autonat::Behaviour::new(peer_id, autonat::Config::default()),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(settings.max_connections))
                        .with_max_established_per_peer(Some(2))
                        .with_max_pending_incoming(Some(64)),
                ),
            })
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}

/// Subscribes to every intent topic and the directory, each with its score parameters.
/// Every node relays every intent topic (a sparse network only stays connected if everyone
/// forwards); vendors act only on the categories they serve.
pub fn subscribe_all(gossipsub: &mut gossipsub::Behaviour) {
    let topics = taxonomy::categories()
        .iter()
        .map(|c| intent_topic(&c.id))
        .chain([DIRECTORY_TOPIC.to_owned()]);
    for name in topics {
        let topic = gossipsub::IdentTopic::new(name.clone());
        if let Err(e) = gossipsub.subscribe(&topic) {
            tracing::warn!("cannot subscribe to {name}: {e}");
        }
        if let Err(e) = gossipsub.set_topic_params(topic, topic_score_params()) {
            tracing::warn!("cannot score {name}: {e}");
        }
    }
}
