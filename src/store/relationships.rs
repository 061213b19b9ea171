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
    /// Outbox entries queued, with what carries each: its envelope's bytes, or for a
    /// person's grant, the grant's delivery.
    pub queued: Vec<(&'a Outgoing, &'a [u8])>,
}

fn place_key(rel: &[u8; 32], seq: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(rel);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    /// Held by whoever reads a relationship to change it, until it has written it back: two
    /// changes of one log (the vendor writing while a person's entry arrives) must not both
    /// take the same place.
    pub fn relationship_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.relationships_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

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
        for (queued, payload) in write.queued {
            t.outbox
                .insert(queued.id.0, encode(&queued.record_of(payload)))?;
        }
        t.relationships.insert(rel, encode(record))?;
        Ok(true)
    }

    /// Schema 9 to 10: each log's chain learns the id of its order entry, which a review
    /// token names (logs of schema 9 have no token yet).
    pub(super) fn index_orders_v9(&self) -> Result<(), StoreError> {
        for mut record in self.relationships()? {
            if record.chain.order.is_some() {
                continue;
            }
            let order = self
                .relationship_log(&record)?
                .into_iter()
                .find_map(|(entry, _)| {
                    Envelope::decode(&entry)
                        .ok()
                        .filter(|e| e.kind() == Kind::Order)
                        .map(|e| e.id().0)
                });
            if order.is_some() {
                record.chain.order = order;
                self.write_relationship(&record, RelationshipWrite::default())?;
            }
        }
        Ok(())
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

    /// The entry at place `seq` of relationship `rel`, if written (the caller knows the
    /// log's length: an entry a crash left beyond it is read here too).
    pub fn relationship_entry(
        &self,
        rel: &[u8; 32],
        seq: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.trees()?;
        Ok(t.rel_entries.get(place_key(rel, seq))?.map(|v| v.to_vec()))
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
            let envelope = crate::proto::GrantDelivery::envelope_of(&bytes);
            if !self.relationship_holds(&rel, &envelope)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::relationship::test_support::{accept, parties};
    use crate::proto::{Message, ReplyTo};
    use crate::store::Route;

    fn message(chain: &Chain, seq: u32, text: &str, key: &ed25519_dalek::SigningKey) -> Envelope {
        let body = Message {
            rel: chain.rel.into(),
            seq,
            prev: chain.last.into(),
            text: text.into(),
            created: 1_800_000_000,
        };
        Envelope::seal(&body, key)
    }

    fn queued(rel: &[u8; 32], envelope: &Envelope) -> Outgoing {
        Outgoing {
            id: envelope.id(),
            subject: Subject::Relationship { rel: (*rel).into() },
            route: Route::Mailbox(ReplyTo::nowhere()),
            expires: u64::MAX,
        }
    }

    /// What a crash between a write's outbox entries and its record leaves: entries the
    /// record does not hold. The next open drops them, and keeps those it holds.
    #[test]
    fn outbox_entries_a_crash_left_without_their_record_are_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = parties();
        let accept = accept(&p);
        let (chain, _) = Chain::start(&accept, &p.offer).unwrap();
        let mut record = Relationship {
            side: Side::Person,
            chain: chain.clone(),
            offer: p.offer.as_bytes().to_vec().into(),
            to: ReplyTo::nowhere(),
            via: Some(ReplyTo::nowhere()),
            nonce: Some([1; 16].into()),
            returning: false,
            pending: Vec::new(),
            read: 1,
            started: 1,
            updated: 1,
        };
        let held = message(&chain, 1, "held", &p.persona);
        let lost = message(&chain, 2, "lost", &p.persona);
        let (held_out, lost_out) = (queued(&chain.rel, &held), queued(&chain.rel, &lost));
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let first = RelationshipWrite {
                entries: vec![(0, &accept)],
                ..Default::default()
            };
            assert!(store.write_relationship(&record, first).unwrap());
            record.pending.push(held.as_bytes().to_vec().into());
            let second = RelationshipWrite {
                queued: vec![(&held_out, held.as_bytes())],
                ..Default::default()
            };
            store.write_relationship(&record, second).unwrap();
            // The crash: the next write's outbox entry is there, its record is not.
            let t = store.trees().unwrap();
            t.outbox
                .insert(lost_out.id.0, super::super::encode(&lost_out.record(&lost)))
                .unwrap();
            assert_eq!(store.outbox_len(), 2);
            store.flush().unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let left: Vec<_> = store
            .outgoing()
            .unwrap()
            .into_iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(
            left,
            vec![held.id()],
            "the held entry stays, the lost one is dropped"
        );
        assert_eq!(store.relationship(&chain.rel).unwrap(), Some(record));
    }

    /// The vendor's record of a relationship of `p` whose log is `chain`.
    fn vendor_record(
        p: &crate::proto::relationship::test_support::Parties,
        chain: Chain,
    ) -> Relationship {
        Relationship {
            side: Side::Vendor,
            chain,
            offer: p.offer.as_bytes().to_vec().into(),
            to: ReplyTo::nowhere(),
            via: None,
            nonce: None,
            returning: false,
            pending: Vec::new(),
            read: 1,
            started: 1,
            updated: 1,
        }
    }

    #[test]
    fn one_offer_starts_one_relationship() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let p = parties();
        let first = accept(&p);
        let (chain, _) = Chain::start(&first, &p.offer).unwrap();
        let record = vendor_record(&p, chain);
        assert!(
            store
                .write_relationship(&record, RelationshipWrite::default())
                .unwrap()
        );
        // Another accept of the same offer (another persona): refused.
        let mut second = record.clone();
        second.chain.rel = [9; 32];
        assert!(
            !store
                .write_relationship(&second, RelationshipWrite::default())
                .unwrap()
        );
        assert_eq!(
            store.relationship_of_offer(&record.chain.offer).unwrap(),
            Some(record.chain.rel)
        );
        assert_eq!(store.relationships().unwrap(), vec![record]);
    }

    /// A store of schema 9 holds logs whose chain does not name its order entry: opening it
    /// names it, so the vendor's node can write a review token for an old order.
    #[test]
    fn the_upgrade_from_schema_9_names_each_logs_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = parties();
        let first = accept(&p);
        let (mut chain, _) = Chain::start(&first, &p.offer).unwrap();
        let offer: crate::proto::Offer = p.offer.open().unwrap();
        let order = Envelope::seal(
            &crate::proto::Order {
                rel: chain.rel.into(),
                seq: 1,
                prev: chain.last.into(),
                items: offer.items,
                text: String::new(),
                created: 120,
            },
            &p.vendor,
        );
        let (_, _, state) = chain.check(&order).unwrap();
        chain.push(&order, state);
        assert_eq!(chain.order, Some(order.id().0));
        chain.order = None;
        let record = vendor_record(&p, chain);
        let rel = record.chain.rel;
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let write = RelationshipWrite {
                entries: vec![(0, &first), (1, &order)],
                ..Default::default()
            };
            assert!(store.write_relationship(&record, write).unwrap());
            let t = store.trees().unwrap();
            t.meta
                .insert(super::super::SCHEMA_KEY, &9u32.to_be_bytes())
                .unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let upgraded = store.relationship(&rel).unwrap().unwrap();
        assert_eq!(upgraded.chain.order, Some(order.id().0));
        assert_eq!(
            store.schema_version().unwrap(),
            Some(super::super::SCHEMA_VERSION)
        );
    }
}
