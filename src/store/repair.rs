//! What a crash can leave half done, finished or undone when the store opens.
//!
//! No operation uses a sled transaction, so a crash (kill -9, power cut) can stop one
//! between two of its writes. sled's log keeps writes in order, so what survives is a prefix
//! of each operation, and each operation writes in an order whose every prefix is repaired
//! here, before the node reads anything:
//!
//! - a cast writes the publication, then the intent: a publication without its intent was
//!   never acknowledged, and is dropped;
//! - a withdrawal queues itself, marks the intent, then drops the intent's publication: a
//!   queued withdrawal of an intent not marked is dropped, a publication of a marked one too
//!   (it must not go out after its withdrawal);
//! - a vendor's answer writes the offer, its decision, then its delivery: a pending offer
//!   gets back its decision and its delivery;
//! - a relationship's write queues its outbox entries before the record that holds them:
//!   an entry of a relationship its record does not hold is dropped.

use super::offers::offer_delivery;
use super::records::{IntentRecord, OfferRecord, OutboxRecord};
use super::{Store, StoreError, Trees, decode, encode, fixed_key, open_stored};
use crate::proto::{Envelope, Intent, Kind, Offer};
use crate::store::models::{Decision, Delivery, IntentKey, Origin, Subject};

impl Store {
    /// Finishes or undoes what a crash interrupted; made durable if anything changed.
    pub(super) fn repair(&self) -> Result<(), StoreError> {
        let t = self.trees()?;
        let repaired =
            repair_outbox(&t)? + repair_offers(&t)? + self.repair_relationship_outbox()?;
        if repaired > 0 {
            tracing::warn!("repaired {repaired} records a crash had left half written");
            t.durable()?;
        }
        Ok(())
    }
}

