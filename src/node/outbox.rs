//! Delivery of the outbox: which entry to try when, and what an answer means for it.
//!
//! The store keeps each entry (written once, by the operation that created it) until
//! it is delivered, refused or expired; this planner keeps, in memory, when each was tried
//! and when to try again. Apart from a withdrawal, which drops its intent's unsent
//! publication, it is the only code that removes entries. The decision of what is
//! due is [`due`], a pure function of one entry, the time and the trigger. A failed attempt
//! waits `2^attempts` seconds (at most [`MAX_BACKOFF_SECS`]); an entry is given up when it
//! expires, with what that means for its [`Subject`] (an offer is marked expired).
//!
//! Offers go to mailboxes, and a mailbox that does not answer is backed off as a whole: all
//! entries for it wait together (so a thousand intents naming one dead address cost the
//! vendor one attempt per backoff step, not a thousand), and after
//! [`MAX_MAILBOX_FAILURES`] failed rounds in a row every offer for it is given up as
//! refused with `mailbox-unreachable` (a relationship's entries go on waiting out its
//! backoff until they expire).
//!
//! The planner never writes an entry back. An entry that disappeared from the store (a
//! withdrawal removed the intent's publication) is dropped when it comes up, whatever the
//! planner still had in mind for it: a retry cannot resurrect it.

use std::collections::HashMap;

use libp2p::{Multiaddr, PeerId};
use serde_bytes::ByteBuf;
use tracing::{debug, info, warn};

use super::action::{Action, Publisher, Trigger};
use super::events::{NodeEvent, Stats};
use crate::proto::MessageId;
use crate::proto::sealed::{OFFER_INFO, RELATIONSHIP_INFO, seal};
use crate::proto::service::{MailboxRequest, retry_later};
use crate::store::{Delivery, Outgoing, Route, Store, StoreError, Subject};

/// Longest wait between two delivery attempts, in seconds.
pub const MAX_BACKOFF_SECS: u64 = 30;
/// Failed rounds in a row after which a mailbox is given up, with every entry for it.
pub const MAX_MAILBOX_FAILURES: u32 = 8;
/// Most failing mailboxes remembered (see [`Outbox::poll`]).
pub const MAX_REMEMBERED_MAILBOXES: usize = 10_000;
/// The refusal code of an entry whose mailbox was given up.
pub const MAILBOX_UNREACHABLE: &str = "mailbox-unreachable";

/// Wait before attempt `attempts + 1`.
pub fn backoff_secs(attempts: u32) -> u64 {
    1u64.checked_shl(attempts)
        .unwrap_or(u64::MAX)
        .min(MAX_BACKOFF_SECS)
}

/// One entry's delivery plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The entry.
    pub item: Outgoing,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next attempt (unix seconds).
    pub next_attempt: u64,
    /// A direct request is out and unanswered.
    pub in_flight: bool,
}

impl Plan {
    /// A plan for a new entry: due at once.
    pub fn new(item: Outgoing) -> Plan {
        Plan {
            item,
            attempts: 0,
            next_attempt: 0,
            in_flight: false,
        }
    }
}

/// What to do with one entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Its time is over: give it up.
    Expired,
    /// Try it.
    Send,
    /// Leave it.
    Wait,
    /// Its mailbox was given up: so is it.
    Unreachable,
}

/// Whether `plan` is due at `now`: a request in flight waits for its answer (an offer
/// delivered a moment before it expires is still delivered), then expiry, then the backoff,
/// which a matching trigger (its topic got a subscriber, its peer connected) skips.
pub fn due(plan: &Plan, now: u64, trigger: &Trigger) -> Due {
    if plan.in_flight {
        return Due::Wait;
    }
    if plan.item.expires <= now {
        return Due::Expired;
    }
    let urgent = match (trigger, &plan.item.route) {
        (Trigger::Topic(t), Route::Gossip { topic }) => t == topic,
        (Trigger::ServiceNode, Route::Gossip { .. }) => true,
        (Trigger::Peer(p), route) => route.mailbox().is_some_and(|m| p.to_bytes() == **m),
        _ => false,
    };
    if urgent || plan.next_attempt <= now {
        Due::Send
    } else {
        Due::Wait
    }
}

/// How a mailbox has been answering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MailboxState {
    /// Failed rounds in a row.
    failures: u32,
    /// No entry for it is tried before this time, unless it connects.
    next_attempt: u64,
}

