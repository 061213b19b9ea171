//! The baseline of the latency bench: bare libp2p swarms (TCP, Noise, yamux, gossipsub and a
//! CBOR request-response protocol, nothing of vrm) wired in the same topology as the vrm
//! network, doing the same hops as a cast and its first offer:
//!
//! 1. the caster hands the message to a random non-vendor neighbour (a light push),
//! 2. that neighbour publishes it on one gossipsub topic, which carries it to the vendors,
//! 3. every vendor sends a reply to the mailbox named in the message (a random non-vendor
//!    neighbour of the caster), dialing it when not connected (a deposit),
//! 4. the mailbox forwards the reply to the caster (a mailbox push).
//!
//! Messages are as large as an intent envelope and an offer; nothing is signed, verified
//! or stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, gossipsub, noise, request_response, tcp, yamux};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// What travels: a cast (hand-over and gossip), a reply (deposit and push).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Wire {
    /// Hand this to gossip (at the neighbour) or answer it (at a vendor).
    Cast {
        nonce: u64,
        caster: Vec<u8>,
        mailbox: Vec<u8>,
        mailbox_addr: Vec<u8>,
        #[serde(with = "serde_bytes")]
        padding: Vec<u8>,
    },
    /// A vendor's reply, for the mailbox to push to the caster.
    Reply {
        nonce: u64,
        caster: Vec<u8>,
        #[serde(with = "serde_bytes")]
        padding: Vec<u8>,
    },
}

#[derive(NetworkBehaviour)]
struct Bare {
    gossipsub: gossipsub::Behaviour,
    rr: request_response::cbor::Behaviour<Wire, bool>,
}

/// Instructions to one node's task.
enum Order {
    Dial(Multiaddr),
    /// Cast through `via`, with replies to `mailbox` at `mailbox_addr`; report the first
    /// reply's arrival.
    Cast {
        nonce: u64,
        via: PeerId,
        mailbox: PeerId,
        mailbox_addr: Multiaddr,
        first_reply: oneshot::Sender<()>,
    },
    Connected(oneshot::Sender<Vec<PeerId>>),
    /// Wait here for the reply numbered `nonce` (sent with [`Order::Reply`]).
    Await {
        nonce: u64,
        arrived: oneshot::Sender<()>,
    },
    /// Send a reply numbered `nonce` for `caster` to the mailbox `mailbox` at
    /// `mailbox_addr`, which pushes it on (a deposit and its push, nothing before them).
    Reply {
        nonce: u64,
        caster: PeerId,
        mailbox: PeerId,
        mailbox_addr: Multiaddr,
    },
    /// Publish a cast-sized message numbered `nonce` on `topic` directly; answer whether
    /// gossip took it.
    Publish {
        nonce: u64,
        topic: String,
        published: oneshot::Sender<bool>,
    },
    Stop,
}

/// One bare node.
struct BareNode {
    id: PeerId,
    addr: Multiaddr,
    orders: mpsc::Sender<Order>,
    /// When each message (by nonce) first arrived here by gossip.
    arrivals: Arc<Mutex<HashMap<u64, Instant>>>,
}

/// A network of bare nodes.
pub struct BareNetwork {
    nodes: Vec<BareNode>,
    vendors: Vec<usize>,
}

/// The topic of the latency network.
pub const LATENCY_TOPIC: &str = "books";

fn swarm() -> libp2p::Swarm<Bare> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| {
            // As vrm configures it: anonymous, message id = hash of the data, same heartbeat.
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .message_id_fn(|m| {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    m.data.hash(&mut h);
                    gossipsub::MessageId::from(h.finish().to_be_bytes().to_vec())
                })
                .heartbeat_interval(Duration::from_millis(500))
                .build()
                .expect("config");
            Bare {
                gossipsub: gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Anonymous,
                    config,
                )
                .expect("gossipsub"),
                rr: request_response::cbor::Behaviour::new(
                    [(
                        StreamProtocol::new("/bare-rr"),
                        request_response::ProtocolSupport::Full,
                    )],
                    request_response::Config::default(),
                ),
            }
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build()
}

fn peer(bytes: &[u8]) -> Option<PeerId> {
    PeerId::from_bytes(bytes).ok()
}

/// What a node does with what gossip brings it.
#[derive(Clone)]
struct Role {
    /// Answers casts (the latency network's vendors).
    answers: bool,
    /// Notes when each message arrived.
    arrivals: Arc<Mutex<HashMap<u64, Instant>>>,
}