/// Drops the intents' outbox entries that a finished operation would not have left.
fn repair_outbox(t: &Trees) -> Result<usize, StoreError> {
    let mut dropped = 0;
    for kv in t.outbox.iter() {
        let (key, value) = kv?;
        let Ok(record) = decode::<OutboxRecord>("outbox", &value) else {
            continue; // left out, with a warning, wherever the outbox is read
        };
        let Subject::Intent { intent } = record.subject else {
            continue;
        };
        let withdrawn = match t.intents.get(IntentKey::own(&intent).bytes())? {
            Some(bytes) => decode::<IntentRecord>("intents", &bytes)?
                .withdrawn_at
                .is_some(),
            None => {
                t.outbox.remove(&key)?;
                dropped += 1;
                continue;
            }
        };
        let is_withdrawal = Envelope::decode(&record.envelope)
            .map(|e| e.kind() == Kind::IntentWithdraw)
            .map_err(|e| ("outbox", e))?;
        if is_withdrawal != withdrawn {
            t.outbox.remove(&key)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Gives every pending offer of this vendor its decision and its delivery.
fn repair_offers(t: &Trees) -> Result<usize, StoreError> {
    let mut restored = 0;
    for kv in t.offers.iter() {
        let (offer_key, value) = kv?;
        let record: OfferRecord = decode("offers", &value)?;
        if record.origin != Origin::Own || record.delivery != Delivery::Pending {
            continue;
        }
        let (envelope, _) = open_stored::<Offer>(&record.envelope)?;
        if t.outbox.contains_key(envelope.id().0)? {
            continue;
        }
        let key = IntentKey::from_bytes(fixed_key("offers", &offer_key[..16])?);
        let Some(bytes) = t.intents.get(key.bytes())? else {
            continue;
        };
        let mut intent_record: IntentRecord = decode("intents", &bytes)?;
        let (_, intent) = open_stored::<Intent>(&intent_record.envelope)?;
        let queued = offer_delivery(&key, &intent, &envelope);
        if intent_record.decision.is_none() {
            intent_record.decision = Some(Decision::Offered {
                offer: queued.id.to_hex(),
            });
            t.intents.insert(key.bytes(), encode(&intent_record))?;
        }
        t.outbox
            .insert(queued.id.0, encode(&queued.record(&envelope)))?;
        restored += 1;
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    //! Each state a crash can leave, written as it would lie on disk, then the store opened.

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::proto::{IntentWithdraw, OfferItem, Price};
    use crate::store::fixtures::{NOW, intent};

    fn withdrawal(n: u8) -> Envelope {
        let body = IntentWithdraw {
            intent: [n; 16].into(),
            created: NOW + 1,
        };
        Envelope::seal(&body, &SigningKey::from_bytes(&[n; 32]))
    }

    fn offer(intent: &Intent) -> Envelope {
        let vendor = SigningKey::from_bytes(&[9; 32]);
        let body = Offer {
            intent: intent.id,
            persona: [1; 32].into(),
            vendor: vendor.verifying_key().to_bytes().into(),
            items: vec![OfferItem {
                title: "A paperback".into(),
                price: Price {
                    amount: 900,
                    currency: "EUR".into(),
                },
                quantity: 1,
                sku: None,
            }],
            text: String::new(),
            created: NOW,
            valid_until: NOW + 600,
            accepted_terms: vec![],
            inbox: None,
            group: None,
        };
        Envelope::seal(&body, &vendor)
    }

    /// Writes what `crash` leaves in a fresh store, closes it without its clean-stop
    /// record (as a crash would), opens it again.
    fn after_crash(crash: impl FnOnce(&Store, &Trees)) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let t = store.trees().unwrap();
        crash(&store, &t);
        t.durable().unwrap();
        drop(t);
        drop(store);
        std::fs::remove_file(dir.path().join(super::super::CLEAN_STOP)).unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        (dir, store)
    }

    fn queue(t: &Trees, envelope: &Envelope, subject: Subject) {
        let record = OutboxRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            subject,
            route: crate::store::models::Route::Gossip { topic: "t".into() },
            expires: NOW + 3600,
        };
        t.outbox.insert(envelope.id().0, encode(&record)).unwrap();
    }

    #[test]
    fn a_cast_cut_before_its_intent_is_not_published() {
        let (env, body) = intent(1);
        let (_dir, store) = after_crash(|_, t| {
            queue(t, &env, Subject::Intent { intent: body.id });
        });
        assert!(store.outgoing().unwrap().is_empty());
        assert!(store.intents().unwrap().is_empty());
    }

    #[test]
    fn a_finished_cast_is_left_alone() {
        let (env, body) = intent(1);
        let (_dir, store) = after_crash(|s, _| {
            s.cast(&env, &body, NOW).unwrap();
        });
        let queued: Vec<_> = store.outgoing().unwrap().iter().map(|o| o.id).collect();
        assert_eq!(queued, vec![env.id()]);
    }

    #[test]
    fn a_withdrawal_cut_before_the_marking_is_dropped() {
        let (env, body) = intent(1);
        let (_dir, store) = after_crash(|s, t| {
            s.cast(&env, &body, NOW).unwrap();
            queue(t, &withdrawal(1), Subject::Intent { intent: body.id });
        });
        let queued: Vec<_> = store.outgoing().unwrap().iter().map(|o| o.id).collect();
        assert_eq!(
            queued,
            vec![env.id()],
            "the intent is still open and published"
        );
        assert!(!store.is_withdrawn(&IntentKey::own(&body.id)).unwrap());
    }

    #[test]
    fn a_withdrawal_cut_after_the_marking_does_not_publish_the_intent_again() {
        let (env, body) = intent(1);
        let (_dir, store) = after_crash(|s, t| {
            s.cast(&env, &body, NOW).unwrap();
            queue(t, &withdrawal(1), Subject::Intent { intent: body.id });
            crate::store::update_record(
                &t.intents,
                "intents",
                &*body.id,
                |r: &mut IntentRecord| r.withdrawn_at = Some(NOW + 1),
            )
            .unwrap();
        });
        let queued: Vec<_> = store.outgoing().unwrap().iter().map(|o| o.id).collect();
        assert_eq!(
            queued,
            vec![withdrawal(1).id()],
            "only the withdrawal goes out"
        );
    }

    #[test]
    fn a_vendor_answer_cut_after_the_offer_is_completed() {
        let (env, body) = intent(2);
        let made = offer(&body);
        let held = IntentKey::of_received(&env, &body);
        let (_dir, store) = after_crash(|s, t| {
            s.receive_intent(&env, &body, NOW).unwrap();
            let record = OfferRecord {
                envelope: made.as_bytes().to_vec().into(),
                origin: Origin::Own,
                stored_at: NOW,
                delivery: Delivery::Pending,
            };
            let key = crate::store::offers::offer_key(&held, &made.id());
            t.offers.insert(key, encode(&record)).unwrap();
        });
        let queued = store.outgoing().unwrap();
        assert_eq!(queued.len(), 1, "the offer's delivery is queued");
        assert_eq!(queued[0].id, made.id());
        assert_eq!(queued[0].subject, Subject::Offer { intent: held });
        assert_eq!(queued[0].expires, body.expires);
        assert_eq!(
            store.intent(&held).unwrap().unwrap().decision,
            Some(Decision::Offered {
                offer: made.id().to_hex()
            }),
            "the intent is not answered twice"
        );
    }
}
