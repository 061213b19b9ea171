//! Gossip intake: messages from gossipsub, rate-limited per forwarding peer, queued, then
//! verified and stored as one batch by [`super::ingest::gossip_batch_unflushed`]. Every
//! message gets its verdict at once, so relaying an intent never waits for the disk nor for
//! what the local vendor does with it: what the batch changed for this node's vendor role
//! waits for the batch's flush ([`Ingested`]). What is accepted also goes to the filter
//! subscribers of its topic ([`super::filter`]).

use std::time::Instant;

use libp2p::{PeerId, gossipsub};

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, MAX_GOSSIP_BATCH, Outcome, Scope, Verdict};
use crate::ratelimit::RateLimiter;
use crate::store::{Store, StoreError};

/// Gossip messages per second one peer may send us (bursts up to [`PEER_BURST`]). A mesh
/// neighbour relays the whole network's traffic on our topics, so this sits above the
/// network throughput the node is built for (2000 intents/s); floods of invalid messages
/// are the peer score's job.
pub const PEER_MESSAGES_PER_SEC: f64 = 4000.0;
/// Burst allowed per peer.
pub const PEER_BURST: u32 = 8000;

/// The gossip intake handler.
pub struct GossipIntake {
    /// What this node keeps of what it accepts.
    pub scope: Scope,
    per_peer: RateLimiter<PeerId>,
    pending: Vec<(PeerId, gossipsub::MessageId, gossipsub::Message)>,
}

impl GossipIntake {
    /// Intake for a node that keeps what `scope` says.
    pub fn new(scope: Scope) -> Self {
        GossipIntake {
            scope,
            per_peer: RateLimiter::new(PEER_MESSAGES_PER_SEC, PEER_BURST),
            pending: Vec::new(),
        }
    }

    /// Queues a message for the next batch, or refuses it at once when its forwarder is
    /// over its rate.
    pub fn received(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
        now: Instant,
        stats: &Stats,
    ) -> Vec<Action> {
        if self.per_peer.allow(&source, now) {
            self.pending.push((source, message_id, message));
            return Vec::new();
        }
        let mut actions = Vec::new();
        let outcome = Ok(Outcome::ignored("rate limit for this peer"));
        let verdict = settle(outcome, &source, stats, &mut actions);
        actions.insert(0, verdict_action(message_id, source, &verdict));
        actions
    }

    /// Whether a batch is queued but not full: worth taking more ready events first.
    pub fn wants_more(&self) -> bool {
        !self.pending.is_empty() && self.pending.len() < MAX_GOSSIP_BATCH
    }

    /// Verifies and stores the queued batch: the verdicts (and pushes to filter
    /// subscribers) to carry out now, and what the batch changed, to carry out once it is
    /// flushed.
    pub fn ingest(&mut self, store: &Store, stats: &Stats, now: u64) -> Ingested {
        if self.pending.is_empty() {
            return Ingested::default();
        }
        let pending = std::mem::take(&mut self.pending);
        let messages: Vec<(&str, &[u8])> = pending
            .iter()
            .map(|(_, _, m)| (m.topic.as_str(), m.data.as_slice()))
            .collect();
        let (outcomes, staged): (Vec<Result<Outcome, StoreError>>, bool) =
            ingest::gossip_batch_unflushed(store, &self.scope, &messages, now);
        let mut now_actions = Vec::with_capacity(pending.len());
        let mut effects = Vec::new();
        let mut pushes = Vec::new();
        for ((source, message_id, message), outcome) in pending.into_iter().zip(outcomes) {
            let verdict = settle(outcome, &source, stats, &mut effects);
            now_actions.push(verdict_action(message_id, source, &verdict));
            if verdict == Verdict::Accept {
                pushes.push(Action::ToSubscribers {
                    topic: message.topic.into_string(),
                    bytes: message.data,
                    from: source,
                });
            }
        }
        now_actions.extend(pushes);
        Ingested {
            now: now_actions,
            after_flush: effects,
            needs_flush: staged,
        }
    }
}

/// What a batch of gossip leads to.
#[derive(Debug, Default)]
pub struct Ingested {
    /// The verdicts, then the pushes to filter subscribers: carried out at once.
    pub now: Vec<Action>,
    /// What the batch changed (intents to answer, events): carried out once the batch is
    /// on disk.
    pub after_flush: Vec<Action>,
    /// The batch stored intents that a flush must make durable first.
    pub needs_flush: bool,
}

