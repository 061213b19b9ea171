//! [`NodeHandle`]: the node's API for the daemon, the HTTP API and tests. A cheap clone.
//! What the person does (cast, withdraw) is signed and made durable here through the
//! store's typed operations, then handed to the event loop in one command; what needs the
//! swarm goes to the loop with a oneshot reply; reads are the store's read models.

use std::collections::BTreeMap;
use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::answering::AnswerInput;
use super::events::{NodeEvent, Stats};
use super::relationships::{self, Draft, RelationshipDetail, RelationshipError, RelationshipView};
use rand::seq::IndexedRandom;

use crate::clock::unix_now;
use crate::config::Role;
use crate::identity::Identity;
use crate::proto::is_field_name;
use crate::proto::limits::MAX_TEXT_BYTES;
use crate::proto::relationship::Side;
use crate::proto::service::LightPushRequest;
use crate::proto::validate::check_intent;
use crate::proto::{
    Constraints, Envelope, GroupTerms, Intent, IntentId, IntentWithdraw, MessageId, ReplyTo, Term,
    ValidationError, limits,
};
use crate::store::relationships::Relationship;
use crate::store::vault::{MAX_VAULT_FIELDS, VaultWrite};
use crate::store::{
    Counts, IntentKey, Origin, Outgoing, Store, StoreError, StoredIntent, StoredOffer,
    StoredProfile, WithdrawOwn,
};

/// How long a cast waits for a first service node to name as its mailbox.
const MAILBOX_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// A vault field or value is refused.
    #[error("{0}")]
    Vault(String),
    /// A relationship operation was refused.
    #[error("{0}")]
    Relationship(String),
    /// No service node is connected, so no mailbox can receive the intent's offers.
    #[error(
        "no service node is connected yet, so no mailbox can take the offers: wait for one to connect (check `vrm peers` and the [network] bootstrap addresses)"
    )]
    NoMailbox,
}

impl From<RelationshipError> for NodeError {
    fn from(e: RelationshipError) -> Self {
        match e {
            RelationshipError::Store(e) => NodeError::Store(e),
            other => NodeError::Relationship(other.to_string()),
        }
    }
}

pub(super) fn parse_rel(rel: &str) -> Result<[u8; 32], NodeError> {
    hex::decode(rel)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            NodeError::Relationship(format!("{rel:?} is not a relationship id (64 hex digits)"))
        })
}

/// A connected peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Its PeerId.
    pub peer: String,
    /// Its gossipsub score, if scored.
    pub score: Option<f64>,
    /// Whether it serves light push and mailboxes.
    pub service: bool,
    /// Whether it opened the connection (we did not dial it).
    pub inbound: bool,
    /// The shards whose topics it joined.
    pub shards: Vec<u8>,
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
    /// A member's intent of this collective intent (started or joined), if one.
    pub group: Option<GroupTerms>,
}

impl CastRequest {
    /// The intent this request casts at `now` with id `id`, answered at `reply_to`; not
    /// checked yet ([`check_intent`] does that).
    pub fn into_intent(self, id: IntentId, now: u64, reply_to: ReplyTo) -> Intent {
        Intent {
            id,
            category: self.category,
            subcategory: self.subcategory,
            text: self.text,
            constraints: self.constraints,
            terms: self.terms,
            created: now,
            expires: now.saturating_add(self.lifetime_secs),
            reply_to,
            group: self.group,
        }
    }
}

/// Commands the event loop executes for the handle.
#[derive(Debug)]
pub enum Command {
    /// The person cast an intent: deliver its publication, open its mailbox queue,
    /// announce its expiry.
    Cast(Outgoing, Box<Intent>),
    /// The person withdrew an intent: deliver the withdrawal; the publication is gone.
    Withdrawn {
        /// The withdrawal.
        queued: Outgoing,
        /// The intent's publication, removed from the outbox.
        unqueued: MessageId,
    },
    /// A relationship changed here: deliver `queued`; for a new one of the person's,
    /// watch its queue (and open it at its mailbox first).
    Relationship {
        /// Entries and acknowledgements to deliver.
        queued: Vec<Outgoing>,
        /// The queue of a relationship just started.
        watch: Option<super::relationships::PersonQueue>,
    },
    /// Connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// Publish raw bytes on a topic, bypassing every check (for testing the network's defences).
    PublishRaw(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Take a signed envelope as a light client's push and relay it.
    HandOver(LightPushRequest, oneshot::Sender<Result<(), String>>),
    /// Stop: flush and end the loop.
    Shutdown,
}

/// The node's API. Clone it freely.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) store: Arc<Store>,
    pub(super) identity: Arc<Identity>,
    pub(super) stats: Arc<Stats>,
    pub(super) vendor_name: Option<String>,
    /// The person's standing terms.
    pub(super) standing_terms: Vec<String>,
    /// The vendor role's inbox, on vendor nodes.
    pub(super) vendor: Option<mpsc::Sender<AnswerInput>>,
    /// The addresses the node listens on, kept current by the event loop.
    pub(super) listen: watch::Receiver<Vec<Multiaddr>>,
    /// Connected service nodes that can hold a mailbox, kept current by the event loop.
    pub(super) services: watch::Receiver<Vec<(PeerId, Multiaddr)>>,
    /// Service node or light node, kept current by the event loop.
    pub(super) role: watch::Receiver<Role>,
    /// The shards the node carries while a service node.
    pub(super) shards: Vec<u8>,
    /// Turns true when the event loop has ended.
    pub(super) done: watch::Receiver<bool>,
    /// The metrics registry, when metrics are on.
    pub(super) metrics: Option<Arc<prometheus_client::registry::Registry>>,
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

