//! Catch-up of open intents (`proto/README.md`, "Catch-up"): gossip delivers only to those
//! in the mesh at the moment of publication, so a vendor that starts after an intent was
//! cast, a node that joins a shard, and the two halves of a healed partition each ask their
//! peers for the intents and withdrawals they missed.
//!
//! Every service node keeps what it accepts on the shards it carries
//! (`Store::carry`); [`CatchUpService`] lists it in arrival order and hands out envelopes
//! by message id. [`CatchUp`] is the asking side: per peer and shard, it lists from its last
//! cursor there, fetches the ids its replay memory does not know, and takes each envelope
//! exactly as a gossip message of that shard (checked, stored, answered, pushed to filter
//! subscribers). It asks when a peer joins one of its shards (a new connection, a healed
//! link) and, every [`CATCH_UP_EVERY`], one peer per shard.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use rand::seq::IndexedRandom;
use tracing::{debug, info};

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Scope, Verdict};
use crate::proto::service::{
    BAD_REQUEST, CURSOR_BYTES, CatchUpRequest, CatchUpResponse, MAX_FETCHED, MAX_LISTED,
    NOT_CARRIED, RATE_LIMITED, UNAVAILABLE,
};
use crate::proto::{MessageId, catch_up_topic};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// How often a node catches up from one peer per shard, besides when peers join.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(60);
/// Most catch-up sessions a node runs at once: enough for a full catch-up from one peer,
/// every shard and the directory at once.
pub const MAX_SESSIONS: usize = crate::proto::SHARDS as usize + 1;
/// Catch-up requests a service node answers per second for one peer, after a burst of
/// [`SERVE_BURST`] (a full catch-up of 10,000 intents is 10 lists and 313 fetches).
pub const SERVE_RATE: f64 = 50.0;
/// Burst of catch-up requests allowed per peer.
pub const SERVE_BURST: u32 = 100;
/// A peer that joins a shard after this node caught up on it in full is asked only for
/// what arrived at it in this window: a reconnection after a short cut. Longer gaps are
/// covered by the periodic catch-up, in full from peers never asked before.
pub const RECENT_WINDOW_SECS: u64 = 600;
/// A later catch-up from the same peer starts this long before its last cursor (messages
/// that arrived in the same second after the list was read).
const OVERLAP_SECS: u64 = 10;
/// Most peers remembered (cursors reached, peers that served invalid messages).
const MAX_REMEMBERED: usize = 4096;

/// The serving side, on service nodes.
#[derive(Debug)]
pub struct CatchUpService {
    carried: Vec<u8>,
    per_peer: RateLimiter<PeerId>,
}

impl CatchUpService {
    /// Serves the shards in `carried` (none on a light node, which refuses every request).
    pub fn new(carried: Vec<u8>) -> Self {
        CatchUpService {
            carried,
            per_peer: RateLimiter::new(SERVE_RATE, SERVE_BURST),
        }
    }

    /// Answers `peer`'s catch-up request from the store.
    pub fn serve(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        request: CatchUpRequest,
        now: u64,
        instant: Instant,
    ) -> CatchUpResponse {
        let refuse = |code: &str| {
            stats.bump(&format!("catch-up-refused:{code}"));
            debug!("refused a catch-up request of {peer}: {code}");
            CatchUpResponse::Refused { code: code.into() }
        };
        if !self.per_peer.allow(peer, instant) {
            return refuse(RATE_LIMITED);
        }
        let shard = request.shard();
        if !self.carried.contains(&shard) {
            return refuse(NOT_CARRIED);
        }
        let answer = match request {
            CatchUpRequest::List { after, .. } => {
                if !after.is_empty() && after.len() != CURSOR_BYTES {
                    return refuse(BAD_REQUEST);
                }
                store
                    .carried_after(shard, &after, MAX_LISTED, now)
                    .map(|(cursors, more)| CatchUpResponse::Listed {
                        cursors: cursors.iter().map(|c| c.to_vec().into()).collect(),
                        more,
                    })
            }
            CatchUpRequest::Fetch { ids, .. } => {
                let ids: Option<Vec<MessageId>> = ids
                    .iter()
                    .map(|id| id.as_slice().try_into().ok().map(MessageId))
                    .collect();
                match ids {
                    Some(ids) if !ids.is_empty() && ids.len() <= MAX_FETCHED => store
                        .carried_envelopes(shard, &ids)
                        .map(|envelopes| CatchUpResponse::Messages {
                            envelopes: envelopes.into_iter().map(Into::into).collect(),
                        }),
                    _ => return refuse(BAD_REQUEST),
                }
            }
        };
        answer.unwrap_or_else(|e| {
            debug!("catch-up for {peer} failed in our store: {e}");
            refuse(UNAVAILABLE)
        })
    }
}

