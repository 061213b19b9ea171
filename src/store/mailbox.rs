//! Mailboxes, on service nodes: sealed items that vendors deposit in one-time queues, kept
//! until the queue's owner fetches and acknowledges them or the queue expires.
//!
//! A queue exists once its owner opened it (the first fetch that claims it) and lives until
//! the expiry the owner gave (an intent's expiry, at most 30 days ahead). Every part is
//! bounded: queues in total, items per queue, bytes in total, bytes per item; a deposit
//! beyond a bound is refused with its [`MailboxRefusal`] code and nothing is stored. A
//! deposit is on disk before it is acknowledged; opening a queue and acknowledging items are
//! not (after a crash the owner opens again and gets some items twice, which it ignores).

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Store, StoreError, decode, encode, fixed_key};
use crate::proto::limits::{MAX_CLOCK_SKEW_SECS, MAX_ENVELOPE_BYTES, MAX_INTENT_LIFETIME_SECS};
use crate::proto::sealed::SEAL_OVERHEAD;
use crate::proto::service::{ITEM_ID_BYTES, MailboxItem, QUEUE_BYTES};

/// A queue id.
pub type QueueId = [u8; QUEUE_BYTES];

/// The bounds of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Most open queues.
    pub max_queues: u64,
    /// Most items waiting in one queue.
    pub max_items_per_queue: usize,
    /// Most bytes of sealed items in all queues together.
    pub max_bytes: u64,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_queues: 100_000,
            max_items_per_queue: 32,
            max_bytes: 512 << 20,
        }
    }
}

/// Largest sealed item: a sealed envelope of the largest size.
pub const MAX_SEALED_BYTES: usize = MAX_ENVELOPE_BYTES + SEAL_OVERHEAD;

/// Why a mailbox refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxRefusal {
    /// No open queue has this id.
    UnknownQueue,
    /// The queue holds its most items.
    QueueFull,
    /// The mailbox holds its most bytes or queues.
    MailboxFull,
    /// The item is larger than any sealed envelope.
    TooLarge,
    /// A queue's expiry is past or too far ahead.
    BadExpiry,
}

impl MailboxRefusal {
    /// The refusal's code on the wire (`proto/README.md`).
    pub fn code(self) -> &'static str {
        match self {
            MailboxRefusal::UnknownQueue => "unknown-queue",
            MailboxRefusal::QueueFull => "queue-full",
            MailboxRefusal::MailboxFull => "mailbox-full",
            MailboxRefusal::TooLarge => "too-large",
            MailboxRefusal::BadExpiry => "bad-expiry",
        }
    }
}

/// An owner's claim on a queue, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    /// The queue.
    pub queue: QueueId,
    /// Its expiry.
    pub expires: u64,
    /// Items the owner stored.
    pub ack: Vec<[u8; ITEM_ID_BYTES]>,
}

/// What a mailbox holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounts {
    /// Open queues.
    pub queues: u64,
    /// Items waiting.
    pub items: u64,
    /// Bytes of sealed items waiting.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct ItemRecord {
    sealed: ByteBuf,
    deposited: u64,
}

fn item_key(queue: &QueueId, id: &[u8; ITEM_ID_BYTES]) -> [u8; QUEUE_BYTES + ITEM_ID_BYTES] {
    let mut key = [0u8; QUEUE_BYTES + ITEM_ID_BYTES];
    key[..QUEUE_BYTES].copy_from_slice(queue);
    key[QUEUE_BYTES..].copy_from_slice(id);
    key
}

fn expiry_key(expires: u64, queue: &QueueId) -> [u8; 8 + QUEUE_BYTES] {
    let mut key = [0u8; 8 + QUEUE_BYTES];
    key[..8].copy_from_slice(&expires.to_be_bytes());
    key[8..].copy_from_slice(queue);
    key
}

