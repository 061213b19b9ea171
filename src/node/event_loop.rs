//! The task that owns the swarm. It executes the handle's commands, delivers the outbox,
//! feeds every message from the network through [`super::ingest`], reports the gossipsub
//! verdicts, answers intents in the vendor role, and emits [`NodeEvent`]s.
//!
//! Delivery: an outbox entry is tried when it is due, when the loop is kicked, when a peer
//! subscribes to its topic (gossip) or when its peer connects (direct). A failed attempt
//! waits `2^attempts` seconds (at most [`MAX_BACKOFF_SECS`]) before the next; an entry is
//! dropped when it expires. The outbox lives in the store, so it survives restarts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures::{FutureExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, mdns, request_response};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use super::NodeConfig;
use super::handle::{Command, NodeEvent, PeerInfo, Stats};
use super::ingest::{self, Effect, MAX_GOSSIP_BATCH, Outcome, Verdict};
use super::network::{
    Behaviour, BehaviourEvent, DirectRequest, DirectResponse, topic_score_params,
};
use crate::clock::unix_now;
use crate::config::VendorConfig;
use crate::proto::{
    DIRECTORY_TOPIC, Envelope, Intent, IntentId, MessageId, Offer, ReplyTo, VendorProfile,
    intent_topic, limits, taxonomy,
};
use crate::ratelimit::RateLimiter;
use crate::store::{Decision, Delivery};
use crate::store::{OfferRecord, Origin, OutboxEntry, Route, Store, StoreError, open_stored};
use crate::vendor::responder::{Responder, ResponderError, ResponderOffer};
use crate::vendor::{self, NoOffer, catalog::Catalog};

/// Longest wait between two delivery attempts, in seconds.
pub const MAX_BACKOFF_SECS: u64 = 30;
/// A new peer on the directory topic triggers a profile publication at most this often.
const PROFILE_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Gossip messages per second one peer may send us (bursts up to [`PEER_BURST`]). A mesh
/// neighbour relays the whole network's traffic on our topics, so this sits above the
/// network throughput the node is built for (2000 intents/s); floods of invalid messages
/// are the peer score's job.
const PEER_MESSAGES_PER_SEC: f64 = 4000.0;
const PEER_BURST: u32 = 8000;
/// How often the catalog file is checked for changes.
const CATALOG_POLL: Duration = Duration::from_secs(2);
/// How often due outbox entries are looked for.
const TICK: Duration = Duration::from_millis(500);

/// The vendor role of a node.
pub struct VendorRole {
    /// `[vendor]` from config.toml.
    pub config: VendorConfig,
    /// The vendor key offers and the profile are signed with.
    pub key: SigningKey,
    /// What the vendor sells.
    pub catalog: Catalog,
    /// The vendor's own program, if configured.
    pub responder: Option<Arc<Responder>>,
    /// Intents answered per persona (one caster cannot make the vendor work without end).
    pub per_persona: RateLimiter<[u8; 32]>,
}

impl VendorRole {
    /// The catalog's answer to an intent.
    fn catalog_answer(
        &self,
        envelope: &Envelope,
        intent: &Intent,
        now: u64,
    ) -> Result<Envelope, NoOffer> {
        vendor::answer(
            &self.config,
            &self.catalog,
            &self.key,
            envelope,
            intent,
            now,
        )
    }
}

/// A responder run that finished, back in the loop.
struct ResponderDone {
    envelope: Envelope,
    intent: Intent,
    result: Result<Option<ResponderOffer>, ResponderError>,
}

