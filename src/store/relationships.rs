//! Relationships: the joint log of each (its entries and the other side's
//! acknowledgements), and what this node keeps beside it (its side, where its entries go,
//! what the person read).
//!
//! | tree | key | value |
//! |------|-----|-------|
//! | `relationships` | relationship id (32) | [`Relationship`] |
//! | `rel_entries` | relationship id (32) ‖ place (4, BE) | entry envelope |
//! | `rel_acks` | relationship id (32) ‖ place (4, BE) | acknowledgement envelope |
//! | `rel_by_offer` | offer id (32) | relationship id (32) |
//!
//! A write puts the entries, the acknowledgements and the outbox entries first and the
//! relationship record last: the record's `chain.len` says how many entries the log has, so
//! an entry a crash left beyond it is not read (and is overwritten by the next); outbox
//! entries a crash left without their record are dropped on open (`repair`). Writes are
//! staged: the caller flushes before it acknowledges anything.

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

use super::models::Subject;
use super::outbox::Outgoing;
use super::{Store, StoreError, decode, encode, fixed_key};
use crate::proto::relationship::{Chain, Side};
use crate::proto::{Envelope, Kind, ReplyTo};

/// Most relationships a node keeps; a new accept beyond it is refused.
pub const MAX_RELATIONSHIPS: usize = 10_000;
/// Most entries of the person's waiting for the vendor to place them.
pub const MAX_PENDING: usize = 32;

/// One relationship as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    /// This node's side.
    pub side: Side,
    /// The log's state.
    pub chain: Chain,
    /// The accepted offer's envelope.
    pub offer: ByteBuf,
    /// Where this node's entries and acknowledgements go, sealed to `to.key`.
    pub to: ReplyTo,
    /// Person side: the mailbox that forwards them (and holds the person's queue).
    pub via: Option<ReplyTo>,
    /// Person side: the secret the relationship's keys are derived from.
    pub nonce: Option<ByteArray<16>>,
    /// Person side: met the vendor under the pairwise persona.
    pub returning: bool,
    /// Person side: own entries sent but not yet placed in the log by the vendor.
    pub pending: Vec<ByteBuf>,
    /// The other side's entries read up to this place (exclusive).
    pub read: u32,
    /// When it started (unix seconds).
    pub started: u64,
    /// When an entry last came or went.
    pub updated: u64,
}

/// A log as stored: each entry's envelope bytes, with the acknowledgement of it by the side
/// that did not write it, once stored.
pub type StoredLog = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// What one write of a relationship changes.
#[derive(Default)]
pub struct RelationshipWrite<'a> {
    /// Entries placed in the log, by place.
    pub entries: Vec<(u32, &'a Envelope)>,
    /// Acknowledgements stored, by the place of the entry they acknowledge.
    pub acks: Vec<(u32, &'a Envelope)>,
    /// Outbox entries queued, with their envelopes.
    pub queued: Vec<(&'a Outgoing, &'a Envelope)>,
}

fn place_key(rel: &[u8; 32], seq: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(rel);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    /// Writes a relationship (new or changed) with what `write` adds, staged.
    /// A new one (its offer not taken before) beyond [`MAX_RELATIONSHIPS`] is refused with
    /// `Ok(false)`, as is a second relationship on one offer.
    pub fn write_relationship(
        &self,
        record: &Relationship,
        write: RelationshipWrite<'_>,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let rel = record.chain.rel;
        if !t.relationships.contains_key(rel)? {
            if t.relationships.len() >= MAX_RELATIONSHIPS {
                return Ok(false);
            }
            let claimed = t.rel_by_offer.compare_and_swap(
                record.chain.offer,
                None as Option<&[u8]>,
                Some(&rel[..]),
            )?;
            if claimed.is_err() {
                return Ok(false);
            }
        }
        for (seq, envelope) in write.entries {
            t.rel_entries
                .insert(place_key(&rel, seq), envelope.as_bytes())?;
        }
        for (seq, ack) in write.acks {
            t.rel_acks.insert(place_key(&rel, seq), ack.as_bytes())?;
        }
        for (queued, envelope) in write.queued {
            t.outbox
                .insert(queued.id.0, encode(&queued.record(envelope)))?;
        }
        t.relationships.insert(rel, encode(record))?;
        Ok(true)
    }

    /// One relationship.
    pub fn relationship(&self, rel: &[u8; 32]) -> Result<Option<Relationship>, StoreError> {
        let t = self.trees()?;
        t.relationships
            .get(rel)?
            .map(|v| decode("relationships", &v))
            .transpose()
    }

    /// The relationship started on the offer `offer`, if any.
    pub fn relationship_of_offer(&self, offer: &[u8; 32]) -> Result<Option<[u8; 32]>, StoreError> {
        let t = self.trees()?;
        t.rel_by_offer
            .get(offer)?
            .map(|v| fixed_key("rel_by_offer", &v))
            .transpose()
    }

    /// Every relationship, by id.
    pub fn relationships(&self) -> Result<Vec<Relationship>, StoreError> {
        let t = self.trees()?;
        t.relationships
            .iter()
            .values()
            .map(|v| decode("relationships", &v?))
            .collect()
    }

    /// The log of `record`: each entry's envelope bytes, with the other side's
    /// acknowledgement once stored.
    pub fn relationship_log(&self, record: &Relationship) -> Result<StoredLog, StoreError> {
        let t = self.trees()?;
        let rel = record.chain.rel;
        let mut log = Vec::with_capacity(record.chain.len as usize);
        for seq in 0..record.chain.len {
            let key = place_key(&rel, seq);
            let entry = t.rel_entries.get(key)?.ok_or(StoreError::Corrupt {
                tree: "rel_entries",
                reason: format!("entry {seq} of a relationship is missing"),
            })?;
            let ack = t.rel_acks.get(key)?.map(|a| a.to_vec());
            log.push((entry.to_vec(), ack));
        }
        Ok(log)
    }

    /// Drops the relationship outbox entries whose record a crash did not write.
    pub(super) fn repair_relationship_outbox(&self) -> Result<usize, StoreError> {
        let mut dropped = 0;
        for queued in self.outgoing()? {
            let Subject::Relationship { rel } = queued.subject else {
                continue;
            };
            let Some(bytes) = self.outgoing_envelope(&queued.id)? else {
                continue;
            };
            if !self.relationship_holds(&rel, &bytes)? {
                self.outbox_remove(&queued.id)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Whether an outbox entry of relationship `rel` with these envelope bytes is one its
    /// record holds: an entry placed or pending, or a stored acknowledgement.
    pub(super) fn relationship_holds(
        &self,
        rel: &[u8; 32],
        bytes: &[u8],
    ) -> Result<bool, StoreError> {
        let Some(record) = self.relationship(rel)? else {
            return Ok(false);
        };
        if record.pending.iter().any(|p| p.as_slice() == bytes) {
            return Ok(true);
        }
        let t = self.trees()?;
        let Ok(envelope) = Envelope::decode(bytes) else {
            return Ok(false);
        };
        let (tree, bound) = match envelope.kind() {
            Kind::EntryAck => (&t.rel_acks, u32::MAX),
            _ => (&t.rel_entries, record.chain.len),
        };
        for seq in 0..record.chain.len.min(bound) {
            if tree.get(place_key(rel, seq))?.is_some_and(|v| *v == *bytes) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
