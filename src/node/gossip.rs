//! Gossip intake: messages from gossipsub, rate-limited per forwarding peer, queued, then
//! verified and stored as one batch by [`super::ingest::gossip_batch`]. Every message gets
//! its verdict action before any action about what it changed, so relaying an intent never
//! waits for what the local vendor does with it.

use std::time::Instant;

use libp2p::{PeerId, gossipsub};

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, MAX_GOSSIP_BATCH, Outcome, Verdict};
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
    served: Vec<String>,
    per_peer: RateLimiter<PeerId>,
    pending: Vec<(PeerId, gossipsub::MessageId, gossipsub::Message)>,
}

impl GossipIntake {
    /// Intake for a node whose vendor role serves `served` (empty for a person's node).
    pub fn new(served: Vec<String>) -> Self {
        GossipIntake {
            served,
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

    /// Verifies and stores the queued batch; returns the verdicts, then what they changed.
    pub fn ingest(&mut self, store: &Store, stats: &Stats, now: u64) -> Vec<Action> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let pending = std::mem::take(&mut self.pending);
        let messages: Vec<(&str, &[u8])> = pending
            .iter()
            .map(|(_, _, m)| (m.topic.as_str(), m.data.as_slice()))
            .collect();
        let outcomes: Vec<Result<Outcome, StoreError>> =
            ingest::gossip_batch(store, &self.served, &messages, now);
        let mut verdicts = Vec::with_capacity(pending.len());
        let mut effects = Vec::new();
        for ((source, message_id, _), outcome) in pending.into_iter().zip(outcomes) {
            let verdict = settle(outcome, &source, stats, &mut effects);
            verdicts.push(verdict_action(message_id, source, &verdict));
        }
        verdicts.extend(effects);
        verdicts
    }
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