/// The outbox planner.
#[derive(Debug, Default)]
pub struct Outbox {
    plans: HashMap<MessageId, Plan>,
    /// Mailboxes that failed, by peer id bytes; forgotten once one answers.
    mailboxes: HashMap<ByteBuf, MailboxState>,
}

impl Outbox {
    /// The plan for every entry in the store (when the node starts).
    pub fn load(store: &Store) -> Result<Outbox, StoreError> {
        let plans = store
            .outgoing()?
            .into_iter()
            .map(|item| (item.id, Plan::new(item)))
            .collect();
        Ok(Outbox {
            plans,
            mailboxes: HashMap::new(),
        })
    }

    /// Plans a new entry (already in the store).
    pub fn add(&mut self, item: Outgoing) {
        self.plans.insert(item.id, Plan::new(item));
    }

    /// Forgets an entry someone else removed from the store.
    pub fn forget(&mut self, id: &MessageId) {
        self.plans.remove(id);
    }

    /// The plan of one entry.
    pub fn plan(&self, id: &MessageId) -> Option<&Plan> {
        self.plans.get(id)
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Gives up expired entries and returns the attempts due at `now` for `trigger`.
    pub fn poll(&mut self, store: &Store, now: u64, trigger: &Trigger) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut decided: Vec<(MessageId, Due)> = self
            .plans
            .iter()
            .map(|(id, plan)| {
                (
                    *id,
                    self.mailbox_due(plan, due(plan, now, trigger), now, trigger),
                )
            })
            .filter(|(_, d)| *d != Due::Wait)
            .collect();
        decided.sort_by_key(|(id, _)| *id);
        for (id, due) in decided {
            let result = match due {
                Due::Expired => self.expire(store, &id, &mut actions),
                Due::Unreachable => self.give_up(store, &id, &mut actions),
                Due::Send => self.attempt(store, &id, now, &mut actions),
                Due::Wait => Ok(()),
            };
            if let Err(e) = result {
                warn!("outbox entry {id}: {e}");
            }
        }
        self.forget_idle_mailboxes();
        actions
    }

    /// Bounds the memory of failing mailboxes: one no entry waits for is forgotten, unless
    /// it was given up (a new offer to it is then refused at once), and past
    /// [`MAX_REMEMBERED_MAILBOXES`] the given-up ones are forgotten too.
    fn forget_idle_mailboxes(&mut self) {
        if self.mailboxes.len() <= self.plans.len() {
            return;
        }
        let waited_for: std::collections::HashSet<&ByteBuf> = self
            .plans
            .values()
            .filter_map(|plan| plan.item.route.mailbox())
            .collect();
        let over = self.mailboxes.len() > MAX_REMEMBERED_MAILBOXES;
        self.mailboxes.retain(|mailbox, state| {
            waited_for.contains(mailbox) || (!over && state.failures >= MAX_MAILBOX_FAILURES)
        });
    }

    /// `entry_due` held against the state of the entry's mailbox: a mailbox given up gives
    /// up its entries, and one in backoff holds them back until it connects.
    fn mailbox_due(&self, plan: &Plan, entry_due: Due, now: u64, trigger: &Trigger) -> Due {
        let Some(mailbox) = plan.item.route.mailbox() else {
            return entry_due;
        };
        let Some(state) = self.mailboxes.get(mailbox) else {
            return entry_due;
        };
        let connected = matches!(trigger, Trigger::Peer(p) if p.to_bytes() == **mailbox);
        // A relationship's entries are not given up with their mailbox: they wait out its
        // backoff until they expire (the log must not stop at an entry never sent).
        let lasting = matches!(plan.item.subject, Subject::Relationship { .. });
        match entry_due {
            Due::Send if state.failures >= MAX_MAILBOX_FAILURES && !lasting => Due::Unreachable,
            Due::Send if state.next_attempt > now && !connected => Due::Wait,
            other => other,
        }
    }

    /// Gives up an entry whose mailbox was given up: its offer is marked refused.
    fn give_up(
        &mut self,
        store: &Store,
        id: &MessageId,
        actions: &mut Vec<Action>,
    ) -> Result<(), StoreError> {
        info!("giving up {id}: its mailbox did not answer {MAX_MAILBOX_FAILURES} times in a row");
        let code = MAILBOX_UNREACHABLE.to_owned();
        let event = NodeEvent::OfferRefused {
            offer: id.to_hex(),
            code: code.clone(),
        };
        self.drop_entry(store, id, Delivery::Refused { code }, event, actions)
    }

