//! Peer exchange: how a light node finds more service nodes without Kademlia.
//!
//! A light node with fewer service nodes than it keeps asks one of them (`/vrm/2/peers`)
//! for others; the service node answers with up to [`MAX_EXCHANGED`] of the service nodes
//! it has been connected to for [`NAMED_AFTER`] at least, each with the address it knows it
//! by. It never names a light node (who uses a service node is no one else's business) nor
//! a vendor's node (a person's node should not show itself to vendors); the light node skips
//! vendors' nodes it knows of too. The wait lets a vendor's profile arrive before its node
//! could be named. The light node dials those it is not connected to, no more than it
//! lacks, and asks again at its next prune tick if that was not enough.
//!
//! Kademlia did this at a high price: rust-libp2p starts a full bootstrap (the 20 closest
//! peers, then a lookup per bucket) whenever a peer enters a routing table of fewer than
//! 20, and a light node connects to every peer its lookups ask. At 240 persons and 60
//! service nodes every person connected to every service node and pruned 56 of them again;
//! that churn alone saturated the 2-core machine.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::request_response::OutboundRequestId;
use libp2p::{Multiaddr, PeerId};
use rand::seq::SliceRandom;
use serde_bytes::ByteBuf;
use tracing::debug;

use crate::proto::service::{
    BAD_REQUEST, MAX_EXCHANGED, MAX_RECORD_FIELD_BYTES, PeersRequest, PeersResponse, RATE_LIMITED,
    ServiceRecord,
};
use crate::ratelimit::RateLimiter;

/// Peer-exchange requests a service node answers per peer per second.
pub const SERVE_RATE: f64 = 0.2;
/// Burst of peer-exchange requests a service node answers from one peer.
pub const SERVE_BURST: u32 = 3;
/// How long a service node must have been connected before it is named.
pub const NAMED_AFTER: Duration = Duration::from_secs(5);

/// Both sides of peer exchange: the answers a service node gives, and a light node's one
/// request at a time.
#[derive(Debug)]
pub struct PeerExchange {
    per_peer: RateLimiter<PeerId>,
    /// The request in flight, and how many service nodes it asked for.
    asking: Option<(OutboundRequestId, usize)>,
}

impl Default for PeerExchange {
    fn default() -> Self {
        PeerExchange {
            per_peer: RateLimiter::new(SERVE_RATE, SERVE_BURST),
            asking: None,
        }
    }
}

impl PeerExchange {
    /// A service node's answer to `asker`: up to `want` of the `connected` service nodes
    /// (with their addresses; those connected for [`NAMED_AFTER`]), in random order, neither
    /// the asker nor `vendors`' nodes among them.
    pub fn serve(
        &mut self,
        asker: &PeerId,
        request: &PeersRequest,
        connected: Vec<(PeerId, Multiaddr)>,
        vendors: &HashSet<PeerId>,
        now: Instant,
    ) -> PeersResponse {
        let want = usize::from(request.want);
        if want == 0 || want > MAX_EXCHANGED {
            return refused(BAD_REQUEST);
        }
        if !self.per_peer.allow(asker, now) {
            return refused(RATE_LIMITED);
        }
        let mut others: Vec<(PeerId, Multiaddr)> = connected
            .into_iter()
            .filter(|(p, _)| p != asker && !vendors.contains(p))
            .collect();
        others.shuffle(&mut rand::rng());
        let peers = others
            .into_iter()
            .map(|(peer, addr)| ServiceRecord {
                peer: ByteBuf::from(peer.to_bytes()),
                addr: ByteBuf::from(addr.to_vec()),
            })
            .filter(|r| r.peer.len() <= MAX_RECORD_FIELD_BYTES)
            .filter(|r| r.addr.len() <= MAX_RECORD_FIELD_BYTES)
            .take(want)
            .collect();
        PeersResponse::Peers { peers }
    }

    /// Whether a light node may ask now: not while a request is in flight.
    pub fn idle(&self) -> bool {
        self.asking.is_none()
    }

