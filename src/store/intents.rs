//! Intents: the person's own (cast, withdrawn) and, on vendor nodes, those received in the
//! categories the vendor serves, each under its [`IntentKey`] (a received intent is its
//! signer's and id's together). Each is indexed by its expiry in `intents_by_expiry`;
//! [`Store::purge_expired`] removes the intents expired before a time, with their offers.

use std::sync::atomic::{AtomicU64, Ordering};

use super::models::{Decision, IntentKey, Origin, Route, StoredIntent, Subject};
use super::outbox::Outgoing;
use super::records::{IntentRecord, OutboxRecord};
use super::{Store, StoreError, decode, encode, fixed_key, open_stored, update_record, warn_full};
use crate::proto::{Envelope, Intent, IntentId, MessageId, group_id, topic_of};

pub(super) fn expiry_key(expires: u64, key: &IntentKey) -> [u8; 24] {
    let mut index = [0u8; 24];
    index[..8].copy_from_slice(&expires.to_be_bytes());
    index[8..].copy_from_slice(&key.bytes());
    index
}

/// What became of an intent received from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedIntent {
    /// New: stored (staged; the caller's flush makes it durable).
    Stored,
    /// The same envelope is already stored.
    Replay,
    /// Another envelope of the same signer with the same intent id is stored.
    Conflict,
    /// The store holds [`MAX_STORED_INTENTS`]: not stored (logged at most once a minute).
    Full,
}

/// Most intents a node stores, its own and those it received (about 1 GB on disk when
/// full): past that, a vendor's node relays new intents of its categories but neither
/// stores nor answers them until some expire.
pub const MAX_STORED_INTENTS: u64 = 1_000_000;

/// When the full store of intents was last logged.
static LAST_FULL_WARNING: AtomicU64 = AtomicU64::new(0);

/// What became of the person's request to withdraw an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOwn {
    /// Marked withdrawn; the withdrawal is queued, and the intent's own publication, if it
    /// was still waiting, is dropped from the outbox.
    Withdrawn {
        /// The queued withdrawal.
        queued: Box<Outgoing>,
        /// The intent's own outbox entry (removed if it was there).
        unqueued: MessageId,
    },
    /// No intent of the person's with this id.
    Unknown,
    /// It was withdrawn before.
    AlreadyWithdrawn,
}