/// Runs one node until told to stop.
async fn run(mut swarm: libp2p::Swarm<Bare>, role: Role, mut orders: mpsc::Receiver<Order>) {
    let mut waiting: HashMap<u64, oneshot::Sender<()>> = HashMap::new();
    loop {
        tokio::select! {
            order = orders.recv() => match order {
                Some(Order::Dial(addr)) => { let _ = swarm.dial(addr); }
                Some(Order::Cast { nonce, via, mailbox, mailbox_addr, first_reply }) => {
                    waiting.insert(nonce, first_reply);
                    let wire = Wire::Cast {
                        nonce,
                        caster: swarm.local_peer_id().to_bytes(),
                        mailbox: mailbox.to_bytes(),
                        mailbox_addr: mailbox_addr.to_vec(),
                        padding: vec![0; 450],
                    };
                    swarm.behaviour_mut().rr.send_request(&via, wire);
                }
                Some(Order::Connected(tx)) => {
                    let _ = tx.send(swarm.connected_peers().copied().collect());
                }
                Some(Order::Await { nonce, arrived }) => {
                    waiting.insert(nonce, arrived);
                }
                Some(Order::Reply { nonce, caster, mailbox, mailbox_addr }) => {
                    swarm.add_peer_address(mailbox, mailbox_addr);
                    let reply = Wire::Reply { nonce, caster: caster.to_bytes(), padding: vec![0; 700] };
                    swarm.behaviour_mut().rr.send_request(&mailbox, reply);
                }
                Some(Order::Publish { nonce, topic, published }) => {
                    let wire = Wire::Cast {
                        nonce,
                        caster: Vec::new(),
                        mailbox: Vec::new(),
                        mailbox_addr: Vec::new(),
                        padding: vec![0; 520],
                    };
                    let bytes = serde_json::to_vec(&wire).expect("encode");
                    let topic = gossipsub::IdentTopic::new(topic);
                    let ok = swarm.behaviour_mut().gossipsub.publish(topic, bytes).is_ok();
                    let _ = published.send(ok);
                }
                Some(Order::Stop) | None => return,
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BareEvent::Rr(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. }, ..
                })) => {
                    let _ = swarm.behaviour_mut().rr.send_response(channel, true);
                    match request {
                        // A hand-over: publish it.
                        wire @ Wire::Cast { .. } => {
                            let bytes = serde_json::to_vec(&wire).expect("encode");
                            let topic = gossipsub::IdentTopic::new(LATENCY_TOPIC);
                            let _ = swarm.behaviour_mut().gossipsub.publish(topic, bytes);
                        }
                        // A deposit: push it to the caster; or the push itself.
                        Wire::Reply { nonce, caster, padding } => {
                            if caster == swarm.local_peer_id().to_bytes() {
                                if let Some(tx) = waiting.remove(&nonce) {
                                    let _ = tx.send(());
                                }
                            } else if let Some(caster_id) = peer(&caster) {
                                let push = Wire::Reply { nonce, caster, padding };
                                swarm.behaviour_mut().rr.send_request(&caster_id, push);
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(BareEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    let Ok(Wire::Cast { nonce, caster, mailbox, mailbox_addr, .. }) =
                        serde_json::from_slice::<Wire>(&message.data) else { continue };
                    role.arrivals.lock().expect("arrivals").entry(nonce).or_insert_with(Instant::now);
                    if !role.answers {
                        continue;
                    }
                    let (Some(mailbox), Ok(addr)) = (peer(&mailbox), Multiaddr::try_from(mailbox_addr)) else { continue };
                    swarm.add_peer_address(mailbox, addr);
                    let reply = Wire::Reply { nonce, caster, padding: vec![0; 700] };
                    swarm.behaviour_mut().rr.send_request(&mailbox, reply);
                }
                _ => {}
            },
        }
    }
}

impl BareNetwork {
    /// Starts `size` bare nodes, node `i` dialing `dials(i)` and joining `topics(i)`; the
    /// `vendors` among them answer casts when `answering`; waits `settle` for meshes to form.
    pub async fn start(
        size: usize,
        dials: impl Fn(usize) -> Vec<usize>,
        topics: impl Fn(usize) -> Vec<String>,
        vendors: &[usize],
        answering: bool,
        settle: Duration,
    ) -> BareNetwork {
        let mut nodes: Vec<BareNode> = Vec::new();
        for i in 0..size {
            let mut swarm = swarm();
            for topic in topics(i) {
                swarm
                    .behaviour_mut()
                    .gossipsub
                    .subscribe(&gossipsub::IdentTopic::new(topic))
                    .expect("subscribe");
            }
            swarm
                .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
                .expect("listen");
            let addr = loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    break address;
                }
            };
            let id = *swarm.local_peer_id();
            let (orders, rx) = mpsc::channel(64);
            let role = Role {
                answers: answering && vendors.contains(&i),
                arrivals: Arc::default(),
            };
            let arrivals = role.arrivals.clone();
            tokio::spawn(run(swarm, role, rx));
            for j in dials(i) {
                let _ = orders.send(Order::Dial(nodes[j].addr.clone())).await;
            }
            nodes.push(BareNode {
                id,
                addr,
                orders,
                arrivals,
            });
        }
        tokio::time::sleep(settle).await;
        BareNetwork {
            nodes,
            vendors: vendors.to_vec(),
        }
    }

    /// The neighbours of node `i` a cast goes through: those that are no vendor, as vrm
    /// prefers them, else any.
    async fn neighbours(&self, i: usize) -> Vec<usize> {
        let (tx, rx) = oneshot::channel();
        let _ = self.nodes[i].orders.send(Order::Connected(tx)).await;
        let peers = rx.await.unwrap_or_default();
        let connected: Vec<usize> = (0..self.nodes.len())
            .filter(|j| peers.contains(&self.nodes[*j].id))
            .collect();
        let neutral: Vec<usize> = connected
            .iter()
            .copied()
            .filter(|j| !self.vendors.contains(j))
            .collect();
        if neutral.is_empty() {
            connected
        } else {
            neutral
        }
    }

    /// Casts once from each of `casters` in turn (nodes by index): the sorted times to the
    /// first reply in ms, and how many got none within 10 s.
    pub async fn cast_to_first_reply(&self, casters: &[usize]) -> (Vec<f64>, usize) {
        let mut times = Vec::new();
        let mut missed = 0;
        for (n, &c) in casters.iter().enumerate() {
            let neighbours = self.neighbours(c).await;
            if neighbours.is_empty() {
                missed += 1;
                continue;
            }
            let pick = |k: usize| neighbours[(n * 7 + k) % neighbours.len()];
            let (via, mailbox) = (pick(0), pick(3));
            let (tx, rx) = oneshot::channel();
            let started = Instant::now();
            let order = Order::Cast {
                nonce: n as u64,
                via: self.nodes[via].id,
                mailbox: self.nodes[mailbox].id,
                mailbox_addr: self.nodes[mailbox].addr.clone(),
                first_reply: tx,
            };
            let _ = self.nodes[c].orders.send(order).await;
            match tokio::time::timeout(Duration::from_secs(10), rx).await {
                Ok(Ok(())) => times.push(started.elapsed().as_secs_f64() * 1000.0),
                _ => missed += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        (times, missed)
    }

    /// `n` replies one at a time from node `from` to node `to` through the mailbox node
    /// `via` (a deposit, then its push): the sorted times in ms, and how many did not
    /// arrive within 10 s.
    pub async fn reply_through(
        &self,
        from: usize,
        via: usize,
        to: usize,
        n: usize,
    ) -> (Vec<f64>, usize) {
        let mut times = Vec::new();
        let mut missed = 0;
        for k in 0..n {
            let nonce = 1_000_000 + k as u64;
            let (tx, rx) = oneshot::channel();
            let _ = self.nodes[to]
                .orders
                .send(Order::Await { nonce, arrived: tx })
                .await;
            let started = Instant::now();
            let order = Order::Reply {
                nonce,
                caster: self.nodes[to].id,
                mailbox: self.nodes[via].id,
                mailbox_addr: self.nodes[via].addr.clone(),
            };
            let _ = self.nodes[from].orders.send(order).await;
            match tokio::time::timeout(Duration::from_secs(10), rx).await {
                Ok(Ok(())) => times.push(started.elapsed().as_secs_f64() * 1000.0),
                _ => missed += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        (times, missed)
    }

    /// Publishes from every node of `publishers` at `rate` per second in total for `secs`,
    /// on `topics` in turn: each message's nonce, topic and when its publication was asked.
    pub async fn publish_at(
        &self,
        publishers: &[usize],
        topics: &[String],
        secs: u64,
        rate: u64,
    ) -> Vec<(u64, String, Instant)> {
        let interval = Duration::from_secs_f64(publishers.len() as f64 / rate as f64);
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = tokio::task::JoinSet::new();
        for (k, &p) in publishers.iter().enumerate() {
            let orders = self.nodes[p].orders.clone();
            let topics = topics.to_vec();
            tasks.spawn(async move {
                let mut sent = Vec::new();
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                for n in 0u64.. {
                    tick.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let nonce = ((k as u64) << 40) | n;
                    let topic = topics[(k + n as usize) % topics.len()].clone();
                    let (tx, rx) = oneshot::channel();
                    let at = Instant::now();
                    let order = Order::Publish {
                        nonce,
                        topic: topic.clone(),
                        published: tx,
                    };
                    if orders.send(order).await.is_err() {
                        break;
                    }
                    if rx.await == Ok(true) {
                        sent.push((nonce, topic, at));
                    }
                }
                sent
            });
        }
        let mut sent = Vec::new();
        while let Some(done) = tasks.join_next().await {
            sent.extend(done.expect("publisher"));
        }
        sent
    }

    /// When each message arrived at node `i`, by nonce.
    pub fn arrivals(&self, i: usize) -> HashMap<u64, Instant> {
        self.nodes[i].arrivals.lock().expect("arrivals").clone()
    }

    /// Stops every node.
    pub async fn stop(self) {
        for node in &self.nodes {
            let _ = node.orders.send(Order::Stop).await;
        }
    }
}
