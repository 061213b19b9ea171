//! Light push (`proto/README.md`, "Service protocols"): a light node joins no gossip mesh,
//! so it hands each intent and withdrawal to a service node, picked at random for each
//! message (no one service node sees all of a person's intents). The service node checks
//! it exactly as gossip (and stores it, as it would a gossiped one), publishes it as its
//! own message and answers how many peers got it. Clients are rate limited, so a flood from
//! one costs the others nothing; the client paces itself to that limit and keeps at most
//! [`MAX_IN_FLIGHT`] pushes open per service node, so a backlog (a node back after a crash
//! with hundreds of withdrawals to hand over) drains at the limit's pace instead of being
//! refused and backed off.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use rand::seq::IndexedRandom;

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Scope, Verdict};
use crate::proto::service::{LightPushRequest, RATE_LIMITED, UNAVAILABLE};
use crate::proto::{MessageId, intent_topic};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Light pushes per second one client may make (a person casting and withdrawing as fast as
/// the CLI goes stays under it; the crash loop's withdraw path does).
pub const CLIENT_RATE: f64 = 20.0;
/// Burst of light pushes one client may make.
pub const CLIENT_BURST: u32 = 100;
/// Burst a client allows itself: smaller than [`CLIENT_BURST`], since a client that
/// restarted starts full while the service node may still count its earlier pushes.
pub const CLIENT_PACE_BURST: u32 = 10;
/// Light pushes a client keeps open per service node (libp2p drops streams past 100).
pub const MAX_IN_FLIGHT: usize = 16;
/// How long a client sends nothing to a service node that answered `rate-limited`.
pub const RATE_LIMITED_PAUSE: Duration = Duration::from_secs(1);

/// The service side: the categories this node answers itself, and the clients' limits.
#[derive(Debug)]
pub struct LightPush {
    /// What this node keeps of what it accepts.
    pub scope: Scope,
    clients: RateLimiter<PeerId>,
}

/// The client side, on light nodes: which service node may take a light push now.
#[derive(Debug)]
pub struct Pacer {
    rate: RateLimiter<PeerId>,
    /// Pushes open per service node (none listed: none open).
    in_flight: HashMap<PeerId, usize>,
    /// Service nodes that answered `rate-limited`, and until when they are left alone.
    paused: HashMap<PeerId, Instant>,
}

/// Why a light push cannot go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotNow {
    /// No service node is connected: a failed attempt, retried after its backoff (or at
    /// once when one connects).
    NoServiceNode,
    /// Every connected service node has its fill of our pushes: retried at the next tick,
    /// not counted as an attempt.
    Paced,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            rate: RateLimiter::new(CLIENT_RATE, CLIENT_PACE_BURST),
            in_flight: HashMap::new(),
            paused: HashMap::new(),
        }
    }
}

impl Pacer {
    /// The light push of outbox entry `outgoing` on `topic` to one of `services` that has
    /// room (open pushes, pace, no pause), picked at random, counted as open.
    pub fn hand_over(
        &mut self,
        services: &[PeerId],
        topic: String,
        bytes: Vec<u8>,
        outgoing: MessageId,
        now: Instant,
    ) -> Result<Action, NotNow> {
        if services.is_empty() {
            return Err(NotNow::NoServiceNode);
        }
        self.paused.retain(|_, until| *until > now);
        let open: Vec<PeerId> = services
            .iter()
            .filter(|peer| {
                !self.paused.contains_key(peer)
                    && self.in_flight.get(peer).copied().unwrap_or(0) < MAX_IN_FLIGHT
            })
            .copied()
            .collect();
        let peer = *open.choose(&mut rand::rng()).ok_or(NotNow::Paced)?;
        if !self.rate.allow(&peer, now) {
            return Err(NotNow::Paced);
        }
        *self.in_flight.entry(peer).or_default() += 1;
        Ok(Action::LightPush {
            peer,
            request: LightPushRequest {
                topic,
                envelope: bytes.into(),
            },
            outgoing,
        })
    }