/// The asking side: on service nodes, the shards they carry; on a light vendor, the shards
/// of its categories; on a light person's node, nothing.
#[derive(Debug)]
pub struct CatchUp {
    wanted: Vec<u8>,
    sessions: HashMap<(PeerId, u8), Session>,
    /// The last cursor reached at each peer, per shard.
    reached: HashMap<(PeerId, u8), [u8; CURSOR_BYTES]>,
    /// Shards this node caught up on in full (or is doing so now).
    full: HashMap<u8, bool>,
    /// Peers that served an invalid message: not asked again.
    distrusted: HashSet<PeerId>,
}

#[derive(Debug, Default)]
struct Session {
    /// The last cursor listed.
    cursor: Vec<u8>,
    /// Listed, not known here, not fetched yet.
    to_fetch: VecDeque<MessageId>,
    /// Fetched, not answered yet.
    asked: Vec<MessageId>,
    /// The service node has more to list after `cursor`.
    more: bool,
    /// This session lists from the start.
    full: bool,
}

impl CatchUp {
    /// Catches up on the shards `scope` wants and the directory ([`Scope::caught_up`]).
    pub fn new(scope: &Scope) -> Self {
        CatchUp {
            wanted: scope.caught_up(),
            sessions: HashMap::new(),
            reached: HashMap::new(),
            full: HashMap::new(),
            distrusted: HashSet::new(),
        }
    }

    /// `peer` joined `shard`: catch up from it, from its last cursor if it was asked before,
    /// in full if this node never caught up on the shard, else on the recent window.
    pub fn joined(&mut self, peer: PeerId, shard: u8, now: u64) -> Vec<Action> {
        let after = match self.reached.get(&(peer, shard)) {
            Some(cursor) => Some(back_from(cursor)),
            None if self.full.contains_key(&shard) => {
                Some(cursor_at(now.saturating_sub(RECENT_WINDOW_SECS)))
            }
            None => None,
        };
        self.start(peer, shard, after)
    }

    /// The periodic round: for each shard, one of the peers that carry it (picked by
    /// `carrying`), from its last cursor, or in full if it was never asked.
    pub fn round(&mut self, carrying: impl Fn(u8) -> Vec<PeerId>) -> Vec<Action> {
        let mut actions = Vec::new();
        for shard in self.wanted.clone() {
            let peers: Vec<PeerId> = carrying(shard)
                .into_iter()
                .filter(|p| !self.distrusted.contains(p))
                .collect();
            if let Some(peer) = peers.choose(&mut rand::rng()) {
                let after = self.reached.get(&(*peer, shard)).map(back_from);
                actions.extend(self.start(*peer, shard, after));
            }
        }
        actions
    }

    fn start(&mut self, peer: PeerId, shard: u8, after: Option<Vec<u8>>) -> Vec<Action> {
        if !self.wanted.contains(&shard)
            || self.distrusted.contains(&peer)
            || self.sessions.contains_key(&(peer, shard))
            || self.sessions.len() >= MAX_SESSIONS
        {
            return Vec::new();
        }
        let full = after.is_none();
        if full {
            self.full.entry(shard).or_insert(false);
        }
        let cursor = after.unwrap_or_default();
        let request = CatchUpRequest::List {
            shard,
            after: cursor.clone().into(),
        };
        self.sessions.insert(
            (peer, shard),
            Session {
                cursor,
                full,
                ..Session::default()
            },
        );
        vec![Action::CatchUp { peer, request }]
    }