    /// Accept/reject counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The node's metrics as Prometheus text (what `/metrics` serves), when metrics are on.
    pub fn metrics_text(&self) -> Option<String> {
        super::metrics::text(self.metrics.as_deref()?)
    }

    /// A stream of everything that happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Signs an intent with a fresh persona, stores it and queues it for publishing. Returns
    /// its id once it is on disk; it goes out as soon as a peer on its topic is reachable.
    pub async fn cast(&self, mut request: CastRequest) -> Result<IntentId, NodeError> {
        if self.commands.is_closed() {
            return Err(NodeError::Stopped);
        }
        // The standing terms go with every intent, as proffered (not required) unless the
        // request names them itself.
        for term in &self.standing_terms {
            if !request.terms.iter().any(|t| t.id == *term) {
                request.terms.push(Term {
                    id: term.clone(),
                    required: false,
                });
            }
        }
        let now = unix_now();
        let id: IntentId = rand::random::<[u8; 16]>().into();
        let intent = request.into_intent(id, now, self.stand_in(&id));
        self.publish_intent(intent, now).await
    }

    /// A reply path of the right shape for intent `id`, naming no mailbox yet: the request's
    /// own faults are told before any wait for a mailbox.
    pub(super) fn stand_in(&self, id: &IntentId) -> ReplyTo {
        let reply = self.identity.reply(id);
        ReplyTo::new(
            &self.peer_id(),
            &Multiaddr::from(std::net::Ipv4Addr::UNSPECIFIED),
            reply.queue(),
            reply.key.public(),
        )
    }

    /// Signs `intent` (made at `now`, with a [`Self::stand_in`] reply path) under its own
    /// persona once it has its real reply path, stores and publishes it.
    pub(super) async fn publish_intent(
        &self,
        mut intent: Intent,
        now: u64,
    ) -> Result<IntentId, NodeError> {
        let id = intent.id;
        check_intent(&intent, now)?;
        intent.reply_to = self.reply_path(&id).await?;
        check_intent(&intent, now)?;
        let envelope = Envelope::seal(&intent, &self.identity.intent_persona(&id));
        let (cast, sealed) = (intent.clone(), envelope.clone());
        let queued =
            super::durably(&self.store, move |store| store.cast(&sealed, &cast, now)).await?;
        let _ = self.events.send(NodeEvent::IntentCast {
            intent: hex::encode(*id),
            category: intent.category.clone(),
        });
        let _ = self
            .commands
            .send(Command::Cast(queued, Box::new(intent)))
            .await;
        Ok(id)
    }

    /// The reply path of a new intent: a mailbox on one of the connected service nodes,
    /// picked at random for each intent, and the intent's own queue and key. A node that
    /// has just started waits a moment for its first service node.
    async fn reply_path(&self, id: &IntentId) -> Result<ReplyTo, NodeError> {
        let mut watch = self.services.clone();
        let known = watch.wait_for(|services| !services.is_empty());
        let _ = tokio::time::timeout(MAILBOX_WAIT, known).await;
        let services = self.services.borrow().clone();
        let usable: Vec<&(PeerId, Multiaddr)> = services
            .iter()
            .filter(|(_, addr)| addr.to_vec().len() <= limits::MAX_ADDR_BYTES)
            .collect();
        let vendors = self.store.vendor_nodes()?;
        let (mailbox, addr) = super::peers::prefer_non_vendors(usable, |c| c.0, &vendors)
            .choose(&mut rand::rng())
            .copied()
            .ok_or(NodeError::NoMailbox)?;
        let reply = self.identity.reply(id);
        Ok(ReplyTo::new(
            mailbox,
            addr,
            reply.queue(),
            reply.key.public(),
        ))
    }