    /// A push to `peer` was answered (`rate_limited`: refused for our pace) or failed.
    pub fn finished(&mut self, peer: &PeerId, rate_limited: bool, now: Instant) {
        if let Some(open) = self.in_flight.get_mut(peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.in_flight.remove(peer);
            }
        }
        if rate_limited {
            self.paused.insert(*peer, now + RATE_LIMITED_PAUSE);
        }
    }
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
    /// The service side of a node that keeps what `scope` says.
    pub fn new(scope: Scope) -> Self {
        LightPush {
            scope,
            clients: RateLimiter::new(CLIENT_RATE, CLIENT_BURST),
        }
    }

    /// Whether this node answers the intents of `topic` itself (it then counts as one of
    /// the peers that got a message published there).
    pub fn answers(&self, topic: &str) -> bool {
        self.scope
            .served
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
        self.take(store, stats, peer, request, now)
    }

    /// What [`Self::serve`] does with a push it lets through: checked and kept under the
    /// message's rules, relayed if valid.
    pub fn take(
        &self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        request: LightPushRequest,
        now: u64,
    ) -> (Served, Vec<Action>) {
        let outcome = ingest::gossip(store, &self.scope, &request.topic, &request.envelope, now);
        let stored_or_refused = outcome.is_ok();
        let mut actions = Vec::new();
        let verdict = settle(outcome, peer, stats, &mut actions);
        let served = match &verdict {
            _ if !stored_or_refused => Served::Refused(UNAVAILABLE.into()),
            Verdict::Reject(rejection) => Served::Refused(rejection.code().into()),
            Verdict::Accept | Verdict::Ignore(_) => {
                stats.bump("light-push-served");
                if verdict == Verdict::Accept {
                    actions.push(Action::ToSubscribers {
                        topic: request.topic.clone(),
                        bytes: request.envelope.to_vec(),
                        from: *peer,
                    });
                }
                Served::Relay {
                    topic: request.topic,
                    bytes: request.envelope.into_vec(),
                }
            }
        };
        (served, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::store::fixtures::{NOW, intent};

    fn push(pacer: &mut Pacer, services: &[PeerId], now: Instant) -> Result<PeerId, NotNow> {
        match pacer.hand_over(services, "t".into(), vec![1], MessageId([1; 32]), now)? {
            Action::LightPush { peer, .. } => Ok(peer),
            other => panic!("not a light push: {other:?}"),
        }
    }

    #[test]
    fn a_client_goes_at_the_service_nodes_pace_after_a_short_burst() {
        let mut pacer = Pacer::default();
        let service = PeerId::random();
        let start = Instant::now();
        for _ in 0..CLIENT_PACE_BURST {
            assert_eq!(push(&mut pacer, &[service], start), Ok(service));
            pacer.finished(&service, false, start);
        }
        assert_eq!(push(&mut pacer, &[service], start), Err(NotNow::Paced));
        let one_step = Duration::from_secs_f64(1.0 / CLIENT_RATE);
        assert_eq!(push(&mut pacer, &[service], start + one_step), Ok(service));
        assert_eq!(push(&mut pacer, &[], start), Err(NotNow::NoServiceNode));
    }

    #[test]
    fn a_client_keeps_at_most_its_share_of_pushes_open_per_service_node() {
        let mut pacer = Pacer::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut now = Instant::now();
        let second = Duration::from_secs(1);
        for _ in 0..MAX_IN_FLIGHT {
            assert_eq!(push(&mut pacer, &[a], now), Ok(a));
            now += second;
        }
        assert_eq!(push(&mut pacer, &[a], now), Err(NotNow::Paced), "a is full");
        assert_eq!(push(&mut pacer, &[a, b], now), Ok(b), "b has room");
        pacer.finished(&a, false, now);
        now += second;
        assert_eq!(push(&mut pacer, &[a], now), Ok(a), "an answer frees a slot");
    }

    #[test]
    fn an_answer_frees_one_slot_only() {
        let mut pacer = Pacer::default();
        let service = PeerId::random();
        let mut now = Instant::now();
        for _ in 0..MAX_IN_FLIGHT {
            assert_eq!(push(&mut pacer, &[service], now), Ok(service));
            now += Duration::from_secs(1);
        }
        pacer.finished(&service, false, now);
        assert_eq!(push(&mut pacer, &[service], now), Ok(service));
        now += Duration::from_secs(1);
        assert_eq!(
            push(&mut pacer, &[service], now),
            Err(NotNow::Paced),
            "full again"
        );
    }

    fn books(envelope: &[u8]) -> LightPushRequest {
        LightPushRequest {
            topic: intent_topic("books"),
            envelope: envelope.to_vec().into(),
        }
    }

    fn pushes_to_subscribers(actions: &[Action]) -> usize {
        let push = |a: &&Action| matches!(a, Action::ToSubscribers { .. });
        actions.iter().filter(push).count()
    }

    /// A valid push is relayed and handed to filter subscribers; the same again is relayed
    /// (the client learns how many peers have it) but not handed on twice; a forgery is
    /// refused with its code.
    #[test]
    fn a_service_node_relays_valid_pushes_and_refuses_forgeries_with_their_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (stats, client) = (Stats::default(), PeerId::random());
        let service = LightPush::new(Scope::of_role(
            Role::Service,
            vec![],
            &[0, 1, 2, 3, 4, 5, 6, 7],
        ));
        let bytes = intent(1).0.as_bytes().to_vec();

        let (served, actions) = service.take(&store, &stats, &client, books(&bytes), NOW);
        let relay = Served::Relay {
            topic: intent_topic("books"),
            bytes: bytes.clone(),
        };
        assert_eq!(served, relay);
        assert_eq!(pushes_to_subscribers(&actions), 1);
        let (again, actions) = service.take(&store, &stats, &client, books(&bytes), NOW);
        assert_eq!(again, relay);
        assert_eq!(pushes_to_subscribers(&actions), 0, "handed on once");

        let mut forged = bytes;
        *forged.last_mut().unwrap() ^= 1;
        let (refused, actions) = service.take(&store, &stats, &client, books(&forged), NOW);
        assert_eq!(refused, Served::Refused("bad-signature".into()));
        assert_eq!(pushes_to_subscribers(&actions), 0);
    }

    #[test]
    fn a_client_over_its_burst_is_refused_before_its_push_is_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (stats, client) = (Stats::default(), PeerId::random());
        let mut service = LightPush::new(Scope::of_role(
            Role::Service,
            vec![],
            &[0, 1, 2, 3, 4, 5, 6, 7],
        ));
        let now = Instant::now();
        for n in 0..CLIENT_BURST {
            let bytes = intent(n as u8).0.as_bytes().to_vec();
            let (served, _) = service.serve(&store, &stats, &client, books(&bytes), NOW, now);
            assert!(
                matches!(served, Served::Relay { .. }),
                "push {n}: {served:?}"
            );
        }
        let bytes = intent(200).0.as_bytes().to_vec();
        let (served, _) = service.serve(&store, &stats, &client, books(&bytes), NOW, now);
        assert_eq!(served, Served::Refused(RATE_LIMITED.into()));
        assert_eq!(stats.get("light-push-rate-limited"), 1);
    }

    #[test]
    fn a_vendor_node_answers_the_topics_of_its_categories_only() {
        let vendor = LightPush::new(Scope::serving(vec!["books".into()]));
        assert!(vendor.answers(&intent_topic("books")));
        let elsewhere = crate::proto::taxonomy::categories()
            .iter()
            .map(|c| intent_topic(&c.id))
            .find(|topic| *topic != intent_topic("books"))
            .expect("a category on another shard");
        assert!(!vendor.answers(&elsewhere));
    }

    #[test]
    fn a_service_node_that_answers_rate_limited_is_left_alone_for_a_while() {
        let mut pacer = Pacer::default();
        let service = PeerId::random();
        let now = Instant::now();
        assert_eq!(push(&mut pacer, &[service], now), Ok(service));
        pacer.finished(&service, true, now);
        let almost = now + RATE_LIMITED_PAUSE - Duration::from_millis(1);
        assert_eq!(push(&mut pacer, &[service], almost), Err(NotNow::Paced));
        let after = now + RATE_LIMITED_PAUSE;
        assert_eq!(push(&mut pacer, &[service], after), Ok(service));
    }
}
