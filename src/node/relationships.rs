//! Relationships on both sides: the person accepts an offer, both sides write entries into
//! the one log, each acknowledges the other's, and the vendor's node places entries that
//! crossed (`proto/README.md`, "Relationships").
//!
//! Transport: the vendor's entries and acknowledgements go sealed to the person's queue
//! for the relationship (named in the accept), through the vendor's outbox like offers.
//! The person's go sealed to the vendor's inbox (named in the offer), handed to the
//! person's own mailbox for the relationship, which deposits them (`Route::Forward`): the
//! vendor never sees the person's node.
//!
//! Order: the vendor's node is the log's sequencer. It places the vendor's own entries at
//! once, and the person's when they arrive at the place they name. The person's node keeps
//! its own entries *pending* until the vendor's node placed them (its acknowledgement, or
//! a vendor entry after them, says so). When a vendor entry takes the place a pending one
//! named, the pending ones are written anew after it, if the rules still allow them there
//! (a cancel after a shipment does not stand): both sides end with the same log.
//!
//! Everything here is synchronous and staged: the callers flush before they acknowledge.

use ed25519_dalek::{Signer, SigningKey};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use serde_bytes::ByteBuf;
use tracing::{debug, info, warn};

use super::action::Action;
use super::data;
use super::events::{NodeEvent, Stats};
use super::group_orders;
use std::sync::Arc;

use crate::identity::Identity;
use crate::proto::limits::MAX_CLOCK_SKEW_SECS;
use crate::proto::relationship::{
    Chain, Entry, LOG_FORMAT, LogFile, LogRecord, RuleError, Side, Stage,
};
use crate::proto::sealed::{RELATIONSHIP_INFO, ReplyKey};
use crate::proto::service::{MailboxRequest, MailboxResponse, RATE_LIMITED, UNAVAILABLE};
use crate::proto::{
    Accept, Agreement, EntryAck, Envelope, Grant, GrantDelivery, IntentId, Kind, Message,
    MessageId, Offer, OfferItem, Order, OrderUpdate, Receipt, ReceiptStatus, RelationshipEnd,
    ReplyTo, ReviewToken, Revoke, Status, link_input,
};
use crate::ratelimit::RateLimiter;
use crate::store::relationships::{MAX_PENDING, Relationship, RelationshipWrite};
use crate::store::{IntentKey, Origin, Outgoing, Route, Store, StoreError, Subject};

/// How long an entry or acknowledgement is retried before it is given up.
pub const DELIVERY_SECS: u64 = 30 * 24 * 3600;

/// What one side writes next (the accept aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Draft {
    /// Vendor: the order, restating the offer.
    Order,
    /// A status change.
    Update(Status, String),
    /// A message.
    Message(String),
    /// The end of the relationship.
    End(String),
    /// Vendor: agrees to these of the person's terms.
    Agreement(Vec<String>),
    /// Person: grants vault fields.
    Grant(GrantDraft),
    /// Person: withdraws a grant.
    Revoke([u8; 32]),
    /// Vendor: answers a grant (restating it), with why.
    Receipt([u8; 32], ReceiptStatus, String),
    /// Vendor: the token a review of the fulfilled order proves it with.
    ReviewToken,
}

/// What a person grants: vault fields, for a purpose, until a time, under terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantDraft {
    /// Vault field names.
    pub fields: Vec<String>,
    /// A purpose id (`proto/purposes.json`).
    pub purpose: String,
    /// When it ends (unix seconds).
    pub expires: u64,
    /// The person's terms it is shared under.
    pub terms: Vec<String>,
    /// The grant it replaces (new values of its fields).
    pub replaces: Option<[u8; 32]>,
}

impl Draft {
    /// The draft an entry was made from (to write it anew at another place).
    fn of(entry: &Entry) -> Draft {
        match entry {
            Entry::Order(_) => Draft::Order,
            Entry::Update(u, status) => Draft::Update(*status, u.text.clone()),
            Entry::Message(m) => Draft::Message(m.text.clone()),
            Entry::End(e) => Draft::End(e.text.clone()),
            Entry::Agreement(a) => Draft::Agreement(a.terms.clone()),
            Entry::Grant(g) => Draft::Grant(GrantDraft {
                fields: g.fields.clone(),
                purpose: g.purpose.clone(),
                expires: g.expires,
                terms: g.terms.clone(),
                replaces: g.replaces.as_ref().map(|r| **r),
            }),
            Entry::Revoke(r) => Draft::Revoke(*r.grant),
            Entry::Receipt(r, status) => Draft::Receipt(*r.of, *status, r.text.clone()),
            Entry::ReviewToken(_) => Draft::ReviewToken,
        }
    }
}

/// Why a relationship operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RelationshipError {
    /// A rule of the log.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such relationship or offer, or another reason the request cannot be met.
    #[error("{0}")]
    Refused(String),
}

fn refused<T>(reason: impl Into<String>) -> Result<T, RelationshipError> {
    Err(RelationshipError::Refused(reason.into()))
}

/// What happened to an incoming item; `code` is what the depositor is answered.
#[derive(Debug)]
pub struct Taken {
    /// `None`: stored (or known already); a code: refused, with why.
    pub code: Option<&'static str>,
    /// Outbox entries to hand to the planner (acknowledgements, answers).
    pub queued: Vec<Outgoing>,
    /// Events to tell.
    pub events: Vec<NodeEvent>,
}

impl Taken {
    /// What the event loop does with it: queue the deliveries and tell the events. (The
    /// pending entries given up left the outbox already; the planner drops them when they
    /// come up.)
    pub fn into_actions(self) -> Vec<Action> {
        let queued = self.queued.into_iter().map(Action::Queue);
        queued
            .chain(self.events.into_iter().map(Action::Emit))
            .collect()
    }

    fn stored(queued: Vec<Outgoing>, events: Vec<NodeEvent>) -> Taken {
        Taken {
            code: None,
            queued,
            events,
        }
    }

