//! The person's side of mailboxes: offers to the person's intents wait, sealed, in one-time
//! queues on service nodes the intents name. This handler knows each open intent's queue
//! (derived from the root secret, nothing stored), opens the queues and fetches what waits
//! whenever a mailbox connects and every [`FETCH_EVERY`], dials a mailbox it is not
//! connected to, opens each item with the intent's reply key and stores it through the same
//! rules as any offer. An item stored (or refused for good) is acknowledged with the next
//! fetch, which then goes out at once; one that met a store error is not, and comes again.
//! A withdrawn intent's queue is fetched until it expires too: late offers are refused and
//! leave the mailbox, instead of waiting there for nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tracing::{debug, info, warn};

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest;
use super::relationships::{self, PersonQueue};
use crate::identity::Identity;
use crate::proto::sealed::{OFFER_INFO, RELATIONSHIP_INFO};
use crate::proto::service::{
    Claim, ITEM_ID_BYTES, MAX_CLAIMS, MailboxItem, MailboxRequest, PushAnswer,
};
use crate::proto::{Intent, IntentId};
use crate::store::mailbox::QueueId;
use crate::store::{IntentKey, Outgoing, Store, StoreError};

/// How long ahead a relationship's queue is kept open: a day short of what a mailbox
/// allows, from the start of the day (so most fetches of a day claim the same expiry).
fn relationship_expiry(now: u64) -> u64 {
    const DAY: u64 = 24 * 3600;
    now - now % DAY + 29 * DAY
}

/// How often every mailbox holding our queues is asked for what waits.
pub const FETCH_EVERY: Duration = Duration::from_secs(15);

/// Whose queue it is.
#[derive(Debug, Clone)]
enum Owner {
    /// An open intent's: offers.
    Intent(IntentId),
    /// A relationship's: the vendor's entries and acknowledgements.
    Relationship(PersonQueue),
}

/// One open queue: an intent's reply path, or a relationship's.
#[derive(Debug, Clone)]
struct OpenQueue {
    owner: Owner,
    mailbox: PeerId,
    addr: Multiaddr,
    token: [u8; 32],
    expires: u64,
}

/// The person's open queues and what to acknowledge in them.
pub struct Replies {
    identity: Arc<Identity>,
    queues: HashMap<QueueId, OpenQueue>,
    to_ack: HashMap<QueueId, Vec<[u8; ITEM_ID_BYTES]>>,
}

impl Replies {
    /// The queues of the person's open intents in `store`.
    pub fn load(store: &Store, identity: Arc<Identity>, now: u64) -> Result<Replies, StoreError> {
        let mut replies = Replies {
            identity,
            queues: HashMap::new(),
            to_ack: HashMap::new(),
        };
        for (expires, id) in store.own_open_intents()? {
            if expires > now
                && let Some(stored) = store.intent(&IntentKey::own(&id))?
            {
                replies.watch(&stored.intent);
            }
        }
        for queue in relationships::person_queues(store)? {
            replies.watch_relationship(queue, now);
        }
        Ok(replies)
    }

    /// Watches the queue of one of the person's relationships (kept open while it lasts).
    pub fn watch_relationship(&mut self, queue: PersonQueue, now: u64) {
        let reply = self.identity.relationship_reply(&queue.nonce);
        self.queues.insert(
            reply.queue(),
            OpenQueue {
                mailbox: queue.mailbox,
                addr: queue.addr.clone(),
                token: reply.token,
                expires: relationship_expiry(now),
                owner: Owner::Relationship(queue),
            },
        );
    }

    /// Watches the queue of an intent the person cast. False if its reply path is not one
    /// this node derived (it is then never fetched).
    pub fn watch(&mut self, intent: &Intent) -> bool {
        let reply = self.identity.reply(&intent.id);
        let queue = reply.queue();
        let path = &intent.reply_to;
        let (Ok(mailbox), Ok(addr)) = (
            PeerId::from_bytes(&path.mailbox),
            Multiaddr::try_from(path.addr.to_vec()),
        ) else {
            return false;
        };
        if path.queue.as_slice() != queue || path.key.as_slice() != reply.key.public() {
            warn!(
                "intent {}: its reply path is not ours",
                hex::encode(*intent.id)
            );
            return false;
        }
        self.queues.insert(
            queue,
            OpenQueue {
                owner: Owner::Intent(intent.id),
                mailbox,
                addr,
                token: reply.token,
                expires: intent.expires,
            },
        );
        true
    }