    /// Gives up an entry whose time is over: an offer is marked expired.
    fn expire(
        &mut self,
        store: &Store,
        id: &MessageId,
        actions: &mut Vec<Action>,
    ) -> Result<(), StoreError> {
        let event = NodeEvent::OutboxExpired {
            message: id.to_hex(),
        };
        self.drop_entry(store, id, Delivery::Expired, event, actions)
    }

    /// Removes an entry from the plan and the store, records what became of its offer and
    /// tells the program.
    fn drop_entry(
        &mut self,
        store: &Store,
        id: &MessageId,
        delivery: Delivery,
        event: NodeEvent,
        actions: &mut Vec<Action>,
    ) -> Result<(), StoreError> {
        let Some(plan) = self.plans.remove(id) else {
            return Ok(());
        };
        store.outbox_remove(id)?;
        if let Subject::Offer { intent } = plan.item.subject {
            store.set_delivery(&intent, id, delivery)?;
        }
        actions.push(Action::Emit(event));
        Ok(())
    }

    fn attempt(
        &mut self,
        store: &Store,
        id: &MessageId,
        now: u64,
        actions: &mut Vec<Action>,
    ) -> Result<(), StoreError> {
        let Some(plan) = self.plans.get_mut(id) else {
            return Ok(());
        };
        // Counted before anything can fail, so a failing store is retried after the backoff
        // too, not at every tick.
        plan.attempts = plan.attempts.saturating_add(1);
        plan.next_attempt = now + backoff_secs(plan.attempts);
        let (subject, route) = (plan.item.subject, plan.item.route.clone());
        let Some(bytes) = store.outgoing_envelope(id)? else {
            debug!("{id} left the outbox behind the planner's back (withdrawn): dropped");
            self.plans.remove(id);
            return Ok(());
        };
        if let Subject::Offer { intent } = subject
            && store.is_withdrawn(&intent)?
        {
            debug!("dropping offer {id}: its intent was withdrawn");
            self.plans.remove(id);
            store.outbox_remove(id)?;
            store.set_delivery(
                &intent,
                id,
                Delivery::Refused {
                    code: "intent-withdrawn".into(),
                },
            )?;
            return Ok(());
        }
        match route {
            Route::Gossip { topic } => actions.push(Action::Publish {
                topic,
                bytes,
                by: Publisher::Outbox(*id),
            }),
            Route::Mailbox(_) | Route::Forward { .. } => {
                let Some((peer, addr, request)) = deposit(&route, subject, &bytes) else {
                    warn!("dropping {id}: its reply path is unusable");
                    self.plans.remove(id);
                    return store.outbox_remove(id);
                };
                if let Some(plan) = self.plans.get_mut(id) {
                    plan.in_flight = true;
                }
                actions.push(Action::Deposit {
                    peer,
                    addr,
                    request,
                    outgoing: *id,
                });
            }
        }
        Ok(())
    }

    /// A gossip entry was published (`Ok`) or could not be (`Err`, tried again after its
    /// backoff).
    pub fn published(
        &mut self,
        store: &Store,
        stats: &Stats,
        id: &MessageId,
        result: Result<(), String>,
    ) -> Vec<Action> {
        let Some(plan) = self.plans.get(id) else {
            return Vec::new();
        };
        let Route::Gossip { topic } = &plan.item.route else {
            return Vec::new();
        };
        if let Err(e) = result {
            debug!("{id} not published on {topic} yet ({e}); it waits in the outbox");
            return Vec::new();
        }
        let topic = topic.clone();
        self.plans.remove(id);
        if let Err(e) = store.outbox_remove(id) {
            warn!("outbox: {e}");
        }
        stats.bump("published");
        vec![Action::Emit(NodeEvent::Published {
            message: id.to_hex(),
            topic,
        })]
    }

    /// An attempt of `id` that could not go out now for reasons of pace, not of delivery: it
    /// is not counted, and the entry is due again at the next poll.
    pub fn postpone(&mut self, id: &MessageId, now: u64) {
        if let Some(plan) = self.plans.get_mut(id) {
            plan.attempts = plan.attempts.saturating_sub(1);
            plan.next_attempt = now;
        }
    }

