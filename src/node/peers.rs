//! Peers: what connections, identify and mDNS tell the node about who is where. It feeds
//! peer routing, dials what mDNS finds, tells the outbox when a peer it waits for arrives,
//! reports connections as events, and keeps the list of connected service nodes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tracing::{debug, info, warn};

use crate::proto::service::MAILBOX_PROTOCOL;

use super::action::{Action, Trigger};
use super::events::NodeEvent;

/// A connection to `peer` opened; `dialed` is the address we dialed it at, `first` whether
/// it is the first connection to it.
pub fn connected(peer: PeerId, dialed: Option<Multiaddr>, first: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(addr) = dialed {
        actions.push(Action::LearnAddress(peer, addr));
    }
    if first {
        info!("connected to {peer}");
        actions.push(Action::Emit(NodeEvent::PeerConnected {
            peer: peer.to_string(),
        }));
        actions.push(Action::Deliver(Trigger::Peer(peer)));
    }
    actions
}

/// Identify told us where `peer` listens.
pub fn identified(peer: PeerId, listen_addrs: Vec<Multiaddr>) -> Vec<Action> {
    listen_addrs
        .into_iter()
        .map(|addr| Action::LearnAddress(peer, addr))
        .collect()
}

/// mDNS found peers on the local network: dial those not connected yet.
pub fn discovered(
    found: Vec<(PeerId, Multiaddr)>,
    is_connected: impl Fn(&PeerId) -> bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for (peer, addr) in found {
        if !is_connected(&peer) {
            debug!("mDNS found {peer} at {addr}");
            actions.push(Action::LearnAddress(peer, addr.clone()));
            actions.push(Action::Dial(addr));
        }
    }
    actions
}

/// The connected service nodes (peers that serve mailboxes), each with the address this
/// node knows it by: where a light node publishes, and the mailboxes its intents can name.
/// While none is connected, the bootstrap peers stand in as mailboxes (a laptop casts
/// offline; the intent goes out once one answers).
#[derive(Debug, Default)]
pub struct ServiceNodes {
    /// Bootstrap peers (addresses with a `/p2p/` part).
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Connected service nodes and their address, if one is known.
    nodes: HashMap<PeerId, Option<Multiaddr>>,
    /// The address each connected peer was dialed at.
    dialed: HashMap<PeerId, Multiaddr>,
    /// When each connected service node was first identified.
    since: HashMap<PeerId, Instant>,
}

impl ServiceNodes {
    /// Service nodes known from the bootstrap addresses (those that name their peer).
    pub fn with_bootstrap(addrs: &[Multiaddr]) -> ServiceNodes {
        let bootstrap = addrs
            .iter()
            .filter_map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Some((peer, without_peer_id(addr))),
                _ => None,
            })
            .collect();
        ServiceNodes {
            bootstrap,
            ..ServiceNodes::default()
        }
    }

    /// A connection to `peer` opened; we dialed it at `dialed`, if we did.
    pub fn connected(&mut self, peer: PeerId, dialed: Option<&Multiaddr>) {
        if let Some(addr) = dialed {
            self.dialed.insert(peer, without_peer_id(addr));
        }
    }

    /// Identify told us what `peer` speaks and where it listens. True if it is a service
    /// node we did not know yet.
    pub fn identified(
        &mut self,
        peer: PeerId,
        protocols: &[StreamProtocol],
        listen: &[Multiaddr],
    ) -> bool {
        if !protocols.iter().any(|p| p.as_ref() == MAILBOX_PROTOCOL) {
            return false;
        }
        let addr = self
            .dialed
            .get(&peer)
            .cloned()
            .or_else(|| listen.first().map(without_peer_id));
        self.since.entry(peer).or_insert_with(Instant::now);
        self.nodes.insert(peer, addr).is_none()
    }

    /// The last connection to `peer` closed.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.nodes.remove(peer);
        self.dialed.remove(peer);
        self.since.remove(peer);
    }

    /// Whether this node dialed `peer` (false: `peer` opened the connection).
    pub fn dialed(&self, peer: &PeerId) -> bool {
        self.dialed.contains_key(peer)
    }

    /// Whether `peer` is a connected service node.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.nodes.contains_key(peer)
    }

    /// The connected service nodes.
    pub fn peers(&self) -> Vec<PeerId> {
        self.nodes.keys().copied().collect()
    }

    /// The connected service nodes whose address is known, with it.
    pub fn with_addresses(&self) -> Vec<(PeerId, Multiaddr)> {
        self.nodes
            .iter()
            .filter_map(|(peer, addr)| Some((*peer, addr.clone()?)))
            .collect()
    }

    /// [`ServiceNodes::with_addresses`], of those connected since `before` or earlier.
    pub fn connected_since(&self, before: Instant) -> Vec<(PeerId, Multiaddr)> {
        self.with_addresses()
            .into_iter()
            .filter(|(peer, _)| self.since.get(peer).is_some_and(|t| *t <= before))
            .collect()
    }

    /// Possible mailboxes: the connected service nodes with a known address, or while
    /// there are none, the bootstrap peers.
    pub fn mailboxes(&self) -> Vec<(PeerId, Multiaddr)> {
        let connected = self.with_addresses();
        if connected.is_empty() {
            self.bootstrap.clone()
        } else {
            connected
        }
    }
}

/// The warning that only vendors' nodes are connected is logged at most this often.
const VENDOR_WARNING_EVERY_SECS: u64 = 60;
static LAST_VENDOR_WARNING: AtomicU64 = AtomicU64::new(0);