    /// The service nodes holding our open queues.
    pub fn mailboxes(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.queues.values().map(|q| q.mailbox).collect();
        peers.sort();
        peers.dedup();
        peers
    }

    /// The periodic round: a fetch from every connected mailbox holding our queues, and a
    /// dial of each one not connected.
    pub fn fetch_all(&mut self, now: u64, connected: impl Fn(&PeerId) -> bool) -> Vec<Action> {
        self.drop_expired(now);
        let mut mailboxes: HashMap<PeerId, Multiaddr> = HashMap::new();
        for queue in self.queues.values() {
            mailboxes.insert(queue.mailbox, queue.addr.clone());
        }
        let mut actions = Vec::new();
        for (peer, addr) in mailboxes {
            if connected(&peer) {
                actions.extend(self.fetch_from(&peer, now));
            } else {
                debug!("dialing mailbox {peer} to fetch");
                actions.push(Action::Dial(addr.with(Protocol::P2p(peer))));
            }
        }
        actions
    }

    /// The fetch from one mailbox (it just connected, or we have acknowledgements for it):
    /// every open queue there, with what to acknowledge, in requests of at most
    /// [`MAX_CLAIMS`] claims.
    pub fn fetch_from(&mut self, peer: &PeerId, now: u64) -> Vec<Action> {
        self.drop_expired(now);
        for queue in self.queues.values_mut() {
            if matches!(queue.owner, Owner::Relationship(_)) {
                queue.expires = relationship_expiry(now);
            }
        }
        let claims: Vec<Claim> = self
            .queues
            .iter()
            .filter(|(_, q)| q.mailbox == *peer)
            .map(|(queue, q)| Claim {
                token: q.token.to_vec().into(),
                expires: q.expires,
                ack: self
                    .to_ack
                    .remove(queue)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|id| id.to_vec().into())
                    .collect(),
            })
            .collect();
        claims
            .chunks(MAX_CLAIMS)
            .map(|chunk| Action::Fetch {
                peer: *peer,
                request: MailboxRequest::Fetch {
                    claims: chunk.to_vec(),
                },
                then: None,
            })
            .collect()
    }

    /// Watches a new intent's queue and opens it at its mailbox, if connected: the fetch
    /// that opens it carries `publication`, which goes out once the mailbox has answered, so
    /// no vendor's offer can reach the mailbox before the queue exists. Otherwise the
    /// publication goes out at once and the next round opens the queue.
    pub fn open(&mut self, intent: &Intent, publication: Outgoing, connected: bool) -> Action {
        let reply = self.identity.reply(&intent.id);
        match PeerId::from_bytes(&intent.reply_to.mailbox) {
            Ok(peer) if self.watch(intent) && connected => Action::Fetch {
                peer,
                request: MailboxRequest::Fetch {
                    claims: vec![Claim {
                        token: reply.token.to_vec().into(),
                        expires: intent.expires,
                        ack: Vec::new(),
                    }],
                },
                then: Some(Box::new(publication)),
            },
            _ => Action::Queue(publication),
        }
    }

    /// Items a mailbox gave us for our queues. Those stored or refused are acknowledged by
    /// a fetch (which gets what else waits), to go out once the store is flushed.
    pub fn received(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        items: Vec<MailboxItem>,
        now: u64,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut acked = false;
        for item in items {
            if let Some((queue, id)) = self.take(store, stats, peer, &item, now, &mut actions) {
                self.to_ack.entry(queue).or_default().push(id);
                acked = true;
            }
        }
        if acked {
            actions.extend(self.fetch_from(peer, now));
        }
        actions
    }

    /// An item the mailbox pushed: the answer, to go out once the store is flushed, says
    /// whether it may drop it.
    pub fn pushed(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        item: &MailboxItem,
        now: u64,
    ) -> (PushAnswer, Vec<Action>) {
        let mut actions = Vec::new();
        let stored = self
            .take(store, stats, peer, item, now, &mut actions)
            .is_some();
        (PushAnswer { stored }, actions)
    }

    /// Opens and stores one item; its queue and id if it is settled (stored, or refused for
    /// good) and may leave the mailbox.
    fn take(
        &self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        item: &MailboxItem,
        now: u64,
        actions: &mut Vec<Action>,
    ) -> Option<(QueueId, [u8; ITEM_ID_BYTES])> {
        let queue = QueueId::try_from(item.queue.as_slice()).ok()?;
        let id = <[u8; ITEM_ID_BYTES]>::try_from(item.id.as_slice()).ok()?;
        let open = self.queues.get(&queue)?;
        match &open.owner {
            Owner::Intent(intent) => {
                let key = self.identity.reply(intent).key;
                let Ok(bytes) = key.open(OFFER_INFO, &queue, &item.sealed) else {
                    info!(
                        "an item in the queue of intent {} does not open: dropped",
                        hex::encode(**intent)
                    );
                    stats.bump("mailbox-item-unreadable");
                    return Some((queue, id));
                };
                let outcome = ingest::reply(store, &bytes, now);
                let settled = outcome.is_ok();
                settle(outcome, peer, stats, actions);
                settled.then_some((queue, id))
            }
            Owner::Relationship(rel) => {
                let key = self.identity.relationship_reply(&rel.nonce).key;
                let Ok(bytes) = key.open(RELATIONSHIP_INFO, &queue, &item.sealed) else {
                    info!(
                        "an item in the queue of relationship {} does not open: dropped",
                        hex::encode(rel.rel)
                    );
                    stats.bump("mailbox-item-unreadable");
                    return Some((queue, id));
                };
                match relationships::person_took(store, &self.identity, &bytes, now) {
                    Ok(Some(taken)) => {
                        actions.extend(taken.into_actions());
                        Some((queue, id))
                    }
                    Ok(None) => None,
                    Err(e) => {
                        warn!("relationship item not stored: {e}");
                        stats.bump("store-error");
                        None
                    }
                }
            }
        }
    }

    fn drop_expired(&mut self, now: u64) {
        self.queues.retain(|_, q| q.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::service::queue_of;
    use crate::proto::{Constraints, MessageId, ReplyTo};
    use crate::store::{Route, Subject};

    /// A new intent's publication waits for the fetch that opens its queue, where the
    /// mailbox is connected: no vendor's deposit can come before the queue exists.
    #[test]
    fn a_new_intent_goes_out_once_its_queue_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let identity = Arc::new(Identity::create(dir.path(), false).unwrap());
        let store = Store::open(&dir.path().join("store"), 1 << 20).unwrap();
        let mut replies = Replies::load(&store, identity.clone(), 1_000).unwrap();
        let id = IntentId::from([3; 16]);
        let reply = identity.reply(&id);
        let mailbox = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let intent = Intent {
            id,
            category: "books".into(),
            subcategory: None,
            text: "a novel".into(),
            constraints: Constraints::default(),
            terms: vec![],
            created: 1_000,
            expires: 2_000,
            reply_to: ReplyTo::new(&mailbox, &addr, reply.queue(), reply.key.public()),
            group: None,
        };
        let publication = Outgoing {
            id: MessageId([3; 32]),
            subject: Subject::Intent { intent: id },
            route: Route::Gossip { topic: "t".into() },
            expires: 2_000,
        };
        let Action::Fetch {
            peer,
            request: MailboxRequest::Fetch { claims },
            then: Some(then),
        } = replies.open(&intent, publication.clone(), true)
        else {
            panic!("a fetch that carries the publication")
        };
        assert_eq!(peer, mailbox);
        assert_eq!(queue_of(&claims[0].token), reply.queue());
        assert_eq!(*then, publication);
        assert!(matches!(
            replies.open(&intent, publication.clone(), false),
            Action::Queue(p) if p == publication
        ));
    }
}
