//! [`NodeHandle`]: the node's API for the daemon, the HTTP API and tests. A cheap clone;
//! commands that need the swarm go to the event loop with a oneshot reply, reads go to the
//! store directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::clock::unix_now;
use crate::identity::Identity;
use crate::proto::validate::check_intent;
use crate::proto::{
    Constraints, Envelope, Intent, IntentId, IntentWithdraw, Offer, ReplyTo, Term, ValidationError,
    intent_topic, limits,
};
use crate::store::{
    IntentRecord, OfferRecord, Origin, OutboxEntry, Route, Store, StoreError, open_stored,
};

/// Why a node operation failed.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The request breaks a protocol rule (bad category, expiry...).
    #[error("invalid request: {0}")]
    Invalid(#[from] ValidationError),
    /// No intent with this id.
    #[error("no intent {0}")]
    UnknownIntent(String),
    /// The intent is not the person's own.
    #[error("intent {0} was not cast by this node")]
    NotOwn(String),
    /// The intent is already withdrawn.
    #[error("intent {0} is already withdrawn")]
    AlreadyWithdrawn(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event loop has stopped.
    #[error("the node is shutting down")]
    Stopped,
    /// A network operation failed.
    #[error("{0}")]
    Network(String),
    /// The catalog could not be (re)loaded.
    #[error("catalog refused: {0}")]
    Catalog(String),
}

/// Something that happened in the node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[allow(missing_docs)] // fields are named by their variant's doc
pub enum NodeEvent {
    /// The node listens on a new address.
    Listening { addr: String },
    /// A connection to a peer opened.
    PeerConnected { peer: String },
    /// The last connection to a peer closed.
    PeerDisconnected { peer: String },
    /// One of the person's intents reached its expiry.
    IntentExpired { intent: String },
    /// The person cast an intent (stored, queued for publishing).
    IntentCast { intent: String, category: String },
    /// An intent or withdrawal left this node on gossip.
    Published { message: String, topic: String },
    /// A vendor node stored an intent it serves.
    IntentReceived { intent: String, category: String },
    /// An intent was withdrawn (by this person, or seen withdrawn by its caster).
    IntentWithdrawn { intent: String },
    /// An offer to the person's intent arrived and was stored.
    OfferReceived {
        intent: String,
        offer: String,
        vendor: String,
    },
    /// A vendor node made an offer (stored, queued for delivery).
    OfferSent { intent: String, offer: String },
    /// A vendor node decided not to answer an intent.
    OfferNotMade { intent: String, reason: String },
    /// The person's node acknowledged an offer.
    OfferDelivered { offer: String },
    /// The person's node refused an offer.
    OfferRefused { offer: String, code: String },
    /// An outgoing message expired before delivery.
    OutboxExpired { message: String },
    /// A newer vendor profile was stored.
    ProfileStored { vendor: String, name: String },
    /// The vendor's catalog was (re)loaded.
    CatalogReloaded { items: usize },
    /// A changed catalog file was refused; the previous catalog stays in force.
    CatalogRejected { error: String },
    /// A message from the network was refused.
    Rejected {
        peer: String,
        code: String,
        reason: String,
    },
}

/// Counters of what the node accepted and refused, by reason.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Adds one to `name`.
    pub fn bump(&self, name: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(name.to_owned()).or_default() += 1;
    }

    /// A copy of all counters.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One counter.
    pub fn get(&self, name: &str) -> u64 {
        self.snapshot().get(name).copied().unwrap_or(0)
    }
}

/// A connected peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer: String,
    /// Its gossipsub score, if scored.
    pub score: Option<f64>,
}

/// What the person wants to cast.
#[derive(Debug, Clone)]
pub struct CastRequest {
    /// Top-level category.
    pub category: String,
    /// Optional subcategory.
    pub subcategory: Option<String>,
    /// What they want, in their words.
    pub text: String,
    /// Structured constraints.
    pub constraints: Constraints,
    /// Proffered terms.
    pub terms: Vec<Term>,
    /// Lifetime in seconds.
    pub lifetime_secs: u64,
}