    fn refused(code: &'static str) -> Taken {
        Taken {
            code: Some(code),
            queued: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The person's relationship queue, for the mailbox handler: the relationship's id,
/// nonce and mailbox.
#[derive(Debug, Clone)]
pub struct PersonQueue {
    /// The relationship.
    pub rel: [u8; 32],
    /// Its nonce.
    pub nonce: [u8; 16],
    /// The mailbox holding the queue.
    pub mailbox: PeerId,
    /// The mailbox's address.
    pub addr: Multiaddr,
}

/// Every live relationship queue of the person's in `store`.
pub fn person_queues(store: &Store) -> Result<Vec<PersonQueue>, StoreError> {
    Ok(store
        .relationships()?
        .into_iter()
        .filter_map(|r| person_queue(&r))
        .collect())
}

/// The person's queue of one relationship, while it is not ended.
pub fn person_queue(record: &Relationship) -> Option<PersonQueue> {
    if record.side != Side::Person || record.chain.state.ended_by.is_some() {
        return None;
    }
    let via = record.via.as_ref()?;
    Some(PersonQueue {
        rel: record.chain.rel,
        nonce: *record.nonce?,
        mailbox: PeerId::from_bytes(&via.mailbox).ok()?,
        addr: Multiaddr::try_from(via.addr.to_vec()).ok()?,
    })
}

/// The vendor's inbox as its offers name it: this node at the first of `listen` that is
/// not a loopback address (a loopback one only when there is nothing else, as in tests).
pub fn vendor_inbox(identity: &Identity, listen: &[Multiaddr]) -> Option<ReplyTo> {
    let loopback = |addr: &Multiaddr| {
        addr.iter().any(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
            libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    let addr = listen
        .iter()
        .find(|a| !loopback(a))
        .or_else(|| listen.first())?;
    let inbox = identity.vendor_inbox();
    Some(ReplyTo::new(
        &identity.peer_id(),
        addr,
        inbox.queue(),
        inbox.key.public(),
    ))
}

pub(super) fn outgoing(record: &Relationship, envelope: &Envelope, now: u64) -> Outgoing {
    let route = match &record.via {
        Some(via) => Route::Forward {
            via: via.mailbox.clone(),
            via_addr: via.addr.clone(),
            to: Box::new(record.to.clone()),
        },
        None => Route::Mailbox(record.to.clone()),
    };
    Outgoing {
        id: envelope.id(),
        subject: Subject::Relationship {
            rel: record.chain.rel.into(),
        },
        route,
        expires: now + DELIVERY_SECS,
    }
}

pub(super) fn signing_key(
    identity: &Identity,
    record: &Relationship,
) -> Result<SigningKey, RelationshipError> {
    match record.side {
        Side::Vendor => match identity.vendor_key() {
            Some(key) => Ok(key.clone()),
            None => refused("this node has no vendor key"),
        },
        Side::Person => Ok(match (&record.nonce, record.returning) {
            (_, true) => {
                let vendor = ed25519_dalek::VerifyingKey::from_bytes(&record.chain.vendor)
                    .map_err(|_| {
                        RelationshipError::Refused("the vendor key is not a key".into())
                    })?;
                identity.pairwise_persona(&vendor)
            }
            (Some(nonce), false) => identity.relationship_persona(nonce),
            (None, false) => return refused("the relationship has no nonce"),
        }),
    }
}

fn offer_items(record: &Relationship) -> Result<Vec<OfferItem>, RelationshipError> {
    let offer = Envelope::decode(&record.offer)
        .map_err(|e| RelationshipError::Refused(format!("the stored offer: {e}")))?;
    let body: Offer = offer
        .open()
        .map_err(|e| RelationshipError::Refused(format!("the stored offer: {e}")))?;
    Ok(body.items)
}

fn seal(
    draft: &Draft,
    record: &Relationship,
    seq: u32,
    prev: [u8; 32],
    now: u64,
    key: &SigningKey,
) -> Result<Envelope, RelationshipError> {
    let rel = record.chain.rel.into();
    let prev = prev.into();
    Ok(match draft {
        Draft::Order => Envelope::seal(
            &Order {
                rel,
                seq,
                prev,
                items: offer_items(record)?,
                text: String::new(),
                created: now,
            },
            key,
        ),
        Draft::Update(status, text) => Envelope::seal(
            &OrderUpdate {
                rel,
                seq,
                prev,
                status: status.as_str().to_owned(),
                text: text.clone(),
                created: now,
            },
            key,
        ),
        Draft::Message(text) => Envelope::seal(
            &Message {
                rel,
                seq,
                prev,
                text: text.clone(),
                created: now,
            },
            key,
        ),
        Draft::End(text) => Envelope::seal(
            &RelationshipEnd {
                rel,
                seq,
                prev,
                text: text.clone(),
                created: now,
            },
            key,
        ),
        Draft::Agreement(terms) => Envelope::seal(
            &Agreement {
                rel,
                seq,
                prev,
                terms: terms.clone(),
                created: now,
            },
            key,
        ),
        Draft::Grant(grant) => Envelope::seal(
            &Grant {
                rel,
                seq,
                prev,
                fields: grant.fields.clone(),
                purpose: grant.purpose.clone(),
                expires: grant.expires,
                terms: grant.terms.clone(),
                replaces: grant.replaces.map(Into::into),
                created: now,
            },
            key,
        ),
        Draft::ReviewToken => {
            let Some(order) = record.chain.order else {
                return refused("no order to review in this relationship");
            };
            Envelope::seal(
                &ReviewToken {
                    rel,
                    seq,
                    prev,
                    persona: record.chain.persona.into(),
                    order: order.into(),
                    created: now,
                },
                key,
            )
        }
        Draft::Revoke(grant) => Envelope::seal(
            &Revoke {
                rel,
                seq,
                prev,
                grant: (*grant).into(),
                created: now,
            },
            key,
        ),
        Draft::Receipt(of, status, text) => {
            let Some(grant) = record.chain.grants.iter().find(|g| g.id == *of) else {
                return refused("no such grant in this relationship");
            };
            let terms = match status {
                ReceiptStatus::Refused => Vec::new(),
                _ => grant.terms.clone(),
            };
            Envelope::seal(
                &Receipt {
                    rel,
                    seq,
                    prev,
                    of: (*of).into(),
                    status: status.as_str().to_owned(),
                    fields: grant.fields.clone(),
                    purpose: grant.purpose.clone(),
                    expires: grant.expires,
                    delete_by: grant.expires,
                    terms,
                    text: text.clone(),
                    created: now,
                },
                key,
            )
        }
    })
}

/// The vendor's node writes `drafts` after the last entry of `record`'s log, each where
/// the rules allow it (one that does not is left out, with a warning). Returns the
/// envelopes placed, in order.
pub(super) fn follow_up(
    record: &mut Relationship,
    drafts: &[Draft],
    now: u64,
    key: &SigningKey,
) -> Vec<Envelope> {
    let mut placed = Vec::new();
    for draft in drafts {
        let sealed = seal(draft, record, record.chain.len, record.chain.last, now, key);
        match sealed.and_then(|e| Ok((record.chain.check(&e)?.2, e))) {
            Ok((state, envelope)) => {
                record.chain.push(&envelope, state);
                placed.push(envelope);
            }
            Err(e) => warn!(
                "relationship {}: {draft:?} not written: {e}",
                hex::encode(record.chain.rel)
            ),
        }
    }
    placed
}

/// The review token, if the vendor's node owes one now: the order was fulfilled or
/// received and no token was written yet (the log's rules say the rest).
fn token_due(record: &Relationship) -> Option<Draft> {
    let state = record.chain.state;
    let due = record.side == Side::Vendor
        && record.chain.token.is_none()
        && state.stage == Stage::Agreed
        && (state.fulfilled || state.received)
        && state.ended_by.is_none();
    due.then_some(Draft::ReviewToken)
}

/// What carries `envelope` to the other side: its bytes, or for the person's grant, a
/// delivery with the vault's values of its fields (refused if the vault lacks one).
fn payload(store: &Store, envelope: &Envelope) -> Result<Vec<u8>, RelationshipError> {
    let Ok(Entry::Grant(grant)) = Entry::open(envelope) else {
        return Ok(envelope.as_bytes().to_vec());
    };
    let mut vault = store.vault()?;
    let mut values = std::collections::BTreeMap::new();
    for field in &grant.fields {
        match vault.remove(field) {
            Some(value) => values.insert(field.clone(), value),
            None => return refused(format!("the vault has no field {field:?}")),
        };
    }
    Ok(GrantDelivery {
        grant: envelope.as_bytes().to_vec().into(),
        values,
    }
    .to_bytes())
}

fn ack(record: &Relationship, seq: u32, entry: &MessageId, now: u64, key: &SigningKey) -> Envelope {
    Envelope::seal(
        &EntryAck {
            rel: record.chain.rel.into(),
            seq,
            entry: entry.0.into(),
            created: now,
        },
        key,
    )
}

pub(super) fn entry_event(
    record: &Relationship,
    seq: u32,
    envelope: &Envelope,
    side: Side,
) -> NodeEvent {
    let status = Entry::open(envelope).ok().and_then(|e| match e {
        Entry::Update(_, status) => Some(status.as_str().to_owned()),
        Entry::Receipt(_, status) => Some(status.as_str().to_owned()),
        _ => None,
    });
    NodeEvent::RelationshipEntry {
        relationship: hex::encode(record.chain.rel),
        seq,
        kind: envelope.kind().as_str().to_owned(),
        status,
        from: side,
    }
}

/// The chain with the person's pending entries placed after it, as the person's node sees
/// its own log (and each pending envelope).
pub(super) fn with_pending(
    record: &Relationship,
) -> Result<(Chain, Vec<Envelope>), RelationshipError> {
    let mut chain = record.chain.clone();
    let mut pending = Vec::new();
    for bytes in &record.pending {
        let envelope = Envelope::decode(bytes).map_err(RuleError::from)?;
        let (_, _, state) = chain.check(&envelope)?;
        chain.push(&envelope, state);
        pending.push(envelope);
    }
    Ok((chain, pending))
}

/// The person accepts the offer `offer` (its id): a new relationship, as a returning
/// customer (the pairwise persona) or as new (a fresh persona), its queue at the mailbox
/// `via`, which also forwards the person's entries. Staged; returns the record and the
/// accept's delivery.
pub fn accept(
    store: &Store,
    identity: &Identity,
    offer_id: &MessageId,
    returning: bool,
    via: (&PeerId, &Multiaddr),
    now: u64,
) -> Result<(Relationship, Outgoing), RelationshipError> {
    let _one_writer = store.relationship_lock();
    if store.relationship_of_offer(&offer_id.0)?.is_some() {
        return refused(format!("offer {offer_id} is already accepted"));
    }
    let stored = store
        .offers()?
        .into_iter()
        .find(|o| o.envelope.id() == *offer_id && o.origin == Origin::Received)
        .ok_or_else(|| RelationshipError::Refused(format!("no offer {offer_id} received")))?;
    let offer = stored.offer;
    let Some(inbox) = offer.inbox.clone() else {
        return refused("this offer names no inbox: its vendor takes no relationships");
    };
    if offer.valid_until < now {
        return refused(format!("offer {offer_id} expired at {}", offer.valid_until));
    }
    let vendor = ed25519_dalek::VerifyingKey::from_bytes(&offer.vendor)
        .map_err(|_| RelationshipError::Refused("the offer's vendor key is not a key".into()))?;
    let nonce: [u8; 16] = rand::random();
    let persona = if returning {
        identity.pairwise_persona(&vendor)
    } else {
        identity.relationship_persona(&nonce)
    };
    let reply = identity.relationship_reply(&nonce);
    let reply_to = ReplyTo::new(via.0, via.1, reply.queue(), reply.key.public());
    let persona_key = persona.verifying_key().to_bytes();
    let intent_persona = identity.intent_persona(&offer.intent);
    let link = intent_persona.sign(&link_input(&persona_key, &offer.vendor, &offer_id.0));
    let body = Accept {
        offer: offer_id.0.into(),
        intent: offer.intent,
        intent_persona: intent_persona.verifying_key().to_bytes().into(),
        persona: persona_key.into(),
        link: link.to_bytes().into(),
        reply_to: reply_to.clone(),
        created: now,
    };
    let envelope = Envelope::seal(&body, &persona);
    let (chain, _) = Chain::start(&envelope, &stored.envelope)?;
    let record = Relationship {
        side: Side::Person,
        chain,
        offer: stored.envelope.as_bytes().to_vec().into(),
        to: inbox,
        via: Some(reply_to),
        nonce: Some(nonce.into()),
        returning,
        pending: Vec::new(),
        read: 1,
        started: now,
        updated: now,
    };
    let queued = outgoing(&record, &envelope, now);
    let write = RelationshipWrite {
        entries: vec![(0, &envelope)],
        acks: Vec::new(),
        queued: vec![(&queued, envelope.as_bytes())],
    };
    if !store.write_relationship(&record, write)? {
        return refused("this node keeps as many relationships as it may, or the offer is taken");
    }
    Ok((record, queued))
}

/// What a write made: the place of the entry asked for, the deliveries and the events
/// (the vendor's node may write entries with it: its agreement before its order, receipts
/// of deletion after its end).
pub type Written = (u32, Vec<Outgoing>, Vec<NodeEvent>);

/// This node's side writes `draft` into relationship `rel`. The vendor's node places it at
/// once; the person's keeps it pending until the vendor's node has. Staged.
pub fn write(
    store: &Store,
    identity: &Identity,
    rel: &[u8; 32],
    draft: &Draft,
    now: u64,
) -> Result<Written, RelationshipError> {
    let _one_writer = store.relationship_lock();
    write_locked(store, identity, rel, draft, now)
}

/// [`write`], by a caller that holds the relationship lock.
pub(super) fn write_locked(
    store: &Store,
    identity: &Identity,
    rel: &[u8; 32],
    draft: &Draft,
    now: u64,
) -> Result<Written, RelationshipError> {
    let Some(mut record) = store.relationship(rel)? else {
        return refused(format!("no relationship {}", hex::encode(rel)));
    };
    let key = signing_key(identity, &record)?;
    record.updated = now;
    if record.side == Side::Vendor {
        return vendor_write(store, record, draft, now, &key);
    }
    let (chain, _) = with_pending(&record)?;
    if record.pending.len() >= MAX_PENDING {
        return refused("too many entries wait for the vendor's node: try again once it answers");
    }
    let envelope = seal(draft, &record, chain.len, chain.last, now, &key)?;
    let (_, side, _) = chain.check(&envelope)?;
    let seq = chain.len;
    let carried = payload(store, &envelope)?;
    let queued = outgoing(&record, &envelope, now);
    record.pending.push(envelope.as_bytes().to_vec().into());
    let write = RelationshipWrite {
        queued: vec![(&queued, &carried)],
        ..Default::default()
    };
    store.write_relationship(&record, write)?;
    let event = entry_event(&record, seq, &envelope, side);
    Ok((seq, vec![queued], vec![event]))
}

/// The vendor's node writes `draft`, with what goes with it: its agreement to the terms
/// before its order, at its end the deletion of every grant it holds, and at fulfilment the
/// deletion of those granted under `delete-after-fulfilment`.
fn vendor_write(
    store: &Store,
    mut record: Relationship,
    draft: &Draft,
    now: u64,
    key: &SigningKey,
) -> Result<Written, RelationshipError> {
    let first = record.chain.len;
    if let (Draft::Order, Some((group, terms))) = (draft, group_orders::group_of(store, &record)) {
        let accepted = group_orders::accepted(store, &group)?;
        if accepted < terms.min {
            return refused(format!(
                "a group offer binds once {} members accepted it; {accepted} did so far",
                terms.min
            ));
        }
    }
    let mut placed = match draft {
        Draft::Order => {
            let drafts = data::before_order(&record);
            follow_up(&mut record, &drafts, now, key)
        }
        _ => Vec::new(),
    };
    let envelope = seal(
        draft,
        &record,
        record.chain.len,
        record.chain.last,
        now,
        key,
    )?;
    let (_, _, state) = record.chain.check(&envelope)?;
    let seq = record.chain.len;
    record.chain.push(&envelope, state);
    placed.push(envelope);
    let mut after = match draft {
        Draft::End(_) => data::release_all(store, &record)?,
        Draft::Update(Status::Fulfilled, _) => data::release_at_fulfilment(store, &record)?,
        _ => Vec::new(),
    };
    after.extend(token_due(&record));
    placed.extend(follow_up(&mut record, &after, now, key));
    let none = RelationshipWrite::default();
    let (queued, events) = place(store, &record, none, first, &placed, now)?;
    Ok((seq, queued, events))
}

/// Writes `record` with `base` and the vendor's entries `placed` (the first at place
/// `first`), in one write: each entry delivered, each an event.
pub(super) fn place(
    store: &Store,
    record: &Relationship,
    base: RelationshipWrite<'_>,
    first: u32,
    placed: &[Envelope],
    now: u64,
) -> Result<(Vec<Outgoing>, Vec<NodeEvent>), StoreError> {
    let queued: Vec<Outgoing> = placed.iter().map(|e| outgoing(record, e, now)).collect();
    let mut events = Vec::new();
    let mut write = RelationshipWrite {
        entries: base.entries,
        acks: base.acks,
        queued: base.queued,
    };
    for (n, (envelope, out)) in placed.iter().zip(&queued).enumerate() {
        let seq = first + n as u32;
        write.entries.push((seq, envelope));
        write.queued.push((out, envelope.as_bytes()));
        events.push(entry_event(record, seq, envelope, Side::Vendor));
    }
    store.write_relationship(record, write)?;
    Ok((queued, events))
}

/// The vendor node's inbox: deposits for its queue are opened and taken here, whatever the
/// node's role, instead of being kept for a fetch.
pub struct RelationshipInbox {
    identity: Arc<Identity>,
    queue: [u8; 16],
    key: ReplyKey,
    policy: VendorPolicy,
    sweep: data::GrantSweep,
    /// Members of a group offer may be waiting for its threshold or deadline (true at
    /// start, until a round finds none).
    groups_waiting: bool,
    /// When group offers were last settled.
    groups_settled: u64,
    /// Deposits per depositor (a forwarding mailbox, or a person's node).
    depositors: RateLimiter<PeerId>,
}

/// Deposits a depositor may make in a vendor's inbox, per second, and in a burst.
const INBOX_RATE: f64 = 50.0;
const INBOX_BURST: u32 = 200;

impl RelationshipInbox {
    /// The inbox of a vendor node (`None` without a vendor key).
    pub fn new(identity: Arc<Identity>, policy: VendorPolicy) -> Option<RelationshipInbox> {
        identity.vendor_key()?;
        let inbox = identity.vendor_inbox();
        Some(RelationshipInbox {
            queue: inbox.queue(),
            key: inbox.key,
            identity,
            policy,
            sweep: data::GrantSweep::default(),
            groups_waiting: true,
            groups_settled: 0,
            depositors: RateLimiter::new(INBOX_RATE, INBOX_BURST),
        })
    }

    /// Deletes the data of grants that expired (at the first call, of every grant due),
    /// with their receipts; and every [`data::SWEEP_EVERY_SECS`] while group members wait,
    /// settles group offers whose deadline passed ([`group_orders::settle`]).
    pub fn sweep(&mut self, store: &Store, now: u64) -> Vec<Action> {
        let mut actions = self.sweep.tick(store, &self.identity, now);
        if self.groups_waiting && now >= self.groups_settled + data::SWEEP_EVERY_SECS {
            self.groups_settled = now;
            let Some(key) = self.identity.vendor_key() else {
                return actions;
            };
            let _one_writer = store.relationship_lock();
            match group_orders::settle(store, key, now) {
                Ok((queued, events, waiting)) => {
                    self.groups_waiting = waiting;
                    actions.extend(queued.into_iter().map(Action::Queue));
                    actions.extend(events.into_iter().map(Action::Emit));
                }
                Err(e) => warn!("settling group offers failed (tried again): {e}"),
            }
        }
        actions
    }

    /// Whether `request` is a deposit for this inbox.
    pub fn is_for(&self, request: &MailboxRequest) -> bool {
        matches!(request, MailboxRequest::Deposit { queue, .. } if *queue == self.queue[..])
    }

    /// Takes a deposit for this inbox: the answer (sent once the store is flushed, when
    /// something was stored) and what follows.
    pub fn deposit(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        sealed: &[u8],
        now: u64,
    ) -> (MailboxResponse, Vec<Action>) {
        let refused = |code: &str| MailboxResponse::Refused {
            code: code.to_owned(),
        };
        if !self.depositors.allow(peer, std::time::Instant::now()) {
            stats.bump("inbox-refused:rate-limited");
            return (refused(RATE_LIMITED), Vec::new());
        }
        let Ok(bytes) = self.key.open(RELATIONSHIP_INFO, &self.queue, sealed) else {
            stats.bump("inbox-item-unreadable");
            return (refused("does-not-open"), Vec::new());
        };
        match vendor_took(store, &self.identity, &bytes, &self.policy, now) {
            Ok(taken) => {
                // An accept of a group offer may start a wait for the group's deadline.
                self.groups_waiting |= taken.code.is_none();
                let response = match taken.code {
                    None => MailboxResponse::Deposited,
                    Some(code) => {
                        stats.bump(&format!("inbox-refused:{code}"));
                        refused(code)
                    }
                };
                (response, taken.into_actions())
            }
            Err(e) => {
                warn!("the relationship inbox could not store an item: {e}");
                stats.bump("store-error");
                (refused(UNAVAILABLE), Vec::new())
            }
        }
    }
}

/// How a vendor's node answers on its own.
#[derive(Debug, Clone, Default)]
pub struct VendorPolicy {
    /// Accepts are answered with an order at once.
    pub auto_confirm: bool,
    /// The person's terms the vendor accepts: a grant under others is refused.
    pub accepted_terms: Vec<String>,
}

/// What the vendor's inbox received (opened): an accept, a person's entry (a grant with
/// its values beside it) or an acknowledgement. Staged.
pub fn vendor_took(
    store: &Store,
    identity: &Identity,
    bytes: &[u8],
    policy: &VendorPolicy,
    now: u64,
) -> Result<Taken, StoreError> {
    let _one_writer = store.relationship_lock();
    let (envelope, values) = match Envelope::decode(bytes) {
        Ok(envelope) => (envelope, None),
        Err(e) => match GrantDelivery::decode(bytes).map(|d| (Envelope::decode(&d.grant), d)) {
            Some((Ok(grant), delivery)) if grant.kind() == Kind::Grant => {
                (grant, Some(delivery.values))
            }
            _ => {
                info!("a relationship item in the inbox is refused: {e}");
                return Ok(Taken::refused(e.code()));
            }
        },
    };
    match envelope.kind() {
        Kind::Accept => vendor_accept(store, identity, &envelope, policy, now),
        Kind::EntryAck => take_ack(store, &envelope, now),
        _ => vendor_entry(store, identity, &envelope, values, policy, now),
    }
}

fn vendor_accept(
    store: &Store,
    identity: &Identity,
    envelope: &Envelope,
    policy: &VendorPolicy,
    now: u64,
) -> Result<Taken, StoreError> {
    let Ok(body) = envelope.open::<Accept>() else {
        return Ok(Taken::refused("bad-entry"));
    };
    if let Some(rel) = store.relationship_of_offer(&body.offer)? {
        let code = (rel != envelope.id().0).then_some("already-accepted");
        return Ok(Taken::refused_or_known(code));
    }
    let key = IntentKey::received(&body.intent_persona, &body.intent);
    let Some(offer) = store
        .offers_for(&key)?
        .into_iter()
        .find(|o| o.envelope.id().0 == *body.offer && o.origin == Origin::Own)
    else {
        info!("an accept names an offer this vendor did not make");
        return Ok(Taken::refused("unknown-offer"));
    };
    if offer.offer.valid_until.saturating_add(MAX_CLOCK_SKEW_SECS) < now {
        return Ok(Taken::refused("offer-expired"));
    }
    let (chain, accept) = match Chain::start(envelope, &offer.envelope) {
        Ok(started) => started,
        Err(e) => {
            info!("an accept is refused: {e}");
            return Ok(Taken::refused(e.code));
        }
    };
    let mut record = Relationship {
        side: Side::Vendor,
        chain,
        offer: offer.envelope.as_bytes().to_vec().into(),
        to: accept.reply_to,
        via: None,
        nonce: None,
        returning: false,
        pending: Vec::new(),
        read: 1,
        started: now,
        updated: now,
    };
    let Some(vendor_key) = identity.vendor_key() else {
        return Ok(Taken::refused("unavailable"));
    };
    let acked = ack(&record, 0, &envelope.id(), now, vendor_key);
    let ack_out = outgoing(&record, &acked, now);
    let mut events = vec![entry_event(&record, 0, envelope, Side::Person)];
    let mut queued = vec![ack_out.clone()];
    // The new record is written first, alone: it claims the offer and counts against the
    // bound; the vendor's own entries follow.
    let write = RelationshipWrite {
        entries: vec![(0, envelope)],
        acks: vec![(0, &acked)],
        queued: vec![(&ack_out, acked.as_bytes())],
    };
    if !store.write_relationship(&record, write)? {
        return Ok(Taken::refused("too-many-relationships"));
    }
    if group_orders::group_of(store, &record).is_some() {
        // A member of a group: the order waits for the group to reach the offer's minimum.
        let (more, told, _) = group_orders::settle(store, vendor_key, now)?;
        queued.extend(more);
        events.extend(told);
    } else if policy.auto_confirm {
        let mut drafts = data::before_order(&record);
        drafts.push(Draft::Order);
        let placed = follow_up(&mut record, &drafts, now, vendor_key);
        let none = RelationshipWrite::default();
        let (more, told) = place(store, &record, none, 1, &placed, now)?;
        queued.extend(more);
        events.extend(told);
    }
    info!(
        "relationship {} started on offer {}",
        hex::encode(record.chain.rel),
        hex::encode(record.chain.offer)
    );
    Ok(Taken::stored(queued, events))
}

impl Taken {
    fn refused_or_known(code: Option<&'static str>) -> Taken {
        match code {
            Some(code) => Taken::refused(code),
            None => Taken::stored(Vec::new(), Vec::new()),
        }
    }
}

/// The relationship an entry or acknowledgement names, and the place it says.
fn named(envelope: &Envelope) -> Option<([u8; 32], u32)> {
    if envelope.kind() == Kind::EntryAck {
        let ack: EntryAck = envelope.open().ok()?;
        return Some((*ack.rel, ack.seq));
    }
    let (rel, seq, _) = Entry::open(envelope).ok()?.place();
    Some((rel, seq))
}

fn stored_entry(
    store: &Store,
    record: &Relationship,
    seq: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    if seq >= record.chain.len {
        return Ok(None);
    }
    store.relationship_entry(&record.chain.rel, seq)
}

fn vendor_entry(
    store: &Store,
    identity: &Identity,
    envelope: &Envelope,
    values: Option<std::collections::BTreeMap<String, String>>,
    policy: &VendorPolicy,
    now: u64,
) -> Result<Taken, StoreError> {
    let Some((rel, seq)) = named(envelope) else {
        return Ok(Taken::refused("bad-entry"));
    };
    let Some(mut record) = store.relationship(&rel)? else {
        return Ok(Taken::refused("unknown-relationship"));
    };
    if record.chain.side_of(envelope) != Some(Side::Person) {
        return Ok(Taken::refused("wrong-signer"));
    }
    if seq < record.chain.len {
        let same = stored_entry(store, &record, seq)?.is_some_and(|e| e == envelope.as_bytes());
        // Another entry holds the place: the person's node writes this one anew once it
        // has ours.
        return Ok(Taken::refused_or_known((!same).then_some("conflict")));
    }
    if seq > record.chain.len {
        return Ok(Taken::refused("out-of-order"));
    }
    let (entry, state) = match record.chain.check(envelope) {
        Ok((entry, _, state)) => (entry, state),
        Err(e) => {
            info!("a relationship entry is refused: {e}");
            return Ok(Taken::refused(e.code));
        }
    };
    let Some(vendor_key) = identity.vendor_key() else {
        return Ok(Taken::refused("unavailable"));
    };
    record.chain.push(envelope, state);
    record.updated = now;
    let acked = ack(&record, seq, &envelope.id(), now, vendor_key);
    let out = outgoing(&record, &acked, now);
    let mut answers = data::answer(
        store,
        &record,
        &entry,
        envelope,
        values.as_ref(),
        policy,
        now,
    )?;
    answers.extend(token_due(&record));
    let placed = follow_up(&mut record, &answers, now, vendor_key);
    let write = RelationshipWrite {
        entries: vec![(seq, envelope)],
        acks: vec![(seq, &acked)],
        queued: vec![(&out, acked.as_bytes())],
    };
    let (more, told) = place(store, &record, write, seq + 1, &placed, now)?;
    let mut events = vec![entry_event(&record, seq, envelope, Side::Person)];
    events.extend(told);
    let mut queued = vec![out];
    queued.extend(more);
    Ok(Taken::stored(queued, events))
}

/// An acknowledgement from the other side: stored beside the entry it names. On the
/// person's side it also places the pending entries up to that one.
fn take_ack(store: &Store, envelope: &Envelope, now: u64) -> Result<Taken, StoreError> {
    let Some((rel, seq)) = named(envelope) else {
        return Ok(Taken::refused("bad-ack"));
    };
    let Some(mut record) = store.relationship(&rel)? else {
        return Ok(Taken::refused("unknown-relationship"));
    };
    let Some(signer) = record.chain.side_of(envelope) else {
        return Ok(Taken::refused("wrong-signer"));
    };
    let mut placed = Vec::new();
    if record.side == Side::Person && seq >= record.chain.len {
        // The vendor's node placed our pending entries up to this one.
        let Ok((_, pending)) = with_pending(&record) else {
            return Ok(Taken::refused("bad-ack"));
        };
        let upto = (seq - record.chain.len) as usize;
        if upto >= pending.len() {
            return Ok(Taken::refused("bad-ack"));
        }
        for envelope in pending.into_iter().take(upto + 1) {
            let Ok((_, _, state)) = record.chain.check(&envelope) else {
                return Ok(Taken::refused("bad-ack"));
            };
            record.chain.push(&envelope, state);
            placed.push(envelope);
        }
        record.pending.drain(..=upto);
    }
    let entry = match placed.last() {
        Some(last) => Some(last.as_bytes().to_vec()),
        None => stored_entry(store, &record, seq)?,
    };
    let Some(entry) = entry else {
        return Ok(Taken::refused("bad-ack"));
    };
    let entry = Envelope::decode(&entry).map_err(|e| StoreError::Corrupt {
        tree: "rel_entries",
        reason: e.to_string(),
    })?;
    let entry_side = record.chain.side_of(&entry);
    if entry_side != Some(signer.other())
        || record.chain.check_ack(envelope, seq, &entry.id()).is_err()
    {
        return Ok(Taken::refused("bad-ack"));
    }
    record.updated = now;
    let first = record.chain.len - placed.len() as u32;
    let write = RelationshipWrite {
        entries: placed
            .iter()
            .enumerate()
            .map(|(n, e)| (first + n as u32, e))
            .collect(),
        acks: vec![(seq, envelope)],
        queued: Vec::new(),
    };
    store.write_relationship(&record, write)?;
    debug!(
        "relationship {}: entry {seq} acknowledged",
        hex::encode(rel)
    );
    let event = NodeEvent::RelationshipAcknowledged {
        relationship: hex::encode(rel),
        seq,
        by: signer,
    };
    Ok(Taken::stored(Vec::new(), vec![event]))
}

/// What the person's queue of a relationship received (opened): a vendor entry or an
/// acknowledgement. `Ok(None)`: not yet placeable (an entry before it is still on its
/// way); leave it in the mailbox. Staged.
pub fn person_took(
    store: &Store,
    identity: &Identity,
    bytes: &[u8],
    now: u64,
) -> Result<Option<Taken>, StoreError> {
    let _one_writer = store.relationship_lock();
    let envelope = match Envelope::decode(bytes) {
        Ok(envelope) => envelope,
        Err(e) => {
            info!("a relationship item in our queue is refused: {e}");
            return Ok(Some(Taken::refused(e.code())));
        }
    };
    if envelope.kind() == Kind::EntryAck {
        return take_ack(store, &envelope, now).map(Some);
    }
    let Some((rel, seq)) = named(&envelope) else {
        return Ok(Some(Taken::refused("bad-entry")));
    };
    let Some(mut record) = store.relationship(&rel)? else {
        return Ok(Some(Taken::refused("unknown-relationship")));
    };
    if record.side != Side::Person || record.chain.side_of(&envelope) != Some(Side::Vendor) {
        return Ok(Some(Taken::refused("wrong-signer")));
    }
    if seq < record.chain.len {
        // Known already: our acknowledgement is in the outbox or delivered.
        return Ok(Some(Taken::stored(Vec::new(), Vec::new())));
    }
    let Ok((_, pending)) = with_pending(&record) else {
        return Ok(Some(Taken::refused("bad-entry")));
    };
    // Pending entries before `seq` were placed by the vendor's node (its entry names
    // the last of them); those at `seq` or after lost their place to it.
    let ahead = (seq - record.chain.len) as usize;
    if ahead > pending.len() {
        return Ok(None);
    }
    let mut chain = record.chain.clone();
    let mut placed = Vec::new();
    for envelope in pending.iter().take(ahead) {
        let Ok((_, _, state)) = chain.check(envelope) else {
            return Ok(None);
        };
        chain.push(envelope, state);
        placed.push(envelope.clone());
    }
    let state = match chain.check(&envelope) {
        Ok((_, _, state)) => state,
        Err(e) if e.code == "broken-chain" => return Ok(None),
        Err(e) => {
            info!("a vendor's relationship entry is refused: {e}");
            return Ok(Some(Taken::refused(e.code)));
        }
    };
    chain.push(&envelope, state);
    placed.push(envelope.clone());
    let first = record.chain.len;
    record.chain = chain;
    record.updated = now;
    let key = match signing_key(identity, &record) {
        Ok(key) => key,
        Err(_) => return Ok(Some(Taken::refused("unavailable"))),
    };
    let mut events = vec![entry_event(&record, seq, &envelope, Side::Vendor)];
    // Our pending entries that lost their place, written anew after it where the rules
    // still allow them; the old ones are given up.
    let lost: Vec<Envelope> = pending.into_iter().skip(ahead).collect();
    let mut rewritten = Vec::new();
    let mut dropped = Vec::new();
    let mut tail = record.chain.clone();
    for old in &lost {
        dropped.push(old.id());
        let Ok(entry) = Entry::open(old) else {
            continue;
        };
        let draft = Draft::of(&entry);
        let Ok(new) = seal(&draft, &record, tail.len, tail.last, now, &key) else {
            continue;
        };
        match tail.check(&new) {
            Ok((_, _, state)) => {
                tail.push(&new, state);
                rewritten.push(new);
            }
            Err(e) => {
                info!(
                    "relationship {}: our {:?} no longer stands after the vendor's entry {seq}: {e}",
                    hex::encode(rel),
                    draft
                );
                events.push(NodeEvent::RelationshipEntryVoid {
                    relationship: hex::encode(rel),
                    reason: e.to_string(),
                });
            }
        }
    }
    // The countersignature: an order the vendor wrote is agreed at once.
    if envelope.kind() == Kind::Order
        && let Ok(agreed) = seal(
            &Draft::Update(Status::Agreed, String::new()),
            &record,
            tail.len,
            tail.last,
            now,
            &key,
        )
        && let Ok((_, _, state)) = tail.check(&agreed)
    {
        tail.push(&agreed, state);
        events.push(entry_event(&record, tail.len - 1, &agreed, Side::Person));
        rewritten.push(agreed);
    }
    record.pending = rewritten
        .iter()
        .map(|e| ByteBuf::from(e.as_bytes().to_vec()))
        .collect();
    let acked = ack(&record, seq, &envelope.id(), now, &key);
    let mut outs = vec![(outgoing(&record, &acked, now), acked.as_bytes().to_vec())];
    for new in &rewritten {
        // A grant whose field left the vault since goes without it: the vendor refuses it.
        let carried = payload(store, new).unwrap_or_else(|_| new.as_bytes().to_vec());
        outs.push((outgoing(&record, new, now), carried));
    }
    let write = RelationshipWrite {
        entries: placed
            .iter()
            .enumerate()
            .map(|(n, e)| (first + n as u32, e))
            .collect(),
        acks: vec![(seq, &acked)],
        queued: outs.iter().map(|(o, p)| (o, p.as_slice())).collect(),
    };
    store.write_relationship(&record, write)?;
    for id in &dropped {
        store.outbox_remove(id)?;
    }
    Ok(Some(Taken::stored(
        outs.into_iter().map(|(o, _)| o).collect(),
        events,
    )))
}

/// One entry of a log, for people to read.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    /// Its place.
    pub seq: u32,
    /// Its id (hex).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Who wrote it.
    pub from: Side,
    /// An update's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Its text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// When its writer made it.
    pub created: u64,
    /// Whether the side that did not write it acknowledged it (that signed ack is here).
    pub acknowledged: bool,
    /// Written here, not yet placed by the vendor's node.
    pub pending: bool,
}

/// A relationship, for people to read.
#[derive(Debug, Clone, Serialize)]
pub struct RelationshipView {
    /// Its id (hex).
    pub id: String,
    /// This node's side.
    pub side: Side,
    /// The persona (hex).
    pub persona: String,
    /// The vendor's key (hex).
    pub vendor: String,
    /// The accepted offer's id (hex).
    pub offer: String,
    /// The intent the offer answered (hex).
    pub intent: String,
    /// The person met the vendor under the pairwise persona (person side).
    pub returning: bool,
    /// The order's state.
    pub state: crate::proto::relationship::OrderState,
    /// The offer's items.
    pub items: Vec<OfferItem>,
    /// Entries in the log.
    pub entries: u32,
    /// The other side's messages not read yet.
    pub unread: u32,
    /// When it started.
    pub started: u64,
    /// When an entry last came or went.
    pub updated: u64,
}

/// A relationship with its log.
#[derive(Debug, Clone, Serialize)]
pub struct RelationshipDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: RelationshipView,
    /// The log, then the pending entries.
    pub log: Vec<EntryView>,
    /// The terms the vendor agreed to in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreed_terms: Option<Vec<String>>,
    /// The person's grants and where each stands (with the values, on the vendor's node
    /// while it holds them).
    pub grants: Vec<data::GrantView>,
}

fn entry_view(
    seq: u32,
    bytes: &[u8],
    ack: bool,
    pending: bool,
    chain: &Chain,
) -> Option<EntryView> {
    let envelope = Envelope::decode(bytes).ok()?;
    let from = chain.side_of(&envelope)?;
    let (status, text, created) = match envelope.kind() {
        Kind::Accept => (None, String::new(), envelope.open::<Accept>().ok()?.created),
        _ => {
            let entry = Entry::open(&envelope).ok()?;
            let status = match &entry {
                Entry::Update(_, s) => Some(s.as_str().to_owned()),
                Entry::Receipt(_, s) => Some(s.as_str().to_owned()),
                _ => None,
            };
            (status, entry.text().to_owned(), entry.created())
        }
    };
    Some(EntryView {
        seq,
        id: envelope.id().to_hex(),
        kind: envelope.kind().as_str().to_owned(),
        from,
        status,
        text,
        created,
        acknowledged: ack,
        pending,
    })
}

/// The log of a relationship as people read it.
pub fn detail(store: &Store, record: &Relationship) -> Result<RelationshipDetail, StoreError> {
    let mut log = Vec::new();
    for (seq, (entry, ack)) in store.relationship_log(record)?.into_iter().enumerate() {
        log.extend(entry_view(
            seq as u32,
            &entry,
            ack.is_some(),
            false,
            &record.chain,
        ));
    }
    for (seq, pending) in (record.chain.len..).zip(&record.pending) {
        log.extend(entry_view(seq, pending, false, true, &record.chain));
    }
    let summary = summary(record, &log);
    let chain = with_pending(record).map_or_else(|_| record.chain.clone(), |(c, _)| c);
    Ok(RelationshipDetail {
        summary,
        log,
        agreed_terms: chain.agreed_terms.clone(),
        grants: data::grant_views(store, record, &chain, crate::clock::unix_now()),
    })
}

/// A relationship's summary (`log`: its entries, for the unread count).
pub fn summary(record: &Relationship, log: &[EntryView]) -> RelationshipView {
    let offer = Envelope::decode(&record.offer)
        .ok()
        .and_then(|o| o.open::<Offer>().ok());
    let unread = log
        .iter()
        .filter(|e| {
            e.seq >= record.read && e.from != record.side && e.kind == Kind::Message.as_str()
        })
        .count() as u32;
    RelationshipView {
        id: hex::encode(record.chain.rel),
        side: record.side,
        persona: hex::encode(record.chain.persona),
        vendor: hex::encode(record.chain.vendor),
        offer: hex::encode(record.chain.offer),
        intent: offer
            .as_ref()
            .map(|o| hex::encode(*o.intent))
            .unwrap_or_default(),
        returning: record.returning,
        state: record.chain.state,
        items: offer.map(|o| o.items).unwrap_or_default(),
        entries: record.chain.len,
        unread,
        started: record.started,
        updated: record.updated,
    }
}

/// The log as one file anyone can verify ([`crate::proto::relationship::verify_file`]).
pub fn export(store: &Store, record: &Relationship) -> Result<Vec<u8>, StoreError> {
    let entries = store
        .relationship_log(record)?
        .into_iter()
        .map(|(entry, ack)| LogRecord {
            entry: entry.into(),
            ack: ack.map(Into::into),
        })
        .collect();
    Ok(LogFile {
        format: LOG_FORMAT.to_owned(),
        offer: record.offer.clone(),
        entries,
    }
    .to_bytes())
}

/// The intent a relationship's offer answered (to withdraw it after the accept).
pub fn intent_of(record: &Relationship) -> Option<IntentId> {
    Envelope::decode(&record.offer)
        .ok()?
        .open::<Offer>()
        .ok()
        .map(|o| o.intent)
}

/// The person (or the vendor) has read the first `through` entries of `rel` (all so far if
/// `None`). What was read stays read.
pub fn mark_read(store: &Store, rel: &[u8; 32], through: Option<u32>) -> Result<bool, StoreError> {
    let _one_writer = store.relationship_lock();
    let Some(mut record) = store.relationship(rel)? else {
        return Ok(false);
    };
    let seen = through.map_or(record.chain.len, |n| n.min(record.chain.len));
    record.read = record.read.max(seen);
    store.write_relationship(&record, RelationshipWrite::default())?;
    Ok(true)
}
