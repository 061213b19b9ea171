//! Intents: the person's own (cast, withdrawn) and, on vendor nodes, those received in the
//! categories the vendor serves (which are also its replay memory for them).

use super::models::{Decision, Origin, Route, StoredIntent, Subject};
use super::outbox::Outgoing;
use super::records::IntentRecord;
use super::{Store, StoreError, decode, encode, fixed_key, open_stored, update_record};
use crate::proto::{Envelope, Intent, IntentId, MessageId, intent_topic};

/// What became of an intent received from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedIntent {
    /// New: stored (staged; the caller's flush makes it durable).
    Stored,
    /// The same envelope is already stored.
    Replay,
    /// Another envelope with the same intent id is stored.
    Conflict,
}

/// What became of the person's request to withdraw an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOwn {
    /// Marked withdrawn; the withdrawal is queued, and the intent's own publication, if it
    /// was still waiting, is dropped from the outbox.
    Withdrawn {
        /// The queued withdrawal.
        queued: Outgoing,
        /// The intent's own outbox entry (removed if it was there).
        unqueued: MessageId,
    },
    /// No intent with this id.
    Unknown,
    /// The intent was received, not cast here.
    NotOwn,
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
                topic: intent_topic(&intent.category),
            },
            expires: intent.expires,
        };
        let fresh = self
            .intents
            .compare_and_swap(*intent.id, None as Option<&[u8]>, Some(record))?
            .is_ok();
        if !fresh {
            return Err(StoreError::Corrupt {
                tree: "intents",
                reason: "a fresh intent id is taken".into(),
            });
        }
        self.mark_seen(&queued.id, intent.expires)?;
        self.outbox
            .insert(queued.id.0, encode(&queued.record(envelope)))?;
        self.durable()?;
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
        let Some(stored) = self.intent(id)? else {
            return Ok(WithdrawOwn::Unknown);
        };
        if stored.origin != Origin::Own {
            return Ok(WithdrawOwn::NotOwn);
        }
        let queued = Outgoing {
            id: withdrawal.id(),
            subject: Subject::Intent { intent: *id },
            route: Route::Gossip {
                topic: intent_topic(&stored.intent.category),
            },
            expires: stored.intent.expires,
        };
        let unqueued = stored.envelope.id();
        // The one atomic step decides a race between two withdrawals: only the one that
        // sets `withdrawn_at` goes on.
        let mut won = false;
        update_record(&self.intents, "intents", &**id, |r: &mut IntentRecord| {
            won = r.withdrawn_at.is_none();
            r.withdrawn_at.get_or_insert(now);
        })?;
        if !won {
            return Ok(WithdrawOwn::AlreadyWithdrawn);
        }
        self.outbox.remove(unqueued.0)?;
        self.mark_seen(&queued.id, stored.intent.expires)?;
        self.outbox
            .insert(queued.id.0, encode(&queued.record(withdrawal)))?;
        self.durable()?;
        Ok(WithdrawOwn::Withdrawn { queued, unqueued })
    }

    /// Stores an intent received in a category this vendor serves, without waiting for the
    /// disk: one [`Store::flush`] makes a batch of them durable before any is acknowledged.
    pub fn receive_intent(
        &self,
        envelope: &Envelope,
        intent: &Intent,
        now: u64,
    ) -> Result<ReceivedIntent, StoreError> {
        let record = IntentRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            origin: Origin::Received,
            stored_at: now,
            withdrawn_at: None,
            decision: None,
        };
        let swapped = self.intents.compare_and_swap(
            *intent.id,
            None as Option<&[u8]>,
            Some(encode(&record)),
        )?;
        Ok(match swapped {
            Ok(()) => ReceivedIntent::Stored,
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

    /// Marks a received intent withdrawn by its caster. Returns false if it is not stored.
    pub fn record_withdrawal(&self, id: &IntentId, now: u64) -> Result<bool, StoreError> {
        let found = update_record(&self.intents, "intents", &**id, |r: &mut IntentRecord| {
            r.withdrawn_at.get_or_insert(now);
        })?;
        self.durable()?;
        Ok(found)
    }

    /// A vendor node declined to answer an intent. It does not wait for the disk: the
    /// decision is the vendor's own note, and nothing outside the node relies on it.
    pub fn record_declined(&self, id: &IntentId, reason: &str) -> Result<bool, StoreError> {
        self.set_decision(
            id,
            Decision::Declined {
                reason: reason.to_owned(),
            },
        )
    }

    pub(super) fn set_decision(
        &self,
        id: &IntentId,
        decision: Decision,
    ) -> Result<bool, StoreError> {
        update_record(&self.intents, "intents", &**id, |r: &mut IntentRecord| {
            r.decision = Some(decision.clone())
        })
    }

    /// Whether intent `id` is stored and withdrawn (cheap: no signature is checked).
    pub fn is_withdrawn(&self, id: &IntentId) -> Result<bool, StoreError> {
        Ok(match self.intents.get(**id)? {
            Some(bytes) => decode::<IntentRecord>("intents", &bytes)?
                .withdrawn_at
                .is_some(),
            None => false,
        })
    }

    /// Whether intent `id` is stored with a decision taken on it (cheap: no signature is
    /// checked).
    pub fn is_decided(&self, id: &IntentId) -> Result<bool, StoreError> {
        Ok(match self.intents.get(**id)? {
            Some(bytes) => decode::<IntentRecord>("intents", &bytes)?
                .decision
                .is_some(),
            None => false,
        })
    }

    /// The intent with this id.
    pub fn intent(&self, id: &IntentId) -> Result<Option<StoredIntent>, StoreError> {
        self.intents
            .get(**id)?
            .map(|v| stored_intent(decode("intents", &v)?))
            .transpose()
    }

    /// The person's own intents not withdrawn, each with its expiry (only these envelopes
    /// are opened: a vendor's many received intents cost no signature check here).
    pub fn own_open_intents(&self) -> Result<Vec<(u64, IntentId)>, StoreError> {
        let mut open = Vec::new();
        for kv in self.intents.iter() {
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
        let mut waiting = Vec::new();
        for value in self.intents.iter().values() {
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

    /// All intents, in id order.
    pub fn intents(&self) -> Result<Vec<StoredIntent>, StoreError> {
        self.intents
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                fixed_key::<16>("intents", &k)?;
                stored_intent(decode("intents", &v)?)
            })
            .collect()
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