impl Store {
    /// The person casts `intent`: the intent, its id in the replay memory (its own copy
    /// coming back over gossip is not news) and its publication in the outbox, made durable
    /// together by one flush. Returns the queued publication.
    pub fn cast(
        &self,
        envelope: &Envelope,
        intent: &Intent,
        now: u64,
    ) -> Result<Outgoing, StoreError> {
        let t = self.trees()?;
        let record = encode(&IntentRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            origin: Origin::Own,
            stored_at: now,
            withdrawn_at: None,
            decision: None,
        });
        let queued = Outgoing {
            id: envelope.id(),
            subject: Subject::Intent { intent: intent.id },
            route: Route::Gossip {
                topic: topic_of(intent),
            },
            expires: intent.expires,
        };
        // The intent is written last: a crash before it leaves an outbox entry for an intent
        // that is not there, which the next open drops ([`Store::repair`]), and an expiry
        // index entry that purges nothing (never an intent that is never purged).
        t.outbox
            .insert(queued.id.0, encode(&queued.record(envelope)))?;
        self.mark_seen(&queued.id, intent.expires)?;
        let key = IntentKey::own(&intent.id);
        t.intents_by_expiry
            .insert(expiry_key(intent.expires, &key), &[])?;
        let fresh = t
            .intents
            .compare_and_swap(key.bytes(), None as Option<&[u8]>, Some(record))?
            .is_ok();
        if !fresh {
            t.outbox.remove(queued.id.0)?;
            return Err(StoreError::Corrupt {
                tree: "intents",
                reason: "a fresh intent id is taken".into(),
            });
        }
        t.intents_count.fetch_add(1, Ordering::SeqCst);
        // A member's intent counts in its group here too (gossip does not bring it back).
        if let Some(group) = group_id(intent) {
            self.join_group(&group, envelope, intent)?;
        }
        t.durable()?;
        Ok(queued)
    }

    /// The person withdraws intent `id` with the signed `withdrawal`: checked, marked and
    /// queued, made durable by one flush. Of two racing withdrawals only one goes on.
    pub fn withdraw_own(
        &self,
        id: &IntentId,
        withdrawal: &Envelope,
        now: u64,
    ) -> Result<WithdrawOwn, StoreError> {
        let t = self.trees()?;
        let key = IntentKey::own(id);
        let Some(stored) = self.intent(&key)?.filter(|s| s.origin == Origin::Own) else {
            return Ok(WithdrawOwn::Unknown);
        };
        let queued = Outgoing {
            id: withdrawal.id(),
            subject: Subject::Intent { intent: *id },
            route: Route::Gossip {
                topic: topic_of(&stored.intent),
            },
            expires: stored.intent.expires,
        };
        let unqueued = stored.envelope.id();
        // The withdrawal is queued before the intent is marked, and the publication removed
        // after: whatever a crash interrupts, the next open finishes or undoes
        // ([`Store::repair`]). The marking decides a race between two withdrawals: only
        // the one that sets `withdrawn_at` goes on.
        if stored.withdrawn_at.is_some() {
            return Ok(WithdrawOwn::AlreadyWithdrawn);
        }
        // Two withdrawals in the same second are the same bytes, so the same entry.
        let entry = encode(&queued.record(withdrawal));
        let ours = t
            .outbox
            .compare_and_swap(queued.id.0, None as Option<&[u8]>, Some(entry))?
            .is_ok();
        let mut won = false;
        update_record(
            &t.intents,
            "intents",
            &key.bytes(),
            |r: &mut IntentRecord| {
                won = r.withdrawn_at.is_none();
                r.withdrawn_at.get_or_insert(now);
            },
        )?;
        if !won {
            if ours {
                t.outbox.remove(queued.id.0)?;
            }
            return Ok(WithdrawOwn::AlreadyWithdrawn);
        }
        t.outbox.remove(unqueued.0)?;
        self.mark_seen(&queued.id, stored.intent.expires)?;
        self.leave_group(&stored.envelope.signer().to_bytes(), id)?;
        t.durable()?;
        Ok(WithdrawOwn::Withdrawn {
            queued: Box::new(queued),
            unqueued,
        })
    }

    /// Stores an intent received in a category this vendor serves, under its signer's and
    /// id's key, without waiting for the disk: one [`Store::flush`] makes a batch of them
    /// durable before any is acknowledged.
    pub fn receive_intent(
        &self,
        envelope: &Envelope,
        intent: &Intent,
        now: u64,
    ) -> Result<ReceivedIntent, StoreError> {
        let t = self.trees()?;
        let count = t.intents_count.load(Ordering::SeqCst);
        if count >= MAX_STORED_INTENTS {
            warn_full(&LAST_FULL_WARNING, || {
                format!(
                    "the store holds {count} intents, the most it keeps: new intents are relayed but not stored or answered until some expire"
                )
            });
            return Ok(ReceivedIntent::Full);
        }
        let record = IntentRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            origin: Origin::Received,
            stored_at: now,
            withdrawn_at: None,
            decision: None,
        };
        // The index first, as in `cast`; taken back if this envelope is not the one stored
        // (a conflicting envelope must not choose when the stored intent is purged).
        let key = IntentKey::of_received(envelope, intent);
        let index = expiry_key(intent.expires, &key);
        let indexed = t.intents_by_expiry.insert(index, &[])?.is_none();
        let swapped = t.intents.compare_and_swap(
            key.bytes(),
            None as Option<&[u8]>,
            Some(encode(&record)),
        )?;
        if swapped.is_err() && indexed {
            t.intents_by_expiry.remove(index)?;
        }
        Ok(match swapped {
            Ok(()) => {
                t.intents_count.fetch_add(1, Ordering::SeqCst);
                ReceivedIntent::Stored
            }
            Err(held) => {
                let held: IntentRecord = decode("intents", &held.current.unwrap_or_default())?;
                if held.envelope.as_slice() == envelope.as_bytes() {
                    ReceivedIntent::Replay
                } else {
                    ReceivedIntent::Conflict
                }
            }
        })
    }

    /// Removes every intent that expired at or before `expired_by`, own or received, with
    /// the offers stored for it (made or received). Returns how many intents. It does not
    /// wait for the disk: a purge undone by a crash is done again at the next one. No
    /// message about a purged intent can come back: an expired intent, and an offer to
    /// one, are refused by the protocol's rules.
    pub fn purge_expired(&self, expired_by: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let mut purged = 0;
        let end = expiry_key(expired_by, &IntentKey::own(&IntentId::from([0xff; 16])));
        for key in t.intents_by_expiry.range(..=end.as_slice()).keys() {
            let key = key?;
            let id: [u8; 16] = fixed_key("intents_by_expiry", &key[8..])?;
            for offer in t.offers.scan_prefix(id).keys() {
                t.offers.remove(offer?)?;
            }
            if t.intents.remove(id)?.is_some() {
                t.intents_count.fetch_sub(1, Ordering::SeqCst);
                purged += 1;
            }
            t.intents_by_expiry.remove(key)?;
        }
        Ok(purged)
    }

    /// Marks a received intent withdrawn by its caster, durably. Returns false if it is not
    /// stored (and then writes nothing).
    pub fn record_withdrawal(&self, key: &IntentKey, now: u64) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let found = update_record(
            &t.intents,
            "intents",
            &key.bytes(),
            |r: &mut IntentRecord| {
                r.withdrawn_at.get_or_insert(now);
            },
        )?;
        if found {
            t.durable()?;
        }
        Ok(found)
    }

    /// A vendor node declined to answer an intent. It does not wait for the disk: the
    /// decision is the vendor's own note, and nothing outside the node relies on it.
    pub fn record_declined(&self, key: &IntentKey, reason: &str) -> Result<bool, StoreError> {
        self.set_decision(
            key,
            Decision::Declined {
                reason: reason.to_owned(),
            },
        )
    }

    pub(super) fn set_decision(
        &self,
        key: &IntentKey,
        decision: Decision,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        update_record(
            &t.intents,
            "intents",
            &key.bytes(),
            |r: &mut IntentRecord| r.decision = Some(decision.clone()),
        )
    }

    /// Whether the intent under `key` is stored and withdrawn (cheap: no signature is
    /// checked).
    pub fn is_withdrawn(&self, key: &IntentKey) -> Result<bool, StoreError> {
        let t = self.trees()?;
        Ok(match t.intents.get(key.bytes())? {
            Some(bytes) => decode::<IntentRecord>("intents", &bytes)?
                .withdrawn_at
                .is_some(),
            None => false,
        })
    }

    /// Whether the intent under `key` is stored with a decision taken on it (cheap: no
    /// signature is checked).
    pub fn is_decided(&self, key: &IntentKey) -> Result<bool, StoreError> {
        Ok(match self.trees()?.intents.get(key.bytes())? {
            Some(bytes) => decode::<IntentRecord>("intents", &bytes)?
                .decision
                .is_some(),
            None => false,
        })
    }

    /// The intent stored under `key`.
    pub fn intent(&self, key: &IntentKey) -> Result<Option<StoredIntent>, StoreError> {
        let t = self.trees()?;
        t.intents
            .get(key.bytes())?
            .map(|v| stored_intent(decode("intents", &v)?))
            .transpose()
    }

    /// The person's own intents not withdrawn, each with its expiry (only these envelopes
    /// are opened: a vendor's many received intents cost no signature check here).
    pub fn own_open_intents(&self) -> Result<Vec<(u64, IntentId)>, StoreError> {
        let t = self.trees()?;
        let mut open = Vec::new();
        for kv in t.intents.iter() {
            let (key, value) = kv?;
            let stored = decode::<IntentRecord>("intents", &value).and_then(|r| {
                match r.origin == Origin::Own && r.withdrawn_at.is_none() {
                    true => stored_intent(r).map(Some),
                    false => Ok(None),
                }
            });
            match stored {
                Ok(Some(stored)) => open.push((stored.intent.expires, stored.intent.id)),
                Ok(None) => {}
                // One damaged record must not keep the node from starting.
                Err(e) => tracing::warn!("intent {} left out: {e}", hex::encode(&key)),
            }
        }
        Ok(open)
    }

    /// Vendor side: the received intents, open at `now`, on which no decision was taken
    /// yet (left waiting when the vendor role was behind).
    pub fn undecided_received(&self, now: u64) -> Result<Vec<StoredIntent>, StoreError> {
        let t = self.trees()?;
        let mut waiting = Vec::new();
        for value in t.intents.iter().values() {
            let record: IntentRecord = decode("intents", &value?)?;
            if record.origin == Origin::Received
                && record.decision.is_none()
                && record.withdrawn_at.is_none()
            {
                let stored = stored_intent(record)?;
                if stored.intent.expires > now {
                    waiting.push(stored);
                }
            }
        }
        Ok(waiting)
    }

    /// All intents, in key order.
    pub fn intents(&self) -> Result<Vec<StoredIntent>, StoreError> {
        let t = self.trees()?;
        t.intents
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                fixed_key::<16>("intents", &k)?;
                stored_intent(decode("intents", &v)?)
            })
            .collect()
    }
}

