//! `role = "auto"`: a node that follows AutoNAT. It starts as a light node (a laptop behind a
//! NAT is the normal case, and a light node reveals the least), listens so that AutoNAT can
//! try to dial it back, and serves as a service node while AutoNAT finds it reachable from
//! outside. A change of role rebuilds the swarm (the protocols served, what identify tells,
//! the connection limits and the Kademlia mode are fixed when a swarm is built): connections
//! drop and are made again, what was in flight fails as on a lost connection and is retried
//! from the outbox; nothing stored changes.
//!
//! AutoNAT itself keeps a verdict until it has lost its confidence in it (up to three
//! contrary probes, 90 s apart), so one failed dial-back does not flip a node; a rebuilt
//! swarm starts with no verdict and probes again 15 s after it starts.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, autonat};

use super::network::NetworkSettings;
use crate::config::{MailboxConfig, Role};

/// What an `auto` node needs to build its swarm again in another role.
#[derive(Clone)]
pub struct Rebuild {
    /// The node's network key (its PeerId stays).
    pub keypair: libp2p::identity::Keypair,
    /// The settings of the current swarm.
    pub settings: NetworkSettings,
    /// The addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// The mailbox's bounds, once a service node.
    pub mailbox: MailboxConfig,
    /// Whether the node follows AutoNAT at all.
    pub auto_role: bool,
}

impl std::fmt::Debug for Rebuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild")
            .field("settings", &self.settings)
            .field("listen", &self.listen)
            .field("auto_role", &self.auto_role)
            .finish_non_exhaustive()
    }
}

impl Rebuild {
    /// The role a node now in `current` should take after AutoNAT's new verdict `status`:
    /// `None` to stay (not an `auto` node, the same role, or no verdict).
    pub fn role_after(&self, status: &autonat::NatStatus, current: Role) -> Option<Role> {
        let wanted = match status {
            autonat::NatStatus::Public(_) => Role::Service,
            autonat::NatStatus::Private => Role::Light,
            autonat::NatStatus::Unknown => return None,
        };
        (self.auto_role && wanted != current).then_some(wanted)
    }
}

/// The addresses to listen on again after a change of role: each of `configured`, with the
/// port the system gave it when it asked for any (`tcp/0`, `udp/0`), taken from the
/// addresses the old swarm was `bound` to (a port another listener asked for, or already
/// took, is not it); so peers that know the node's address still reach it.
pub fn listen_again(configured: &[Multiaddr], bound: &[Multiaddr]) -> Vec<Multiaddr> {
    let port = |addr: &Multiaddr| addr.iter().find_map(|p| port_of(&p));
    let mut taken: Vec<u16> = configured.iter().filter_map(port).collect();
    configured
        .iter()
        .map(|wanted| {
            let Some(i) = wanted.iter().position(|p| port_of(&p) == Some(0)) else {
                return wanted.clone();
            };
            let given = bound
                .iter()
                .filter(|b| same_listener(wanted, b))
                .filter_map(port)
                .find(|p| !taken.contains(p));
            let Some(given) = given else {
                return wanted.clone();
            };
            taken.push(given);
            wanted
                .replace(i, |p| match p {
                    Protocol::Tcp(_) => Some(Protocol::Tcp(given)),
                    _ => Some(Protocol::Udp(given)),
                })
                .unwrap_or_else(|| wanted.clone())
        })
        .collect()
}

fn port_of(p: &Protocol<'_>) -> Option<u16> {
    match p {
        Protocol::Tcp(port) | Protocol::Udp(port) => Some(*port),
        _ => None,
    }
}

/// Whether `bound` is an address the listener asked for as `wanted` got: the same
/// protocols, the same IP unless `wanted` asked for any, any port.
fn same_listener(wanted: &Multiaddr, bound: &Multiaddr) -> bool {
    wanted.len() == bound.len()
        && wanted
            .iter()
            .zip(bound.iter())
            .all(|(w, b)| match (&w, &b) {
                (Protocol::Ip4(w), Protocol::Ip4(b)) => w.is_unspecified() || w == b,
                (Protocol::Ip6(w), Protocol::Ip6(b)) => w.is_unspecified() || w == b,
                (Protocol::Tcp(w), Protocol::Tcp(b)) | (Protocol::Udp(w), Protocol::Udp(b)) => {
                    *w == 0 || w == b
                }
                _ => w == b,
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rebuild(auto_role: bool) -> Rebuild {
        Rebuild {
            keypair: libp2p::identity::Keypair::generate_ed25519(),
            settings: NetworkSettings {
                role: Role::Light,
                shards: Vec::new(),
                mdns: false,
                kademlia: false,
                vendor: false,
                max_connections: 8,
                heartbeat: Duration::from_secs(1),
                autonat_private_addresses: false,
                max_inbound_per_ip: 8,
                loopback_exempt: false,
            },
            listen: Vec::new(),
            mailbox: MailboxConfig::default(),
            auto_role,
        }
    }

    #[test]
    fn a_listener_that_asked_for_any_port_keeps_the_one_it_got() {
        let addrs =
            |list: &[&str]| -> Vec<Multiaddr> { list.iter().map(|a| a.parse().unwrap()).collect() };
        let configured = addrs(&[
            "/ip4/0.0.0.0/tcp/0",
            "/ip4/127.0.0.1/udp/0/quic-v1",
            "/ip4/127.0.0.1/tcp/4470",
        ]);
        let bound = addrs(&[
            "/ip4/127.0.0.1/tcp/4470",
            "/ip4/10.0.0.2/tcp/38001",
            "/ip4/127.0.0.1/tcp/38001",
            "/ip4/127.0.0.1/udp/51000/quic-v1",
        ]);
        assert_eq!(
            listen_again(&configured, &bound),
            addrs(&[
                "/ip4/0.0.0.0/tcp/38001",
                "/ip4/127.0.0.1/udp/51000/quic-v1",
                "/ip4/127.0.0.1/tcp/4470",
            ])
        );
        assert_eq!(
            listen_again(&configured, &[]),
            configured,
            "nothing bound yet"
        );
    }

    #[test]
    fn an_auto_node_serves_while_reachable_and_is_light_otherwise() {
        let public = autonat::NatStatus::Public("/ip4/1.2.3.4/tcp/4470".parse().unwrap());
        let (private, unknown) = (autonat::NatStatus::Private, autonat::NatStatus::Unknown);
        let auto = rebuild(true);
        assert_eq!(auto.role_after(&public, Role::Light), Some(Role::Service));
        assert_eq!(auto.role_after(&public, Role::Service), None);
        assert_eq!(auto.role_after(&private, Role::Service), Some(Role::Light));
        assert_eq!(auto.role_after(&private, Role::Light), None);
        assert_eq!(auto.role_after(&unknown, Role::Service), None);
        assert_eq!(auto.role_after(&unknown, Role::Light), None);
        let fixed = rebuild(false);
        assert_eq!(fixed.role_after(&public, Role::Light), None);
        assert_eq!(fixed.role_after(&private, Role::Service), None);
    }
}