    /// The mailbox answered a deposit: stored, or refused with a code (either way the
    /// entry is done), or refused for now (`retry_later`: tried again after the backoff).
    pub fn answered(
        &mut self,
        store: &Store,
        stats: &Stats,
        id: &MessageId,
        answer: Result<(), String>,
        now: u64,
    ) -> Vec<Action> {
        if let Some(mailbox) = self.plans.get(id).and_then(|p| p.item.route.mailbox()) {
            self.mailboxes.remove(mailbox);
        }
        if let Err(code) = &answer
            && retry_later(code)
        {
            info!("{id}: the mailbox cannot take it now ({code}); will retry");
            if let Some(plan) = self.plans.get_mut(id) {
                plan.in_flight = false;
            }
            return Vec::new();
        }
        let Some(plan) = self.plans.remove(id) else {
            return Vec::new();
        };
        if let Err(e) = store.outbox_remove(id) {
            warn!("outbox: {e}");
        }
        if let Subject::Relationship { rel } = plan.item.subject {
            match &answer {
                Ok(()) => stats.bump("relationship-items-delivered"),
                Err(code) => info!(
                    "relationship {}: item {id} refused ({code})",
                    hex::encode(*rel)
                ),
            }
            return Vec::new();
        }
        let (event, delivery) = match answer {
            Ok(()) => {
                stats.bump("offers-delivered");
                (
                    NodeEvent::OfferDelivered { offer: id.to_hex() },
                    Delivery::Delivered { at: now },
                )
            }
            Err(code) => {
                info!("offer {id} refused by the mailbox: {code}");
                (
                    NodeEvent::OfferRefused {
                        offer: id.to_hex(),
                        code: code.clone(),
                    },
                    Delivery::Refused { code },
                )
            }
        };
        if let Subject::Offer { intent } = plan.item.subject
            && let Err(e) = store.set_delivery(&intent, id, delivery)
        {
            warn!("recording the delivery of {id}: {e}");
        }
        vec![Action::Emit(event)]
    }

    /// A request failed without an answer: try again after the backoff. For a deposit, the
    /// mailbox failed one more round (several entries failing together count once).
    pub fn failed(&mut self, id: &MessageId, now: u64) {
        let Some(plan) = self.plans.get_mut(id) else {
            return;
        };
        plan.in_flight = false;
        if let Some(mailbox) = plan.item.route.mailbox() {
            let state = self.mailboxes.entry(mailbox.clone()).or_default();
            if state.next_attempt <= now {
                state.failures += 1;
                state.next_attempt = now + backoff_secs(state.failures);
            }
        }
    }
}

