//! Reviews seen on the directory topic (`proto::reviews`): one per vendor and order, the
//! newest the person wrote, with what the node needs to weigh it kept beside the envelope,
//! so that computing a reputation reads records and verifies no signature again.
//!
//! Gossip, like the catch-up memory: none of it waits for the disk (the person's own review
//! is durable in the outbox until delivered). At most [`MAX_REVIEWS`] are kept; a review
//! counts for [`REVIEW_LIFETIME_SECS`] and is purged after.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Store, StoreError, decode, encode, warn_full};
use crate::proto::reviews::{REVIEW_LIFETIME_SECS, Reviewed};
use crate::proto::{Envelope, Review};

/// Most reviews kept.
pub const MAX_REVIEWS: u64 = 100_000;

/// When the full review store was last logged.
static LAST_FULL_WARNING: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize, Deserialize)]
struct ReviewRecord {
    envelope: ByteBuf,
    persona: [u8; 32],
    rating: u8,
    created: u64,
    history: Vec<[u8; 32]>,
    stored_at: u64,
}

/// A review as the store keeps it: what it says, without its text (see [`Store::review_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReview {
    /// What the review says.
    pub reviewed: Reviewed,
    /// Its message id.
    pub id: crate::proto::MessageId,
    /// When this node stored it.
    pub stored_at: u64,
}

/// What became of a review offered to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKept {
    /// Stored: the first of its order, or newer than the one held.
    Stored,
    /// The store holds a review of that order at least as new.
    NotNewer,
    /// The store is full ([`MAX_REVIEWS`]).
    Full,
}

fn key(vendor: &[u8; 32], order: &[u8; 32]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(vendor);
    key[32..].copy_from_slice(order);
    key
}

