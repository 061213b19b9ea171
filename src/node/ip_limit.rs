//! A cap on inbound connections per remote IP address. Many peers behind one address is
//! the cheapest way to pose as many nodes (and fill a service node's slots), so a node takes
//! at most `max_per_ip` inbound connections from one address, counting those still in their
//! handshake. Loopback counts like any other address unless the node is told it runs in a
//! test network on one machine (`loopback_exempt`). Connections the node dials itself are
//! not counted: it chose them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Inbound connections one IP address may hold by default.
pub const DEFAULT_MAX_PER_IP: u32 = 8;

/// Why an inbound connection was refused.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {max} inbound connections to this node")]
pub struct TooManyFromOneAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its cap.
    pub max: u32,
}

/// The behaviour that keeps the cap.
#[derive(Debug)]
pub struct IpLimit {
    max_per_ip: u32,
    loopback_exempt: bool,
    /// The address of each inbound connection counted (pending or established).
    counted: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, u32>,
}

impl IpLimit {
    /// At most `max_per_ip` inbound connections per address; loopback uncounted when
    /// `loopback_exempt`.
    pub fn new(max_per_ip: u32, loopback_exempt: bool) -> Self {
        IpLimit {
            max_per_ip,
            loopback_exempt,
            counted: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Counts an inbound connection from `remote`, or refuses it.
    fn admit(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(()); // a relayed connection: the relay's own limits apply
        };
        if self.loopback_exempt && ip.is_loopback() {
            return Ok(());
        }
        let held = self.per_ip.entry(ip).or_default();
        if *held >= self.max_per_ip {
            tracing::debug!("refused an inbound connection from {ip}: at its cap");
            return Err(ConnectionDenied::new(TooManyFromOneAddress {
                ip,
                max: self.max_per_ip,
            }));
        }
        *held += 1;
        self.counted.insert(id, ip);
        Ok(())
    }

    /// A counted connection ended (or never got established).
    fn release(&mut self, id: ConnectionId) {
        let Some(ip) = self.counted.remove(&id) else {
            return;
        };
        if let Some(held) = self.per_ip.get_mut(&ip) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Inbound connections counted for `ip`.
    pub fn held_by(&self, ip: &IpAddr) -> u32 {
        self.per_ip.get(ip).copied().unwrap_or(0)
    }
}

/// The IP address a multiaddr starts with, if any (not on a relayed connection).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        return None;
    }
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

impl NetworkBehaviour for IpLimit {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4470").parse().unwrap()
    }

    #[test]
    fn one_address_gets_at_most_its_cap_and_a_closed_connection_frees_a_slot() {
        let mut limit = IpLimit::new(2, false);
        let (a, b, c) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        assert!(limit.admit(a, &from("203.0.113.7")).is_ok());
        assert!(limit.admit(b, &from("203.0.113.7")).is_ok());
        let refused = limit.admit(c, &from("203.0.113.7")).unwrap_err();
        let why = refused.downcast_ref::<TooManyFromOneAddress>().unwrap();
        assert_eq!(
            why.to_string(),
            "203.0.113.7 already holds 2 inbound connections to this node"
        );
        assert!(
            limit.admit(c, &from("203.0.113.8")).is_ok(),
            "another address"
        );
        limit.release(a);
        assert_eq!(limit.held_by(&"203.0.113.7".parse().unwrap()), 1);
        assert!(
            limit
                .admit(ConnectionId::new_unchecked(4), &from("203.0.113.7"))
                .is_ok()
        );
        limit.release(ConnectionId::new_unchecked(99)); // never counted: nothing changes
        assert_eq!(limit.held_by(&"203.0.113.7".parse().unwrap()), 2);
    }

    #[test]
    fn loopback_is_counted_unless_exempt_and_relayed_connections_never() {
        let mut strict = IpLimit::new(1, false);
        assert!(
            strict
                .admit(ConnectionId::new_unchecked(1), &from("127.0.0.1"))
                .is_ok()
        );
        assert!(
            strict
                .admit(ConnectionId::new_unchecked(2), &from("127.0.0.1"))
                .is_err()
        );
        let mut test_network = IpLimit::new(1, true);
        for n in 0..10 {
            assert!(
                test_network
                    .admit(ConnectionId::new_unchecked(n), &from("127.0.0.1"))
                    .is_ok()
            );
        }
        let relayed: Multiaddr = "/ip4/203.0.113.7/tcp/4470/p2p/12D3KooWAHoEkEqnKzM5PXFygh2movVBCSX3k8tDsT2cneU68Gyt/p2p-circuit".parse().unwrap();
        for n in 0..3 {
            assert!(
                strict
                    .admit(ConnectionId::new_unchecked(10 + n), &relayed)
                    .is_ok()
            );
        }
    }
}
