//! What a protocol handler asks the event loop to do. Handlers never touch the swarm: they
//! take an input and the time and return [`Action`]s, which the loop alone carries out (the
//! shape of libp2p's own `ToSwarm`). That keeps each handler a plain struct tested without
//! sockets, and keeps callbacks from handlers into the loop out of the code.

use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::{Multiaddr, PeerId, gossipsub, request_response};
use tracing::{debug, info, warn};

use super::events::{NodeEvent, Stats};
use super::ingest::{Effect, Outcome, Verdict};
use crate::proto::service::{
    CatchUpRequest, CatchUpResponse, FilterPush, FilterRequest, FilterResponse, LightPushRequest,
    LightPushResponse, MailboxItem, MailboxRequest, MailboxResponse, PushAnswer,
};
use crate::proto::{Envelope, Intent, MessageId};
use crate::store::{Outgoing, StoreError};

/// One thing for the event loop to do.
#[derive(Debug)]
pub enum Action {
    /// Tell gossipsub what became of a message (it forwards accepted ones).
    Verdict {
        /// Gossipsub's id of the message.
        message_id: gossipsub::MessageId,
        /// The peer it came from.
        source: PeerId,
        /// Forward, drop, or drop and penalise.
        acceptance: gossipsub::MessageAcceptance,
    },
    /// Publish bytes on a topic.
    Publish {
        /// The topic.
        topic: String,
        /// The envelope bytes.
        bytes: Vec<u8>,
        /// Whose publication it is: the result goes back to it.
        by: Publisher,
    },
    /// Leave an outbox entry, sealed, in a mailbox.
    Deposit {
        /// The mailbox's service node.
        peer: PeerId,
        /// The one address to dial it at.
        addr: Multiaddr,
        /// The queue and the sealed entry.
        request: MailboxRequest,
        /// The outbox entry.
        outgoing: MessageId,
    },
    /// Hand an outbox entry to a service node to publish (light nodes).
    LightPush {
        /// The service node.
        peer: PeerId,
        /// The topic and envelope.
        request: LightPushRequest,
        /// The outbox entry.
        outgoing: MessageId,
    },
    /// Ask a mailbox for what waits in our queues (and acknowledge what we stored).
    Fetch {
        /// The mailbox's service node.
        peer: PeerId,
        /// The fetch.
        request: MailboxRequest,
        /// Queued once the mailbox has answered: a new intent's publication.
        then: Option<Box<Outgoing>>,
    },
    /// Answer a mailbox request (service nodes).
    RespondMailbox {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<MailboxResponse>,
        /// The answer.
        response: MailboxResponse,
    },
    /// Publish a light-pushed message as our own and tell its sender how many peers got it.
    Relay {
        /// The topic.
        topic: String,
        /// The envelope bytes.
        bytes: Vec<u8>,
        /// Where the answer goes.
        channel: request_response::ResponseChannel<LightPushResponse>,
    },
    /// Answer a light push without publishing (refused).
    RespondLightPush {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<LightPushResponse>,
        /// The answer.
        response: LightPushResponse,
    },
    /// Push a new mailbox item to its connected owner.
    Push {
        /// The owner's node.
        peer: PeerId,
        /// The item.
        item: MailboxItem,
    },
    /// Answer a pushed item (the owner's side).
    RespondPush {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<PushAnswer>,
        /// The answer.
        answer: PushAnswer,
    },
    /// This node accepted a message on a topic from `from`: push it to the topic's filter
    /// subscribers (service nodes).
    ToSubscribers {
        /// The topic.
        topic: String,
        /// The envelope bytes.
        bytes: Vec<u8>,
        /// The peer it came from (it gets no push back).
        from: PeerId,
    },
    /// Push a message to a filter subscriber (service nodes).
    FilterPush {
        /// The subscriber.
        peer: PeerId,
        /// The message.
        push: FilterPush,
    },
    /// Subscribe to intent topics at a service node (light vendors).
    Subscribe {
        /// The service node.
        peer: PeerId,
        /// The topics.
        request: FilterRequest,
    },
    /// Answer a filter subscription (service nodes).
    RespondFilter {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<FilterResponse>,
        /// The answer.
        response: FilterResponse,
    },
    /// Answer a filter push (light vendors).
    RespondFilterPush {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<PushAnswer>,
        /// The answer.
        answer: PushAnswer,
    },
    /// Ask a service node for what it keeps on a shard (catch-up).
    CatchUp {
        /// The service node.
        peer: PeerId,
        /// The list or fetch.
        request: CatchUpRequest,
    },
    /// Answer a catch-up request (service nodes).
    RespondCatchUp {
        /// Where the answer goes.
        channel: request_response::ResponseChannel<CatchUpResponse>,
        /// The answer.
        response: CatchUpResponse,
    },
    /// The mailbox answered the deposit that carried an outbox entry: `Err` holds the code.
    Answered {
        /// The outbox entry.
        outgoing: MessageId,
        /// Stored, or refused with a code.
        answer: Result<(), String>,
    },
    /// The request that carried an outbox entry failed without an answer.
    Unanswered(MessageId),
    /// Tell the rest of the program.
    Emit(NodeEvent),
    /// Hand a stored intent to the vendor role.
    Answer {
        /// The intent envelope.
        envelope: Box<Envelope>,
        /// Its body.
        intent: Box<Intent>,
    },
    /// A new entry is in the outbox: plan its delivery.
    Queue(Outgoing),
    /// Try the outbox entries waiting for this now.
    Deliver(Trigger),
    /// Tell peer routing where a peer is.
    LearnAddress(PeerId, Multiaddr),
    /// Dial an address.
    Dial(Multiaddr),
}

