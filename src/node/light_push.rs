//! Light push (`proto/README.md`, "Service protocols"): a light node joins no gossip mesh,
//! so it hands each intent and withdrawal to a service node, picked at random for each
//! message (no one service node sees all of a person's intents). The service node checks
//! it exactly as gossip (and stores it, as it would a gossiped one), publishes it as its
//! own message and answers how many peers got it. Clients are rate limited, so a flood from
//! one costs the others nothing.

use std::time::Instant;

use libp2p::{PeerId, request_response::ResponseChannel};
use rand::seq::IndexedRandom;

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Verdict};
use crate::proto::MessageId;
use crate::proto::service::{LightPushRequest, LightPushResponse, RATE_LIMITED, UNAVAILABLE};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Light pushes per second one client may make.
pub const CLIENT_RATE: f64 = 5.0;
/// Burst of light pushes one client may make.
pub const CLIENT_BURST: u32 = 20;

/// The service side's limits; the client side needs no state (its requests in flight are
/// tracked with the node's other requests).
#[derive(Debug)]
pub struct LightPush {
    clients: RateLimiter<PeerId>,
}

impl Default for LightPush {
    fn default() -> Self {
        LightPush {
            clients: RateLimiter::new(CLIENT_RATE, CLIENT_BURST),
        }
    }
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

impl LightPush {
    /// Service node: a light push from `peer`. Refused over the client's rate limit, when
    /// our store fails, or by the message's rules; otherwise relayed on its topic (also when
    /// we had it already: the client learns how many peers have it).
    #[allow(clippy::too_many_arguments)]
    pub fn serve(
        &mut self,
        store: &Store,
        stats: &Stats,
        served: &[String],
        peer: &PeerId,
        request: LightPushRequest,
        channel: ResponseChannel<LightPushResponse>,
        now: u64,
        instant: Instant,
    ) -> Vec<Action> {
        let refuse = |code: &str, channel| Action::RespondLightPush {
            channel,
            response: LightPushResponse::Refused { code: code.into() },
        };
        if !self.clients.allow(peer, instant) {
            stats.bump("light-push-rate-limited");
            return vec![refuse(RATE_LIMITED, channel)];
        }
        let outcome = ingest::gossip(store, served, &request.topic, &request.envelope, now);
        let stored_or_refused = outcome.is_ok();
        let mut actions = Vec::new();
        let verdict = settle(outcome, peer, stats, &mut actions);
        actions.push(match verdict {
            _ if !stored_or_refused => refuse(UNAVAILABLE, channel),
            Verdict::Reject(rejection) => refuse(rejection.code(), channel),
            Verdict::Accept | Verdict::Ignore(_) => {
                stats.bump("light-push-served");
                Action::Relay {
                    topic: request.topic,
                    bytes: request.envelope.into_vec(),
                    channel,
                }
            }
        });
        actions
    }
}
