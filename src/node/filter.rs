//! Filter subscriptions (`proto/README.md`, "Filter"): how a vendor's node that runs as a
//! light node (behind a NAT, in no mesh) still sees the intents of its categories. It
//! subscribes to their shard topics at up to [`MAX_SUBSCRIBED_AT`] of the service nodes it
//! is connected to that carry those shards, and each of them pushes it every intent and withdrawal it accepts on
//! those topics, from gossip or from a light push. The vendor answers as any vendor does:
//! outbound, into the intent's mailbox.
//!
//! A subscription lasts as long as its connection; the vendor subscribes again on the next
//! one. A push is answered but not sent again: like a gossip message, one lost with its
//! connection is lost to that subscriber (its other service nodes push the same message;
//! catch-up of open intents is the cure for both).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tracing::{debug, info};

use super::action::{Action, settle};
use super::events::Stats;
use super::gossip::{PEER_BURST, PEER_MESSAGES_PER_SEC};
use super::ingest::{self, Scope};
use crate::proto::service::{
    BAD_REQUEST, FilterPush, FilterRequest, FilterResponse, MAX_FILTER_TOPICS, PushAnswer,
    TOO_MANY_SUBSCRIBERS,
};
use crate::proto::{intent_topic, is_shard_topic};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Most subscribers a service node serves.
pub const MAX_SUBSCRIBERS: usize = 64;
/// Most pushes a service node keeps open to one subscriber; what comes beyond is not sent
/// to it (counted as `filter-push-dropped`).
pub const MAX_OPEN_PUSHES: usize = 64;
/// Service nodes a light vendor subscribes at (each pushes the same messages: the others
/// cover one that fails).
pub const MAX_SUBSCRIBED_AT: usize = 3;
/// How long a light vendor leaves a service node that refused its subscription alone.
pub const REFUSED_PAUSE: Duration = Duration::from_secs(60);

/// The service side: who wants which topics pushed.
#[derive(Debug, Default)]
pub struct FilterService {
    subscribers: HashMap<PeerId, Subscriber>,
}

#[derive(Debug)]
struct Subscriber {
    topics: HashSet<String>,
    open_pushes: usize,
}

impl FilterService {
    /// `peer` subscribes: refused when the request breaks the bounds or names a topic that
    /// is no shard topic, or when the node has its fill of other subscribers. A peer's
    /// new subscription replaces its earlier one.
    pub fn subscribe(
        &mut self,
        peer: PeerId,
        request: FilterRequest,
        stats: &Stats,
    ) -> FilterResponse {
        let refuse = |code: &str| {
            stats.bump(&format!("filter-refused:{code}"));
            info!("refused the filter subscription of {peer}: {code}");
            FilterResponse::Refused { code: code.into() }
        };
        let topics = request.topics;
        if topics.is_empty()
            || topics.len() > MAX_FILTER_TOPICS
            || !topics.iter().all(|t| is_shard_topic(t))
        {
            return refuse(BAD_REQUEST);
        }
        if !self.subscribers.contains_key(&peer) && self.subscribers.len() >= MAX_SUBSCRIBERS {
            return refuse(TOO_MANY_SUBSCRIBERS);
        }
        let open_pushes = self.subscribers.get(&peer).map_or(0, |s| s.open_pushes);
        let topics = topics.into_iter().collect();
        self.subscribers.insert(
            peer,
            Subscriber {
                topics,
                open_pushes,
            },
        );
        stats.bump("filter-subscribed");
        FilterResponse::Subscribed
    }

    /// How many subscribers want `topic`.
    pub fn subscribers_on(&self, topic: &str) -> usize {
        self.subscribers
            .values()
            .filter(|s| s.topics.contains(topic))
            .count()
    }

    /// How many peers are subscribed.
    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// This node accepted `bytes` on `topic` from `from`: push it to every other subscriber
    /// of the topic that has room.
    pub fn accepted(
        &mut self,
        topic: &str,
        bytes: &[u8],
        from: &PeerId,
        stats: &Stats,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for (peer, subscriber) in &mut self.subscribers {
            if peer == from || !subscriber.topics.contains(topic) {
                continue;
            }
            if subscriber.open_pushes >= MAX_OPEN_PUSHES {
                stats.bump("filter-push-dropped");
                continue;
            }
            subscriber.open_pushes += 1;
            stats.bump("filter-pushed");
            actions.push(Action::FilterPush {
                peer: *peer,
                push: FilterPush {
                    topic: topic.to_owned(),
                    envelope: bytes.to_vec().into(),
                },
            });
        }
        actions
    }

