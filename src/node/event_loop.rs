//! The task that owns the swarm. It does one thing: wait for whatever comes next, hand it
//! to the handler that owns that concern, and carry out the [`Action`]s the handler returns.
//! No rule lives here.
//!
//! ```text
//!   NodeHandle ──Command──┐                           ┌──▶ gossipsub (verdicts, publish)
//!   Answering ──Action────┤                           ├──▶ request-response (send, respond)
//!   swarm events ─────────┼──▶ EventLoop ──dispatch──▶┤    NodeEvent broadcast
//!   timers ───────────────┘        │                  └──▶ Answering (intents to answer)
//!                                  ▼
//!        gossip::GossipIntake   direct::Direct   outbox::Outbox   expiry::Expiry
//!        peers                  profile::ProfilePublisher          (each returns Actions)
//! ```
//!
//! Gossip messages that are ready together are queued and ingested as one batch (one
//! signature batch, one flush); their verdicts go to gossipsub before anything else, so
//! relaying never waits for the vendor role, which runs in its own task
//! ([`super::answering`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, gossipsub, identify, mdns, request_response};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use super::action::{Action, Publisher, Trigger};
use super::answering::{AnswerInput, VendorInbox};
use super::direct::Direct;
use super::events::{NodeEvent, Stats};
use super::expiry::Expiry;
use super::gossip::GossipIntake;
use super::handle::{Command, PeerInfo};
use super::network::{Behaviour, BehaviourEvent, DirectRequest};
use super::outbox::Outbox;
use super::peers;
use super::profile::ProfilePublisher;
use crate::clock::unix_now;
use crate::proto::DIRECTORY_TOPIC;
use crate::store::{Store, Subject};

/// How often due outbox entries and expiries are looked for.
const TICK: Duration = Duration::from_millis(500);
/// How often Kademlia refreshes its routing table.
const KAD_BOOTSTRAP: Duration = Duration::from_secs(300);

/// The channels the loop talks through.
pub struct Channels {
    /// Commands from the handle.
    pub commands: mpsc::Receiver<Command>,
    /// Actions from tasks beside the loop (the vendor role).
    pub inbox: mpsc::Receiver<Action>,
    /// Events for the program.
    pub events: broadcast::Sender<NodeEvent>,
    /// The current listen addresses, for the handle.
    pub listen: watch::Sender<Vec<Multiaddr>>,
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
    /// Direct requests, inbound and ours.
    pub direct: Direct<request_response::OutboundRequestId>,
}

/// The swarm task; [`super::start`] assembles it.
pub struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) channels: Channels,
    pub(super) handlers: Handlers,
    pub(super) store: Arc<Store>,
    pub(super) stats: Arc<Stats>,
    pub(super) metrics: Option<libp2p::metrics::Metrics>,
    /// Addresses dialed at start.
    pub(super) bootstrap: Vec<Multiaddr>,
    /// How often a vendor re-publishes its profile.
    pub(super) profile_interval: Duration,
}

impl EventLoop {
    /// Runs until shutdown.
    pub async fn run(mut self) {
        super::network::subscribe_all(&mut self.swarm.behaviour_mut().gossipsub);
        for addr in std::mem::take(&mut self.bootstrap) {
            self.execute(vec![Action::Dial(addr)]);
        }
        let mut tick = tokio::time::interval(TICK);
        let mut profile_tick = tokio::time::interval(self.profile_interval);
        let mut kad_tick = tokio::time::interval(KAD_BOOTSTRAP);
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
                    let actions = self.handlers.gossip.ingest(&self.store, &self.stats, unix_now());
                    self.execute(actions);
                }
                command = self.channels.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(action) = self.channels.inbox.recv() => self.execute(vec![action]),
                _ = tick.tick() => {
                    let now = unix_now();
                    let mut actions = self.handlers.outbox.poll(&self.store, now, &Trigger::Timer);
                    actions.extend(self.handlers.expiry.tick(&self.store, now));
                    self.execute(actions);
                }
                _ = profile_tick.tick(), if vendor => self.publish_profile(),
                _ = kad_tick.tick() => {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        let _ = kad.bootstrap();
                    }
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
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
            }
            Action::Publish { topic, bytes, by } => {
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(gossipsub::IdentTopic::new(topic), bytes)
                {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    Err(e) => Err(e.to_string()),
                };
                match by {
                    Publisher::Outbox(id) => {
                        let outbox = &mut self.handlers.outbox;
                        return outbox.published(&self.store, &self.stats, &id, result);
                    }
                    Publisher::Profile => {
                        if let Some(profile) = self.handlers.profile.as_mut() {
                            profile.published(result, Instant::now());
                        }
                    }
                }
            }
            Action::Send {
                peer,
                addrs,
                bytes,
                outgoing,
            } => {
                for addr in addrs {
                    self.swarm.add_peer_address(peer, addr);
                }
                let direct = &mut self.swarm.behaviour_mut().direct;
                let request = direct.send_request(&peer, DirectRequest(bytes));
                self.handlers.direct.sent(request, outgoing);
            }
            Action::Respond { channel, response } => {
                let direct = &mut self.swarm.behaviour_mut().direct;
                if direct.send_response(channel, response).is_err() {
                    debug!("the peer left before our response");
                }
            }
            Action::Answered { outgoing, response } => {
                let outbox = &mut self.handlers.outbox;
                return outbox.answered(&self.store, &self.stats, &outgoing, response, now);
            }
            Action::Unanswered(outgoing) => self.handlers.outbox.failed(&outgoing),
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
            Command::Cast(queued) => {
                if let Subject::Intent { intent } = queued.subject {
                    self.handlers.expiry.watch(intent, queued.expires);
                }
                self.execute(vec![Action::Queue(queued)]);
            }
            Command::Withdrawn { queued, unqueued } => {
                self.handlers.outbox.forget(&unqueued);
                self.execute(vec![Action::Queue(queued)]);
            }
            Command::Peers(reply) => {
                let gossipsub = &self.swarm.behaviour().gossipsub;
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|peer| PeerInfo {
                        peer: peer.to_string(),
                        score: gossipsub.peer_score(peer),
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
            Command::Shutdown => {}
        }
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
                peers::connected(peer_id, dialed, num_established.get() == 1)
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => vec![Action::Emit(NodeEvent::PeerDisconnected {
                peer: peer_id.to_string(),
            })],
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!("dialing {peer_id:?} failed: {error}");
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
            BehaviourEvent::Direct(event) => {
                let direct = &mut self.handlers.direct;
                direct.event(event, &self.store, &self.stats, unix_now())
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                peers::identified(peer_id, info.listen_addrs)
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                peers::discovered(found, |peer| self.swarm.is_connected(peer))
            }
            _ => Vec::new(),
        }
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
                if topic.as_str() == DIRECTORY_TOPIC
                    && self
                        .handlers
                        .profile
                        .as_ref()
                        .is_some_and(|p| p.wants_to_greet(Instant::now()))
                {
                    self.publish_profile();
                }
                vec![Action::Deliver(Trigger::Topic(topic.into_string()))]
            }
            _ => Vec::new(),
        }
    }
}
