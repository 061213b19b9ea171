//! The task that owns the swarm. It does one thing: wait for whatever comes next, hand it
//! to the handler that owns that concern, and carry out the [`Action`]s the handler returns.
//! No rule lives here.
//!
//! ```text
//!   NodeHandle ──Command──┐                           ┌──▶ gossipsub (verdicts, publish)
//!   Answering ──Action────┤                           ├──▶ request-response (light push,
//!   swarm events ─────────┼──▶ EventLoop ──dispatch──▶┤    mailbox, mailbox push, filter)
//!   timers ───────────────┘        │                  ├──▶ NodeEvent broadcast
//!                                  │                  └──▶ Answering (intents to answer)
//!                                  ▼
//!        gossip::GossipIntake   outbox::Outbox   expiry::Expiry   profile::ProfilePublisher
//!        peers                  light_push       mailbox (served) replies (our queues)
//!        filter (served, and subscriptions of a light vendor)
//!        catch_up (served, and asked of peers that carry our shards)
//!        peer_exchange (served, and asked by a light node short of service nodes)
//!                                                           (each returns Actions)
//! ```
//!
//! Gossip messages that are ready together are queued and ingested as one batch (one
//! signature batch, one flush); their verdicts go to gossipsub before anything else, so
//! relaying never waits for the vendor role, which runs in its own task
//! ([`super::answering`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{
    Multiaddr, PeerId, Swarm, autonat, gossipsub, identify, kad, mdns, ping, request_response,
};
use rand::seq::IndexedRandom;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use super::action::{Action, Publisher, Trigger};
use super::answering::{AnswerInput, VendorInbox};
use super::bans::Bans;
use super::catch_up::{CATCH_UP_EVERY, CatchUp, CatchUpService};
use super::discovery::{ShardDiscovery, shard_key};
use super::events::{NodeEvent, Stats};
use super::expiry::Expiry;
use super::filter::{FilterService, Subscriptions};
use super::gossip::GossipIntake;
use super::handle::{Command, PeerInfo};
use super::ingest::Scope;
use super::light_push::{LightPush, NotNow, Pacer, Served};
use super::mailbox::MailboxService;
use super::network::{Behaviour, BehaviourEvent, NetworkSettings};
use super::outbox::Outbox;
use super::peer_exchange::{NAMED_AFTER, PeerExchange};
use super::peers::{self, ServiceNodes};
use super::profile::ProfilePublisher;
use super::pruning::Candidate;
use super::reachability::Rebuild;
use super::relationships::RelationshipInbox;
use super::replies::{FETCH_EVERY, Replies};
use super::requests::{MailboxCall, Requests};
use crate::clock::unix_now;
use crate::config::Role;
use crate::proto::service::{
    BAD_REQUEST, CatchUpRequest, CatchUpResponse, FilterPush, FilterRequest, FilterResponse,
    LightPushRequest, LightPushResponse, MAX_EXCHANGED, MailboxItem, MailboxRequest,
    MailboxResponse, NO_PEERS, PeersRequest, PeersResponse, PushAnswer, RATE_LIMITED, UNREACHABLE,
};
use crate::proto::{DIRECTORY_TOPIC, MessageId, catch_up_shard};
use crate::store::Store;

/// Most flushes of gossip batches waiting off the loop at once.
const MAX_FLUSHING: usize = 4;
/// Most forwards (deposits made for others) in flight; more are refused `rate-limited`.
const MAX_FORWARDS: usize = 1024;
/// How often due outbox entries and expiries are looked for.
const TICK: Duration = Duration::from_millis(500);

/// The channels the loop talks through.
pub struct Channels {
    /// Commands from the handle.
    pub commands: mpsc::Receiver<Command>,
    /// Actions from tasks beside the loop (the vendor role, flushes of gossip batches).
    pub inbox: mpsc::Receiver<Action>,
    /// The sending side of `inbox`, for the loop's own tasks.
    pub to_self: mpsc::Sender<Action>,
    /// Events for the program.
    pub events: broadcast::Sender<NodeEvent>,
    /// The current listen addresses, for the handle.
    pub listen: watch::Sender<Vec<Multiaddr>>,
    /// The connected service nodes that can hold a mailbox, for the handle.
    pub services: watch::Sender<Vec<(PeerId, Multiaddr)>>,
    /// The node's current role, for the handle.
    pub role: watch::Sender<Role>,
    /// The vendor role's inbox, on vendor nodes.
    pub vendor: Option<VendorInbox>,
    /// The vendor role's task, stopped and awaited at shutdown.
    pub vendor_task: Option<tokio::task::JoinHandle<()>>,
}

/// The handlers the loop dispatches to.
pub struct Handlers {
    /// Gossip intake.
    pub gossip: GossipIntake,
    /// Outbox delivery.
    pub outbox: Outbox,
    /// Own intents' expiry and the replay memory.
    pub expiry: Expiry,
    /// The vendor profile, on vendor nodes.
    pub profile: Option<ProfilePublisher>,
    /// Our requests in flight.
    pub requests: Requests,
    /// Light push served.
    pub light_push: LightPush,
    /// Light push sent, on light nodes.
    pub pacer: Pacer,
    /// The mailbox kept for others, on service nodes.
    pub mailbox: Option<MailboxService>,
    /// The mailbox queues of the person's open intents.
    pub replies: Replies,
    /// Filter subscribers served, on service nodes.
    pub filter: FilterService,
    /// Where a light vendor is subscribed to its categories.
    pub subscriptions: Subscriptions,
    /// Catch-up served, on service nodes.
    pub catch_up_service: CatchUpService,
    /// Catch-up asked of peers, for the shards this node wants.
    pub catch_up: CatchUp,
    /// Peer exchange: served on service nodes, asked by light ones.
    pub peer_exchange: PeerExchange,
    /// The relationship inbox, on vendor nodes.
    pub inbox: Option<RelationshipInbox>,
}

/// The swarm task; [`super::start`] assembles it.
pub struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) channels: Channels,
    pub(super) handlers: Handlers,
    pub(super) store: Arc<Store>,
    pub(super) stats: Arc<Stats>,
    pub(super) metrics: Option<libp2p::metrics::Metrics>,
    /// Addresses dialed at start (and after a change of role).
    pub(super) bootstrap: Vec<Multiaddr>,
    /// How to build the swarm again in another role (`role = "auto"`).
    pub(super) rebuild: Rebuild,
    /// Listen addresses not bound yet (after a change of role, the old swarm's sockets may
    /// take a moment to close); tried again at every tick.
    pub(super) pending_listen: Vec<Multiaddr>,
    /// How often a vendor re-publishes its profile.
    pub(super) profile_interval: Duration,
    /// Other service nodes a service node keeps; past it, it prunes.
    pub(super) target_peers: usize,
    /// How often a service node prunes.
    pub(super) prune_every: Duration,
    /// Service node or light node.
    pub(super) role: Role,
    /// The connected service nodes.
    pub(super) services: ServiceNodes,
    /// Peers banned for their gossip score.
    pub(super) bans: Bans,
    /// Shard providers announced and looked up.
    pub(super) discovery: ShardDiscovery,
    /// Flushes of gossip batches waiting off the loop.
    pub(super) flushing: Arc<AtomicUsize>,
}