/// Commands the event loop executes for the handle.
#[derive(Debug)]
pub enum Command {
    /// The outbox has new entries: try to deliver now.
    Kick,
    /// Announce when this own intent expires (id, unix seconds).
    WatchExpiry([u8; 16], u64),
    /// Connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// Addresses this node listens on.
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Publish raw bytes on a topic, bypassing every check (for testing the network's defences).
    PublishRaw(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Reload the vendor's catalog; the number of items, or why the file was refused.
    ReloadCatalog(oneshot::Sender<Result<usize, String>>),
    /// Stop: flush and end the loop.
    Shutdown,
}

/// The node's API. Clone it freely.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) store: Arc<Store>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) vendor_name: Option<String>,
    /// Turns true when the event loop has ended.
    pub(crate) done: watch::Receiver<bool>,
}

impl NodeHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.identity.peer_id()
    }

    /// The vendor key, on vendor nodes.
    pub fn vendor_key(&self) -> Option<[u8; 32]> {
        self.identity
            .vendor_key()
            .map(|k| k.verifying_key().to_bytes())
    }

    /// The vendor's display name, on vendor nodes.
    pub fn vendor_name(&self) -> Option<String> {
        self.vendor_name.clone()
    }

    /// The store (read-only use: listing records).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Accept/reject counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A stream of everything that happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Signs an intent with a fresh persona, stores it and queues it for publishing. Returns
    /// its id once it is on disk; it goes out as soon as a peer on its topic is reachable.
    pub async fn cast(&self, request: CastRequest) -> Result<IntentId, NodeError> {
        let now = unix_now();
        let id: IntentId = rand::random::<[u8; 16]>().into();
        let mut addrs: Vec<Multiaddr> = self.listen_addrs().await?;
        addrs.retain(|a| a.to_vec().len() <= limits::MAX_ADDR_BYTES);
        addrs.truncate(limits::MAX_ADDRS);
        let intent = Intent {
            id,
            category: request.category,
            subcategory: request.subcategory,
            text: request.text,
            constraints: request.constraints,
            terms: request.terms,
            created: now,
            expires: now.saturating_add(request.lifetime_secs),
            reply_to: ReplyTo {
                peer: self.peer_id().to_bytes().into(),
                addrs: addrs.iter().map(|a| a.to_vec().into()).collect(),
            },
        };
        check_intent(&intent, now)?;
        let envelope = Envelope::seal(&intent, &self.identity.intent_persona(&id));
        let record = IntentRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            origin: Origin::Own,
            stored_at: now,
            withdrawn_at: None,
            decision: None,
        };
        // One flush, the outbox's, makes the intent and its outbox entry durable together.
        self.store.stage_intent(&id, &record)?;
        // Our own intent coming back over gossip is not news.
        self.store.mark_seen(&envelope.id(), intent.expires)?;
        self.queue_gossip(&envelope, intent_topic(&intent.category), intent.expires)?;
        let _ = self.events.send(NodeEvent::IntentCast {
            intent: hex::encode(*id),
            category: intent.category,
        });
        let _ = self
            .commands
            .send(Command::WatchExpiry(*id, intent.expires))
            .await;
        self.kick().await;
        Ok(id)
    }

    /// Withdraws one of the person's intents: marks it, and publishes a signed withdrawal.
    pub async fn withdraw(&self, id: &IntentId) -> Result<(), NodeError> {
        let hex_id = hex::encode(**id);
        let record = self
            .store
            .intent(id)?
            .ok_or_else(|| NodeError::UnknownIntent(hex_id.clone()))?;
        if record.origin != Origin::Own {
            return Err(NodeError::NotOwn(hex_id));
        }
        if record.withdrawn_at.is_some() {
            return Err(NodeError::AlreadyWithdrawn(hex_id));
        }
        let (intent_envelope, intent) = open_stored::<Intent>(&record.envelope)?;
        let now = unix_now();
        let withdraw = IntentWithdraw {
            intent: *id,
            created: now,
        };
        let envelope = Envelope::seal(&withdraw, &self.identity.intent_persona(id));
        self.store.withdraw_intent(id, now)?;
        self.store.mark_seen(&envelope.id(), intent.expires)?;
        // If the intent never left, there is nothing to chase: drop it from the outbox.
        self.store.outbox_remove(&intent_envelope.id())?;
        self.queue_gossip(&envelope, intent_topic(&intent.category), intent.expires)?;
        let _ = self
            .events
            .send(NodeEvent::IntentWithdrawn { intent: hex_id });
        self.kick().await;
        Ok(())
    }

    fn queue_gossip(
        &self,
        envelope: &Envelope,
        topic: String,
        expires: u64,
    ) -> Result<(), StoreError> {
        let entry = OutboxEntry {
            envelope: envelope.as_bytes().to_vec().into(),
            route: Route::Gossip { topic },
            expires,
            attempts: 0,
            next_attempt: 0,
        };
        self.store.outbox_put(&envelope.id(), &entry)
    }

    async fn kick(&self) {
        let _ = self.commands.send(Command::Kick).await;
    }

    /// All intents in the store (own and, on vendor nodes, received), with their envelopes.
    pub fn intents(&self) -> Result<Vec<(IntentRecord, Envelope, Intent)>, NodeError> {
        let mut out = Vec::new();
        for (_, record) in self.store.intents()? {
            let (envelope, intent) = open_stored::<Intent>(&record.envelope)?;
            out.push((record, envelope, intent));
        }
        Ok(out)
    }

    /// The offers stored for one intent.
    pub fn offers_for(
        &self,
        id: &IntentId,
    ) -> Result<Vec<(OfferRecord, Envelope, Offer)>, NodeError> {
        let mut out = Vec::new();
        for record in self.store.offers_for(id)? {
            let (envelope, offer) = open_stored::<Offer>(&record.envelope)?;
            out.push((record, envelope, offer));
        }
        Ok(out)
    }

    /// Vendor view: the intents received, each with the decision taken on it.
    pub fn vendor_intents(&self) -> Result<Vec<(IntentRecord, Envelope, Intent)>, NodeError> {
        let mut all = self.intents()?;
        all.retain(|(record, _, _)| record.origin == Origin::Received);
        Ok(all)
    }

    /// Vendor view: the offers this node sent, with their delivery state.
    pub fn vendor_offers(&self) -> Result<Vec<(OfferRecord, Envelope, Offer)>, NodeError> {
        let mut out = Vec::new();
        for record in self.store.offers()? {
            if record.origin == Origin::Own {
                let (envelope, offer) = open_stored::<Offer>(&record.envelope)?;
                out.push((record, envelope, offer));
            }
        }
        Ok(out)
    }

    /// Reloads the vendor's `catalog.toml` now; a bad file is refused with the reason and the
    /// catalog in force stays.
    pub async fn reload_catalog(&self) -> Result<usize, NodeError> {
        self.ask(Command::ReloadCatalog)
            .await?
            .map_err(NodeError::Catalog)
    }

    /// Connected peers with their scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// Addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Publishes raw bytes on a topic with no checks: a diagnostic for testing how the
    /// network treats bad messages. Normal operation never needs it.
    pub async fn publish_raw(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|tx| Command::PublishRaw(topic.to_owned(), bytes, tx))
            .await?
            .map_err(NodeError::Network)
    }

    /// Stops the node: the loop ends, the store is flushed. Returns when it is done.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}
