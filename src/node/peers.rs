//! Peers: what connections, identify and mDNS tell the node about who is where. It feeds
//! peer routing, dials what mDNS finds, tells the outbox when a peer it waits for arrives,
//! and reports connections as events.

use libp2p::{Multiaddr, PeerId};
use tracing::{debug, info};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