impl EventLoop {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        super::network::subscribe(gossipsub, &self.rebuild.settings);
        let dials = self.bootstrap.iter().cloned().map(Action::Dial).collect();
        self.execute(dials);
        let mut tick = tokio::time::interval(TICK);
        let mut profile_tick = tokio::time::interval(self.profile_interval);
        let mut fetch_tick = tokio::time::interval(FETCH_EVERY);
        let mut prune_tick = tokio::time::interval(self.prune_every);
        // Not at once: the bootstrap dials are still under way.
        prune_tick.tick().await;
        let mut catch_up_tick = tokio::time::interval(CATCH_UP_EVERY);
        catch_up_tick.tick().await;
        let vendor = self.handlers.profile.is_some();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    self.on_swarm_event(event);
                    while self.handlers.gossip.wants_more() {
                        match self.swarm.next().now_or_never() {
                            Some(Some(event)) => self.on_swarm_event(event),
                            _ => break,
                        }
                    }
                    let ingested = self.handlers.gossip.ingest(&self.store, &self.stats, unix_now());
                    self.execute(ingested.now);
                    self.after_flush(ingested.after_flush, ingested.needs_flush);
                }
                command = self.channels.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(action) = self.channels.inbox.recv() => self.execute(vec![action]),
                _ = tick.tick() => {
                    self.listen_pending();
                    self.lift_bans();
                    let now = unix_now();
                    let mut actions = self.handlers.outbox.poll(&self.store, now, &Trigger::Timer);
                    actions.extend(self.handlers.expiry.tick(&self.store, now));
                    if let Some(inbox) = &mut self.handlers.inbox {
                        actions.extend(inbox.sweep(&self.store, now));
                    }
                    actions.extend(self.renew_subscriptions());
                    self.execute(actions);
                    let profile = self.handlers.profile.as_ref();
                    if profile.is_some_and(|p| p.greeting_due(Instant::now())) {
                        self.publish_profile();
                    }
                }
                _ = profile_tick.tick(), if vendor => self.publish_profile(),
                _ = fetch_tick.tick() => {
                    let swarm = &self.swarm;
                    let actions = self
                        .handlers
                        .replies
                        .fetch_all(unix_now(), |peer| swarm.is_connected(peer));
                    self.execute(actions);
                }
                _ = prune_tick.tick() => {
                    self.prune();
                    self.redial();
                    self.discover();
                }
                _ = catch_up_tick.tick() => {
                    let gossipsub = &self.swarm.behaviour().gossipsub;
                    let catch_up = &mut self.handlers.catch_up;
                    let actions = catch_up.round(|shard| carrying_shard(gossipsub, shard));
                    self.execute(actions);
                }
            }
        }
        if let (Some(vendor), Some(task)) =
            (&self.channels.vendor, self.channels.vendor_task.take())
        {
            // Offers made from here on wait in the stored outbox for the next start.
            self.channels.inbox.close();
            let _ = vendor.send(AnswerInput::Stop).await;
            let _ = task.await;
        }
        if let Err(e) = self.store.flush() {
            warn!("flushing the store at shutdown failed: {e}");
        }
        info!("node stopped");
    }

    /// Carries out what acknowledges staged writes (a gossip batch's hand-over to the vendor
    /// role, a mailbox's answer to a deposit, a stored offer's answer) once they are on
    /// disk: at once if nothing needs it, else after a flush on a blocking thread, through
    /// the inbox, while the loop goes on relaying. At most [`MAX_FLUSHING`] such flushes
    /// wait at once: past that the loop flushes itself, so a disk slower than the network
    /// slows the intake instead of piling up work. If the flush fails, nothing of it is
    /// carried out: the sender, unanswered, tries again, and the vendor role is not handed
    /// the batch's intents (the store answers what is durable of them at the next start).
    fn after_flush(&mut self, actions: Vec<Action>, needs_flush: bool) {
        if !needs_flush {
            return self.execute(actions);
        }
        let flushed = |store: &Store, stats: &Stats| match store.flush() {
            Ok(()) => true,
            Err(e) => {
                stats.bump("store-error");
                warn!("a gossip batch could not be made durable: {e}");
                false
            }
        };
        if self.flushing.load(Ordering::SeqCst) >= MAX_FLUSHING {
            if flushed(&self.store, &self.stats) {
                self.execute(actions);
            }
            return;
        }
        self.flushing.fetch_add(1, Ordering::SeqCst);
        let (store, stats) = (self.store.clone(), self.stats.clone());
        let (to_self, flushing) = (self.channels.to_self.clone(), self.flushing.clone());
        tokio::task::spawn_blocking(move || {
            let ok = flushed(&store, &stats);
            flushing.fetch_sub(1, Ordering::SeqCst);
            if ok {
                for action in actions {
                    if to_self.blocking_send(action).is_err() {
                        return;
                    }
                }
            }
        });
    }

    /// Carries out actions, and the actions their results lead to.
    fn execute(&mut self, mut actions: Vec<Action>) {
        actions.reverse();
        while let Some(action) = actions.pop() {
            let mut more = self.carry_out(action);
            more.reverse();
            actions.extend(more);
        }
    }

    fn carry_out(&mut self, action: Action) -> Vec<Action> {
        let now = unix_now();
        match action {
            Action::Verdict {
                message_id,
                source,
                acceptance,
            } => {
                let verdict = acceptance;
                let in_cache = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
                if !in_cache && verdict == gossipsub::MessageAcceptance::Accept {
                    // Validated after gossip's message cache let it go (the loop ran
                    // behind by more than its window): kept here, not forwarded; peers get it
                    // by catch-up.
                    self.stats.bump("validated-too-late");
                }
                if verdict == gossipsub::MessageAcceptance::Reject {
                    self.ban_if_scored_out(source);
                }
            }
            Action::Publish {
                topic,
                bytes,
                by: Publisher::Outbox(id),
            } => {
                let Some(services) = self.hand_over_to() else {
                    let result = self.gossip_publish(topic, bytes);
                    let outbox = &mut self.handlers.outbox;
                    return outbox.published(&self.store, &self.stats, &id, result);
                };
                let services = self.carrying(&topic, services);
                let pacer = &mut self.handlers.pacer;
                return match pacer.hand_over(&services, topic, bytes, id, Instant::now()) {
                    Ok(action) => vec![action],
                    Err(NotNow::Paced) => {
                        self.handlers.outbox.postpone(&id, now);
                        Vec::new()
                    }
                    Err(NotNow::NoServiceNode) => self.handlers.outbox.published(
                        &self.store,
                        &self.stats,
                        &id,
                        Err("no service node connected".into()),
                    ),
                };
            }
            Action::Publish {
                topic,
                bytes,
                by: Publisher::Profile,
            } => {
                let result = self.gossip_publish(topic, bytes);
                if let Some(profile) = self.handlers.profile.as_mut() {
                    profile.published(result, Instant::now());
                }
            }
            Action::Deposit {
                peer,
                request,
                outgoing,
                ..
            } if peer == *self.swarm.local_peer_id() => {
                // The intent chose our own mailbox: no network in between.
                let local = peer;
                if let Some(inbox) = &mut self.handlers.inbox
                    && inbox.is_for(&request)
                    && let MailboxRequest::Deposit { sealed, .. } = &request
                {
                    let (response, mut actions) =
                        inbox.deposit(&self.store, &self.stats, &local, sealed, now);
                    let deposited = response == MailboxResponse::Deposited;
                    actions.extend(deposit_answer(outgoing, response));
                    self.after_flush(actions, deposited);
                    return Vec::new();
                }
                return match self.handlers.mailbox.as_mut() {
                    Some(mailbox) => {
                        let (response, push) = mailbox.request(
                            &self.store,
                            &self.stats,
                            &local,
                            request,
                            now,
                            Instant::now(),
                        );
                        // Answered once the deposit is on disk, as a peer's deposit is.
                        let deposited = response == MailboxResponse::Deposited;
                        self.after_flush(deposit_answer(outgoing, response), deposited);
                        push.into_iter().collect()
                    }
                    None => vec![Action::Unanswered(outgoing)],
                };
            }
            Action::Deposit {
                peer,
                addr,
                request,
                outgoing,
            } => {
                self.swarm.add_peer_address(peer, addr);
                let mailbox = &mut self.swarm.behaviour_mut().mailbox;
                let id = mailbox.send_request(&peer, request);
                let requests = &mut self.handlers.requests.mailbox;
                requests.sent(id, MailboxCall::Deposit(outgoing));
            }
            Action::Fetch {
                peer,
                request,
                then,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .mailbox
                    .send_request(&peer, request);
                self.handlers
                    .requests
                    .mailbox
                    .sent(id, MailboxCall::Fetch(then));
            }
            Action::LightPush {
                peer,
                request,
                outgoing,
            } => {
                let light_push = &mut self.swarm.behaviour_mut().light_push;
                let id = light_push.send_request(&peer, request);
                self.handlers.requests.light_push.sent(id, outgoing);
            }
            Action::RespondMailbox { channel, response } => {
                let mailbox = &mut self.swarm.behaviour_mut().mailbox;
                if mailbox.send_response(channel, response).is_err() {
                    debug!("the peer left before our mailbox answer");
                }
            }
            Action::Relay {
                topic,
                bytes,
                channel,
            } => {
                let response = self.relay(topic, bytes);
                let light_push = &mut self.swarm.behaviour_mut().light_push;
                if light_push.send_response(channel, response).is_err() {
                    debug!("the peer left before our light push answer");
                }
            }
            Action::RespondLightPush { channel, response } => {
                let light_push = &mut self.swarm.behaviour_mut().light_push;
                if light_push.send_response(channel, response).is_err() {
                    debug!("the peer left before our light push answer");
                }
            }
            Action::Push { peer, item } => {
                // Only to an owner still connected; otherwise its next fetch gets the item.
                if self.swarm.is_connected(&peer)
                    && let (Ok(queue), Ok(id)) = (
                        item.queue.as_slice().try_into(),
                        item.id.as_slice().try_into(),
                    )
                {
                    let push = &mut self.swarm.behaviour_mut().mailbox_push;
                    let request = push.send_request(&peer, item);
                    self.handlers.requests.pushes.sent(request, (queue, id));
                }
            }
            Action::RespondPush { channel, answer } => {
                let push = &mut self.swarm.behaviour_mut().mailbox_push;
                if push.send_response(channel, answer).is_err() {
                    debug!("the mailbox left before our answer");
                }
            }
            Action::ToSubscribers { topic, bytes, from } => {
                return self
                    .handlers
                    .filter
                    .accepted(&topic, &bytes, &from, &self.stats);
            }
            Action::FilterPush { peer, push } => {
                let filter_push = &mut self.swarm.behaviour_mut().filter_push;
                filter_push.send_request(&peer, push);
            }
            Action::Subscribe { peer, request } => {
                self.swarm
                    .behaviour_mut()
                    .filter
                    .send_request(&peer, request);
            }
            Action::RespondFilter { channel, response } => {
                let filter = &mut self.swarm.behaviour_mut().filter;
                if filter.send_response(channel, response).is_err() {
                    debug!("the peer left before our filter answer");
                }
            }
            Action::RespondFilterPush { channel, answer } => {
                let filter_push = &mut self.swarm.behaviour_mut().filter_push;
                if filter_push.send_response(channel, answer).is_err() {
                    debug!("the service node left before our answer");
                }
            }
            Action::CatchUp { peer, request } => {
                let shard = request.shard();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .catch_up
                    .send_request(&peer, request);
                self.handlers.requests.catch_up.sent(id, shard);
            }
            Action::RespondCatchUp { channel, response } => {
                let catch_up = &mut self.swarm.behaviour_mut().catch_up;
                if catch_up.send_response(channel, response).is_err() {
                    debug!("the peer left before our catch-up answer");
                }
            }
            Action::Answered { outgoing, answer } => {
                let outbox = &mut self.handlers.outbox;
                return outbox.answered(&self.store, &self.stats, &outgoing, answer, now);
            }
            Action::Unanswered(outgoing) => self.handlers.outbox.failed(&outgoing, now),
            Action::Emit(event) => {
                let _ = self.channels.events.send(event);
            }
            Action::Answer { envelope, intent } => {
                if let Some(vendor) = &self.channels.vendor {
                    vendor.hand_over(envelope, intent, &self.stats);
                }
            }
            Action::Queue(item) => {
                self.handlers.outbox.add(item);
                return self.handlers.outbox.poll(&self.store, now, &Trigger::Timer);
            }
            Action::Deliver(trigger) => {
                return self.handlers.outbox.poll(&self.store, now, &trigger);
            }
            Action::LearnAddress(peer, addr) => {
                if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                    kad.add_address(&peer, addr);
                }
            }
            Action::Dial(addr) => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    warn!("cannot dial {addr}: {e}");
                }
            }
        }
        Vec::new()
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Cast(queued, intent) => {
                self.handlers.expiry.watch(intent.id, queued.expires);
                let connected = PeerId::from_bytes(&intent.reply_to.mailbox)
                    .is_ok_and(|mailbox| self.swarm.is_connected(&mailbox));
                let action = self.handlers.replies.open(&intent, queued, connected);
                self.execute(vec![action]);
            }
            Command::Relationship { queued, watch } => {
                let mut actions = Vec::new();
                if let Some(queue) = watch {
                    let mailbox = queue.mailbox;
                    self.handlers.replies.watch_relationship(queue, unix_now());
                    if self.swarm.is_connected(&mailbox) {
                        actions.extend(self.handlers.replies.fetch_from(&mailbox, unix_now()));
                    }
                }
                actions.extend(queued.into_iter().map(Action::Queue));
                self.execute(actions);
            }
            Command::Withdrawn { queued, unqueued } => {
                self.handlers.outbox.forget(&unqueued);
                self.execute(vec![Action::Queue(queued)]);
            }
            Command::Peers(reply) => {
                let peers = self
                    .candidates()
                    .into_iter()
                    .map(|c| PeerInfo {
                        peer: c.peer.to_string(),
                        score: c.score,
                        service: c.service,
                        inbound: c.inbound,
                        shards: c.shards,
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::PublishRaw(topic, bytes, reply) => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), bytes)
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            Command::HandOver(request, reply) => {
                let local = *self.swarm.local_peer_id();
                let light_push = &self.handlers.light_push;
                let (served, actions) =
                    light_push.take(&self.store, &self.stats, &local, request, unix_now());
                self.execute(actions);
                let result = match served {
                    Served::Relay { topic, bytes } => match self.relay(topic, bytes) {
                        LightPushResponse::Published { .. } => Ok(()),
                        LightPushResponse::Refused { code } => Err(code),
                    },
                    Served::Refused(code) => Err(code),
                };
                let _ = reply.send(result);
            }
            Command::Shutdown => {}
        }
    }

    /// The connected peers, as `vrm peers` and pruning see them.
    fn candidates(&self) -> Vec<Candidate> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let mut shards: std::collections::HashMap<&PeerId, Vec<u8>> = gossipsub
            .all_peers()
            .map(|(peer, topics)| {
                let shards = topics
                    .iter()
                    .filter_map(|t| crate::proto::shard_of_topic(t.as_str()))
                    .collect();
                (peer, shards)
            })
            .collect();
        self.swarm
            .connected_peers()
            .map(|peer| Candidate {
                peer: *peer,
                score: gossipsub.peer_score(peer),
                shards: shards.remove(peer).unwrap_or_default(),
                service: self.services.contains(peer),
                inbound: !self.services.dialed(peer),
            })
            .collect()
    }

    /// Drops the service nodes past the target that this node needs least (see
    /// [`super::pruning`]), saying why in the log and the counters. A light node keeps the
    /// ones holding its mailboxes and its filter subscriptions, and a few others.
    fn prune(&mut self) {
        let (target, needed) = match self.role {
            Role::Service => (self.target_peers, Vec::new()),
            Role::Light => {
                let mut needed = self.handlers.replies.mailboxes();
                needed.extend(self.handlers.subscriptions.subscribed_at());
                (super::pruning::LIGHT_TARGET_PEERS, needed)
            }
        };
        let candidates: Vec<Candidate> = self
            .candidates()
            .into_iter()
            .filter(|c| !needed.contains(&c.peer))
            .collect();
        for (peer, reason) in super::pruning::to_drop(&candidates, target) {
            info!(
                "dropped peer {peer} ({}): over the target of {target} service nodes",
                reason.name()
            );
            self.stats.bump(&format!("pruned:{}", reason.name()));
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Bans `peer` (disconnected, refused for [`super::bans::BAN_FOR`]) if its gossip score
    /// fell below the graylist threshold, saying so in the log and the counters.
    fn ban_if_scored_out(&mut self, peer: PeerId) {
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(&peer) else {
            return;
        };
        let (banned, lifted) = self.bans.judge(peer, score, Instant::now());
        if let Some(lifted) = lifted {
            self.swarm.behaviour_mut().blocked.unblock_peer(lifted);
        }
        if banned {
            info!(
                "banned peer {peer} for {} s: its gossip score fell to {score:.0} (invalid messages)",
                super::bans::BAN_FOR.as_secs()
            );
            self.stats.bump("banned");
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        }
    }

    /// Lets the peers whose ban is over connect again.
    fn lift_bans(&mut self) {
        for peer in self.bans.lift(Instant::now()) {
            debug!("the ban of {peer} is over");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    /// Dials the bootstrap peers this node is not connected to while it has fewer service
    /// nodes than it keeps (a bootstrap address without a peer id: while it has none), so
    /// that a node whose links were cut finds its way back; a light node also asks one of
    /// its service nodes, at random, for others then (`node::peer_exchange`; service nodes
    /// refresh Kademlia every 5 minutes).
    fn redial(&mut self) {
        let target = match self.role {
            Role::Service => self.target_peers,
            Role::Light => super::pruning::LIGHT_TARGET_PEERS,
        };
        let services = self.services.peers().len();
        if services >= target {
            return;
        }
        if self.role == Role::Light
            && self.handlers.peer_exchange.idle()
            && let Some(asked) = self.services.peers().choose(&mut rand::rng())
        {
            let want = (target - services).min(MAX_EXCHANGED);
            let request = PeersRequest {
                want: u8::try_from(want).unwrap_or(u8::MAX),
            };
            let exchange = &mut self.swarm.behaviour_mut().peer_exchange;
            let id = exchange.send_request(asked, request);
            self.handlers.peer_exchange.asked(id, want);
        }
        for addr in self.bootstrap.clone() {
            let dial = match addr.iter().last() {
                // Not one connected or being dialed already.
                Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                _ if services == 0 => DialOpts::unknown_peer_id().address(addr.clone()).build(),
                _ => continue,
            };
            if let Err(e) = self.swarm.dial(dial) {
                debug!("not dialing {addr} again: {e}");
            }
        }
    }

    /// Announces the shards this node carries (once it has peers), and looks up the
    /// providers of each shard it wants that it has too few peers on (`node::discovery`).
    fn discover(&mut self) {
        let scope = &self.handlers.gossip.scope;
        let (carried, wanted) = (scope.carried.clone(), scope.wanted());
        let has_peers = !self.services.peers().is_empty();
        let behaviour = self.swarm.behaviour_mut();
        let Some(kad) = behaviour.kad.as_mut() else {
            return;
        };
        if self.discovery.announce_now(&carried, has_peers) {
            for shard in &carried {
                if let Err(e) = kad.start_providing(shard_key(*shard)) {
                    warn!("cannot announce shard {shard}: {e}");
                }
            }
        }
        let gossipsub = &behaviour.gossipsub;
        let lookups = self
            .discovery
            .lookups(&wanted, |shard| carrying_shard(gossipsub, shard).len());
        for lookup in lookups {
            debug!(
                "looking for {} more carriers of shard {}",
                lookup.wanted, lookup.shard
            );
            self.stats.bump("shard-lookups");
            let query = kad.get_providers(shard_key(lookup.shard));
            self.discovery.started(query, lookup);
        }
    }

    /// A step of a Kademlia query: providers found by a shard lookup are dialed.
    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                let local = *self.swarm.local_peer_id();
                let swarm = &self.swarm;
                let Some(to_dial) = self
                    .discovery
                    .found(id, &providers, &local, |p| swarm.is_connected(p))
                else {
                    return;
                };
                let others = providers.iter().filter(|p| **p != local).count();
                self.stats.add("shard-providers-found", others as u64);
                for peer in to_dial {
                    self.stats.bump("shard-providers-dialed");
                    // Kademlia knows the addresses the lookup brought while it runs.
                    let dial = DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(dial) {
                        debug!("not dialing shard provider {peer}: {e}");
                    }
                }
            }
            kad::QueryResult::StartProviding(Err(e)) => {
                debug!("announcing a shard reached too few nodes: {e}");
            }
            _ => {}
        }
        if step.last {
            self.discovery.finished(&id);
        }
    }

    /// Publishes a light-pushed message as our own: the answer says how many peers got it,
    /// this node among them when its vendor role answers the topic, and its filter
    /// subscribers on the topic.
    fn relay(&mut self, topic: String, bytes: Vec<u8>) -> LightPushResponse {
        let ourselves = usize::from(self.handlers.light_push.answers(&topic))
            + self.handlers.filter.subscribers_on(&topic);
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        let topic = gossipsub::IdentTopic::new(topic);
        let others = match gossipsub.publish(topic.clone(), bytes) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => {
                let hash = topic.hash();
                gossipsub.mesh_peers(&hash).count().max(
                    gossipsub
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&hash))
                        .count(),
                )
            }
            Err(e) => {
                debug!("a light push could not be published: {e}");
                0
            }
        };
        match others + ourselves {
            0 => LightPushResponse::Refused {
                code: NO_PEERS.into(),
            },
            peers => LightPushResponse::Published {
                peers: u32::try_from(peers).unwrap_or(u32::MAX),
            },
        }
    }

    /// The service nodes our own intents and withdrawals are handed to by light push, one
    /// picked per message; `None` to publish them ourselves. A light node uses any (a
    /// vendor's only when no other is connected). A service node uses those that are no
    /// vendor's, so that no vendor among its gossip neighbours can tell the messages start
    /// here, and publishes itself only when none is connected.
    fn hand_over_to(&self) -> Option<Vec<PeerId>> {
        let vendors = self.store.vendor_nodes().unwrap_or_default();
        let services = self.services.peers();
        match self.role {
            Role::Light => Some(peers::prefer_non_vendors(services, |p| *p, &vendors)),
            Role::Service => {
                let neutral: Vec<PeerId> = services
                    .into_iter()
                    .filter(|p| !vendors.contains(p))
                    .collect();
                (!neutral.is_empty()).then_some(neutral)
            }
        }
    }

    /// Of `services`, those that joined `topic` (gossipsub tells every peer what it joins);
    /// all of them when none did: a service node that does not carry a shard still
    /// publishes to the peers it knows on it.
    fn carrying(&self, topic: &str, services: Vec<PeerId>) -> Vec<PeerId> {
        let carrying = self.on_topics(&[topic.to_owned()], &services);
        if carrying.is_empty() {
            services
        } else {
            carrying
        }
    }

    /// Of `peers`, those that joined any of `topics`.
    fn on_topics(&self, topics: &[String], peers: &[PeerId]) -> Vec<PeerId> {
        let hashes: Vec<gossipsub::TopicHash> = topics
            .iter()
            .map(|t| gossipsub::IdentTopic::new(t.as_str()).hash())
            .collect();
        let gossipsub = &self.swarm.behaviour().gossipsub;
        gossipsub
            .all_peers()
            .filter(|(peer, joined)| {
                peers.contains(peer) && joined.iter().any(|t| hashes.contains(t))
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// The filter subscriptions a light vendor asks for now, at the connected service nodes
    /// that carry any of its shards.
    fn renew_subscriptions(&mut self) -> Vec<Action> {
        let topics = self.handlers.subscriptions.topics();
        if topics.is_empty() {
            return Vec::new();
        }
        let carrying = self.on_topics(topics, &self.services.peers());
        let subscriptions = &mut self.handlers.subscriptions;
        subscriptions.renew(&carrying, Instant::now())
    }

    /// Publishes `bytes` on `topic` as our own gossip message (a duplicate is no error).
    fn gossip_publish(&mut self, topic: String, bytes: Vec<u8>) -> Result<(), String> {
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        match gossipsub.publish(gossipsub::IdentTopic::new(topic), bytes) {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Builds the swarm again as a `role` node (AutoNAT changed its verdict on an `auto`
    /// node). The old swarm's connections and listeners close with it; its requests in
    /// flight fail as on a lost connection, so the outbox tries them again.
    fn change_role(&mut self, role: Role) -> Vec<Action> {
        let settings = NetworkSettings {
            role,
            ..self.rebuild.settings.clone()
        };
        // Metrics of the first swarm stay where they are; this one is not counted.
        let built = super::network::build_swarm(self.rebuild.keypair.clone(), &settings, None);
        let swarm = match built {
            Ok(swarm) => swarm,
            Err(e) => {
                warn!(
                    "cannot build the network again as a {role:?} node ({e}); staying {:?}",
                    self.role
                );
                return Vec::new();
            }
        };
        let bound = self.channels.listen.borrow().clone();
        drop(std::mem::replace(&mut self.swarm, swarm));
        let requests = std::mem::take(&mut self.handlers.requests);
        let mut actions: Vec<Action> = requests
            .mailbox
            .into_values()
            .flat_map(mailbox_call_failed)
            .collect();
        for id in requests.light_push.into_values() {
            let failed = Err("the node changed role".to_owned());
            let outbox = &mut self.handlers.outbox;
            actions.extend(outbox.published(&self.store, &self.stats, &id, failed));
        }
        self.role = role;
        self.rebuild.settings = settings;
        self.handlers.pacer = Pacer::default();
        self.handlers.filter = FilterService::default();
        let served = self.handlers.subscriptions.served();
        let scope = Scope::of_role(role, served, &self.rebuild.settings.shards);
        self.handlers.catch_up_service = CatchUpService::new(scope.kept());
        self.handlers.catch_up = CatchUp::new(&scope);
        self.handlers.light_push.scope = scope.clone();
        self.handlers.gossip.scope = scope;
        self.handlers.subscriptions =
            Subscriptions::new(self.handlers.subscriptions.served(), role == Role::Light);
        self.handlers.mailbox =
            (role == Role::Service).then(|| MailboxService::new(&self.rebuild.mailbox));
        self.services = ServiceNodes::with_bootstrap(&self.bootstrap);
        self.discovery = ShardDiscovery::default();
        self.handlers.peer_exchange = PeerExchange::default();
        self.channels
            .services
            .send_replace(self.services.mailboxes());
        self.channels.listen.send_replace(Vec::new());
        self.channels.role.send_replace(role);
        self.pending_listen = super::reachability::listen_again(&self.rebuild.listen, &bound);
        self.listen_pending();
        for peer in self.bans.peers() {
            self.swarm.behaviour_mut().blocked.block_peer(*peer);
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        super::network::subscribe(gossipsub, &self.rebuild.settings);
        actions.extend(self.bootstrap.iter().cloned().map(Action::Dial));
        actions
    }

    /// Binds the listen addresses still waiting (see `pending_listen`).
    fn listen_pending(&mut self) {
        let swarm = &mut self.swarm;
        self.pending_listen
            .retain(|addr| match swarm.listen_on(addr.clone()) {
                Ok(_) => false,
                Err(e) => {
                    debug!("cannot listen on {addr} yet ({e}); trying again");
                    true
                }
            });
    }

    fn publish_profile(&mut self) {
        if let Some(profile) = &self.handlers.profile {
            let listen = self.channels.listen.borrow().clone();
            let peer = *self.swarm.local_peer_id();
            let action = profile.publish(&self.store, &peer, &listen, unix_now());
            self.execute(vec![action]);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.metrics {
            super::metrics::record(metrics, &event);
        }
        let actions = match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!("listening on {address}/p2p/{}", self.swarm.local_peer_id());
                self.channels
                    .listen
                    .send_modify(|addrs| addrs.push(address.clone()));
                vec![Action::Emit(NodeEvent::Listening {
                    addr: address.to_string(),
                })]
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.channels
                    .listen
                    .send_modify(|addrs| addrs.retain(|a| a != &address));
                Vec::new()
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let dialed = endpoint
                    .is_dialer()
                    .then(|| endpoint.get_remote_address().clone());
                self.services.connected(peer_id, dialed.as_ref());
                peers::connected(peer_id, dialed, num_established.get() == 1)
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.services.disconnected(&peer_id);
                self.channels
                    .services
                    .send_replace(self.services.mailboxes());
                if let Some(mailbox) = self.handlers.mailbox.as_mut() {
                    mailbox.disconnected(&peer_id);
                }
                self.handlers.filter.disconnected(&peer_id);
                self.handlers.subscriptions.disconnected(&peer_id);
                self.handlers.catch_up.disconnected(&peer_id);
                vec![Action::Emit(NodeEvent::PeerDisconnected {
                    peer: peer_id.to_string(),
                })]
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!("dialing {peer_id:?} failed: {error}");
                Vec::new()
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error: libp2p::swarm::ListenError::Denied { cause },
                ..
            } => {
                // Over a connection cap (in total, or from one address): counted, not
                // logged one by one (a flood of connections would flood the log).
                self.stats.bump("inbound-denied");
                let why =
                    std::error::Error::source(&cause).map_or(cause.to_string(), |e| e.to_string());
                debug!("refused an inbound connection from {send_back_addr}: {why}");
                Vec::new()
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => Vec::new(),
        };
        self.execute(actions);
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) -> Vec<Action> {
        match event {
            BehaviourEvent::Gossipsub(event) => self.on_gossipsub(event),
            BehaviourEvent::LightPush(event) => self.on_light_push(event),
            BehaviourEvent::Mailbox(event) => self.on_mailbox(event),
            BehaviourEvent::MailboxPush(event) => self.on_mailbox_push(event),
            BehaviourEvent::Filter(event) => self.on_filter(event),
            BehaviourEvent::FilterPush(event) => self.on_filter_push(event),
            BehaviourEvent::CatchUp(event) => self.on_catch_up(event),
            BehaviourEvent::PeerExchange(event) => {
                self.on_peer_exchange(event);
                Vec::new()
            }
            BehaviourEvent::Kad(event) => {
                self.on_kad(event);
                Vec::new()
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let mut actions = Vec::new();
                if self
                    .services
                    .identified(peer_id, &info.protocols, &info.listen_addrs)
                {
                    self.channels
                        .services
                        .send_replace(self.services.mailboxes());
                    actions.extend(self.handlers.replies.fetch_from(&peer_id, unix_now()));
                    actions.push(Action::Deliver(Trigger::ServiceNode));
                    actions.extend(self.renew_subscriptions());
                }
                actions.extend(peers::identified(peer_id, info.listen_addrs));
                actions
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                peers::discovered(found, |peer| self.swarm.is_connected(peer))
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(failure @ (ping::Failure::Timeout | ping::Failure::Other { .. })),
            }) => {
                // A link that went silent (a cut cable, a partition) holds its connection
                // open for as long as TCP retries: close it, so that the peer is dialed again
                // and caught up from once the link is back.
                debug!("ping to {peer} failed ({failure}): closing that connection");
                self.stats.bump("ping-failed");
                self.swarm.close_connection(connection);
                Vec::new()
            }
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                let verdict = match &new {
                    autonat::NatStatus::Public(addr) => format!("reachable from outside at {addr}"),
                    autonat::NatStatus::Private => "not reachable from outside".into(),
                    autonat::NatStatus::Unknown => "of unknown reachability".into(),
                };
                match self.rebuild.role_after(&new, self.role) {
                    Some(role) => {
                        info!("AutoNAT finds this node {verdict}: it now runs as a {role} node");
                        self.change_role(role)
                    }
                    None => {
                        info!(
                            "AutoNAT finds this node {verdict} (it stays a {} node)",
                            self.role
                        );
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    fn on_light_push(
        &mut self,
        event: request_response::Event<LightPushRequest, LightPushResponse>,
    ) -> Vec<Action> {
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let (served, mut actions) = self.handlers.light_push.serve(
                    &self.store,
                    &self.stats,
                    &peer,
                    request,
                    unix_now(),
                    Instant::now(),
                );
                actions.push(match served {
                    Served::Relay { topic, bytes } => Action::Relay {
                        topic,
                        bytes,
                        channel,
                    },
                    Served::Refused(code) => Action::RespondLightPush {
                        channel,
                        response: LightPushResponse::Refused { code },
                    },
                });
                actions
            }
            Exchange::Response {
                peer,
                request_id,
                response,
            } => {
                let Some(id) = self.handlers.requests.light_push.finished(&request_id) else {
                    return Vec::new();
                };
                let result = match response {
                    LightPushResponse::Published { .. } => Ok(()),
                    LightPushResponse::Refused { code } => Err(code),
                };
                let rate_limited = matches!(&result, Err(code) if code == RATE_LIMITED);
                self.handlers
                    .pacer
                    .finished(&peer, rate_limited, Instant::now());
                if rate_limited {
                    self.handlers.outbox.postpone(&id, unix_now());
                    return Vec::new();
                }
                let outbox = &mut self.handlers.outbox;
                outbox.published(&self.store, &self.stats, &id, result)
            }
            Exchange::Failed {
                peer,
                request_id,
                error,
            } => {
                let Some(id) = self.handlers.requests.light_push.finished(&request_id) else {
                    return Vec::new();
                };
                self.handlers.pacer.finished(&peer, false, Instant::now());
                let outbox = &mut self.handlers.outbox;
                outbox.published(&self.store, &self.stats, &id, Err(error.to_string()))
            }
            Exchange::Other => Vec::new(),
        }
    }

    fn on_mailbox(
        &mut self,
        event: request_response::Event<MailboxRequest, MailboxResponse>,
    ) -> Vec<Action> {
        let now = unix_now();
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let Some((request, channel)) = self.forward(&peer, request, channel) else {
                    return Vec::new();
                };
                if let Some(inbox) = &mut self.handlers.inbox
                    && inbox.is_for(&request)
                    && let MailboxRequest::Deposit { sealed, .. } = &request
                {
                    let (response, mut actions) =
                        inbox.deposit(&self.store, &self.stats, &peer, sealed, now);
                    let deposited = response == MailboxResponse::Deposited;
                    actions.insert(0, Action::RespondMailbox { channel, response });
                    self.after_flush(actions, deposited);
                    return Vec::new();
                }
                let Some(mailbox) = self.handlers.mailbox.as_mut() else {
                    return Vec::new();
                };
                let (response, push) = mailbox.request(
                    &self.store,
                    &self.stats,
                    &peer,
                    request,
                    now,
                    Instant::now(),
                );
                // A deposit is acknowledged once it is on disk; the push to its owner
                // acknowledges nothing and goes at once.
                let deposited = response == MailboxResponse::Deposited;
                self.after_flush(
                    vec![Action::RespondMailbox { channel, response }],
                    deposited,
                );
                push.into_iter().collect()
            }
            Exchange::Response {
                peer,
                request_id,
                response,
            } => {
                if let Some(channel) = self.handlers.requests.forwards.finished(&request_id) {
                    return vec![Action::RespondMailbox { channel, response }];
                }
                match (
                    self.handlers.requests.mailbox.finished(&request_id),
                    response,
                ) {
                    (Some(MailboxCall::Deposit(outgoing)), response) => {
                        deposit_answer(outgoing, response)
                    }
                    (Some(MailboxCall::Fetch(then)), MailboxResponse::Items { items, .. }) => {
                        let took = !items.is_empty();
                        let replies = &mut self.handlers.replies;
                        let mut actions =
                            replies.received(&self.store, &self.stats, &peer, items, now);
                        actions.extend(then.map(|queued| Action::Queue(*queued)));
                        // The next fetch acknowledges what this one stored: after its flush.
                        self.after_flush(actions, took);
                        Vec::new()
                    }
                    (Some(call), response) => {
                        debug!("mailbox {peer} answered a fetch with {response:?}");
                        mailbox_call_failed(call)
                    }
                    (None, _) => Vec::new(),
                }
            }
            Exchange::Failed {
                peer,
                request_id,
                error,
            } => {
                if let Some(channel) = self.handlers.requests.forwards.finished(&request_id) {
                    debug!("a forward to {peer} failed: {error}");
                    let response = MailboxResponse::Refused {
                        code: UNREACHABLE.to_owned(),
                    };
                    return vec![Action::RespondMailbox { channel, response }];
                }
                match self.handlers.requests.mailbox.finished(&request_id) {
                    Some(call) => {
                        debug!("{call:?} at {peer} failed: {error}");
                        mailbox_call_failed(call)
                    }
                    None => Vec::new(),
                }
            }
            Exchange::Other => Vec::new(),
        }
    }

    /// A forward asked of this service node: sent on as a deposit to its target mailbox,
    /// whose answer goes back to the asker. A forward to this node itself comes back as the
    /// deposit it carries, to be handled here; anything else comes back as it came.
    fn forward(
        &mut self,
        peer: &PeerId,
        request: MailboxRequest,
        channel: request_response::ResponseChannel<MailboxResponse>,
    ) -> Option<(
        MailboxRequest,
        request_response::ResponseChannel<MailboxResponse>,
    )> {
        let MailboxRequest::Forward {
            mailbox,
            addr,
            queue,
            sealed,
        } = request
        else {
            return Some((request, channel));
        };
        let deposit = MailboxRequest::Deposit { queue, sealed };
        let admitted = match self.handlers.mailbox.as_mut() {
            Some(service) => service.admit(peer, Instant::now()),
            None => return None, // light nodes forward nothing; the asker times out
        };
        let target = (
            PeerId::from_bytes(&mailbox),
            Multiaddr::try_from(addr.to_vec()),
        );
        let code = match target {
            _ if !admitted => RATE_LIMITED,
            (Ok(target), _) if target == *self.swarm.local_peer_id() => {
                return Some((deposit, channel));
            }
            _ if self.handlers.requests.forwards.count() >= MAX_FORWARDS => RATE_LIMITED,
            (Ok(target), Ok(addr)) => {
                self.swarm.add_peer_address(target, addr);
                let mailbox = &mut self.swarm.behaviour_mut().mailbox;
                let id = mailbox.send_request(&target, deposit);
                self.handlers.requests.forwards.sent(id, channel);
                self.stats.bump("mailbox-forwarded");
                return None;
            }
            _ => BAD_REQUEST,
        };
        let response = MailboxResponse::Refused {
            code: code.to_owned(),
        };
        self.execute(vec![Action::RespondMailbox { channel, response }]);
        None
    }

    fn on_mailbox_push(
        &mut self,
        event: request_response::Event<MailboxItem, PushAnswer>,
    ) -> Vec<Action> {
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let replies = &mut self.handlers.replies;
                let (answer, mut actions) =
                    replies.pushed(&self.store, &self.stats, &peer, &request, unix_now());
                // The answer lets the mailbox drop the item: only once it is on disk here.
                let stored = answer.stored;
                actions.insert(0, Action::RespondPush { channel, answer });
                self.after_flush(actions, stored);
                Vec::new()
            }
            Exchange::Response {
                request_id,
                response,
                ..
            } => {
                if let Some((queue, id)) = self.handlers.requests.pushes.finished(&request_id)
                    && response.stored
                    && let Some(mailbox) = &self.handlers.mailbox
                {
                    mailbox.pushed(&self.store, &queue, &id);
                }
                Vec::new()
            }
            Exchange::Failed { request_id, .. } => {
                self.handlers.requests.pushes.finished(&request_id);
                Vec::new()
            }
            Exchange::Other => Vec::new(),
        }
    }

    fn on_filter(
        &mut self,
        event: request_response::Event<FilterRequest, FilterResponse>,
    ) -> Vec<Action> {
        let subscriptions = &mut self.handlers.subscriptions;
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let response = self.handlers.filter.subscribe(peer, request, &self.stats);
                vec![Action::RespondFilter { channel, response }]
            }
            Exchange::Response { peer, response, .. } => {
                subscriptions.answered(&peer, Ok(response), &self.stats, Instant::now());
                Vec::new()
            }
            Exchange::Failed { peer, error, .. } => {
                let failed = Err(error.to_string());
                subscriptions.answered(&peer, failed, &self.stats, Instant::now());
                Vec::new()
            }
            Exchange::Other => Vec::new(),
        }
    }

    fn on_filter_push(
        &mut self,
        event: request_response::Event<FilterPush, PushAnswer>,
    ) -> Vec<Action> {
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let subscriptions = &mut self.handlers.subscriptions;
                let (answer, mut actions) = subscriptions.pushed(
                    &self.store,
                    &self.stats,
                    &peer,
                    request,
                    unix_now(),
                    Instant::now(),
                );
                actions.insert(0, Action::RespondFilterPush { channel, answer });
                actions
            }
            Exchange::Response { peer, .. } | Exchange::Failed { peer, .. } => {
                self.handlers.filter.push_finished(&peer);
                Vec::new()
            }
            Exchange::Other => Vec::new(),
        }
    }

    /// A peer-exchange request served (service node), or its answer dialed (light node).
    fn on_peer_exchange(&mut self, event: request_response::Event<PeersRequest, PeersResponse>) {
        match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let now = Instant::now();
                let settled = now.checked_sub(NAMED_AFTER).unwrap_or(now);
                let connected = self.services.connected_since(settled);
                let vendors = self.store.vendor_nodes().unwrap_or_default();
                let exchange = &mut self.handlers.peer_exchange;
                let response = exchange.serve(&peer, &request, connected, &vendors, now);
                let behaviour = &mut self.swarm.behaviour_mut().peer_exchange;
                if behaviour.send_response(channel, response).is_err() {
                    debug!("the peer left before our peer-exchange answer");
                }
            }
            Exchange::Response {
                request_id,
                response,
                ..
            } => {
                let local = *self.swarm.local_peer_id();
                let swarm = &self.swarm;
                let vendors = self.store.vendor_nodes().unwrap_or_default();
                let skip = |p: &PeerId| swarm.is_connected(p) || vendors.contains(p);
                let exchange = &mut self.handlers.peer_exchange;
                let to_dial = exchange.answered(&request_id, response, &local, skip);
                for (peer, addr) in to_dial {
                    self.stats.bump("exchange-dialed");
                    let dial = DialOpts::peer_id(peer)
                        .addresses(vec![addr])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(dial) {
                        debug!("not dialing exchanged peer {peer}: {e}");
                    }
                }
            }
            Exchange::Failed {
                request_id, error, ..
            } => {
                debug!("peer exchange failed: {error}");
                self.handlers.peer_exchange.failed(&request_id);
            }
            Exchange::Other => {}
        }
    }

    fn on_catch_up(
        &mut self,
        event: request_response::Event<CatchUpRequest, CatchUpResponse>,
    ) -> Vec<Action> {
        let now = unix_now();
        let (peer, request_id, answer) = match Exchange::from(event) {
            Exchange::Request {
                peer,
                request,
                channel,
            } => {
                let service = &mut self.handlers.catch_up_service;
                let response = service.serve(
                    &self.store,
                    &self.stats,
                    &peer,
                    request,
                    now,
                    Instant::now(),
                );
                return vec![Action::RespondCatchUp { channel, response }];
            }
            Exchange::Response {
                peer,
                request_id,
                response,
            } => (peer, request_id, Ok(response)),
            Exchange::Failed {
                peer,
                request_id,
                error,
            } => (peer, request_id, Err(error.to_string())),
            Exchange::Other => return Vec::new(),
        };
        let Some(shard) = self.handlers.requests.catch_up.finished(&request_id) else {
            return Vec::new();
        };
        let scope = &self.handlers.gossip.scope;
        let catch_up = &mut self.handlers.catch_up;
        catch_up.answered(&self.store, scope, &self.stats, peer, shard, answer, now)
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) -> Vec<Action> {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.handlers.gossip.received(
                propagation_source,
                message_id,
                message,
                Instant::now(),
                &self.stats,
            ),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!("{peer_id} subscribed to {topic}");
                let mut actions = Vec::new();
                if let Some(shard) = catch_up_shard(topic.as_str()) {
                    let catch_up = &mut self.handlers.catch_up;
                    actions.extend(catch_up.joined(peer_id, shard, unix_now()));
                }
                if topic.as_str() == DIRECTORY_TOPIC
                    && self
                        .handlers
                        .profile
                        .as_mut()
                        .is_some_and(|p| p.wants_to_greet(peer_id, Instant::now()))
                {
                    self.publish_profile();
                }
                actions.push(Action::Deliver(Trigger::Topic(topic.into_string())));
                actions
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                // Messages gossip gave up sending to this peer (its queue was full, or they
                // waited too long): counted, so an operator sees what the mesh dropped.
                let dropped = failed_messages.priority + failed_messages.non_priority;
                debug!("gossip dropped {dropped} messages to {peer_id}, a slow peer");
                self.stats.add("gossip-dropped", dropped as u64);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// The connected peers that joined `shard`'s topic (service nodes that carry it).
/// For the directory, the service nodes on it: those that joined a shard too (every peer
/// reads the directory, only service nodes keep it).
fn carrying_shard(gossipsub: &gossipsub::Behaviour, shard: u8) -> Vec<PeerId> {
    let hash = gossipsub::IdentTopic::new(crate::proto::catch_up_topic(shard)).hash();
    let service = |topics: &[&gossipsub::TopicHash]| {
        shard != crate::proto::DIRECTORY_SHARD
            || topics
                .iter()
                .any(|t| crate::proto::is_shard_topic(t.as_str()))
    };
    gossipsub
        .all_peers()
        .filter(|(_, topics)| topics.contains(&&hash) && service(topics))
        .map(|(peer, _)| *peer)
        .collect()
}

/// A request-response event as the handlers above take it apart.
enum Exchange<Req, Resp> {
    /// A peer asks this node.
    Request {
        peer: PeerId,
        request: Req,
        channel: request_response::ResponseChannel<Resp>,
    },
    /// A peer answered this node's request.
    Response {
        peer: PeerId,
        request_id: request_response::OutboundRequestId,
        response: Resp,
    },
    /// This node's request got no answer.
    Failed {
        peer: PeerId,
        request_id: request_response::OutboundRequestId,
        error: request_response::OutboundFailure,
    },
    /// Nothing to act on (an answer sent, a request from a peer that failed).
    Other,
}

impl<Req, Resp> From<request_response::Event<Req, Resp>> for Exchange<Req, Resp> {
    fn from(event: request_response::Event<Req, Resp>) -> Self {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => Exchange::Request {
                peer,
                request,
                channel,
            },
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => Exchange::Response {
                peer,
                request_id,
                response,
            },
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => Exchange::Failed {
                peer,
                request_id,
                error,
            },
            _ => Exchange::Other,
        }
    }
}

/// What a mailbox request that got no (useful) answer leads to: a deposit is retried, the
/// publication waiting for a fetch goes out anyway (the queue opens with the next fetch).
fn mailbox_call_failed(call: MailboxCall) -> Vec<Action> {
    match call {
        MailboxCall::Deposit(outgoing) => vec![Action::Unanswered(outgoing)],
        MailboxCall::Fetch(then) => then
            .map(|queued| Action::Queue(*queued))
            .into_iter()
            .collect(),
    }
}

/// What a mailbox's answer to the deposit of `outgoing` means for the outbox.
fn deposit_answer(outgoing: MessageId, response: MailboxResponse) -> Vec<Action> {
    match response {
        MailboxResponse::Deposited => vec![Action::Answered {
            outgoing,
            answer: Ok(()),
        }],
        MailboxResponse::Refused { code } => vec![Action::Answered {
            outgoing,
            answer: Err(code),
        }],
        MailboxResponse::Items { .. } => {
            debug!("a mailbox answered the deposit of {outgoing} with items");
            vec![Action::Unanswered(outgoing)]
        }
    }
}