    /// The person accepts offer `offer`: as a returning customer (the pairwise persona for
    /// its vendor) or as new (a fresh persona), and withdraws its intent if `withdraw`.
    /// Returns the relationship's id once the accept is on disk; it goes out through a
    /// mailbox of the person's (never the vendor's node) at once.
    pub async fn accept(
        &self,
        offer: &MessageId,
        returning: bool,
        withdraw: bool,
    ) -> Result<String, NodeError> {
        if self.commands.is_closed() {
            return Err(NodeError::Stopped);
        }
        let now = unix_now();
        let stored = self
            .store
            .offers()?
            .into_iter()
            .find(|o| o.envelope.id() == *offer && o.origin == Origin::Received)
            .ok_or_else(|| NodeError::Relationship(format!("no offer {offer} received")))?;
        let vendor_node = stored.offer.inbox.as_ref().map(|i| i.mailbox.to_vec());
        let (via, addr) = self.mailbox_for_relationship(vendor_node).await?;
        let (identity, id) = (self.identity.clone(), *offer);
        let accepted = super::durably(&self.store, move |store| {
            let via = (&via, &addr);
            let accepted = relationships::accept(store, &identity, &id, returning, via, now);
            store.flush()?;
            Ok(accepted)
        })
        .await?;
        let (record, queued) = accepted.map_err(NodeError::from)?;
        let rel = hex::encode(record.chain.rel);
        let _ = self.events.send(NodeEvent::RelationshipEntry {
            relationship: rel.clone(),
            seq: 0,
            kind: "accept".into(),
            status: None,
            from: Side::Person,
        });
        let _ = self
            .commands
            .send(Command::Relationship {
                queued: vec![queued],
                watch: relationships::person_queue(&record),
            })
            .await;
        if withdraw {
            match self.withdraw(&stored.offer.intent).await {
                Ok(()) | Err(NodeError::AlreadyWithdrawn(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(rel)
    }

    /// The mailbox a new relationship's queue lives in (and which forwards the person's
    /// entries): a connected service node picked at random, never the vendor's own node.
    async fn mailbox_for_relationship(
        &self,
        vendor_node: Option<Vec<u8>>,
    ) -> Result<(PeerId, Multiaddr), NodeError> {
        let mut watch = self.services.clone();
        let known = watch.wait_for(|services| !services.is_empty());
        let _ = tokio::time::timeout(MAILBOX_WAIT, known).await;
        let services = self.services.borrow().clone();
        services
            .into_iter()
            .filter(|(peer, addr)| {
                addr.to_vec().len() <= limits::MAX_ADDR_BYTES
                    && vendor_node.as_deref() != Some(&peer.to_bytes()[..])
            })
            .collect::<Vec<_>>()
            .choose(&mut rand::rng())
            .cloned()
            .ok_or(NodeError::NoMailbox)
    }

    /// This node's side writes `draft` into relationship `rel` (hex). Returns its place
    /// once it is on disk.
    pub async fn relationship_write(&self, rel: &str, draft: Draft) -> Result<u32, NodeError> {
        if self.commands.is_closed() {
            return Err(NodeError::Stopped);
        }
        let rel = parse_rel(rel)?;
        let identity = self.identity.clone();
        let written = super::durably(&self.store, move |store| {
            let written = relationships::write(store, &identity, &rel, &draft, unix_now());
            store.flush()?;
            Ok(written)
        })
        .await?;
        let (seq, queued, events) = written.map_err(NodeError::from)?;
        self.tell(queued, events).await;
        Ok(seq)
    }

    /// Hands deliveries to the event loop and tells events (after they are on disk).
    pub(super) async fn tell(&self, queued: Vec<Outgoing>, events: Vec<NodeEvent>) {
        for event in events {
            let _ = self.events.send(event);
        }
        if !queued.is_empty() {
            let command = Command::Relationship {
                queued,
                watch: None,
            };
            let _ = self.commands.send(command).await;
        }
    }

    /// The person's standing terms, proffered with every intent and grant.
    pub fn standing_terms(&self) -> &[String] {
        &self.standing_terms
    }

    /// The person's vault: every field, by name.
    pub fn vault(&self) -> Result<BTreeMap<String, String>, NodeError> {
        Ok(self.store.vault()?)
    }

    /// Sets vault field `name` to `value`, durably; every vendor holding the field under a
    /// live grant gets the new value (a grant that replaces its old one). Returns how many
    /// grants were renewed.
    pub async fn vault_set(&self, name: &str, value: &str) -> Result<usize, NodeError> {
        if !is_field_name(name) {
            return Err(NodeError::Vault(format!(
                "{name:?} is not a field name: 1 to 32 of a-z, 0-9, - and _, starting with a letter or digit"
            )));
        }
        if value.trim().is_empty() || value.len() > MAX_TEXT_BYTES {
            return Err(NodeError::Vault(format!(
                "a value holds 1 to {MAX_TEXT_BYTES} bytes, not only white space"
            )));
        }
        if self
            .store
            .vault()
            .map(|v| v.get(name).map(String::as_str) == Some(value))?
        {
            return Ok(0);
        }
        if self.store.vault_set(name, value)? == VaultWrite::Full {
            return Err(NodeError::Vault(format!(
                "the vault holds {MAX_VAULT_FIELDS} fields: remove one first"
            )));
        }
        let (identity, field) = (self.identity.clone(), name.to_owned());
        let written = super::durably(&self.store, move |store| {
            let written = super::data::refresh(store, &identity, &field, unix_now());
            store.flush()?;
            Ok(written)
        })
        .await?
        .map_err(NodeError::from)?;
        let renewed = written.len();
        for (_, queued, events) in written {
            self.tell(queued, events).await;
        }
        Ok(renewed)
    }

    /// Removes vault field `name`; whether it was there. (Vendors holding it keep it until
    /// their grant ends: revoke the grant to have it deleted.)
    pub fn vault_remove(&self, name: &str) -> Result<bool, NodeError> {
        Ok(self.store.vault_remove(name)?)
    }

    /// Every vendor the person granted data to, with each grant and where it stands.
    pub fn holdings(&self) -> Result<Vec<super::data::Holding>, NodeError> {
        Ok(super::data::holdings(&self.store, unix_now())?)
    }

    /// Every relationship, the most recently active first.
    pub fn relationships(&self) -> Result<Vec<RelationshipView>, NodeError> {
        let mut all = Vec::new();
        for record in self.store.relationships()? {
            all.push(relationships::detail(&self.store, &record)?.summary);
        }
        all.sort_by_key(|r| std::cmp::Reverse((r.updated, r.started)));
        Ok(all)
    }

    /// One relationship with its log.
    pub fn relationship(&self, rel: &str) -> Result<RelationshipDetail, NodeError> {
        let record = self.relationship_record(rel)?;
        Ok(relationships::detail(&self.store, &record)?)
    }

    /// The log of relationship `rel` as one file anyone can verify.
    pub fn relationship_export(&self, rel: &str) -> Result<Vec<u8>, NodeError> {
        let record = self.relationship_record(rel)?;
        Ok(relationships::export(&self.store, &record)?)
    }

    /// The first `through` entries of relationship `rel` (all of them if `None`) count as read.
    pub async fn relationship_read(
        &self,
        rel: &str,
        through: Option<u32>,
    ) -> Result<(), NodeError> {
        let rel = parse_rel(rel)?;
        let found = super::durably(&self.store, move |store| {
            let found = relationships::mark_read(store, &rel, through)?;
            store.flush()?;
            Ok(found)
        })
        .await?;
        match found {
            true => Ok(()),
            false => Err(NodeError::Relationship(format!(
                "no relationship {}",
                hex::encode(rel)
            ))),
        }
    }

    fn relationship_record(&self, rel: &str) -> Result<Relationship, NodeError> {
        let rel = parse_rel(rel)?;
        self.store
            .relationship(&rel)?
            .ok_or_else(|| NodeError::Relationship(format!("no relationship {}", hex::encode(rel))))
    }

    /// What the mailbox this node keeps for others holds (service nodes).
    pub fn mailbox_counts(&self) -> crate::store::mailbox::MailboxCounts {
        self.store.mailbox_counts()
    }

    /// Service node or light node.
    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    /// The shards whose intent topics the node joins: those it carries while a service
    /// node, none while a light node.
    pub fn shards(&self) -> Vec<u8> {
        match self.role() {
            Role::Service => self.shards.clone(),
            Role::Light => Vec::new(),
        }
    }

    /// The connected service nodes that can hold a mailbox.
    pub fn service_nodes(&self) -> Vec<PeerId> {
        self.services
            .borrow()
            .iter()
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Withdraws one of the person's intents: marks it, and publishes a signed withdrawal.
    pub async fn withdraw(&self, id: &IntentId) -> Result<(), NodeError> {
        if self.commands.is_closed() {
            return Err(NodeError::Stopped);
        }
        let hex_id = hex::encode(**id);
        let withdraw = IntentWithdraw {
            intent: *id,
            created: unix_now(),
        };
        let envelope = Envelope::seal(&withdraw, &self.identity.intent_persona(id));
        let (own, sealed, at) = (*id, envelope.clone(), withdraw.created);
        let withdrawn = super::durably(&self.store, move |store| {
            store.withdraw_own(&own, &sealed, at)
        });
        match withdrawn.await? {
            WithdrawOwn::Withdrawn { queued, unqueued } => {
                let _ = self
                    .events
                    .send(NodeEvent::IntentWithdrawn { intent: hex_id });
                let _ = self
                    .commands
                    .send(Command::Withdrawn {
                        queued: *queued,
                        unqueued,
                    })
                    .await;
                Ok(())
            }
            // A vendor's node may hold a received intent with this id.
            WithdrawOwn::Unknown if self.intent(id)?.is_some() => Err(NodeError::NotOwn(hex_id)),
            WithdrawOwn::Unknown => Err(NodeError::UnknownIntent(hex_id)),
            WithdrawOwn::AlreadyWithdrawn => Err(NodeError::AlreadyWithdrawn(hex_id)),
        }
    }

    /// One intent: the person's own with this id, or else a received one (several
    /// signers may have used one id: the first in the store's order).
    pub fn intent(&self, id: &IntentId) -> Result<Option<StoredIntent>, NodeError> {
        if let Some(own) = self.store.intent(&IntentKey::own(id))? {
            return Ok(Some(own));
        }
        Ok(self
            .store
            .intents()?
            .into_iter()
            .find(|stored| stored.origin == Origin::Received && stored.intent.id == *id))
    }

    /// All intents in the store (own and, on vendor nodes, received).
    pub fn intents(&self) -> Result<Vec<StoredIntent>, NodeError> {
        Ok(self.store.intents()?)
    }

    /// The offers stored for the intent under `key` (received for the person's own, made
    /// for a received one).
    pub fn offers_for(&self, key: &IntentKey) -> Result<Vec<StoredOffer>, NodeError> {
        Ok(self.store.offers_for(key)?)
    }

    /// Vendor view: the intents received, each with the decision taken on it.
    pub fn vendor_intents(&self) -> Result<Vec<StoredIntent>, NodeError> {
        let mut all = self.intents()?;
        all.retain(|stored| stored.origin == Origin::Received);
        Ok(all)
    }

    /// Vendor view: the offers this node sent, with their delivery state.
    pub fn vendor_offers(&self) -> Result<Vec<StoredOffer>, NodeError> {
        let mut all = self.store.offers()?;
        all.retain(|stored| stored.origin == Origin::Own);
        Ok(all)
    }

    /// The vendor directory: the newest profile of every vendor seen.
    pub fn profiles(&self) -> Result<Vec<StoredProfile>, NodeError> {
        Ok(self.store.profiles()?)
    }

    /// How many records the store holds (the outbox's length among them).
    pub fn counts(&self) -> Counts {
        self.store.counts()
    }

    /// Reloads the vendor's `catalog.toml` now; a bad file is refused with the reason and the
    /// catalog in force stays.
    pub async fn reload_catalog(&self) -> Result<usize, NodeError> {
        let Some(vendor) = &self.vendor else {
            return Err(NodeError::Catalog("this node has no vendor role".into()));
        };
        let (tx, rx) = oneshot::channel();
        vendor
            .send(AnswerInput::ReloadCatalog(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await
            .map_err(|_| NodeError::Stopped)?
            .map_err(NodeError::Catalog)
    }

    /// Connected peers with their scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        self.ask(Command::Peers).await
    }

    /// Addresses the node listens on.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen.borrow().clone()
    }

    /// Publishes raw bytes on a topic with no checks: a diagnostic for testing how the
    /// network treats bad messages. Normal operation never needs it.
    pub async fn publish_raw(&self, topic: &str, bytes: Vec<u8>) -> Result<(), NodeError> {
        self.ask(|tx| Command::PublishRaw(topic.to_owned(), bytes, tx))
            .await?
            .map_err(NodeError::Network)
    }

    /// Takes a signed envelope for `topic` as this service node takes one a light client
    /// pushes to it (checked, kept and relayed under the message's rules, without the
    /// client's rate limit): how a benchmark publishes intents signed beforehand. A refusal
    /// comes back with its code.
    pub async fn publish_handed_over(
        &self,
        topic: &str,
        envelope: Vec<u8>,
    ) -> Result<(), NodeError> {
        let request = LightPushRequest {
            topic: topic.to_owned(),
            envelope: envelope.into(),
        };
        self.ask(|tx| Command::HandOver(request, tx))
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