/// Who published, so the result reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    /// An outbox entry.
    Outbox(MessageId),
    /// The vendor profile.
    Profile,
}

/// Why outbox entries may be tried before their backoff ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Only what is due by the clock.
    Timer,
    /// A peer subscribed to this topic: gossip entries for it.
    Topic(String),
    /// This peer connected: entries for its mailbox, and light pushes waiting for a service
    /// node.
    Peer(PeerId),
    /// A service node arrived: light pushes waiting for one.
    ServiceNode,
}

/// Store errors while handling messages are logged at most this often (all are counted).
const STORE_WARNING_EVERY_SECS: u64 = 10;
static LAST_STORE_WARNING: AtomicU64 = AtomicU64::new(0);

/// Counts and logs the outcome of one message from `peer`, and turns what it changed into
/// actions. Returns the verdict, for gossipsub or for the direct answer.
pub fn settle(
    outcome: Result<Outcome, StoreError>,
    peer: &PeerId,
    stats: &Stats,
    actions: &mut Vec<Action>,
) -> Verdict {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            // Our store failed, not the peer: do not forward, do not punish. On a full
            // disk every message fails: the log says so once in a while, the count says all.
            stats.bump("store-error");
            let now = crate::clock::unix_now();
            if now >= LAST_STORE_WARNING.load(Ordering::Relaxed) + STORE_WARNING_EVERY_SECS {
                LAST_STORE_WARNING.store(now, Ordering::Relaxed);
                warn!(
                    "store error while handling a message from {peer}: {e} ({} store errors so far; logged at most every {STORE_WARNING_EVERY_SECS} s)",
                    stats.get("store-error")
                );
            }
            return Verdict::Ignore("store error");
        }
    };
    match &outcome.verdict {
        Verdict::Accept => stats.bump("accepted"),
        Verdict::Ignore(reason) => {
            debug!("ignored a message from {peer}: {reason}");
            stats.bump("ignored");
        }
        Verdict::Reject(rejection) => {
            info!(
                "rejected a message from {peer}: {} ({rejection})",
                rejection.code()
            );
            stats.bump(&format!("rejected:{}", rejection.code()));
            actions.push(Action::Emit(NodeEvent::Rejected {
                peer: peer.to_string(),
                code: rejection.code().to_owned(),
                reason: rejection.to_string(),
            }));
        }
    }
    if let Some(effect) = outcome.effect {
        effect_actions(effect, stats, actions);
    }
    outcome.verdict
}

fn effect_actions(effect: Effect, stats: &Stats, actions: &mut Vec<Action>) {
    match effect {
        Effect::IntentToAnswer { envelope, intent } => {
            actions.push(Action::Emit(NodeEvent::IntentReceived {
                intent: hex::encode(*intent.id),
                category: intent.category.clone(),
            }));
            actions.push(Action::Answer { envelope, intent });
        }
        Effect::IntentWithdrawn { id } => actions.push(Action::Emit(NodeEvent::IntentWithdrawn {
            intent: hex::encode(*id),
        })),
        Effect::ProfileStored { vendor, name } => {
            actions.push(Action::Emit(NodeEvent::ProfileStored {
                vendor: hex::encode(vendor),
                name,
            }))
        }
        Effect::ReviewStored { vendor } => {
            stats.bump("reviews-stored");
            actions.push(Action::Emit(NodeEvent::ReviewStored {
                vendor: hex::encode(vendor),
            }))
        }
        Effect::GroupChanged { group } => actions.push(Action::Emit(NodeEvent::GroupChanged {
            group: hex::encode(group),
        })),
        Effect::OfferStored {
            intent,
            offer,
            vendor,
        } => {
            stats.bump("offers-received");
            actions.push(Action::Emit(NodeEvent::OfferReceived {
                intent: hex::encode(*intent),
                offer: offer.to_hex(),
                vendor: hex::encode(vendor),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ValidationError;

    #[test]
    fn our_store_failing_is_ignored_not_blamed_and_a_rejection_is_counted_and_told() {
        let stats = Stats::default();
        let peer = PeerId::random();
        let mut actions = Vec::new();
        let failed = Err(StoreError::DiskFull);
        assert_eq!(
            settle(failed, &peer, &stats, &mut actions),
            Verdict::Ignore("store error")
        );
        assert!(actions.is_empty(), "nothing to tell about the peer");
        assert_eq!(stats.get("store-error"), 1);

        let rejected = Outcome {
            verdict: Verdict::Reject(ValidationError::UnknownIntent.into()),
            effect: None,
        };
        let verdict = settle(Ok(rejected), &peer, &stats, &mut actions);
        assert!(matches!(verdict, Verdict::Reject(_)));
        assert_eq!(stats.get("rejected:unknown-intent"), 1);
        assert!(matches!(
            &actions[..],
            [Action::Emit(NodeEvent::Rejected { code, .. })] if code == "unknown-intent"
        ));
    }
}
