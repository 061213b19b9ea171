//! The catch-up memory of a service node: every intent and withdrawal it accepted on a
//! shard it carries, kept as signed until the replay memory forgets its id, so that a node
//! that joins the shard late (or comes back from a partition) can ask for what it missed
//! (`node::catch_up`). Listed per shard in the order they arrived here: a peer that caught
//! up before asks only for what came after its last cursor.
//!
//! None of it waits for the disk: it is other people's gossip, which the mesh relays
//! without it; a crash forgets the last few, as it forgets gossip in flight. At most
//! [`MAX_CARRIED`] are kept: past that, a message is relayed but not kept (logged).

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Store, StoreError, Trees, decode, encode, fixed_key, warn_full};
use crate::proto::MessageId;
use crate::proto::service::CURSOR_BYTES;

/// Most messages kept for catch-up.
pub const MAX_CARRIED: u64 = 100_000;

/// When the full catch-up memory was last logged.
static LAST_FULL_WARNING: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize, Deserialize)]
struct CarriedRecord {
    shard: u8,
    arrived: u64,
    envelope: ByteBuf,
}

/// The key of the arrival index: shard ‖ arrival time ‖ message id.
fn arrival_key(shard: u8, arrived: u64, id: &MessageId) -> [u8; 1 + CURSOR_BYTES] {
    let mut key = [0u8; 1 + CURSOR_BYTES];
    key[0] = shard;
    key[1..9].copy_from_slice(&arrived.to_be_bytes());
    key[9..].copy_from_slice(&id.0);
    key
}

impl Store {
    /// Keeps `envelope` (message `id`, accepted on `shard` at `now`) for catch-up until
    /// `forget_after`. False when the memory is full (nothing is kept).
    pub fn carry(
        &self,
        shard: u8,
        id: &MessageId,
        envelope: &[u8],
        forget_after: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let count = t.carried_count.load(Ordering::SeqCst);
        if count >= MAX_CARRIED {
            warn_full(&LAST_FULL_WARNING, || {
                format!(
                    "the catch-up memory is full ({count} messages): new intents are relayed but not kept for other nodes' catch-up until some expire"
                )
            });
            return Ok(false);
        }
        let record = CarriedRecord {
            shard,
            arrived: now,
            envelope: envelope.to_vec().into(),
        };
        if t.carried.insert(id.0, encode(&record))?.is_none() {
            t.carried_count.fetch_add(1, Ordering::SeqCst);
        }
        t.carried_by_arrival
            .insert(arrival_key(shard, now, id), &forget_after.to_be_bytes())?;
        Ok(true)
    }

    /// The cursors (arrival time ‖ message id) of the messages kept on `shard` that
    /// arrived after cursor `after` (empty: from the first) and are still open at `now`,
    /// at most `max`, and whether more follow.
    pub fn carried_after(
        &self,
        shard: u8,
        after: &[u8],
        max: usize,
        now: u64,
    ) -> Result<(Vec<[u8; CURSOR_BYTES]>, bool), StoreError> {
        let t = self.trees()?;
        let mut start = vec![shard];
        start.extend_from_slice(after);
        let range = (Bound::Excluded(start.as_slice()), Bound::Unbounded);
        let mut cursors = Vec::new();
        for kv in t.carried_by_arrival.range::<&[u8], _>(range) {
            let (key, forget_after) = kv?;
            if key.first() != Some(&shard) {
                break;
            }
            let forget_after = u64::from_be_bytes(fixed_key("carried_by_arrival", &forget_after)?);
            if forget_after <= now {
                continue;
            }
            if cursors.len() == max {
                return Ok((cursors, true));
            }
            cursors.push(fixed_key("carried_by_arrival", &key[1..])?);
        }
        Ok((cursors, false))
    }

    /// The envelopes kept on `shard` of the messages `ids`, in that order; those not kept
    /// (any more) are left out.
    pub fn carried_envelopes(
        &self,
        shard: u8,
        ids: &[MessageId],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let t = self.trees()?;
        let mut envelopes = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(value) = t.carried.get(id.0)? {
                let record: CarriedRecord = decode("carried", &value)?;
                if record.shard == shard {
                    envelopes.push(record.envelope.into_vec());
                }
            }
        }
        Ok(envelopes)
    }

    /// How many messages are kept for catch-up.
    pub fn carried_count(&self) -> u64 {
        self.trees()
            .map_or(0, |t| t.carried_count.load(Ordering::SeqCst))
    }

    /// Whether message `id` is in the replay memory (handled before).
    pub fn has_seen(&self, id: &MessageId) -> Result<bool, StoreError> {
        Ok(self.trees()?.seen.contains_key(id.0)?)
    }
}

