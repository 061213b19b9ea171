//! Replay memory: the ids of messages already handled, each kept until its message expires
//! and then forgotten. `seen_by_time` indexes them by that time, so forgetting costs only
//! the ids that are due, never a scan of the whole memory.

use super::{Store, StoreError, fixed_key};
use crate::proto::MessageId;

fn time_key(forget_after: u64, id: &MessageId) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&forget_after.to_be_bytes());
    key[8..].copy_from_slice(&id.0);
    key
}

impl Store {
    /// Remembers a message id until `forget_after`. Returns false if it was already seen.
    /// It does not wait for the disk: a crash forgets a few ids, and the messages they
    /// name are then handled once more, idempotently.
    pub fn mark_seen(&self, id: &MessageId, forget_after: u64) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let fresh = t
            .seen
            .compare_and_swap(
                id.0,
                None as Option<&[u8]>,
                Some(&forget_after.to_be_bytes()),
            )?
            .is_ok();
        if fresh {
            t.seen_by_time.insert(time_key(forget_after, id), &[])?;
        }
        Ok(fresh)
    }

    /// Forgets the ids whose time has come (`forget_after <= now`), with the messages kept
    /// under them for catch-up. Returns how many.
    pub fn purge_seen(&self, now: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let mut purged = 0;
        let end = time_key(now, &MessageId([0xff; 32]));
        for key in t.seen_by_time.range(..=end.as_slice()).keys() {
            let key = key?;
            let id: [u8; 32] = fixed_key("seen_by_time", &key[8..])?;
            t.seen.remove(id)?;
            t.forget_carried(&id)?;
            t.seen_by_time.remove(key)?;
            purged += 1;
        }
        Ok(purged)
    }

    /// Schema 1 → 2: builds the time index of the replay memory.
    pub(super) fn index_seen_v1(&self) -> Result<(), StoreError> {
        let t = self.trees()?;
        for kv in t.seen.iter() {
            let (key, value) = kv?;
            let id = MessageId(fixed_key("seen", &key)?);
            // An unreadable time is forgotten at the first purge, as schema 1 did.
            let forget_after = fixed_key("seen", &value).map_or(0, u64::from_be_bytes);
            t.seen_by_time.insert(time_key(forget_after, &id), &[])?;
        }
        Ok(())
    }
}
