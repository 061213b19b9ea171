//! Replay memory: the ids of messages already handled, each kept until its message expires
//! and then forgotten. `seen_by_time` indexes them by that time, so forgetting costs only
//! the ids that are due, never a scan of the whole memory.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Store, StoreError, fixed_key, warn_full};
use crate::proto::MessageId;

/// Most message ids the replay memory keeps (about 150 MB on disk when full): past that, new
/// intents and withdrawals from the network are refused, not relayed, until ids expire.
pub const MAX_SEEN: u64 = 4_000_000;

/// When the full replay memory was last logged.
static LAST_FULL_WARNING: AtomicU64 = AtomicU64::new(0);

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
            t.seen_count.fetch_add(1, Ordering::SeqCst);
            t.seen_by_time.insert(time_key(forget_after, id), &[])?;
        }
        Ok(fresh)
    }

    /// Whether the replay memory holds [`MAX_SEEN`] ids: new messages from the network are
    /// then refused (logged at most once a minute). The person's own casts are not.
    pub fn replay_memory_full(&self) -> Result<bool, StoreError> {
        let count = self.trees()?.seen_count.load(Ordering::SeqCst);
        let full = count >= MAX_SEEN;
        if full {
            warn_full(&LAST_FULL_WARNING, || {
                format!(
                    "the replay memory is full ({count} ids): new intents and withdrawals from the network are refused until some expire"
                )
            });
        }
        Ok(full)
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
            if t.seen.remove(id)?.is_some() {
                t.seen_count.fetch_sub(1, Ordering::SeqCst);
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{NOW, pretend_held};

    #[test]
    fn the_replay_memory_is_counted_and_refuses_past_its_bound_until_ids_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(store.mark_seen(&MessageId([1; 32]), NOW + 10).unwrap());
        assert!(!store.mark_seen(&MessageId([1; 32]), NOW + 10).unwrap());
        assert!(store.mark_seen(&MessageId([2; 32]), NOW + 20).unwrap());
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let count = |s: &Store| s.trees().unwrap().seen_count.load(Ordering::SeqCst);
        assert_eq!(count(&store), 2, "counted once each, and again at open");
        assert!(!store.replay_memory_full().unwrap());
        pretend_held(&store, MAX_SEEN - 1, 0);
        assert!(!store.replay_memory_full().unwrap(), "one below the bound");
        pretend_held(&store, MAX_SEEN, 0);
        assert!(store.replay_memory_full().unwrap());
        assert_eq!(store.purge_seen(NOW + 10).unwrap(), 1);
        assert_eq!(count(&store), MAX_SEEN - 1, "a forgotten id makes room");
        assert!(!store.replay_memory_full().unwrap());
    }
}