impl Store {
    /// Schema 6 → 7: received intents move from their id to their signer's and id's key
    /// ([`IntentKey::received`]), with their expiry index, their offers, the outbox entries
    /// of those offers, and the early withdrawals.
    pub(super) fn key_received_by_signer_v6(&self) -> Result<(), StoreError> {
        let t = self.trees()?;
        let mut moved = std::collections::HashMap::new();
        // Read first, then written: a key written during a scan could be scanned again.
        let intents: Vec<_> = t.intents.iter().collect::<Result<_, _>>()?;
        for (old, value) in intents {
            let record: IntentRecord = decode("intents", &value)?;
            if record.origin != Origin::Received {
                continue;
            }
            let stored = stored_intent(record)?;
            let old = IntentKey::from_bytes(fixed_key("intents", &old)?);
            let new = stored.key();
            if new == old {
                continue;
            }
            t.intents.insert(new.bytes(), value)?;
            t.intents.remove(old.bytes())?;
            let expires = stored.intent.expires;
            t.intents_by_expiry.remove(expiry_key(expires, &old))?;
            t.intents_by_expiry.insert(expiry_key(expires, &new), &[])?;
            for kv in t.offers.scan_prefix(old.bytes()) {
                let (offer, value) = kv?;
                let mut key = new.bytes().to_vec();
                key.extend_from_slice(&offer[16..]);
                t.offers.insert(key, value)?;
                t.offers.remove(offer)?;
            }
            moved.insert(old, new);
        }
        for kv in t.outbox.iter() {
            let (id, value) = kv?;
            let mut record: OutboxRecord = decode("outbox", &value)?;
            if let Subject::Offer { intent } = &mut record.subject
                && let Some(new) = moved.get(intent)
            {
                *intent = *new;
                t.outbox.insert(id, encode(&record))?;
            }
        }
        let early: Vec<_> = t.early_withdrawals.iter().collect::<Result<_, _>>()?;
        for (id, value) in early {
            let signer = super::early::signer_of(&value)?;
            let id = IntentId::from(fixed_key::<16>("early_withdrawals", &id)?);
            let new = IntentKey::received(&signer, &id).bytes();
            t.early_withdrawals.insert(new, value)?;
            t.early_withdrawals.remove(*id)?;
        }
        Ok(())
    }
}

