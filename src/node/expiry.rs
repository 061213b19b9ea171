//! Time running out: the person's open intents are announced when they expire, the
//! replay memory forgets the ids whose messages can no longer be valid, and intents (own
//! and received, with their offers) are removed from the store once they have been expired
//! for the configured time (`[store] keep_expired_secs`), so the store is bounded by expiry.

use std::collections::BTreeSet;

use tracing::warn;

use super::action::Action;
use super::events::NodeEvent;
use crate::proto::IntentId;
use crate::store::{IntentKey, Store, StoreError};

/// How often the replay memory is purged, in seconds.
pub const PURGE_EVERY_SECS: u64 = 60;

/// Own intents by expiry, and when the store was last purged.
#[derive(Debug, Default)]
pub struct Expiry {
    watched: BTreeSet<(u64, IntentId)>,
    purged_at: u64,
    /// Seconds an intent is kept after its expiry.
    keep_expired: u64,
}

impl Expiry {
    /// Watches the person's intents that are open at `now`; expired intents are kept for
    /// `keep_expired` seconds.
    pub fn load(store: &Store, now: u64, keep_expired: u64) -> Result<Expiry, StoreError> {
        let watched = store
            .own_open_intents()?
            .into_iter()
            .filter(|(expires, _)| *expires > now)
            .collect();
        Ok(Expiry {
            watched,
            purged_at: 0,
            keep_expired,
        })
    }

    /// Watches one more own intent.
    pub fn watch(&mut self, intent: IntentId, expires: u64) {
        self.watched.insert((expires, intent));
    }

    /// Announces the watched intents expired by `now` (unless withdrawn), and purges the
    /// replay memory, the intents expired for long enough, early withdrawals and expired
    /// mailbox queues when it is time.
    pub fn tick(&mut self, store: &Store, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(&(expires, id)) = self.watched.first() {
            if expires > now {
                break;
            }
            self.watched.pop_first();
            match store.is_withdrawn(&IntentKey::own(&id)) {
                Ok(true) => {}
                Ok(false) => actions.push(Action::Emit(NodeEvent::IntentExpired {
                    intent: hex::encode(*id),
                })),
                Err(e) => warn!("intent {}: {e}", hex::encode(*id)),
            }
        }
        if now >= self.purged_at + PURGE_EVERY_SECS {
            self.purged_at = now;
            if let Err(e) = store.purge_seen(now) {
                warn!("purging the replay memory: {e}");
            }
            if let Err(e) = store.purge_expired(now.saturating_sub(self.keep_expired)) {
                warn!("purging expired intents: {e}");
            }
            if let Err(e) = store.purge_early_withdrawals(now) {
                warn!("purging early withdrawals: {e}");
            }
            if let Err(e) = store.mailbox_purge(now) {
                warn!("purging expired mailbox queues: {e}");
            }
            if let Err(e) = store.purge_reviews(now) {
                warn!("purging reviews past their lifetime: {e}");
            }
            if let Err(e) = store.purge_groups(now) {
                warn!("purging expired groups: {e}");
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MessageId;

    fn expired_ids(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Emit(NodeEvent::IntentExpired { intent }) => Some(intent.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn intents_are_announced_once_in_expiry_order_and_replays_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let mut expiry = Expiry::default();
        let (a, b) = (IntentId::from([1; 16]), IntentId::from([2; 16]));
        expiry.watch(b, 200);
        expiry.watch(a, 100);
        assert!(store.mark_seen(&MessageId([9; 32]), 150).unwrap());
        assert!(expired_ids(&expiry.tick(&store, 99)).is_empty());
        assert!(
            !store.mark_seen(&MessageId([9; 32]), 150).unwrap(),
            "still remembered before its time"
        );
        assert_eq!(
            expired_ids(&expiry.tick(&store, 160)),
            vec![hex::encode(*a)]
        );
        assert!(
            store.mark_seen(&MessageId([9; 32]), 300).unwrap(),
            "forgotten at its time"
        );
        assert!(expired_ids(&expiry.tick(&store, 199)).is_empty());
        assert_eq!(
            expired_ids(&expiry.tick(&store, 500)),
            vec![hex::encode(*b)]
        );
        assert!(expired_ids(&expiry.tick(&store, 900)).is_empty(), "once");
    }

    #[test]
    fn intents_are_purged_once_kept_long_enough_after_expiry() {
        use crate::proto::{Constraints, Envelope, Intent, ReplyTo};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let intent = Intent {
            id: IntentId::from([1; 16]),
            category: "books".into(),
            subcategory: None,
            text: "Any book".into(),
            constraints: Constraints::default(),
            terms: vec![],
            created: 1_000,
            expires: 2_000,
            reply_to: ReplyTo::nowhere(),
            group: None,
        };
        store
            .cast(&Envelope::seal(&intent, &key), &intent, 1_000)
            .unwrap();
        let mut expiry = Expiry::load(&store, 1_000, 100).unwrap();
        expiry.tick(&store, 2_050);
        assert!(
            store.intent(&IntentKey::own(&intent.id)).unwrap().is_some(),
            "kept 100 s"
        );
        expiry.tick(&store, 2_100);
        assert!(
            store.intent(&IntentKey::own(&intent.id)).unwrap().is_some(),
            "one purge a minute"
        );
        expiry.tick(&store, 2_110);
        assert!(
            store.intent(&IntentKey::own(&intent.id)).unwrap().is_none(),
            "then purged"
        );
    }

    #[test]
    fn expired_mailbox_queues_and_early_withdrawals_go_at_the_purge() {
        use crate::store::mailbox::{MailboxLimits, QueueClaim};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let limits = MailboxLimits::default();
        let claim = QueueClaim {
            queue: [4; 16],
            expires: 1_000,
            ack: vec![],
        };
        store
            .mailbox_fetch(&[claim], 100, &limits, 16)
            .unwrap()
            .unwrap();
        store
            .mailbox_deposit(&[4; 16], b"sealed", 100, &limits)
            .unwrap()
            .unwrap();
        let early = IntentId::from([5; 16]);
        assert!(
            store
                .remember_early_withdrawal(&early, &[6; 32], 1_000)
                .unwrap()
        );
        let mut expiry = Expiry::default();
        expiry.tick(&store, 999);
        assert_eq!(store.mailbox_counts().items, 1, "not expired yet");
        assert!(store.withdrawn_early(&early, &[6; 32]).unwrap());
        expiry.tick(&store, 999 + PURGE_EVERY_SECS);
        assert_eq!(store.mailbox_counts().queues, 0);
        assert_eq!(store.mailbox_counts().items, 0);
        assert!(!store.withdrawn_early(&early, &[6; 32]).unwrap());
    }
}