fn verdict_action(message_id: gossipsub::MessageId, source: PeerId, verdict: &Verdict) -> Action {
    let acceptance = match verdict {
        Verdict::Accept => gossipsub::MessageAcceptance::Accept,
        Verdict::Reject(_) => gossipsub::MessageAcceptance::Reject,
        Verdict::Ignore(_) => gossipsub::MessageAcceptance::Ignore,
    };
    Action::Verdict {
        message_id,
        source,
        acceptance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::events::NodeEvent;
    use crate::proto::intent_topic;
    use crate::store::fixtures::NOW;

    fn message(topic: &str, data: Vec<u8>) -> gossipsub::Message {
        gossipsub::Message {
            source: None,
            data,
            sequence_number: None,
            topic: gossipsub::TopicHash::from_raw(topic),
        }
    }

    /// A books intent of persona `n` (the store's test fixture), as bytes.
    fn intent_bytes(n: u8) -> Vec<u8> {
        crate::store::fixtures::intent(n).0.as_bytes().to_vec()
    }

    fn acceptances(actions: &[Action]) -> Vec<gossipsub::MessageAcceptance> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Verdict { acceptance, .. } => Some(*acceptance),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn verdicts_go_out_at_once_and_what_the_batch_changed_waits_for_its_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let stats = Stats::default();
        let mut intake = GossipIntake::new(Scope::serving(vec!["books".into()]));
        let topic = intent_topic("books");
        let peer = PeerId::random();
        let mut forged = intent_bytes(2);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let (first, third) = (intent_bytes(1), intent_bytes(3));
        for (n, data) in [(1u8, first.clone()), (2, forged), (3, third.clone())] {
            let id = gossipsub::MessageId::new(&[n]);
            let now = Instant::now();
            let refused = intake.received(peer, id, message(&topic, data), now, &stats);
            assert!(refused.is_empty());
        }
        assert!(intake.wants_more(), "a batch of 3 takes more");
        let flushes = store.flush_count();
        let ingested = intake.ingest(&store, &stats, NOW);
        assert_eq!(
            store.flush_count(),
            flushes,
            "no verdict waits for the disk"
        );
        assert!(
            ingested.needs_flush,
            "two intents for the vendor role were stored"
        );
        let actions = &ingested.now;
        use gossipsub::MessageAcceptance::{Accept, Reject};
        assert_eq!(acceptances(&actions[..3]), vec![Accept, Reject, Accept]);
        let answers = ingested
            .after_flush
            .iter()
            .filter(|a| matches!(a, Action::Answer { .. }))
            .count();
        assert_eq!(answers, 2, "both good intents go to the vendor role, after");
        let to_subscribers: Vec<&[u8]> = actions[3..]
            .iter()
            .filter_map(|a| match a {
                Action::ToSubscribers { bytes, from, .. } if *from == peer => Some(&bytes[..]),
                _ => None,
            })
            .collect();
        assert_eq!(
            to_subscribers,
            vec![&first[..], &third[..]],
            "the accepted ones go to the filter subscribers"
        );
        assert!(ingested.after_flush.iter().any(|a| matches!(
            a,
            Action::Emit(NodeEvent::Rejected { code, .. }) if code == "bad-signature"
        )));
        assert!(!intake.wants_more(), "the queue is empty again");
        assert_eq!(stats.get("accepted"), 2);

        let mut relay = GossipIntake::new(Scope::default());
        let id = gossipsub::MessageId::new(b"relayed");
        relay.received(
            peer,
            id,
            message(&topic, intent_bytes(4)),
            Instant::now(),
            &stats,
        );
        let ingested = relay.ingest(&store, &stats, NOW);
        assert!(
            !ingested.needs_flush,
            "what a relay only relays needs no flush"
        );
        assert_eq!(acceptances(&ingested.now), vec![Accept]);
    }

    #[test]
    fn a_peer_over_its_rate_is_ignored_at_once() {
        let stats = Stats::default();
        let mut intake = GossipIntake::new(Scope::default());
        let peer = PeerId::random();
        let now = Instant::now();
        let topic = intent_topic("books");
        for n in 0..PEER_BURST {
            let id = gossipsub::MessageId::new(&n.to_be_bytes());
            assert!(
                intake
                    .received(peer, id, message(&topic, vec![]), now, &stats)
                    .is_empty()
            );
        }
        let id = gossipsub::MessageId::new(b"one too many");
        let actions = intake.received(peer, id, message(&topic, vec![]), now, &stats);
        assert_eq!(
            acceptances(&actions),
            vec![gossipsub::MessageAcceptance::Ignore]
        );
        assert_eq!(stats.get("ignored"), 1);
        let other = PeerId::random();
        let id = gossipsub::MessageId::new(b"another peer");
        assert!(
            intake
                .received(other, id, message(&topic, vec![]), now, &stats)
                .is_empty(),
            "peers are limited separately"
        );
    }
}