impl Store {
    /// Leaves `sealed` in `queue`, without waiting for the disk: `Ok(Ok(id))` once staged
    /// (a deposit made twice is stored once), and the caller's [`Store::flush`] makes it
    /// durable before the deposit is acknowledged; `Ok(Err(refusal))` stores nothing.
    pub fn mailbox_deposit(
        &self,
        queue: &QueueId,
        sealed: &[u8],
        now: u64,
        limits: &MailboxLimits,
    ) -> Result<Result<[u8; ITEM_ID_BYTES], MailboxRefusal>, StoreError> {
        if sealed.len() > MAX_SEALED_BYTES {
            return Ok(Err(MailboxRefusal::TooLarge));
        }
        let t = self.trees()?;
        let _one_writer = t.mailbox_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(expires) = t.mailbox_queues.get(queue)? else {
            return Ok(Err(MailboxRefusal::UnknownQueue));
        };
        let expires = u64::from_be_bytes(fixed_key("mailbox_queues", &expires)?);
        if expires <= now {
            return Ok(Err(MailboxRefusal::UnknownQueue));
        }
        let id = crate::proto::service::item_id(sealed);
        let key = item_key(queue, &id);
        if t.mailbox_items.contains_key(key)? {
            return Ok(Ok(id));
        }
        if t.mailbox_items.scan_prefix(queue).count() >= limits.max_items_per_queue {
            return Ok(Err(MailboxRefusal::QueueFull));
        }
        let bytes = t.mailbox_bytes.load(Ordering::SeqCst);
        if bytes + sealed.len() as u64 > limits.max_bytes {
            return Ok(Err(MailboxRefusal::MailboxFull));
        }
        let record = ItemRecord {
            sealed: ByteBuf::from(sealed),
            deposited: now,
        };
        t.mailbox_items.insert(key, encode(&record))?;
        t.mailbox_bytes
            .fetch_add(sealed.len() as u64, Ordering::SeqCst);
        t.mailbox_items_count.fetch_add(1, Ordering::SeqCst);
        Ok(Ok(id))
    }

    /// The owner's fetch: opens each claimed queue that is not open yet (or moves the
    /// expiry of an open one later, never earlier), drops the items it acknowledges, and returns up to `max_items` of what waits, and whether more does.
    pub fn mailbox_fetch(
        &self,
        claims: &[QueueClaim],
        now: u64,
        limits: &MailboxLimits,
        max_items: usize,
    ) -> Result<Result<(Vec<MailboxItem>, bool), MailboxRefusal>, StoreError> {
        let t = self.trees()?;
        let _one_writer = t.mailbox_lock.lock().unwrap_or_else(|e| e.into_inner());
        let latest = now + MAX_INTENT_LIFETIME_SECS + MAX_CLOCK_SKEW_SECS;
        if claims
            .iter()
            .any(|c| c.expires <= now || c.expires > latest)
        {
            return Ok(Err(MailboxRefusal::BadExpiry));
        }
        let mut new = 0u64;
        for claim in claims {
            if !t.mailbox_queues.contains_key(claim.queue)? {
                new += 1;
            }
        }
        if new > 0 && t.mailbox_queues_count.load(Ordering::SeqCst) + new > limits.max_queues {
            return Ok(Err(MailboxRefusal::MailboxFull));
        }
        let mut items = Vec::new();
        let mut more = false;
        for claim in claims {
            let stored = t
                .mailbox_queues
                .compare_and_swap(
                    claim.queue,
                    None as Option<&[u8]>,
                    Some(&claim.expires.to_be_bytes()),
                )?
                .is_ok();
            if stored {
                t.mailbox_queues_count.fetch_add(1, Ordering::SeqCst);
                t.mailbox_by_expiry
                    .insert(expiry_key(claim.expires, &claim.queue), &[])?;
            } else if let Some(old) = t.mailbox_queues.get(claim.queue)?
                && let Ok(old) = <[u8; 8]>::try_from(&old[..])
                && u64::from_be_bytes(old) < claim.expires
            {
                // A later claim keeps a long-lived queue (a relationship's) open.
                let old = u64::from_be_bytes(old);
                t.mailbox_queues
                    .insert(claim.queue, &claim.expires.to_be_bytes())?;
                t.mailbox_by_expiry.remove(expiry_key(old, &claim.queue))?;
                t.mailbox_by_expiry
                    .insert(expiry_key(claim.expires, &claim.queue), &[])?;
            }
            for id in &claim.ack {
                self.remove_item(&t, &item_key(&claim.queue, id))?;
            }
            for kv in t.mailbox_items.scan_prefix(claim.queue) {
                let (key, value) = kv?;
                if items.len() == max_items {
                    more = true;
                    break;
                }
                let record: ItemRecord = decode("mailbox_items", &value)?;
                items.push(MailboxItem {
                    queue: ByteBuf::from(&key[..QUEUE_BYTES]),
                    id: ByteBuf::from(&key[QUEUE_BYTES..]),
                    sealed: record.sealed,
                });
            }
        }
        Ok(Ok((items, more)))
    }

    /// Drops an item its owner stored (a pushed item it acknowledged).
    pub fn mailbox_remove(
        &self,
        queue: &QueueId,
        id: &[u8; ITEM_ID_BYTES],
    ) -> Result<(), StoreError> {
        let t = self.trees()?;
        let _one_writer = t.mailbox_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.remove_item(&t, &item_key(queue, id))
    }