    /// A push to `peer` was answered or failed.
    pub fn push_finished(&mut self, peer: &PeerId) {
        if let Some(subscriber) = self.subscribers.get_mut(peer) {
            subscriber.open_pushes = subscriber.open_pushes.saturating_sub(1);
        }
    }

    /// The last connection to `peer` closed: its subscription ends.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.subscribers.remove(peer);
    }
}

/// The subscriber's side, on a light vendor: where it is subscribed, and the pushes it
/// takes. On any other node it has no topics and does nothing.
#[derive(Debug)]
pub struct Subscriptions {
    /// A light node carries no shard: it keeps only what its vendor role serves.
    scope: Scope,
    topics: Vec<String>,
    at: HashMap<PeerId, State>,
    per_peer: RateLimiter<PeerId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Asked,
    Subscribed,
    RefusedUntil(Instant),
}

impl Subscriptions {
    /// The subscriptions of a node whose vendor role serves `served` (empty on a person's
    /// node); a node that is not `light` joins the meshes instead and subscribes nowhere.
    pub fn new(served: Vec<String>, light: bool) -> Self {
        let mut topics: Vec<String> = if light {
            served.iter().map(|c| intent_topic(c)).collect()
        } else {
            Vec::new()
        };
        topics.sort();
        topics.dedup();
        Subscriptions {
            scope: Scope::serving(served),
            topics,
            at: HashMap::new(),
            per_peer: RateLimiter::new(PEER_MESSAGES_PER_SEC, PEER_BURST),
        }
    }

    /// The subscriptions to ask for now, at connected `services` this node is not
    /// subscribed at (nor waiting for, nor refused by lately), while it has fewer than
    /// [`MAX_SUBSCRIBED_AT`].
    pub fn renew(&mut self, services: &[PeerId], now: Instant) -> Vec<Action> {
        if self.topics.is_empty() {
            return Vec::new();
        }
        self.at.retain(|peer, state| {
            services.contains(peer) && !matches!(state, State::RefusedUntil(until) if *until <= now)
        });
        let mut held = self
            .at
            .values()
            .filter(|s| !matches!(s, State::RefusedUntil(_)))
            .count();
        let mut actions = Vec::new();
        for peer in services {
            if held >= MAX_SUBSCRIBED_AT {
                break;
            }
            if self.at.contains_key(peer) {
                continue;
            }
            self.at.insert(*peer, State::Asked);
            held += 1;
            actions.push(Action::Subscribe {
                peer: *peer,
                request: FilterRequest {
                    topics: self.topics.clone(),
                },
            });
        }
        actions
    }

    /// `peer` answered our subscription (`Err`: the request failed).
    pub fn answered(
        &mut self,
        peer: &PeerId,
        answer: Result<FilterResponse, String>,
        stats: &Stats,
        now: Instant,
    ) {
        match answer {
            Ok(FilterResponse::Subscribed) => {
                info!("subscribed to this vendor's intent topics at {peer}");
                self.at.insert(*peer, State::Subscribed);
            }
            Ok(FilterResponse::Refused { code }) => {
                info!("{peer} refused our filter subscription: {code}");
                stats.bump("filter-subscription-refused");
                self.at
                    .insert(*peer, State::RefusedUntil(now + REFUSED_PAUSE));
            }
            Err(error) => {
                debug!("the filter subscription at {peer} failed: {error}");
                self.at.remove(peer);
            }
        }
    }

    /// The shard topics this node subscribes to (none unless a light vendor).
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The categories the vendor role serves.
    pub fn served(&self) -> Vec<String> {
        self.scope.served.clone()
    }

    /// The service nodes this node is subscribed at.
    pub fn subscribed_at(&self) -> Vec<PeerId> {
        self.at
            .iter()
            .filter(|(_, s)| **s == State::Subscribed)
            .map(|(p, _)| *p)
            .collect()
    }