    /// A light node asked for `want` service nodes with request `id`.
    pub fn asked(&mut self, id: OutboundRequestId, want: usize) {
        self.asking = Some((id, want));
    }

    /// The answer to request `id`: the service nodes to dial (well-formed records, not this
    /// node, none that `skip` says to: connected, a vendor's), at most as many as were
    /// asked for; nothing for an answer to another request.
    pub fn answered(
        &mut self,
        id: &OutboundRequestId,
        response: PeersResponse,
        local: &PeerId,
        skip: impl Fn(&PeerId) -> bool,
    ) -> Vec<(PeerId, Multiaddr)> {
        let Some((_, want)) = self.asking.filter(|(asked, _)| asked == id) else {
            return Vec::new();
        };
        self.asking = None;
        to_dial(response, want, local, skip)
    }

    /// Request `id` got no answer.
    pub fn failed(&mut self, id: &OutboundRequestId) {
        if self.asking.is_some_and(|(asked, _)| asked == *id) {
            self.asking = None;
        }
    }
}

/// The service nodes of an answer to dial: well-formed records, not `local`, none that
/// `skip` says to, at most `want`.
pub fn to_dial(
    response: PeersResponse,
    want: usize,
    local: &PeerId,
    skip: impl Fn(&PeerId) -> bool,
) -> Vec<(PeerId, Multiaddr)> {
    let records = match response {
        PeersResponse::Peers { peers } => peers,
        PeersResponse::Refused { code } => {
            debug!("peer exchange refused: {code}");
            return Vec::new();
        }
    };
    records
        .iter()
        .filter_map(|record| {
            let peer = PeerId::from_bytes(&record.peer).ok()?;
            let addr = Multiaddr::try_from(record.addr.to_vec()).ok()?;
            Some((peer, addr))
        })
        .filter(|(peer, _)| peer != local && !skip(peer))
        .take(want)
        .collect()
}

