//! The outbox: messages this node must deliver, kept until delivered, refused or expired.
//! Entries are written once, by the operation that creates them (a cast, a
//! withdrawal, an offer), and removed when done. When and how often to try is the node's
//! outbox planner's business, in memory; the store only keeps what must survive a restart.

use super::models::{Route, Subject};
use super::records::{OutboxRecord, OutboxRecordV1};
use super::{Store, StoreError, decode, encode, fixed_key};
use crate::proto::{Envelope, Kind, MessageId, Payload};

/// An outgoing message as the planner sees it: everything but the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The message id of its envelope.
    pub id: MessageId,
    /// What it is about.
    pub subject: Subject,
    /// Where it goes.
    pub route: Route,
    /// Give up after this time (unix seconds).
    pub expires: u64,
}

impl Outgoing {
    pub(super) fn record(&self, envelope: &Envelope) -> OutboxRecord {
        OutboxRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            subject: self.subject,
            route: self.route.clone(),
            expires: self.expires,
        }
    }
}

fn outgoing(id: MessageId, record: OutboxRecord) -> Outgoing {
    Outgoing {
        id,
        subject: record.subject,
        route: record.route,
        expires: record.expires,
    }
}

impl Store {
    /// Every outgoing message (read once when the node starts).
    pub fn outgoing(&self) -> Result<Vec<Outgoing>, StoreError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id = MessageId(fixed_key("outbox", &k)?);
                Ok(outgoing(id, decode("outbox", &v)?))
            })
            .collect()
    }

    /// The envelope bytes of an outgoing message, if it is still in the outbox.
    pub fn outgoing_envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        match self.outbox.get(id.0)? {
            Some(v) => Ok(Some(
                decode::<OutboxRecord>("outbox", &v)?.envelope.into_vec(),
            )),
            None => Ok(None),
        }
    }

    /// Removes a delivered, refused or expired message. It does not wait for the disk: if
    /// a crash undoes the removal, the message is sent once more, and receivers recognise
    /// it by id.
    pub fn outbox_remove(&self, id: &MessageId) -> Result<(), StoreError> {
        self.outbox.remove(id.0)?;
        Ok(())
    }

    /// Number of outgoing messages waiting.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Schema 1 → 2: entries gain their subject (read from the envelope) and lose their
    /// attempt counters.
    pub(super) fn migrate_outbox_v1(&self) -> Result<(), StoreError> {
        for kv in self.outbox.iter() {
            let (key, value) = kv?;
            let old: OutboxRecordV1 = decode("outbox", &value)?;
            let envelope = Envelope::decode(&old.envelope).map_err(|e| ("outbox", e))?;
            let subject = match envelope.payload().map_err(|e| ("outbox", e))? {
                Payload::Intent(intent) => Subject::Intent { intent: intent.id },
                Payload::IntentWithdraw(w) => Subject::Intent { intent: w.intent },
                Payload::Offer(offer) => Subject::Offer {
                    intent: offer.intent,
                },
                Payload::VendorProfile(_) => {
                    return Err(StoreError::Corrupt {
                        tree: "outbox",
                        reason: format!("a {} in the outbox", Kind::VendorProfile),
                    });
                }
            };
            let record = OutboxRecord {
                envelope: old.envelope,
                subject,
                route: old.route,
                expires: old.expires,
            };
            self.outbox.insert(key, encode(&record))?;
        }
        Ok(())
    }
}