/// The deposit of an entry's envelope `bytes` to the mailbox named by `reply`: sealed to the
/// reply key, with the queue id as associated data; by a forward, the same deposit handed
/// to the forwarding node. `None` if the route is unusable (the rules of intents and
/// accepts make sure it is not).
fn deposit(
    route: &Route,
    subject: Subject,
    bytes: &[u8],
) -> Option<(PeerId, Multiaddr, MailboxRequest)> {
    let info = match subject {
        Subject::Relationship { .. } => RELATIONSHIP_INFO,
        Subject::Offer { .. } | Subject::Intent { .. } | Subject::Review { .. } => OFFER_INFO,
    };
    let (first, first_addr, to) = match route {
        Route::Gossip { .. } => return None,
        Route::Mailbox(reply) => (&reply.mailbox, &reply.addr, reply),
        Route::Forward { via, via_addr, to } => (via, via_addr, &**to),
    };
    let peer = PeerId::from_bytes(first).ok()?;
    let addr = Multiaddr::try_from(first_addr.to_vec()).ok()?;
    let sealed = seal(&to.key, info, &to.queue, bytes).ok()?.into();
    let request = match route {
        Route::Forward { .. } => MailboxRequest::Forward {
            mailbox: to.mailbox.clone(),
            addr: to.addr.clone(),
            queue: to.queue.clone(),
            sealed,
        },
        _ => MailboxRequest::Deposit {
            queue: to.queue.clone(),
            sealed,
        },
    };
    Some((peer, addr, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::IntentId;
    use crate::store::IntentKey;

    fn gossip_item(n: u8, expires: u64) -> Outgoing {
        Outgoing {
            id: MessageId([n; 32]),
            subject: Subject::Intent {
                intent: IntentId::from([n; 16]),
            },
            route: Route::Gossip {
                topic: "/vrm/2/intent/books".into(),
            },
            expires,
        }
    }

    fn mailbox_item(n: u8, mailbox: &PeerId, expires: u64) -> Outgoing {
        Outgoing {
            id: MessageId([n; 32]),
            subject: Subject::Offer {
                intent: IntentKey::own(&IntentId::from([n; 16])),
            },
            route: Route::Mailbox(crate::proto::ReplyTo {
                mailbox: mailbox.to_bytes().into(),
                addr: Multiaddr::empty().to_vec().into(),
                queue: vec![n; 16].into(),
                key: vec![9; 32].into(),
            }),
            expires,
        }
    }

    #[test]
    fn a_mailbox_given_up_gives_up_its_offers_but_not_a_relationships_entries() {
        let peer = PeerId::random();
        let mut outbox = Outbox::default();
        outbox.mailboxes.insert(
            peer.to_bytes().into(),
            MailboxState {
                failures: MAX_MAILBOX_FAILURES,
                next_attempt: 500,
            },
        );
        let offer = Plan::new(mailbox_item(2, &peer, 10_000));
        let mut entry = Plan::new(mailbox_item(3, &peer, 10_000));
        entry.item.subject = Subject::Relationship {
            rel: [3; 32].into(),
        };
        let due = |plan: &Plan, now: u64| outbox.mailbox_due(plan, Due::Send, now, &Trigger::Timer);
        assert_eq!(due(&offer, 600), Due::Unreachable);
        assert_eq!(
            due(&entry, 400),
            Due::Wait,
            "it waits out the mailbox's backoff"
        );
        assert_eq!(due(&entry, 600), Due::Send, "and is tried again after it");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<u64> = (0..8).map(backoff_secs).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff_secs(u32::MAX), MAX_BACKOFF_SECS);
    }

    #[test]
    fn an_entry_waits_out_its_backoff_unless_its_trigger_comes() {
        let mut plan = Plan::new(gossip_item(1, 1_000));
        assert_eq!(due(&plan, 100, &Trigger::Timer), Due::Send, "new: due now");
        plan.attempts = 3;
        plan.next_attempt = 108;
        assert_eq!(due(&plan, 107, &Trigger::Timer), Due::Wait);
        assert_eq!(due(&plan, 108, &Trigger::Timer), Due::Send);
        let its_topic = Trigger::Topic("/vrm/2/intent/books".into());
        let other_topic = Trigger::Topic("/vrm/2/intent/travel".into());
        assert_eq!(due(&plan, 101, &its_topic), Due::Send);
        assert_eq!(due(&plan, 101, &other_topic), Due::Wait);
        assert_eq!(
            due(&plan, 101, &Trigger::Peer(PeerId::random())),
            Due::Wait,
            "a peer's arrival does not hurry a gossip entry"
        );
        assert_eq!(
            due(&plan, 101, &Trigger::ServiceNode),
            Due::Send,
            "a service node's arrival does: a light node publishes through it"
        );
    }

    #[test]
    fn a_mailbox_entry_in_flight_waits_and_its_mailbox_connecting_hurries_it_otherwise() {
        let peer = PeerId::random();
        let mut plan = Plan::new(mailbox_item(2, &peer, 1_000));
        plan.next_attempt = 500;
        assert_eq!(due(&plan, 100, &Trigger::Peer(peer)), Due::Send);
        assert_eq!(due(&plan, 100, &Trigger::Peer(PeerId::random())), Due::Wait);
        assert_eq!(
            due(&plan, 100, &Trigger::ServiceNode),
            Due::Wait,
            "only its own mailbox hurries it"
        );
        plan.in_flight = true;
        assert_eq!(due(&plan, 600, &Trigger::Peer(peer)), Due::Wait);
        assert_eq!(
            due(&plan, 1_000, &Trigger::Timer),
            Due::Wait,
            "its answer may still come"
        );
        plan.in_flight = false;
        assert_eq!(due(&plan, 1_000, &Trigger::Timer), Due::Expired);
    }

    #[test]
    fn each_entry_expires_at_its_own_time() {
        let a = Plan::new(gossip_item(1, 100));
        let b = Plan::new(mailbox_item(2, &PeerId::random(), 200));
        assert_eq!(due(&a, 99, &Trigger::Timer), Due::Send);
        assert_eq!(due(&a, 100, &Trigger::Timer), Due::Expired);
        assert_eq!(due(&b, 100, &Trigger::Timer), Due::Send);
        assert_eq!(due(&b, 200, &Trigger::Timer), Due::Expired);
    }
}