/// The candidates not known as vendors' nodes, or all of them when every one is (with a
/// warning: the vendor that serves the intent can then tell it is this node's).
pub fn prefer_non_vendors<T>(
    candidates: Vec<T>,
    peer: impl Fn(&T) -> PeerId,
    vendors: &HashSet<PeerId>,
) -> Vec<T> {
    let (vendor_nodes, neutral): (Vec<T>, Vec<T>) = candidates
        .into_iter()
        .partition(|c| vendors.contains(&peer(c)));
    if neutral.is_empty() && !vendor_nodes.is_empty() {
        let now = crate::clock::unix_now();
        if now >= LAST_VENDOR_WARNING.load(Ordering::Relaxed) + VENDOR_WARNING_EVERY_SECS {
            LAST_VENDOR_WARNING.store(now, Ordering::Relaxed);
            warn!(
                "the only service nodes connected are vendors' nodes: the one that serves an intent can tell it is yours; connect to a service node that is not a vendor's (logged at most every {VENDOR_WARNING_EVERY_SECS} s)"
            );
        }
        return vendor_nodes;
    }
    neutral
}

fn without_peer_id(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_nodes_are_told_apart_by_how_long_they_have_been_connected() {
        let mut nodes = ServiceNodes::default();
        let (old, new) = (PeerId::random(), PeerId::random());
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let mailbox = [StreamProtocol::new(MAILBOX_PROTOCOL)];
        nodes.identified(old, &mailbox, std::slice::from_ref(&addr));
        let between = Instant::now();
        nodes.identified(new, &mailbox, std::slice::from_ref(&addr));
        nodes.identified(old, &mailbox, std::slice::from_ref(&addr));
        assert_eq!(nodes.connected_since(between), vec![(old, addr.clone())]);
        assert_eq!(nodes.connected_since(Instant::now()).len(), 2);
        nodes.disconnected(&old);
        nodes.identified(old, &mailbox, std::slice::from_ref(&addr));
        assert!(
            nodes.connected_since(between).is_empty(),
            "a new connection"
        );
    }

    #[test]
    fn a_first_connection_is_announced_and_hurries_the_outbox() {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let actions = connected(peer, Some(addr.clone()), true);
        assert!(matches!(&actions[0], Action::LearnAddress(p, a) if *p == peer && *a == addr));
        assert!(matches!(
            &actions[1],
            Action::Emit(NodeEvent::PeerConnected { .. })
        ));
        assert!(matches!(&actions[2], Action::Deliver(Trigger::Peer(p)) if *p == peer));
        let again = connected(peer, None, false);
        assert!(again.is_empty(), "a second connection is not news");
    }

    #[test]
    fn mdns_dials_only_peers_not_connected() {
        let (known, new) = (PeerId::random(), PeerId::random());
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4002".parse().unwrap();
        let actions = discovered(vec![(known, addr.clone()), (new, addr.clone())], |p| {
            *p == known
        });
        assert_eq!(actions.len(), 2);
        assert!(matches!(&actions[0], Action::LearnAddress(p, _) if *p == new));
        assert!(matches!(&actions[1], Action::Dial(a) if *a == addr));
    }

    #[test]
    fn a_service_node_is_known_by_the_address_it_was_dialed_at_until_it_leaves() {
        let mut nodes = ServiceNodes::default();
        let (service, light) = (PeerId::random(), PeerId::random());
        let dialed: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{service}")
            .parse()
            .unwrap();
        let listen: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        let mailbox = [StreamProtocol::new(MAILBOX_PROTOCOL)];
        let listen = [listen];
        nodes.connected(service, Some(&dialed));
        nodes.connected(light, None);
        assert!(nodes.identified(service, &mailbox, &listen));
        assert!(!nodes.identified(service, &mailbox, &listen), "known");
        assert!(!nodes.identified(light, &[StreamProtocol::new("/ipfs/ping/1.0.0")], &[]));
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(nodes.mailboxes(), vec![(service, tcp)]);
        assert!(nodes.contains(&service) && !nodes.contains(&light));
        nodes.disconnected(&service);
        assert!(nodes.mailboxes().is_empty() && nodes.peers().is_empty());
    }

    #[test]
    fn bootstrap_peers_stand_in_as_mailboxes_while_no_service_node_is_connected() {
        let boot = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let anonymous: Multiaddr = "/ip4/127.0.0.1/tcp/4002".parse().unwrap();
        let mut nodes =
            ServiceNodes::with_bootstrap(&[addr.clone().with(Protocol::P2p(boot)), anonymous]);
        assert_eq!(
            nodes.mailboxes(),
            vec![(boot, addr)],
            "only those naming their peer"
        );
        assert!(
            nodes.peers().is_empty(),
            "not connected: nothing to publish through"
        );
        let service = PeerId::random();
        let dialed: Multiaddr = "/ip4/127.0.0.1/tcp/4003".parse().unwrap();
        nodes.connected(service, Some(&dialed));
        nodes.identified(service, &[StreamProtocol::new(MAILBOX_PROTOCOL)], &[]);
        assert_eq!(nodes.mailboxes(), vec![(service, dialed)]);
    }

    #[test]
    fn vendors_nodes_are_chosen_only_when_no_other_service_node_is_there() {
        let (a, b, v) = (PeerId::random(), PeerId::random(), PeerId::random());
        let vendors: HashSet<PeerId> = [v].into();
        let mut some = prefer_non_vendors(vec![a, v, b], |p| *p, &vendors);
        some.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(some, want);
        assert_eq!(prefer_non_vendors(vec![v], |p| *p, &vendors), vec![v]);
        assert!(prefer_non_vendors(Vec::<PeerId>::new(), |p| *p, &vendors).is_empty());
    }
}