    fn remove_item(&self, t: &super::Trees, key: &[u8]) -> Result<(), StoreError> {
        if let Some(old) = t.mailbox_items.remove(key)? {
            let record: ItemRecord = decode("mailbox_items", &old)?;
            t.mailbox_bytes
                .fetch_sub(record.sealed.len() as u64, Ordering::SeqCst);
            t.mailbox_items_count.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Drops the queues whose expiry has come, with what they hold. Returns how many.
    pub fn mailbox_purge(&self, now: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let _one_writer = t.mailbox_lock.lock().unwrap_or_else(|e| e.into_inner());
        let end = expiry_key(now, &[0xff; QUEUE_BYTES]);
        let mut purged = 0;
        for key in t.mailbox_by_expiry.range(..=end.as_slice()).keys() {
            let key = key?;
            let queue: QueueId = fixed_key("mailbox_by_expiry", &key[8..])?;
            for item in t.mailbox_items.scan_prefix(queue).keys() {
                self.remove_item(&t, &item?)?;
            }
            if t.mailbox_queues.remove(queue)?.is_some() {
                t.mailbox_queues_count.fetch_sub(1, Ordering::SeqCst);
            }
            t.mailbox_by_expiry.remove(key)?;
            purged += 1;
        }
        Ok(purged)
    }

    /// What the mailbox holds.
    pub fn mailbox_counts(&self) -> MailboxCounts {
        let Ok(t) = self.trees() else {
            return MailboxCounts::default();
        };
        MailboxCounts {
            queues: t.mailbox_queues_count.load(Ordering::SeqCst),
            items: t.mailbox_items_count.load(Ordering::SeqCst),
            bytes: t.mailbox_bytes.load(Ordering::SeqCst),
        }
    }
}

/// How many items `items` holds and their sealed bytes, for the running totals kept at open.
pub(super) fn stored_items(items: &sled::Tree) -> Result<(u64, u64), StoreError> {
    let (mut count, mut bytes) = (0, 0);
    for value in items.iter().values() {
        let record: ItemRecord = decode("mailbox_items", &value?)?;
        count += 1;
        bytes += record.sealed.len() as u64;
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claim(queue: QueueId) -> QueueClaim {
        QueueClaim {
            queue,
            expires: NOW + 3600,
            ack: Vec::new(),
        }
    }

    #[test]
    fn a_deposit_waits_until_its_owner_acknowledges_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let q = [1; QUEUE_BYTES];
        assert_eq!(
            store.mailbox_deposit(&q, b"sealed", NOW, &limits).unwrap(),
            Err(MailboxRefusal::UnknownQueue),
            "a queue exists once its owner opened it"
        );
        let (items, more) = store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        assert!(items.is_empty() && !more);
        let id = store
            .mailbox_deposit(&q, b"sealed", NOW, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.mailbox_deposit(&q, b"sealed", NOW, &limits).unwrap(),
            Ok(id),
            "the same deposit twice is stored once"
        );
        assert_eq!(store.mailbox_counts().items, 1);
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(
            store.mailbox_counts().bytes,
            6,
            "the total is read back at open"
        );
        let (items, _) = store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].sealed.as_slice(), b"sealed");
        let mut ack = claim(q);
        ack.ack.push(id);
        let (items, _) = store
            .mailbox_fetch(&[ack], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        assert!(items.is_empty());
        assert_eq!(store.mailbox_counts().bytes, 0);
    }

    #[test]
    fn every_bound_refuses_with_its_code_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits {
            max_queues: 2,
            max_items_per_queue: 2,
            max_bytes: 10,
        };
        let (a, b, c) = ([1; QUEUE_BYTES], [2; QUEUE_BYTES], [3; QUEUE_BYTES]);
        store
            .mailbox_fetch(&[claim(a), claim(b)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.mailbox_fetch(&[claim(c)], NOW, &limits, 16).unwrap(),
            Err(MailboxRefusal::MailboxFull),
            "no third queue"
        );
        let shrunk = MailboxLimits {
            max_queues: 1,
            ..limits
        };
        assert!(
            store
                .mailbox_fetch(&[claim(a)], NOW, &shrunk, 16)
                .unwrap()
                .is_ok(),
            "a queue already open is fetched even when the bound has shrunk below the count"
        );
        store
            .mailbox_deposit(&a, b"1234", NOW, &limits)
            .unwrap()
            .unwrap();
        store
            .mailbox_deposit(&a, b"5678", NOW, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.mailbox_deposit(&a, b"9", NOW, &limits).unwrap(),
            Err(MailboxRefusal::QueueFull)
        );
        assert_eq!(
            store.mailbox_deposit(&b, b"abc", NOW, &limits).unwrap(),
            Err(MailboxRefusal::MailboxFull),
            "8 + 3 bytes is over 10"
        );
        store
            .mailbox_deposit(&b, b"ab", NOW, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .mailbox_deposit(&b, &vec![0; MAX_SEALED_BYTES + 1], NOW, &limits)
                .unwrap(),
            Err(MailboxRefusal::TooLarge)
        );
        let late = QueueClaim {
            expires: NOW + MAX_INTENT_LIFETIME_SECS + MAX_CLOCK_SKEW_SECS + 1,
            ..claim(c)
        };
        assert_eq!(
            store.mailbox_fetch(&[late], NOW, &limits, 16).unwrap(),
            Err(MailboxRefusal::BadExpiry)
        );
        assert_eq!(
            store.mailbox_counts(),
            MailboxCounts {
                queues: 2,
                items: 3,
                bytes: 10
            }
        );
    }

    /// The largest sealed item is a sealed envelope of the largest size: accepted, and one
    /// byte more refused.
    #[test]
    fn an_item_may_be_as_large_as_a_sealed_envelope_and_no_larger() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let q = [1; QUEUE_BYTES];
        store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        let largest = MAX_ENVELOPE_BYTES + SEAL_OVERHEAD;
        assert!(
            store
                .mailbox_deposit(&q, &vec![1; largest], NOW, &limits)
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            store
                .mailbox_deposit(&q, &vec![2; largest + 1], NOW, &limits)
                .unwrap(),
            Err(MailboxRefusal::TooLarge)
        );
    }

