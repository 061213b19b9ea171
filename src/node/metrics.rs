//! Prometheus metrics, served on `--metrics ADDR` when asked: libp2p's own (connections,
//! gossipsub, Kademlia, identify, ping, DCUtR) and vrm's (messages accepted, ignored and
//! rejected by reason, offers sent, delivered and received, outbox depth).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::events::Stats;
use crate::store::Store;

/// vrm's counters, read from [`Stats`] and the store at each scrape.
pub struct NodeCollector {
    /// The node's counters.
    pub stats: Arc<Stats>,
    /// For the outbox depth.
    pub store: Arc<Store>,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeCollector")
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Counters exported as `vrm_<name>_total`, from the [`Stats`] key of the same meaning.
const COUNTERS: &[(&str, &str, &str)] = &[
    (
        "messages_accepted",
        "accepted",
        "Messages from the network accepted",
    ),
    (
        "messages_ignored",
        "ignored",
        "Messages dropped without penalty (replays, rate limits)",
    ),
    (
        "intents_published",
        "published",
        "Own messages published on gossip",
    ),
    ("offers_sent", "offers-sent", "Offers this vendor made"),
    (
        "offers_delivered",
        "offers-delivered",
        "Offers acknowledged by the person's node",
    ),
    (
        "offers_received",
        "offers-received",
        "Offers received for own intents",
    ),
    (
        "responder_failures",
        "responder-failed",
        "Runs of the vendor's program that failed",
    ),
    (
        "mailbox_deposits",
        "mailbox-deposited",
        "Items deposited in the mailbox this node keeps",
    ),
    (
        "light_pushes_served",
        "light-push-served",
        "Light pushes relayed for light nodes",
    ),
    (
        "light_pushes_rate_limited",
        "light-push-rate-limited",
        "Light pushes refused over their client's rate",
    ),
    (
        "inbound_connections_denied",
        "inbound-denied",
        "Inbound connections refused over a cap (in total, or from one IP address)",
    ),
    (
        "filter_pushes",
        "filter-pushed",
        "Messages pushed to filter subscribers (light vendors)",
    ),
    (
        "filter_pushes_dropped",
        "filter-push-dropped",
        "Messages not pushed to a subscriber that had its fill of open pushes",
    ),
    (
        "filter_received",
        "filter-received",
        "Messages received by filter push (light vendors)",
    ),
];

/// Counter families by label: name, help, label, and the prefix of the [`Stats`] keys whose
/// rest is the label's value.
const FAMILIES: &[(&str, &str, &str, &str)] = &[
    (
        "vrm_messages_rejected",
        "Messages from the network refused, by reason",
        "reason",
        "rejected:",
    ),
    (
        "vrm_mailbox_refused",
        "Mailbox requests refused, by code",
        "code",
        "mailbox-refused:",
    ),
    (
        "vrm_peers_pruned",
        "Service nodes dropped over the target peer count, by reason",
        "reason",
        "pruned:",
    ),
];

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.stats.snapshot();
        for (name, key, help) in COUNTERS {
            let value = counts.get(*key).copied().unwrap_or(0);
            encoder
                .encode_descriptor(&format!("vrm_{name}"), help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        encoder
            .encode_descriptor(
                "vrm_outbox_depth",
                "Messages waiting for delivery",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&(self.store.outbox_len() as i64))?;
        let held = self.store.mailbox_counts();
        for (name, help, value) in [
            ("vrm_mailbox_queues", "Open mailbox queues", held.queues),
            (
                "vrm_mailbox_items",
                "Items waiting in the mailbox",
                held.items,
            ),
            (
                "vrm_mailbox_bytes",
                "Bytes of items waiting in the mailbox",
                held.bytes,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&i64::try_from(value).unwrap_or(i64::MAX))?;
        }
        for (name, help, label, prefix) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (key, value) in &counts {
                if let Some(tag) = key.strip_prefix(prefix) {
                    family
                        .encode_family(&[(*label, tag)])?
                        .encode_counter::<NoLabelSet, _, u64>(value, None)?;
                }
            }
        }
        Ok(())
    }
}

/// `registry` as Prometheus text.
pub fn text(registry: &Registry) -> Option<String> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).ok()?;
    Some(text)
}

/// Serves `registry` as Prometheus text on `http://addr/metrics` until the process ends.
pub async fn serve(registry: Arc<Registry>, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding metrics to {addr}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                match text(&registry) {
                    Some(text) => ([(CONTENT_TYPE, OPENMETRICS)], text).into_response(),
                    None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics server stopped: {e}");
        }
    });
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(bound)
}

/// Records a swarm event, and the behaviour events libp2p has metrics for.
pub fn record(
    metrics: &libp2p::metrics::Metrics,
    event: &libp2p::swarm::SwarmEvent<super::network::BehaviourEvent>,
) {
    use super::network::BehaviourEvent;
    use libp2p::metrics::Recorder;
    metrics.record(event);
    if let libp2p::swarm::SwarmEvent::Behaviour(behaviour) = event {
        match behaviour {
            BehaviourEvent::Gossipsub(e) => metrics.record(e),
            BehaviourEvent::Kad(e) => metrics.record(e),
            BehaviourEvent::Identify(e) => metrics.record(e),
            BehaviourEvent::Ping(e) => metrics.record(e),
            BehaviourEvent::Dcutr(e) => metrics.record(e),
            _ => {}
        }
    }
}
