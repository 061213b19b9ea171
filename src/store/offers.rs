//! Offers: those this vendor node made (with their delivery state) and those the person's
//! node received, keyed by their intent's [`IntentKey`] so one intent's offers are one range
//! scan.

use super::models::{Decision, Delivery, IntentKey, Origin, Route, StoredOffer, Subject};
use super::outbox::Outgoing;
use super::records::OfferRecord;
use super::{Store, StoreError, decode, encode, open_stored};
use crate::proto::{Envelope, Intent, MessageId, Offer};

pub(super) fn offer_key(intent: &IntentKey, offer_id: &MessageId) -> Vec<u8> {
    let mut key = Vec::with_capacity(48);
    key.extend_from_slice(&intent.bytes());
    key.extend_from_slice(&offer_id.0);
    key
}

impl Store {
    /// A vendor node made `offer` to `intent`, stored under `key`: the offer (pending
    /// delivery), the decision on the intent and the delivery to the person's node, made
    /// durable by one flush. Returns the queued delivery.
    pub fn record_offer_made(
        &self,
        key: &IntentKey,
        intent: &Intent,
        offer: &Envelope,
        now: u64,
    ) -> Result<Outgoing, StoreError> {
        let t = self.trees()?;
        let queued = offer_delivery(key, intent, offer);
        let record = encode(&OfferRecord {
            envelope: offer.as_bytes().to_vec().into(),
            origin: Origin::Own,
            stored_at: now,
            delivery: Delivery::Pending,
        });
        // In this order: a crash after the offer leaves it pending without its delivery,
        // which the next open completes ([`Store::repair`]).
        t.offers.insert(offer_key(key, &queued.id), record)?;
        let decision = Decision::Offered {
            offer: queued.id.to_hex(),
        };
        self.set_decision(key, decision)?;
        t.outbox
            .insert(queued.id.0, encode(&queued.record(offer)))?;
        t.durable()?;
        Ok(queued)
    }

    /// The person's node stores an offer it accepted, without waiting for the disk: the
    /// caller's [`Store::flush`] makes it durable before its delivery is acknowledged.
    /// Returns false if it was already stored (a retried delivery).
    pub fn record_offer_received(
        &self,
        envelope: &Envelope,
        offer: &Offer,
        now: u64,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let record = OfferRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            origin: Origin::Received,
            stored_at: now,
            delivery: Delivery::Delivered { at: now },
        };
        let inserted = t
            .offers
            .compare_and_swap(
                offer_key(&IntentKey::own(&offer.intent), &envelope.id()),
                None as Option<&[u8]>,
                Some(encode(&record)),
            )?
            .is_ok();
        Ok(inserted)
    }

    /// Sets the delivery state of an offer this vendor made. Returns false if there is no
    /// such offer.
    pub fn set_delivery(
        &self,
        intent: &IntentKey,
        offer_id: &MessageId,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let found = super::update_record(
            &t.offers,
            "offers",
            &offer_key(intent, offer_id),
            |r: &mut OfferRecord| r.delivery = delivery.clone(),
        )?;
        t.durable()?;
        Ok(found)
    }

    /// The offers stored for the intent under `intent`.
    pub fn offers_for(&self, intent: &IntentKey) -> Result<Vec<StoredOffer>, StoreError> {
        let t = self.trees()?;
        t.offers
            .scan_prefix(intent.bytes())
            .values()
            .map(|v| stored_offer(decode("offers", &v?)?))
            .collect()
    }

    /// All offers, grouped by intent.
    pub fn offers(&self) -> Result<Vec<StoredOffer>, StoreError> {
        let t = self.trees()?;
        t.offers
            .iter()
            .values()
            .map(|v| stored_offer(decode("offers", &v?)?))
            .collect()
    }
}

/// The delivery of a vendor's `offer` to the person's node that cast `intent` (stored
/// under `key`).
pub(super) fn offer_delivery(key: &IntentKey, intent: &Intent, offer: &Envelope) -> Outgoing {
    Outgoing {
        id: offer.id(),
        subject: Subject::Offer { intent: *key },
        route: Route::Mailbox(intent.reply_to.clone()),
        expires: intent.expires,
    }
}

fn stored_offer(record: OfferRecord) -> Result<StoredOffer, StoreError> {
    let (envelope, offer) = open_stored::<Offer>(&record.envelope)?;
    Ok(StoredOffer {
        envelope,
        offer,
        origin: record.origin,
        stored_at: record.stored_at,
        delivery: record.delivery,
    })
}