    /// `peer` answered our request on `shard` (`Err`: the request failed). Listed ids are
    /// fetched unless already known; fetched envelopes are taken as gossip of the shard,
    /// under `scope`. A peer that breaks the protocol or serves an invalid message ends its
    /// session and is not asked again.
    #[allow(clippy::too_many_arguments)]
    pub fn answered(
        &mut self,
        store: &Store,
        scope: &Scope,
        stats: &Stats,
        peer: PeerId,
        shard: u8,
        answer: Result<CatchUpResponse, String>,
        now: u64,
    ) -> Vec<Action> {
        let key = (peer, shard);
        let Some(mut session) = self.sessions.remove(&key) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let went_on = match answer {
            Ok(CatchUpResponse::Listed { cursors, more }) => {
                stats.bump("catch-up-listed");
                session.listed(store, &cursors, more)
            }
            Ok(CatchUpResponse::Messages { envelopes }) => {
                let valid = session.fetched(store, scope, stats, &peer, shard, envelopes, now);
                match valid {
                    Ok(taken) => {
                        actions.extend(taken);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(CatchUpResponse::Refused { code }) => {
                debug!("{peer} refused our catch-up on shard {shard}: {code}");
                stats.bump("catch-up-was-refused");
                self.ended(shard, &session);
                return actions;
            }
            Err(error) => {
                debug!("catch-up from {peer} on shard {shard} failed: {error}");
                self.ended(shard, &session);
                return actions;
            }
        };
        if let Err(why) = went_on {
            info!("stopped catching up from {peer}: {why}; it is not asked again");
            stats.bump("catch-up-peer-distrusted");
            if self.distrusted.len() >= MAX_REMEMBERED {
                self.distrusted.clear();
            }
            self.distrusted.insert(peer);
            self.ended(shard, &session);
            return actions;
        }
        match session.next_request(shard) {
            Some(request) => {
                actions.push(Action::CatchUp { peer, request });
                self.sessions.insert(key, session);
            }
            None => {
                if let Ok(cursor) = session.cursor.as_slice().try_into() {
                    if self.reached.len() >= MAX_REMEMBERED {
                        self.reached.clear();
                    }
                    self.reached.insert(key, cursor);
                }
                if session.full {
                    self.full.insert(shard, true);
                }
                stats.bump("catch-up-done");
            }
        }
        actions
    }

    /// A session ended before its end: a full one may be tried again by the next peer.
    fn ended(&mut self, shard: u8, session: &Session) {
        if session.full && self.full.get(&shard) == Some(&false) {
            self.full.remove(&shard);
        }
    }

    /// The last connection to `peer` closed: its sessions end (their requests fail).
    pub fn disconnected(&mut self, peer: &PeerId) {
        let ended: Vec<(PeerId, u8)> = self
            .sessions
            .keys()
            .filter(|(p, _)| p == peer)
            .copied()
            .collect();
        for key in ended {
            if let Some(session) = self.sessions.remove(&key) {
                self.ended(key.1, &session);
            }
        }
    }
}

impl Session {
    /// Takes a list: cursors must be well formed and in order after the last one.
    fn listed(
        &mut self,
        store: &Store,
        cursors: &[serde_bytes::ByteBuf],
        more: bool,
    ) -> Result<(), String> {
        if cursors.len() > MAX_LISTED || (more && cursors.is_empty()) {
            return Err("a list out of bounds".into());
        }
        for cursor in cursors {
            if cursor.len() != CURSOR_BYTES || cursor.as_slice() <= self.cursor.as_slice() {
                return Err("a list out of order".into());
            }
            self.cursor = cursor.to_vec();
            let id = MessageId(cursor[8..].try_into().unwrap_or([0; 32]));
            // A store error leaves the id to fetch: it is checked again when it comes.
            if !store.has_seen(&id).unwrap_or(false) {
                self.to_fetch.push_back(id);
            }
        }
        self.more = more;
        Ok(())
    }

    /// Takes fetched envelopes: each must be one asked for, and is handled as gossip.
    #[allow(clippy::too_many_arguments)]
    fn fetched(
        &mut self,
        store: &Store,
        scope: &Scope,
        stats: &Stats,
        peer: &PeerId,
        shard: u8,
        envelopes: Vec<serde_bytes::ByteBuf>,
        now: u64,
    ) -> Result<Vec<Action>, String> {
        let asked = std::mem::take(&mut self.asked);
        if !envelopes.iter().all(|e| asked.contains(&MessageId::of(e))) {
            return Err("a message it was not asked for".into());
        }
        let topic = catch_up_topic(shard);
        let messages: Vec<(&str, &[u8])> = envelopes
            .iter()
            .map(|e| (topic.as_str(), e.as_slice()))
            .collect();
        let mut actions = Vec::new();
        let mut invalid = false;
        for (outcome, envelope) in ingest::gossip_batch(store, scope, &messages, now)
            .into_iter()
            .zip(&envelopes)
        {
            match settle(outcome, peer, stats, &mut actions) {
                Verdict::Accept => {
                    stats.bump("caught-up");
                    actions.push(Action::ToSubscribers {
                        topic: topic.clone(),
                        bytes: envelope.to_vec(),
                        from: *peer,
                    });
                }
                Verdict::Reject(_) => invalid = true,
                Verdict::Ignore(_) => {}
            }
        }
        if invalid {
            return Err("an invalid message".into());
        }
        Ok(actions)
    }

    /// The next request of this session, if it goes on.
    fn next_request(&mut self, shard: u8) -> Option<CatchUpRequest> {
        if !self.to_fetch.is_empty() {
            let take = self.to_fetch.len().min(MAX_FETCHED);
            self.asked = self.to_fetch.drain(..take).collect();
            return Some(CatchUpRequest::Fetch {
                shard,
                ids: self.asked.iter().map(|id| id.0.to_vec().into()).collect(),
            });
        }
        self.more.then(|| CatchUpRequest::List {
            shard,
            after: self.cursor.clone().into(),
        })
    }
}

/// The cursor where a later catch-up from the same peer starts: a little before `reached`.
fn back_from(reached: &[u8; CURSOR_BYTES]) -> Vec<u8> {
    let mut time = [0u8; 8];
    time.copy_from_slice(&reached[..8]);
    cursor_at(u64::from_be_bytes(time).saturating_sub(OVERLAP_SECS))
}

/// The cursor before everything that arrived at `time` or later.
fn cursor_at(time: u64) -> Vec<u8> {
    let mut cursor = vec![0u8; CURSOR_BYTES];
    cursor[..8].copy_from_slice(&time.to_be_bytes());
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Envelope, intent_topic, shard_of};
    use crate::store::fixtures::NOW;

    /// A books intent of persona `n` (the store's test fixture).
    fn intent(n: u8) -> Envelope {
        crate::store::fixtures::intent(n).0
    }

    struct Side {
        _dir: tempfile::TempDir,
        store: Store,
        scope: Scope,
    }

    fn side(scope: Scope) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        Side {
            _dir: dir,
            store,
            scope,
        }
    }

    /// A service node carrying the books shard that accepted `intents` from gossip.
    fn server(intents: &[Envelope]) -> Side {
        let server = side(Scope {
            served: vec![],
            carried: vec![shard_of("books")],
        });
        for envelope in intents {
            let topic = intent_topic("books");
            let outcome = ingest::gossip(
                &server.store,
                &server.scope,
                &topic,
                envelope.as_bytes(),
                NOW,
            );
            assert_eq!(outcome.unwrap().verdict, Verdict::Accept);
        }
        server
    }

    fn request_of(actions: &[Action]) -> Option<CatchUpRequest> {
        actions.iter().find_map(|a| match a {
            Action::CatchUp { request, .. } => Some(request.clone()),
            _ => None,
        })
    }

    /// Runs catch-up sessions of `client` against `server` until none asks more; returns
    /// every action the client's answers produced.
    fn run(
        client: &mut CatchUp,
        client_side: &Side,
        server: &mut CatchUpService,
        server_side: &Side,
        peer: PeerId,
        first: Vec<Action>,
    ) -> Vec<Action> {
        let stats = Stats::default();
        let mut produced = Vec::new();
        let mut next = request_of(&first);
        while let Some(request) = next.take() {
            let shard = request.shard();
            let now = Instant::now();
            let response = server.serve(&server_side.store, &stats, &peer, request, NOW, now);
            let actions = client.answered(
                &client_side.store,
                &client_side.scope,
                &stats,
                peer,
                shard,
                Ok(response),
                NOW,
            );
            next = request_of(&actions);
            produced.extend(actions);
        }
        produced
    }

    #[test]
    fn a_late_vendor_fetches_only_what_it_does_not_know_and_answers_it() {
        let intents: Vec<Envelope> = (1..=3).map(intent).collect();
        let server_side = server(&intents);
        let mut service = CatchUpService::new(server_side.scope.carried.clone());
        let vendor = side(Scope::serving(vec!["books".into()]));
        vendor.store.mark_seen(&intents[0].id(), NOW + 600).unwrap();
        let mut client = CatchUp::new(&vendor.scope);
        let peer = PeerId::random();
        let first = client.joined(peer, shard_of("books"), NOW);
        assert_eq!(
            request_of(&first),
            Some(CatchUpRequest::List {
                shard: shard_of("books"),
                after: vec![].into()
            }),
            "a first catch-up lists from the start"
        );
        let actions = run(
            &mut client,
            &vendor,
            &mut service,
            &server_side,
            peer,
            first,
        );
        let fetched: usize = actions
            .iter()
            .filter(|a| matches!(a, Action::Answer { .. }))
            .count();
        assert_eq!(fetched, 2, "the two it did not know go to the vendor role");
        assert_eq!(vendor.store.intents().unwrap().len(), 2);
        // Later, from the same peer: only from a little before where it stopped.
        let again = client.joined(peer, shard_of("books"), NOW + 100);
        match request_of(&again) {
            Some(CatchUpRequest::List { after, .. }) => {
                assert_eq!(after.len(), CURSOR_BYTES);
                assert_eq!(after[..8], (NOW - OVERLAP_SECS).to_be_bytes());
            }
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn a_new_peer_after_a_full_catch_up_is_asked_for_the_recent_window_only() {
        let server_side = server(&[intent(1)]);
        let mut service = CatchUpService::new(server_side.scope.carried.clone());
        let node = side(server_side.scope.clone());
        let mut client = CatchUp::new(&node.scope);
        let shard = shard_of("books");
        let first = PeerId::random();
        let actions = client.joined(first, shard, NOW);
        run(
            &mut client,
            &node,
            &mut service,
            &server_side,
            first,
            actions,
        );
        let second = client.joined(PeerId::random(), shard, NOW + 1000);
        match request_of(&second) {
            Some(CatchUpRequest::List { after, .. }) => {
                assert_eq!(after[..8], (NOW + 1000 - RECENT_WINDOW_SECS).to_be_bytes())
            }
            other => panic!("not a list: {other:?}"),
        }
        let periodic = client.round(|_| vec![PeerId::random()]);
        match request_of(&periodic) {
            Some(CatchUpRequest::List { after, .. }) => {
                assert!(after.is_empty(), "the round asks a new peer in full")
            }
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn a_peer_that_serves_what_was_not_asked_or_forged_is_not_asked_again() {
        let shard = shard_of("books");
        let node = side(Scope::serving(vec!["books".into()]));
        let stats = Stats::default();
        for answer in [
            // An envelope it was not asked for.
            CatchUpResponse::Messages {
                envelopes: vec![intent(9).as_bytes().to_vec().into()],
            },
            // A list out of order.
            CatchUpResponse::Listed {
                cursors: vec![vec![2; 40].into(), vec![1; 40].into()],
                more: false,
            },
        ] {
            let mut client = CatchUp::new(&node.scope);
            let peer = PeerId::random();
            client.joined(peer, shard, NOW);
            let actions = client.answered(
                &node.store,
                &node.scope,
                &stats,
                peer,
                shard,
                Ok(answer),
                NOW,
            );
            assert!(request_of(&actions).is_none(), "the session ends");
            assert!(
                client.joined(peer, shard, NOW).is_empty(),
                "not asked again"
            );
            assert!(client.round(|_| vec![peer]).is_empty());
        }
        // A forged envelope, listed and asked for.
        let mut forged = intent(3).as_bytes().to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let id = MessageId::of(&forged);
        let mut cursor = NOW.to_be_bytes().to_vec();
        cursor.extend_from_slice(&id.0);
        let mut client = CatchUp::new(&node.scope);
        let peer = PeerId::random();
        client.joined(peer, shard, NOW);
        let listed = CatchUpResponse::Listed {
            cursors: vec![cursor.into()],
            more: false,
        };
        let scope = &node.scope;
        let actions = client.answered(&node.store, scope, &stats, peer, shard, Ok(listed), NOW);
        assert!(matches!(
            request_of(&actions),
            Some(CatchUpRequest::Fetch { .. })
        ));
        let forged = CatchUpResponse::Messages {
            envelopes: vec![forged.into()],
        };
        client.answered(&node.store, scope, &stats, peer, shard, Ok(forged), NOW);
        assert_eq!(stats.get("rejected:bad-signature"), 1);
        assert!(
            client.joined(peer, shard, NOW).is_empty(),
            "not asked again"
        );
        assert!(node.store.intents().unwrap().is_empty());
    }

    #[test]
    fn the_service_answers_only_within_its_shards_and_bounds() {
        let kept = intent(1);
        let server_side = server(std::slice::from_ref(&kept));
        let shard = shard_of("books");
        let mut service = CatchUpService::new(server_side.scope.carried.clone());
        let stats = Stats::default();
        let peer = PeerId::random();
        let mut ask = |request| {
            let now = Instant::now();
            service.serve(&server_side.store, &stats, &peer, request, NOW, now)
        };
        let refused = |code: &str| CatchUpResponse::Refused { code: code.into() };
        let other = (shard + 1) % crate::proto::SHARDS;
        let list = |shard, after: Vec<u8>| CatchUpRequest::List {
            shard,
            after: after.into(),
        };
        assert_eq!(ask(list(other, vec![])), refused(NOT_CARRIED));
        assert_eq!(ask(list(shard, vec![0; 39])), refused(BAD_REQUEST));
        let fetch = |ids: Vec<Vec<u8>>| CatchUpRequest::Fetch {
            shard,
            ids: ids.into_iter().map(Into::into).collect(),
        };
        assert_eq!(ask(fetch(vec![])), refused(BAD_REQUEST));
        assert_eq!(ask(fetch(vec![vec![0; 31]])), refused(BAD_REQUEST));
        assert_eq!(
            ask(fetch(vec![vec![0; 32]; MAX_FETCHED + 1])),
            refused(BAD_REQUEST)
        );
        let id = kept.id().0.to_vec();
        assert_eq!(
            ask(fetch(vec![id.clone()])),
            CatchUpResponse::Messages {
                envelopes: vec![kept.as_bytes().to_vec().into()]
            }
        );
        let mut limited = 0;
        for _ in 0..SERVE_BURST * 2 {
            if ask(fetch(vec![id.clone()])) == refused(RATE_LIMITED) {
                limited += 1;
            }
        }
        assert!(
            limited >= SERVE_BURST - 10,
            "a flood of requests is refused"
        );
    }
}