/// Which outbox entries a delivery pass may send before they are due.
enum Urgent<'a> {
    None,
    All,
    Topic(&'a str),
    Peer(&'a PeerId),
}

/// What one delivery attempt left behind.
enum Attempt {
    /// Delivered or dropped: the entry is gone from the outbox.
    Finished,
    /// Sent and awaiting an answer, or not sendable yet: try again after the backoff.
    Pending,
}

/// Wait before attempt `attempts + 1`.
pub fn backoff_secs(attempts: u32) -> u64 {
    1u64.checked_shl(attempts)
        .unwrap_or(u64::MAX)
        .min(MAX_BACKOFF_SECS)
}

/// The swarm task.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: broadcast::Sender<NodeEvent>,
    store: Arc<Store>,
    vendor: Option<VendorRole>,
    stats: Arc<Stats>,
    served: Vec<String>,
    bootstrap: Vec<Multiaddr>,
    profile_interval: Duration,
    /// Direct requests in flight, by request id: the outbox entry and the intent it answers.
    in_flight: HashMap<request_response::OutboundRequestId, (MessageId, IntentId)>,
    responder_tx: mpsc::Sender<ResponderDone>,
    responder_rx: mpsc::Receiver<ResponderDone>,
    per_peer: RateLimiter<PeerId>,
    data_dir: std::path::PathBuf,
    catalog_mtime: Option<std::time::SystemTime>,
    sending: HashSet<MessageId>,
    listen_addrs: Vec<Multiaddr>,
    profile_published: Option<Instant>,
    metrics: Option<libp2p::metrics::Metrics>,
    /// Gossip messages waiting for [`EventLoop::ingest_pending_gossip`].
    pending_gossip: Vec<(PeerId, gossipsub::MessageId, gossipsub::Message)>,
    /// Own open intents by expiry, to announce when each expires.
    expiries: std::collections::BTreeSet<(u64, [u8; 16])>,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        (commands, events): (mpsc::Receiver<Command>, broadcast::Sender<NodeEvent>),
        store: Arc<Store>,
        vendor: Option<VendorRole>,
        stats: Arc<Stats>,
        metrics: Option<libp2p::metrics::Metrics>,
        config: &NodeConfig,
    ) -> Self {
        let served = vendor
            .as_ref()
            .map(|v| v.config.categories.clone())
            .unwrap_or_default();
        let (responder_tx, responder_rx) = mpsc::channel(64);
        let expiries = own_open_intents(&store);
        EventLoop {
            swarm,
            commands,
            events,
            store,
            vendor,
            stats,
            served,
            bootstrap: config.bootstrap.clone(),
            profile_interval: config.profile_interval,
            in_flight: HashMap::new(),
            responder_tx,
            responder_rx,
            per_peer: RateLimiter::new(PEER_MESSAGES_PER_SEC, PEER_BURST),
            catalog_mtime: catalog_mtime(&config.data_dir),
            data_dir: config.data_dir.clone(),
            sending: HashSet::new(),
            listen_addrs: Vec::new(),
            profile_published: None,
            expiries,
            metrics,
            pending_gossip: Vec::new(),
        }
    }

    fn emit(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    /// Runs until shutdown.
    pub async fn run(mut self) {
        self.subscribe_topics();
        for addr in self.bootstrap.clone() {
            self.dial(addr);
        }
        let mut tick = tokio::time::interval(TICK);
        let mut profile_tick = tokio::time::interval(self.profile_interval);
        let mut kad_tick = tokio::time::interval(Duration::from_secs(300));
        let mut catalog_tick = tokio::time::interval(CATALOG_POLL);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    self.on_swarm_event(event);
                    self.drain_ready_events();
                    self.ingest_pending_gossip();
                }
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                _ = tick.tick() => {
                    self.deliver(Urgent::None);
                    self.announce_expired();
                }
                _ = profile_tick.tick(), if self.vendor.is_some() => self.publish_profile(),
                Some(done) = self.responder_rx.recv() => self.on_responder_done(done),
                _ = catalog_tick.tick(), if self.vendor.is_some() => self.reload_catalog_if_changed(),
                _ = kad_tick.tick() => {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        let _ = kad.bootstrap();
                    }
                }
            }
        }
        if let Err(e) = self.store.flush() {
            warn!("flushing the store at shutdown failed: {e}");
        }
        info!("node stopped");
    }

    /// Every node relays every intent topic (a sparse network only stays connected if
    /// everyone forwards), plus the directory. Vendors act only on the categories they serve.
    fn subscribe_topics(&mut self) {
        let topics = taxonomy::categories()
            .iter()
            .map(|c| intent_topic(&c.id))
            .chain([DIRECTORY_TOPIC.to_owned()]);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        for name in topics {
            let topic = gossipsub::IdentTopic::new(name.clone());
            if let Err(e) = gossipsub.subscribe(&topic) {
                warn!("cannot subscribe to {name}: {e}");
            }
            if let Err(e) = gossipsub.set_topic_params(topic, topic_score_params()) {
                warn!("cannot score {name}: {e}");
            }
        }
    }

    /// Emits `IntentExpired` for own intents whose time has come (and were not withdrawn).
    fn announce_expired(&mut self) {
        let now = unix_now();
        while let Some(&(expires, id)) = self.expiries.first() {
            if expires > now {
                break;
            }
            self.expiries.pop_first();
            let withdrawn = self
                .store
                .intent(&id)
                .ok()
                .flatten()
                .is_some_and(|r| r.withdrawn_at.is_some());
            if !withdrawn {
                self.emit(NodeEvent::IntentExpired {
                    intent: hex::encode(id),
                });
            }
        }
    }

    /// Tells Kademlia (when enabled) where a peer can be reached.
    fn learn_address(&mut self, peer: &PeerId, addr: Multiaddr) {
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            kad.add_address(peer, addr);
        }
    }

    fn dial(&mut self, addr: Multiaddr) {
        if let Err(e) = self.swarm.dial(addr.clone()) {
            warn!("cannot dial {addr}: {e}");
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Kick => self.deliver(Urgent::All),
            Command::WatchExpiry(id, expires) => {
                self.expiries.insert((expires, id));
            }
            Command::Peers(reply) => {
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|peer| PeerInfo {
                        peer: peer.to_string(),
                        score: gossipsub.peer_score(peer),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::PublishRaw(topic, bytes, reply) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), bytes)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Command::ReloadCatalog(reply) => {
                let _ = reply.send(self.reload_catalog());
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.metrics {
            use libp2p::metrics::Recorder;
            metrics.record(&event);
            if let SwarmEvent::Behaviour(behaviour) = &event {
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
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!("listening on {address}/p2p/{}", self.swarm.local_peer_id());
                self.listen_addrs.push(address.clone());
                self.emit(NodeEvent::Listening {
                    addr: address.to_string(),
                });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if endpoint.is_dialer() {
                    self.learn_address(&peer_id, endpoint.get_remote_address().clone());
                }
                if num_established.get() == 1 {
                    info!("connected to {peer_id}");
                    self.emit(NodeEvent::PeerConnected {
                        peer: peer_id.to_string(),
                    });
                    self.deliver(Urgent::Peer(&peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.emit(NodeEvent::PeerDisconnected {
                    peer: peer_id.to_string(),
                });
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!("dialing {peer_id:?} failed: {error}");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(event) => self.on_gossipsub(event),
            BehaviourEvent::Direct(event) => self.on_direct(event),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for addr in info.listen_addrs {
                    self.learn_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if !self.swarm.is_connected(&peer) {
                        debug!("mDNS found {peer} at {addr}");
                        self.learn_address(&peer, addr.clone());
                        self.dial(addr);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                if self.per_peer.allow(&propagation_source, Instant::now()) {
                    self.pending_gossip
                        .push((propagation_source, message_id, message));
                } else {
                    let outcome = Ok(Outcome::ignored("rate limit for this peer"));
                    self.conclude_gossip(&propagation_source, &message_id, outcome);
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!("{peer_id} subscribed to {topic}");
                if topic.as_str() == DIRECTORY_TOPIC {
                    let recently = self
                        .profile_published
                        .is_some_and(|at| at.elapsed() < PROFILE_MIN_INTERVAL);
                    if !recently {
                        self.publish_profile();
                    }
                }
                self.deliver(Urgent::Topic(topic.as_str()));
            }
            _ => {}
        }
    }

    /// Handles the swarm events that are ready now, up to [`MAX_GOSSIP_BATCH`] queued
    /// gossip messages, so that they are verified and stored as one batch.
    fn drain_ready_events(&mut self) {
        while !self.pending_gossip.is_empty() && self.pending_gossip.len() < MAX_GOSSIP_BATCH {
            match self.swarm.next().now_or_never() {
                Some(Some(event)) => self.on_swarm_event(event),
                _ => break,
            }
        }
    }

    /// Validates and stores the queued gossip messages, then reports each verdict to
    /// gossipsub (which forwards the accepted ones).
    fn ingest_pending_gossip(&mut self) {
        if self.pending_gossip.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_gossip);
        let messages: Vec<(&str, &[u8])> = pending
            .iter()
            .map(|(_, _, m)| (m.topic.as_str(), m.data.as_slice()))
            .collect();
        let outcomes = ingest::gossip_batch(&self.store, &self.served, &messages, unix_now());
        for ((source, message_id, _), outcome) in pending.iter().zip(outcomes) {
            self.conclude_gossip(source, message_id, outcome);
        }
    }

    fn conclude_gossip(
        &mut self,
        source: &PeerId,
        message_id: &gossipsub::MessageId,
        outcome: Result<Outcome, StoreError>,
    ) {
        let acceptance = match self.settle(outcome, source) {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Reject(_) => gossipsub::MessageAcceptance::Reject,
            Verdict::Ignore(_) => gossipsub::MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, source, acceptance);
    }

    /// Counts and logs an outcome, carries out its effect, and returns the verdict.
    fn settle(&mut self, outcome: Result<Outcome, StoreError>, peer: &PeerId) -> Verdict {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                // Our store failed, not the peer: do not forward, do not punish.
                warn!("store error while handling a message from {peer}: {e}");
                self.stats.bump("store-error");
                return Verdict::Ignore("store error");
            }
        };
        match &outcome.verdict {
            Verdict::Accept => self.stats.bump("accepted"),
            Verdict::Ignore(reason) => {
                debug!("ignored a message from {peer}: {reason}");
                self.stats.bump("ignored");
            }
            Verdict::Reject(rejection) => {
                info!(
                    "rejected a message from {peer}: {} ({rejection})",
                    rejection.code()
                );
                self.stats.bump(&format!("rejected:{}", rejection.code()));
                self.emit(NodeEvent::Rejected {
                    peer: peer.to_string(),
                    code: rejection.code().to_owned(),
                    reason: rejection.to_string(),
                });
            }
        }
        if let Some(effect) = outcome.effect {
            self.apply(effect);
        }
        outcome.verdict
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::IntentToAnswer { envelope, intent } => {
                self.emit(NodeEvent::IntentReceived {
                    intent: hex::encode(*intent.id),
                    category: intent.category.clone(),
                });
                if let Err(e) = self.answer(&envelope, &intent) {
                    warn!(
                        "could not store the offer for {}: {e}",
                        hex::encode(*intent.id)
                    );
                }
            }
            Effect::IntentWithdrawn { id } => self.emit(NodeEvent::IntentWithdrawn {
                intent: hex::encode(*id),
            }),
            Effect::ProfileStored { vendor, name } => self.emit(NodeEvent::ProfileStored {
                vendor: hex::encode(vendor),
                name,
            }),
            Effect::OfferStored {
                intent,
                offer,
                vendor,
            } => {
                self.stats.bump("offers-received");
                self.emit(NodeEvent::OfferReceived {
                    intent: hex::encode(*intent),
                    offer: offer.to_hex(),
                    vendor: hex::encode(vendor),
                });
            }
        }
    }

    /// Vendor role: answer a stored intent, from the vendor's program (off the loop) or
    /// from the catalog.
    fn answer(&mut self, envelope: &Envelope, intent: &Intent) -> Result<(), StoreError> {
        let Some(role) = &mut self.vendor else {
            return Ok(());
        };
        let now = unix_now();
        if !role
            .per_persona
            .allow(&envelope.signer().to_bytes(), Instant::now())
        {
            return self.conclude(intent, Err(NoOffer::RateLimited));
        }
        if let Some(term) = vendor::refused_required_term(&role.config, intent) {
            return self.conclude(intent, Err(NoOffer::RequiredTermRefused(term)));
        }
        if let Some(responder) = role.responder.clone() {
            let input = Responder::input(envelope, intent, now);
            let done = self.responder_tx.clone();
            let (envelope, intent) = (envelope.clone(), intent.clone());
            tokio::spawn(async move {
                let result = responder.ask(&input).await;
                let _ = done
                    .send(ResponderDone {
                        envelope,
                        intent,
                        result,
                    })
                    .await;
            });
            return Ok(());
        }
        let result = role.catalog_answer(envelope, intent, now);
        self.conclude(intent, result)
    }

    fn on_responder_done(&mut self, done: ResponderDone) {
        let Some(role) = &self.vendor else {
            return;
        };
        let now = unix_now();
        let (envelope, intent) = (&done.envelope, &done.intent);
        let result = match done.result {
            Ok(Some(proposed)) => vendor::answer_from_program(
                &role.config,
                &role.key,
                envelope,
                intent,
                proposed,
                now,
            ),
            Ok(None) => Err(NoOffer::Declined),
            Err(e) => {
                warn!(
                    "responder failed on intent {}: {e}; answering from the catalog",
                    hex::encode(*intent.id)
                );
                self.stats.bump("responder-failed");
                role.catalog_answer(envelope, intent, now)
            }
        };
        if let Err(e) = self.conclude(intent, result) {
            warn!(
                "could not store the answer to {}: {e}",
                hex::encode(*intent.id)
            );
        }
    }

    /// Records the decision on an intent; an offer is stored and queued for delivery.
    fn conclude(
        &mut self,
        intent: &Intent,
        result: Result<Envelope, NoOffer>,
    ) -> Result<(), StoreError> {
        let intent_hex = hex::encode(*intent.id);
        let offer = match result {
            Ok(offer) => offer,
            Err(reason) => {
                debug!("no offer for {intent_hex}: {reason}");
                self.store.set_decision(
                    &intent.id,
                    Decision::Declined {
                        reason: reason.to_string(),
                    },
                )?;
                self.emit(NodeEvent::OfferNotMade {
                    intent: intent_hex,
                    reason: reason.to_string(),
                });
                return Ok(());
            }
        };
        let now = unix_now();
        let record = OfferRecord {
            envelope: offer.as_bytes().to_vec().into(),
            origin: Origin::Own,
            stored_at: now,
            delivery: Delivery::Pending,
        };
        self.store.insert_offer(&intent.id, &offer.id(), &record)?;
        self.store.set_decision(
            &intent.id,
            Decision::Offered {
                offer: offer.id().to_hex(),
            },
        )?;
        let entry = OutboxEntry {
            envelope: offer.as_bytes().to_vec().into(),
            route: Route::Direct {
                peer: intent.reply_to.peer.clone(),
                addrs: intent.reply_to.addrs.clone(),
            },
            expires: intent.expires,
            attempts: 0,
            next_attempt: 0,
        };
        self.store.outbox_put(&offer.id(), &entry)?;
        self.stats.bump("offers-sent");
        self.emit(NodeEvent::OfferSent {
            intent: intent_hex,
            offer: offer.id().to_hex(),
        });
        self.deliver(Urgent::All);
        Ok(())
    }

    /// Reloads `catalog.toml`; a bad file is refused and the catalog in force stays.
    fn reload_catalog(&mut self) -> Result<usize, String> {
        let Some(role) = &mut self.vendor else {
            return Err("this node has no vendor role".into());
        };
        self.catalog_mtime = catalog_mtime(&self.data_dir);
        match Catalog::load(&self.data_dir) {
            Ok(catalog) => {
                let items = catalog.len();
                role.catalog = catalog;
                info!("catalog reloaded: {items} items");
                self.emit(NodeEvent::CatalogReloaded { items });
                Ok(items)
            }
            Err(e) => {
                warn!("catalog refused, the previous one stays in force: {e}");
                self.emit(NodeEvent::CatalogRejected {
                    error: e.to_string(),
                });
                Err(e.to_string())
            }
        }
    }

    fn reload_catalog_if_changed(&mut self) {
        if catalog_mtime(&self.data_dir) != self.catalog_mtime {
            let _ = self.reload_catalog();
        }
    }

    fn on_direct(&mut self, event: request_response::Event<DirectRequest, DirectResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let outcome = ingest::direct(&self.store, &request.0, unix_now());
                let response = match self.settle(outcome, &peer) {
                    Verdict::Accept | Verdict::Ignore(_) => DirectResponse {
                        ok: true,
                        error: None,
                    },
                    Verdict::Reject(rejection) => DirectResponse {
                        ok: false,
                        error: Some(rejection.code().to_owned()),
                    },
                };
                if self
                    .swarm
                    .behaviour_mut()
                    .direct
                    .send_response(channel, response)
                    .is_err()
                {
                    debug!("{peer} left before our response");
                }
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((id, intent)) = self.in_flight.remove(&request_id) else {
                    return;
                };
                self.sending.remove(&id);
                if let Err(e) = self.store.outbox_remove(&id) {
                    warn!("outbox: {e}");
                }
                let delivery = if response.ok {
                    self.stats.bump("offers-delivered");
                    self.emit(NodeEvent::OfferDelivered { offer: id.to_hex() });
                    Delivery::Delivered { at: unix_now() }
                } else {
                    let code = response.error.unwrap_or_default();
                    info!("offer {id} refused by the person's node: {code}");
                    self.emit(NodeEvent::OfferRefused {
                        offer: id.to_hex(),
                        code: code.clone(),
                    });
                    Delivery::Refused { code }
                };
                if let Err(e) = self.store.set_delivery(&intent, &id, delivery) {
                    warn!("recording the delivery of {id}: {e}");
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((id, _)) = self.in_flight.remove(&request_id) {
                    debug!("delivering {id} failed: {error}; will retry");
                    self.sending.remove(&id);
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                debug!("inbound direct message from {peer} failed: {error}");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Tries every outbox entry that is due (or urgent), drops expired ones.
    fn deliver(&mut self, urgent: Urgent<'_>) {
        let entries = match self.store.outbox() {
            Ok(entries) => entries,
            Err(e) => {
                warn!("cannot read the outbox: {e}");
                return;
            }
        };
        let now = unix_now();
        for (id, mut entry) in entries {
            if entry.expires <= now {
                let _ = self.store.outbox_remove(&id);
                if let Ok((_, offer)) = open_stored::<Offer>(&entry.envelope) {
                    let _ = self
                        .store
                        .set_delivery(&offer.intent, &id, Delivery::Expired);
                }
                self.emit(NodeEvent::OutboxExpired {
                    message: id.to_hex(),
                });
                continue;
            }
            if self.sending.contains(&id) {
                continue;
            }
            let is_urgent = match (&urgent, &entry.route) {
                (Urgent::All, _) => true,
                (Urgent::Topic(t), Route::Gossip { topic }) => t == topic,
                (Urgent::Peer(p), Route::Direct { peer, .. }) => p.to_bytes() == peer.as_slice(),
                _ => false,
            };
            if !is_urgent && entry.next_attempt > now {
                continue;
            }
            let result = match entry.route.clone() {
                Route::Gossip { topic } => self.publish(&id, &entry, &topic),
                Route::Direct { peer, addrs } => self.send_direct(&id, &entry, &peer, &addrs),
            };
            match result {
                Ok(Attempt::Finished) => {}
                Ok(Attempt::Pending) => {
                    entry.attempts = entry.attempts.saturating_add(1);
                    entry.next_attempt = now + backoff_secs(entry.attempts);
                    if let Err(e) = self.store.outbox_put(&id, &entry) {
                        warn!("outbox: {e}");
                    }
                }
                Err(e) => warn!("outbox: {e}"),
            }
        }
    }

    /// Publishes a gossip entry; removes it from the outbox once it left.
    fn publish(
        &mut self,
        id: &MessageId,
        entry: &OutboxEntry,
        topic: &str,
    ) -> Result<Attempt, StoreError> {
        let result = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(gossipsub::IdentTopic::new(topic), entry.envelope.to_vec());
        match result {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                self.store.outbox_remove(id)?;
                self.stats.bump("published");
                self.emit(NodeEvent::Published {
                    message: id.to_hex(),
                    topic: topic.to_owned(),
                });
                Ok(Attempt::Finished)
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                debug!("no peer on {topic} yet; {id} waits in the outbox");
                Ok(Attempt::Pending)
            }
            Err(e) => {
                warn!("publishing {id} on {topic} failed: {e}");
                Ok(Attempt::Pending)
            }
        }
    }

    /// Sends a direct entry (an offer), unless its intent was withdrawn since.
    fn send_direct(
        &mut self,
        id: &MessageId,
        entry: &OutboxEntry,
        peer: &[u8],
        addrs: &[serde_bytes::ByteBuf],
    ) -> Result<Attempt, StoreError> {
        let (Ok(peer), Ok((_, offer))) = (
            PeerId::from_bytes(peer),
            open_stored::<Offer>(&entry.envelope),
        ) else {
            warn!("dropping {id}: its route or envelope is unreadable");
            self.store.outbox_remove(id)?;
            return Ok(Attempt::Finished);
        };
        let withdrawn = self
            .store
            .intent(&offer.intent)?
            .is_some_and(|record| record.withdrawn_at.is_some());
        if withdrawn {
            debug!("dropping offer {id}: its intent was withdrawn");
            self.store.outbox_remove(id)?;
            self.store.set_delivery(
                &offer.intent,
                id,
                Delivery::Refused {
                    code: "intent-withdrawn".into(),
                },
            )?;
            return Ok(Attempt::Finished);
        }
        for addr in addrs {
            if let Ok(addr) = Multiaddr::try_from(addr.to_vec()) {
                self.swarm.add_peer_address(peer, addr);
            }
        }
        let request_id = self
            .swarm
            .behaviour_mut()
            .direct
            .send_request(&peer, DirectRequest(entry.envelope.to_vec()));
        self.in_flight.insert(request_id, (*id, offer.intent));
        self.sending.insert(*id);
        Ok(Attempt::Pending)
    }

    /// Vendor role: publish a fresh signed profile on the directory topic.
    fn publish_profile(&mut self) {
        let Some(role) = &self.vendor else {
            return;
        };
        let addrs = self
            .listen_addrs
            .iter()
            .take(limits::MAX_ADDRS)
            .map(|a| a.to_vec().into())
            .collect();
        let profile = VendorProfile {
            name: role.config.name.clone(),
            categories: role.config.categories.clone(),
            contact: role.config.contact.clone(),
            accepted_terms: role.config.accepted_terms.clone(),
            created: unix_now(),
            reply_to: Some(ReplyTo {
                peer: self.swarm.local_peer_id().to_bytes().into(),
                addrs,
            }),
        };
        let envelope = Envelope::seal(&profile, &role.key);
        let record = crate::store::ProfileRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            stored_at: profile.created,
        };
        if let Err(e) =
            self.store
                .upsert_profile(&role.key.verifying_key().to_bytes(), &profile, &record)
        {
            warn!("storing our own profile failed: {e}");
        }
        match self.swarm.behaviour_mut().gossipsub.publish(
            gossipsub::IdentTopic::new(DIRECTORY_TOPIC),
            envelope.as_bytes().to_vec(),
        ) {
            Ok(_) => {
                debug!("published the vendor profile");
                self.profile_published = Some(Instant::now());
            }
            Err(e) => debug!("vendor profile not published now: {e}"),
        }
    }
}

/// Modification time of the catalog file, if it exists.
fn catalog_mtime(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(dir.join(crate::vendor::catalog::CATALOG_FILE))
        .and_then(|m| m.modified())
        .ok()
}

/// Own intents not withdrawn and not yet expired, by expiry.
fn own_open_intents(store: &Store) -> std::collections::BTreeSet<(u64, [u8; 16])> {
    let now = unix_now();
    store
        .intents()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, r)| r.origin == Origin::Own && r.withdrawn_at.is_none())
        .filter_map(|(id, r)| Some((open_stored::<Intent>(&r.envelope).ok()?.1.expires, id)))
        .filter(|(expires, _)| *expires > now)
        .collect()
}