impl Store {
    /// Keeps `envelope`, a review that says `reviewed`, unless a review of the same order is
    /// at least as new.
    pub fn keep_review(
        &self,
        envelope: &Envelope,
        reviewed: &Reviewed,
        now: u64,
    ) -> Result<ReviewKept, StoreError> {
        let t = self.trees()?;
        let key = key(&reviewed.vendor, &reviewed.order);
        let old = t.reviews.get(key)?;
        if let Some(old) = &old {
            let old: ReviewRecord = decode("reviews", old)?;
            if old.created >= reviewed.created {
                return Ok(ReviewKept::NotNewer);
            }
        } else if t.reviews_count.load(Ordering::SeqCst) >= MAX_REVIEWS {
            warn_full(&LAST_FULL_WARNING, || {
                format!(
                    "the review store is full ({MAX_REVIEWS} reviews): new ones are relayed but not counted until some age out"
                )
            });
            return Ok(ReviewKept::Full);
        }
        let record = ReviewRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            persona: reviewed.persona,
            rating: reviewed.rating,
            created: reviewed.created,
            history: reviewed.history.clone(),
            stored_at: now,
        };
        if t.reviews.insert(key, encode(&record))?.is_none() {
            t.reviews_count.fetch_add(1, Ordering::SeqCst);
        }
        Ok(ReviewKept::Stored)
    }

    /// The person's own review `envelope` (saying `reviewed`): kept, in the replay memory,
    /// and queued for publication on the directory until `expires`, durably, in one flush.
    pub fn publish_review(
        &self,
        envelope: &Envelope,
        reviewed: &Reviewed,
        expires: u64,
        now: u64,
    ) -> Result<super::Outgoing, StoreError> {
        let t = self.trees()?;
        let queued = super::Outgoing {
            id: envelope.id(),
            subject: super::Subject::Review {
                vendor: reviewed.vendor.into(),
            },
            route: super::Route::Gossip {
                topic: crate::proto::DIRECTORY_TOPIC.to_owned(),
            },
            expires,
        };
        t.outbox
            .insert(queued.id.0, encode(&queued.record(envelope)))?;
        self.mark_seen(
            &queued.id,
            reviewed.created.saturating_add(REVIEW_LIFETIME_SECS),
        )?;
        self.keep_review(envelope, reviewed, now)?;
        t.durable()?;
        Ok(queued)
    }

    /// Every review kept, of every vendor (of `vendor` only, if given).
    pub fn reviews(&self, vendor: Option<&[u8; 32]>) -> Result<Vec<StoredReview>, StoreError> {
        let t = self.trees()?;
        let scan = match vendor {
            Some(vendor) => t.reviews.scan_prefix(vendor),
            None => t.reviews.iter(),
        };
        scan.map(|kv| {
            let (k, v) = kv?;
            let record: ReviewRecord = decode("reviews", &v)?;
            let (vendor, order) = k.split_at(32);
            Ok(StoredReview {
                reviewed: Reviewed {
                    vendor: super::fixed_key("reviews", vendor)?,
                    order: super::fixed_key("reviews", order)?,
                    persona: record.persona,
                    rating: record.rating,
                    created: record.created,
                    history: record.history,
                },
                id: crate::proto::MessageId::of(&record.envelope),
                stored_at: record.stored_at,
            })
        })
        .collect()
    }

    /// The text of the review kept for `vendor`'s `order`, and its envelope.
    pub fn review(
        &self,
        vendor: &[u8; 32],
        order: &[u8; 32],
    ) -> Result<Option<(Envelope, Review)>, StoreError> {
        let t = self.trees()?;
        let Some(v) = t.reviews.get(key(vendor, order))? else {
            return Ok(None);
        };
        let record: ReviewRecord = decode("reviews", &v)?;
        super::open_stored::<Review>(&record.envelope).map(Some)
    }

    /// Forgets reviews older than a review's lifetime at `now`. Returns how many.
    pub fn purge_reviews(&self, now: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let mut purged = 0;
        for kv in t.reviews.iter() {
            let (k, v) = kv?;
            let record: ReviewRecord = decode("reviews", &v)?;
            if record.created.saturating_add(REVIEW_LIFETIME_SECS) <= now
                && t.reviews.remove(&k)?.is_some()
            {
                t.reviews_count.fetch_sub(1, Ordering::SeqCst);
                purged += 1;
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewed(vendor: u8, order: u8, created: u64) -> Reviewed {
        Reviewed {
            vendor: [vendor; 32],
            order: [order; 32],
            persona: [9; 32],
            rating: 4,
            created,
            history: vec![[3; 32]],
        }
    }

    fn envelope() -> Envelope {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        Envelope::seal(
            &crate::proto::IntentWithdraw {
                intent: [1; 16].into(),
                created: 1,
            },
            &key,
        )
    }

    #[test]
    fn one_review_per_order_the_newest_and_forgotten_after_a_year() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let e = envelope();
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 1, 100), 5).unwrap(),
            ReviewKept::Stored
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 1, 100), 5).unwrap(),
            ReviewKept::NotNewer
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 1, 99), 5).unwrap(),
            ReviewKept::NotNewer
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 1, 200), 6).unwrap(),
            ReviewKept::Stored
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 2, 50), 7).unwrap(),
            ReviewKept::Stored
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(2, 1, 50), 7).unwrap(),
            ReviewKept::Stored
        );
        let of_one = store.reviews(Some(&[1; 32])).unwrap();
        assert_eq!(of_one.len(), 2);
        assert_eq!(
            of_one[0].reviewed,
            reviewed(1, 1, 200),
            "the newer replaced it"
        );
        assert_eq!(store.reviews(None).unwrap().len(), 3);
        assert_eq!(store.purge_reviews(50 + REVIEW_LIFETIME_SECS).unwrap(), 2);
        assert_eq!(store.reviews(None).unwrap().len(), 1);
        assert_eq!(
            store.purge_reviews(200 + REVIEW_LIFETIME_SECS - 1).unwrap(),
            0
        );
    }

    #[test]
    fn a_full_store_keeps_no_new_order_but_takes_newer_reviews_of_held_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let e = envelope();
        store.keep_review(&e, &reviewed(1, 1, 100), 5).unwrap();
        store
            .trees()
            .unwrap()
            .reviews_count
            .store(MAX_REVIEWS, Ordering::SeqCst);
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 2, 100), 5).unwrap(),
            ReviewKept::Full
        );
        assert_eq!(
            store.keep_review(&e, &reviewed(1, 1, 101), 5).unwrap(),
            ReviewKept::Stored
        );
    }
}