fn stored_intent(record: IntentRecord) -> Result<StoredIntent, StoreError> {
    let (envelope, intent) = open_stored::<Intent>(&record.envelope)?;
    Ok(StoredIntent {
        envelope,
        intent,
        origin: record.origin,
        stored_at: record.stored_at,
        withdrawn_at: record.withdrawn_at,
        decision: record.decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{NOW, intent, pretend_held};

    #[test]
    fn a_store_full_of_intents_stores_no_received_one_until_some_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (first, first_intent) = intent(1);
        let stored = store.receive_intent(&first, &first_intent, NOW).unwrap();
        assert_eq!(stored, ReceivedIntent::Stored);
        let count = |s: &Store| s.trees().unwrap().intents_count.load(Ordering::SeqCst);
        assert_eq!(count(&store), 1);
        pretend_held(&store, 0, MAX_STORED_INTENTS);
        let (second, second_intent) = intent(2);
        let full = store.receive_intent(&second, &second_intent, NOW).unwrap();
        assert_eq!(full, ReceivedIntent::Full);
        assert_eq!(
            store.intents().unwrap().len(),
            1,
            "nothing more was written"
        );
        assert_eq!(store.purge_expired(first_intent.expires).unwrap(), 1);
        assert_eq!(
            count(&store),
            MAX_STORED_INTENTS - 1,
            "an expired intent makes room"
        );
        let stored = store.receive_intent(&second, &second_intent, NOW).unwrap();
        assert_eq!(stored, ReceivedIntent::Stored);
    }
}