    /// A pushed item the owner stored leaves the mailbox, with its bytes.
    #[test]
    fn a_pushed_item_the_owner_stored_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let q = [1; QUEUE_BYTES];
        store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        let id = store
            .mailbox_deposit(&q, b"pushed", NOW, &limits)
            .unwrap()
            .unwrap();
        store
            .mailbox_deposit(&q, b"other", NOW, &limits)
            .unwrap()
            .unwrap();
        store.mailbox_remove(&q, &id).unwrap();
        assert_eq!(
            store.mailbox_counts(),
            MailboxCounts {
                queues: 1,
                items: 1,
                bytes: 5
            }
        );
    }

    /// The codes are part of the protocol (`proto/README.md`).
    #[test]
    fn each_refusal_has_its_wire_code() {
        let codes: Vec<&str> = [
            MailboxRefusal::UnknownQueue,
            MailboxRefusal::QueueFull,
            MailboxRefusal::MailboxFull,
            MailboxRefusal::TooLarge,
            MailboxRefusal::BadExpiry,
        ]
        .iter()
        .map(|r| r.code())
        .collect();
        assert_eq!(
            codes,
            [
                "unknown-queue",
                "queue-full",
                "mailbox-full",
                "too-large",
                "bad-expiry"
            ]
        );
    }

    /// A queue may live as long as an intent may (30 days, plus the clock skew), no longer.
    #[test]
    fn a_queue_may_expire_as_late_as_an_intent_and_no_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let latest = NOW + MAX_INTENT_LIFETIME_SECS + MAX_CLOCK_SKEW_SECS;
        let at = |expires| QueueClaim {
            expires,
            ..claim([5; QUEUE_BYTES])
        };
        assert!(
            store
                .mailbox_fetch(&[at(latest)], NOW, &limits, 16)
                .unwrap()
                .is_ok()
        );
        assert_eq!(
            store.mailbox_fetch(&[at(NOW)], NOW, &limits, 16).unwrap(),
            Err(MailboxRefusal::BadExpiry),
            "already expired"
        );
    }

    #[test]
    fn an_expired_queue_goes_with_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let q = [1; QUEUE_BYTES];
        store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 16)
            .unwrap()
            .unwrap();
        store
            .mailbox_deposit(&q, b"x", NOW, &limits)
            .unwrap()
            .unwrap();
        assert_eq!(store.mailbox_purge(NOW + 3599).unwrap(), 0);
        assert_eq!(
            store
                .mailbox_deposit(&q, b"y", NOW + 3600, &limits)
                .unwrap(),
            Err(MailboxRefusal::UnknownQueue),
            "expired, even before the purge"
        );
        assert_eq!(store.mailbox_purge(NOW + 3600).unwrap(), 1);
        assert_eq!(store.mailbox_counts(), MailboxCounts::default());
    }

    #[test]
    fn fetch_returns_at_most_the_asked_number_and_says_more_waits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let q = [1; QUEUE_BYTES];
        store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 2)
            .unwrap()
            .unwrap();
        for i in 0..3u8 {
            store
                .mailbox_deposit(&q, &[i], NOW, &limits)
                .unwrap()
                .unwrap();
        }
        let (items, more) = store
            .mailbox_fetch(&[claim(q)], NOW, &limits, 2)
            .unwrap()
            .unwrap();
        assert_eq!((items.len(), more), (2, true));
    }
}
