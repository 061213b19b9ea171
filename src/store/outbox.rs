//! The outbox: messages this node must deliver, kept until delivered, refused or expired.
//! Entries are written once, by the operation that creates them (a cast, a
//! withdrawal, an offer), and removed when done. When and how often to try is the node's
//! outbox planner's business, in memory; the store only keeps what must survive a restart.

use super::models::{Route, Subject};
use super::records::OutboxRecord;
use super::{Store, StoreError, decode, encode, fixed_key};
use crate::proto::{Envelope, MessageId, intent_topic};

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
        self.record_of(envelope.as_bytes())
    }

    /// The record of what carries it (its envelope, or a grant's delivery).
    pub(super) fn record_of(&self, payload: &[u8]) -> OutboxRecord {
        OutboxRecord {
            envelope: payload.to_vec().into(),
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
    /// Every outgoing message (read once when the node starts). An entry that does not
    /// decode is left out, with a warning: it could never be sent, and it must not keep
    /// the node from starting.
    pub fn outgoing(&self) -> Result<Vec<Outgoing>, StoreError> {
        let t = self.trees()?;
        let mut all = Vec::new();
        for kv in t.outbox.iter() {
            let (k, v) = kv?;
            let entry = fixed_key("outbox", &k)
                .and_then(|id| Ok(outgoing(MessageId(id), decode("outbox", &v)?)));
            match entry {
                Ok(entry) => all.push(entry),
                Err(e) => tracing::warn!("outbox entry {} left out: {e}", hex::encode(&k)),
            }
        }
        Ok(all)
    }

    /// The envelope bytes of an outgoing message, if it is still in the outbox.
    pub fn outgoing_envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.trees()?;
        match t.outbox.get(id.0)? {
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
        let t = self.trees()?;
        t.outbox.remove(id.0)?;
        Ok(())
    }

    /// Number of outgoing messages waiting.
    pub fn outbox_len(&self) -> usize {
        self.trees().map_or(0, |t| t.outbox.len())
    }

    /// Schema 4 to 5: intents and withdrawals went out on one topic per category
    /// (`/vrm/2/intent/<category>`); now they go out on their category's shard topic.
    pub(super) fn route_to_shards_v4(&self) -> Result<(), StoreError> {
        let t = self.trees()?;
        for kv in t.outbox.iter() {
            let (key, value) = kv?;
            let Ok(mut record) = decode::<OutboxRecord>("outbox", &value) else {
                continue; // left out when read, with a warning (see `outgoing`)
            };
            let Route::Gossip { topic } = &record.route else {
                continue;
            };
            let Some(category) = topic.strip_prefix("/vrm/2/intent/") else {
                continue;
            };
            record.route = Route::Gossip {
                topic: intent_topic(category),
            };
            t.outbox.insert(key, encode(&record))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{NOW, intent};

    #[test]
    fn an_outbox_of_schema_4_goes_out_on_shard_topics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (envelope, body) = intent(1);
        store.cast(&envelope, &body, NOW).unwrap();
        let t = store.trees().unwrap();
        let stored = t.outbox.get(envelope.id().0).unwrap().unwrap();
        let mut record: OutboxRecord = decode("outbox", &stored).unwrap();
        record.route = Route::Gossip {
            topic: "/vrm/2/intent/books".into(),
        };
        t.outbox.insert(envelope.id().0, encode(&record)).unwrap();
        t.meta
            .insert(super::super::SCHEMA_KEY, &4u32.to_be_bytes())
            .unwrap();
        t.durable().unwrap();
        drop(t);
        drop(store);

        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let routes: Vec<Route> = store
            .outgoing()
            .unwrap()
            .into_iter()
            .map(|o| o.route)
            .collect();
        let shard = Route::Gossip {
            topic: intent_topic("books"),
        };
        assert_eq!(routes, vec![shard]);
        assert_eq!(
            store.schema_version().unwrap(),
            Some(super::super::SCHEMA_VERSION)
        );
    }
}
