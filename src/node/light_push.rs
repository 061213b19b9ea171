//! Light push (`proto/README.md`, "Service protocols"): a light node joins no gossip mesh,
//! so it hands each intent and withdrawal to a service node, picked at random for each
//! message (no one service node sees all of a person's intents). The service node checks
//! it exactly as gossip (and stores it, as it would a gossiped one), publishes it as its
//! own message and answers how many peers got it. Clients are rate limited, so a flood from
//! one costs the others nothing.

use std::time::Instant;

use libp2p::PeerId;
use rand::seq::IndexedRandom;

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Verdict};
use crate::proto::service::{LightPushRequest, RATE_LIMITED, UNAVAILABLE};
use crate::proto::{MessageId, intent_topic};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Light pushes per second one client may make (a person casting and withdrawing as fast as
/// the CLI goes stays under it; the crash loop's withdraw path does).
pub const CLIENT_RATE: f64 = 20.0;
/// Burst of light pushes one client may make.
pub const CLIENT_BURST: u32 = 100;

/// The service side: the categories this node answers itself, and the clients' limits.
/// The client side needs no state (its requests in flight are tracked with the node's other
/// requests).
#[derive(Debug)]
pub struct LightPush {
    served: Vec<String>,
    clients: RateLimiter<PeerId>,
}

/// Light node: the light push of outbox entry `outgoing` on `topic` to one of `services`,
/// picked at random; `None` if no service node is connected.
pub fn hand_over(
    services: &[PeerId],
    topic: String,
    bytes: Vec<u8>,
    outgoing: MessageId,
) -> Option<Action> {
    let peer = *services.choose(&mut rand::rng())?;
    Some(Action::LightPush {
        peer,
        request: LightPushRequest {
            topic,
            envelope: bytes.into(),
        },
        outgoing,
    })
}

/// What a service node does with a light push.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// Publish it on its topic as our own, and answer how many peers got it.
    Relay {
        /// The topic.
        topic: String,
        /// The envelope bytes.
        bytes: Vec<u8>,
    },
    /// Answer with this refusal code.
    Refused(String),
}

impl LightPush {
    /// The service side of a node whose vendor role answers `served` (empty otherwise).
    pub fn new(served: Vec<String>) -> Self {
        LightPush {
            served,
            clients: RateLimiter::new(CLIENT_RATE, CLIENT_BURST),
        }
    }

    /// Whether this node answers the intents of `topic` itself (it then counts as one of
    /// the peers that got a message published there).
    pub fn answers(&self, topic: &str) -> bool {
        self.served
            .iter()
            .any(|category| intent_topic(category) == topic)
    }

    /// Service node: a light push from `peer`, and what storing it changed. Refused over the
    /// client's rate limit, when our store fails, or by the message's rules; otherwise
    /// relayed on its topic (also when we had it already: the client learns how many peers
    /// have it).
    pub fn serve(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        request: LightPushRequest,
        now: u64,
        instant: Instant,
    ) -> (Served, Vec<Action>) {
        if !self.clients.allow(peer, instant) {
            stats.bump("light-push-rate-limited");
            return (Served::Refused(RATE_LIMITED.into()), Vec::new());
        }
        let outcome = ingest::gossip(store, &self.served, &request.topic, &request.envelope, now);
        let stored_or_refused = outcome.is_ok();
        let mut actions = Vec::new();
        let verdict = settle(outcome, peer, stats, &mut actions);
        let served = match verdict {
            _ if !stored_or_refused => Served::Refused(UNAVAILABLE.into()),
            Verdict::Reject(rejection) => Served::Refused(rejection.code().into()),
            Verdict::Accept | Verdict::Ignore(_) => {
                stats.bump("light-push-served");
                Served::Relay {
                    topic: request.topic,
                    bytes: request.envelope.into_vec(),
                }
            }
        };
        (served, actions)
    }
}