impl Trees {
    /// Drops message `id` from the catch-up memory, if kept (its replay memory is forgotten).
    pub(super) fn forget_carried(&self, id: &[u8; 32]) -> Result<(), StoreError> {
        if let Some(value) = self.carried.remove(id)? {
            self.carried_count.fetch_sub(1, Ordering::SeqCst);
            let record: CarriedRecord = decode("carried", &value)?;
            let key = arrival_key(record.shard, record.arrived, &MessageId(*id));
            self.carried_by_arrival.remove(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{NOW, intent};
    use super::*;

    /// Keeps a fresh intent; returns its id.
    fn kept(store: &Store, n: u8, shard: u8, arrived: u64, forget_after: u64) -> MessageId {
        let (envelope, _) = intent(n);
        let id = envelope.id();
        assert!(
            store
                .carry(shard, &id, envelope.as_bytes(), forget_after, arrived)
                .unwrap()
        );
        id
    }

    #[test]
    fn a_shard_is_listed_in_arrival_order_from_a_cursor_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let late = kept(&store, 1, 3, NOW + 2, NOW + 3600);
        let early = kept(&store, 2, 3, NOW + 1, NOW + 3600);
        let other_shard = kept(&store, 3, 4, NOW + 1, NOW + 3600);
        let (page, more) = store.carried_after(3, &[], 1, NOW).unwrap();
        assert!(more, "a page of one leaves one");
        assert_eq!(page[0][8..], early.0, "the earlier arrival first");
        assert_eq!(page[0][..8], (NOW + 1).to_be_bytes());
        let (page, more) = store.carried_after(3, &page[0], 10, NOW).unwrap();
        assert!(!more);
        assert_eq!(page.len(), 1, "only what came after the cursor");
        assert_eq!(page[0][8..], late.0);
        let (page, _) = store.carried_after(4, &[], 10, NOW).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0][8..], other_shard.0, "each shard alone");
        assert_eq!(store.carried_count(), 3);
    }

    #[test]
    fn envelopes_come_only_from_their_shard_and_expired_ones_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let open = kept(&store, 1, 3, NOW, NOW + 3600);
        let expired = kept(&store, 2, 3, NOW, NOW + 10);
        let (page, _) = store.carried_after(3, &[], 10, NOW + 10).unwrap();
        assert_eq!(page.len(), 1, "expired at the asking time");
        assert_eq!(page[0][8..], open.0);
        let envelopes = store
            .carried_envelopes(3, &[expired, MessageId([9; 32]), open])
            .unwrap();
        assert_eq!(
            envelopes
                .iter()
                .map(|e| MessageId::of(e))
                .collect::<Vec<_>>(),
            vec![expired, open],
            "the unknown id is left out, the order kept"
        );
        assert!(store.carried_envelopes(4, &[open]).unwrap().is_empty());
    }

    #[test]
    fn forgetting_a_seen_id_forgets_its_carried_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id = kept(&store, 1, 3, NOW, NOW + 10);
        assert!(!store.has_seen(&id).unwrap(), "kept is not seen");
        assert!(store.mark_seen(&id, NOW + 10).unwrap());
        assert!(store.has_seen(&id).unwrap());
        assert_eq!(store.purge_seen(NOW + 10).unwrap(), 1);
        assert!(!store.has_seen(&id).unwrap());
        assert_eq!(store.carried_count(), 0);
        assert!(store.carried_envelopes(3, &[id]).unwrap().is_empty());
        let (page, _) = store.carried_after(3, &[], 10, NOW).unwrap();
        assert!(page.is_empty(), "the arrival index is cleaned too");
    }

    #[test]
    fn a_full_memory_keeps_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        kept(&store, 1, 3, NOW, NOW + 3600);
        let t = store.trees().unwrap();
        t.carried_count.store(MAX_CARRIED, Ordering::SeqCst);
        let (envelope, _) = intent(2);
        let full = store.carry(3, &envelope.id(), envelope.as_bytes(), NOW + 3600, NOW);
        assert!(!full.unwrap(), "refused at the bound");
        let (page, _) = store.carried_after(3, &[], 10, NOW).unwrap();
        assert_eq!(page.len(), 1, "nothing was written");
    }

    #[test]
    fn the_count_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        kept(&store, 1, 3, NOW, NOW + 3600);
        kept(&store, 2, 3, NOW, NOW + 3600);
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.carried_count(), 2);
    }
}