fn refused(code: &str) -> PeersResponse {
    PeersResponse::Refused { code: code.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_nodes(n: usize) -> Vec<(PeerId, Multiaddr)> {
        (0..n)
            .map(|i| {
                let addr = format!("/ip4/127.0.0.1/tcp/{}", 4000 + i).parse().unwrap();
                (PeerId::random(), addr)
            })
            .collect()
    }

    /// Request ids come only from a request-response behaviour: send requests on one.
    fn request_ids(n: usize) -> Vec<OutboundRequestId> {
        use libp2p::{StreamProtocol, request_response};
        let mut behaviour = request_response::cbor::Behaviour::with_codec(
            crate::node::network::peer_exchange_codec(),
            [(
                StreamProtocol::new(crate::proto::service::PEERS_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default(),
        );
        (0..n)
            .map(|_| behaviour.send_request(&PeerId::random(), PeersRequest { want: 1 }))
            .collect()
    }

    fn records(response: PeersResponse) -> Vec<ServiceRecord> {
        match response {
            PeersResponse::Peers { peers } => peers,
            PeersResponse::Refused { code } => panic!("refused: {code}"),
        }
    }

    #[test]
    fn a_service_node_names_others_up_to_what_was_asked_never_the_asker() {
        let mut exchange = PeerExchange::default();
        let nodes = service_nodes(12);
        let asker = nodes[0].0;
        let now = Instant::now();
        let answer = records(exchange.serve(
            &asker,
            &PeersRequest { want: 3 },
            nodes.clone(),
            &HashSet::new(),
            now,
        ));
        assert_eq!(answer.len(), 3);
        let all = records(exchange.serve(
            &asker,
            &PeersRequest { want: 8 },
            nodes.clone(),
            &HashSet::new(),
            now,
        ));
        assert_eq!(all.len(), MAX_EXCHANGED);
        for record in &all {
            let peer = PeerId::from_bytes(&record.peer).unwrap();
            assert_ne!(peer, asker);
            let addr = Multiaddr::try_from(record.addr.to_vec()).unwrap();
            assert!(
                nodes.contains(&(peer, addr)),
                "a connected node, with its address"
            );
        }
        let few = records(exchange.serve(
            &asker,
            &PeersRequest { want: 8 },
            nodes[..2].to_vec(),
            &HashSet::new(),
            now,
        ));
        assert_eq!(few.len(), 1, "the other one");
        let vendors = HashSet::from([nodes[1].0, nodes[2].0]);
        let three = nodes[..4].to_vec();
        let not_vendors = records(PeerExchange::default().serve(
            &asker,
            &PeersRequest { want: 8 },
            three,
            &vendors,
            now,
        ));
        let named: Vec<Vec<u8>> = not_vendors.iter().map(|r| r.peer.to_vec()).collect();
        assert_eq!(named, vec![nodes[3].0.to_bytes()], "no vendor's node");
    }

    #[test]
    fn a_service_node_refuses_bad_and_too_frequent_requests() {
        let mut exchange = PeerExchange::default();
        let asker = PeerId::random();
        let now = Instant::now();
        for want in [0, MAX_EXCHANGED as u8 + 1] {
            let answer = exchange.serve(
                &asker,
                &PeersRequest { want },
                service_nodes(2),
                &HashSet::new(),
                now,
            );
            assert_eq!(answer, refused(BAD_REQUEST));
        }
        for _ in 0..SERVE_BURST {
            records(exchange.serve(
                &asker,
                &PeersRequest { want: 1 },
                service_nodes(2),
                &HashSet::new(),
                now,
            ));
        }
        let answer = exchange.serve(
            &asker,
            &PeersRequest { want: 1 },
            service_nodes(2),
            &HashSet::new(),
            now,
        );
        assert_eq!(answer, refused(RATE_LIMITED));
        let other = PeerId::random();
        records(exchange.serve(
            &other,
            &PeersRequest { want: 1 },
            service_nodes(2),
            &HashSet::new(),
            now,
        ));
        let later = now + std::time::Duration::from_secs_f64(1.0 / SERVE_RATE);
        records(exchange.serve(
            &asker,
            &PeersRequest { want: 1 },
            service_nodes(2),
            &HashSet::new(),
            later,
        ));
    }

    #[test]
    fn a_light_node_dials_what_it_lacks_of_the_named_nodes() {
        let mut exchange = PeerExchange::default();
        let ids = request_ids(2);
        let local = PeerId::random();
        let nodes = service_nodes(4);
        let connected = nodes[1].0;
        let mut peers: Vec<ServiceRecord> = [(local, nodes[0].1.clone())]
            .iter()
            .chain(&nodes[1..])
            .map(|(p, a)| ServiceRecord {
                peer: ByteBuf::from(p.to_bytes()),
                addr: ByteBuf::from(a.to_vec()),
            })
            .collect();
        peers.insert(
            0,
            ServiceRecord {
                peer: ByteBuf::from(vec![1, 2, 3]),
                addr: ByteBuf::from(nodes[0].1.to_vec()),
            },
        );
        let answer = PeersResponse::Peers { peers };
        assert!(exchange.idle());
        exchange.asked(ids[0], 1);
        assert!(!exchange.idle());
        let other = exchange.answered(&ids[1], answer.clone(), &local, |p| *p == connected);
        assert!(other.is_empty(), "not the request in flight");
        assert!(!exchange.idle());
        let dial = exchange.answered(&ids[0], answer.clone(), &local, |p| *p == connected);
        assert_eq!(
            dial,
            vec![nodes[2].clone()],
            "one asked for: not itself, not connected, not malformed"
        );
        assert!(exchange.idle());
        exchange.asked(ids[1], 5);
        let dial = exchange.answered(&ids[1], answer, &local, |p| *p == connected);
        assert_eq!(dial, nodes[2..].to_vec());
    }

    #[test]
    fn a_failed_request_lets_the_light_node_ask_again() {
        let mut exchange = PeerExchange::default();
        let ids = request_ids(2);
        exchange.asked(ids[0], 2);
        exchange.failed(&ids[1]);
        assert!(!exchange.idle());
        exchange.failed(&ids[0]);
        assert!(exchange.idle());
    }
}