    /// The last connection to `peer` closed.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.at.remove(peer);
    }

    /// `peer` pushed a message: taken as a gossip message on its topic (checked, stored,
    /// handed to the vendor role) if we are subscribed there and it keeps to the gossip
    /// rate; answered `stored` unless our store failed.
    pub fn pushed(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        push: FilterPush,
        now: u64,
        instant: Instant,
    ) -> (PushAnswer, Vec<Action>) {
        let mut actions = Vec::new();
        if self.at.get(peer) != Some(&State::Subscribed) || !self.topics.contains(&push.topic) {
            stats.bump("filter-push-unasked");
            return (PushAnswer { stored: true }, actions);
        }
        if !self.per_peer.allow(peer, instant) {
            stats.bump("filter-push-rate-limited");
            return (PushAnswer { stored: true }, actions);
        }
        stats.bump("filter-received");
        let outcome = ingest::gossip(store, &self.scope, &push.topic, &push.envelope, now);
        let stored = outcome.is_ok();
        settle(outcome, peer, stats, &mut actions);
        (PushAnswer { stored }, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(categories: &[&str]) -> FilterRequest {
        FilterRequest {
            topics: categories.iter().map(|c| intent_topic(c)).collect(),
        }
    }

    fn pushed_to(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .map(|a| match a {
                Action::FilterPush { peer, .. } => *peer,
                other => panic!("not a push: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_service_node_pushes_what_it_accepts_to_the_topics_subscribers_only() {
        let stats = Stats::default();
        let mut filter = FilterService::default();
        let (books, travel, source) = (PeerId::random(), PeerId::random(), PeerId::random());
        let subscribed = FilterResponse::Subscribed;
        assert_eq!(
            filter.subscribe(books, topics(&["books"]), &stats),
            subscribed
        );
        assert_eq!(
            filter.subscribe(travel, topics(&["travel"]), &stats),
            subscribed
        );
        assert_eq!(
            filter.subscribe(source, topics(&["books"]), &stats),
            subscribed
        );
        let topic = intent_topic("books");
        let actions = filter.accepted(&topic, b"intent", &source, &stats);
        assert_eq!(pushed_to(&actions), vec![books], "not back to its source");
        assert!(matches!(
            &actions[0],
            Action::FilterPush { push, .. } if push.topic == topic && &push.envelope[..] == b"intent"
        ));
        assert_eq!(filter.subscribers_on(&topic), 2);
        filter.disconnected(&books);
        assert!(filter.accepted(&topic, b"next", &source, &stats).is_empty());
        assert_eq!(filter.subscribers(), 2);
    }

    #[test]
    fn a_subscription_must_name_intent_topics_within_bounds_and_a_later_one_replaces_it() {
        let stats = Stats::default();
        let mut filter = FilterService::default();
        let peer = PeerId::random();
        let bad = FilterResponse::Refused {
            code: BAD_REQUEST.into(),
        };
        assert_eq!(filter.subscribe(peer, topics(&[]), &stats), bad);
        let directory = FilterRequest {
            topics: vec![crate::proto::DIRECTORY_TOPIC.into()],
        };
        assert_eq!(filter.subscribe(peer, directory, &stats), bad);
        let past_the_last_shard = FilterRequest {
            topics: vec![crate::proto::shard_topic(crate::proto::SHARDS)],
        };
        assert_eq!(filter.subscribe(peer, past_the_last_shard, &stats), bad);
        let too_many = FilterRequest {
            topics: vec![intent_topic("books"); MAX_FILTER_TOPICS + 1],
        };
        assert_eq!(filter.subscribe(peer, too_many, &stats), bad);
        let most = FilterRequest {
            topics: vec![intent_topic("books"); MAX_FILTER_TOPICS],
        };
        assert_eq!(
            filter.subscribe(peer, most, &stats),
            FilterResponse::Subscribed
        );
        assert_eq!(stats.get("filter-refused:bad-request"), 4);
        filter.subscribe(peer, topics(&["travel"]), &stats);
        assert_eq!(filter.subscribers_on(&intent_topic("books")), 0);
        assert_eq!(filter.subscribers_on(&intent_topic("travel")), 1);
    }

    #[test]
    fn a_service_node_serves_a_bounded_number_of_subscribers_and_open_pushes() {
        let stats = Stats::default();
        let mut filter = FilterService::default();
        let peers: Vec<PeerId> = (0..MAX_SUBSCRIBERS).map(|_| PeerId::random()).collect();
        for peer in &peers {
            assert_eq!(
                filter.subscribe(*peer, topics(&["books"]), &stats),
                FilterResponse::Subscribed
            );
        }
        let late = filter.subscribe(PeerId::random(), topics(&["books"]), &stats);
        assert_eq!(
            late,
            FilterResponse::Refused {
                code: TOO_MANY_SUBSCRIBERS.into()
            }
        );
        assert_eq!(
            filter.subscribe(peers[0], topics(&["books"]), &stats),
            FilterResponse::Subscribed,
            "a subscriber may subscribe again"
        );
        let topic = intent_topic("books");
        let source = PeerId::random();
        let one = &peers[..1];
        let mut filter = FilterService::default();
        filter.subscribe(one[0], topics(&["books"]), &stats);
        for _ in 0..MAX_OPEN_PUSHES {
            assert_eq!(
                pushed_to(&filter.accepted(&topic, b"x", &source, &stats)),
                one
            );
        }
        assert!(
            filter.accepted(&topic, b"x", &source, &stats).is_empty(),
            "full"
        );
        assert_eq!(stats.get("filter-push-dropped"), 1);
        filter.push_finished(&one[0]);
        assert_eq!(
            pushed_to(&filter.accepted(&topic, b"x", &source, &stats)),
            one
        );
    }

    fn subscribe_requests(actions: &[Action]) -> Vec<PeerId> {
        actions
            .iter()
            .map(|a| match a {
                Action::Subscribe { peer, request } => {
                    assert_eq!(request.topics, vec![intent_topic("books")]);
                    *peer
                }
                other => panic!("not a subscription: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_light_vendor_subscribes_at_a_few_service_nodes_once_each() {
        let stats = Stats::default();
        let mut subs = Subscriptions::new(vec!["books".into()], true);
        let services: Vec<PeerId> = (0..MAX_SUBSCRIBED_AT + 1)
            .map(|_| PeerId::random())
            .collect();
        let now = Instant::now();
        let asked = subscribe_requests(&subs.renew(&services, now));
        assert_eq!(asked, services[..MAX_SUBSCRIBED_AT]);
        assert!(
            subs.renew(&services, now).is_empty(),
            "not twice while asked"
        );
        subs.answered(&asked[0], Ok(FilterResponse::Subscribed), &stats, now);
        let refused = FilterResponse::Refused {
            code: TOO_MANY_SUBSCRIBERS.into(),
        };
        subs.answered(&asked[1], Ok(refused), &stats, now);
        subs.answered(&asked[2], Err("timeout".into()), &stats, now);
        assert_eq!(subs.subscribed_at(), vec![asked[0]]);
        let again = subscribe_requests(&subs.renew(&services, now));
        assert_eq!(again.len(), 2, "the failed one and the fourth: {again:?}");
        assert!(!again.contains(&asked[1]), "the refusing one is left alone");
        subs.disconnected(&asked[0]);
        assert!(subs.subscribed_at().is_empty());

        let mut not_light = Subscriptions::new(vec!["books".into()], false);
        assert!(not_light.renew(&services, now).is_empty());
        let mut person = Subscriptions::new(Vec::new(), true);
        assert!(person.renew(&services, now).is_empty());
    }

    #[test]
    fn a_refusing_service_node_is_asked_again_after_a_pause() {
        let stats = Stats::default();
        let mut subs = Subscriptions::new(vec!["books".into()], true);
        let service = [PeerId::random()];
        let now = Instant::now();
        subs.renew(&service, now);
        let refused = FilterResponse::Refused {
            code: TOO_MANY_SUBSCRIBERS.into(),
        };
        subs.answered(&service[0], Ok(refused), &stats, now);
        let almost = now + REFUSED_PAUSE - Duration::from_millis(1);
        assert!(subs.renew(&service, almost).is_empty());
        let later = now + REFUSED_PAUSE;
        assert_eq!(subscribe_requests(&subs.renew(&service, later)), service);
    }

    #[test]
    fn a_push_is_taken_only_from_where_we_subscribed_on_our_topics() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let stats = Stats::default();
        let mut subs = Subscriptions::new(vec!["books".into()], true);
        let (service, stranger) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        subs.renew(&[service], now);
        subs.answered(&service, Ok(FilterResponse::Subscribed), &stats, now);
        let push = |topic: &str| FilterPush {
            topic: topic.into(),
            envelope: vec![0xa0].into(),
        };
        let books = intent_topic("books");
        let (answer, actions) = subs.pushed(&store, &stats, &stranger, push(&books), 0, now);
        assert!(answer.stored && actions.is_empty());
        let travel = intent_topic("travel");
        subs.pushed(&store, &stats, &service, push(&travel), 0, now);
        assert_eq!(stats.get("filter-push-unasked"), 2);
        let (answer, actions) = subs.pushed(&store, &stats, &service, push(&books), 0, now);
        assert!(answer.stored, "refused for good: not again");
        assert!(
            matches!(
                &actions[..],
                [Action::Emit(
                    super::super::events::NodeEvent::Rejected { .. }
                )]
            ),
            "checked as gossip: {actions:?}"
        );
        assert_eq!(stats.get("filter-received"), 1);
    }
}
