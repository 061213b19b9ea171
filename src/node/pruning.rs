//! Pruning: a service node connected to more service nodes than its target drops the ones
//! it needs least, every [`PRUNE_EVERY`]. Light clients (peers that are no service node: the
//! persons' nodes and light vendors this node serves) neither count against the target nor
//! are dropped: their slots are reserved (within the connection limits). Among service
//! nodes it drops, in this order: those with a negative gossip score (they sent invalid
//! messages or broke gossip's rules), then those whose every shard at least two other
//! remaining peers also carry (so no shard loses its last links), then any; at each step
//! peers that dialed this node go before peers it dialed itself (its own dials are its way
//! out). The way Lighthouse and nwaku keep their peer counts, much simplified.
//!
//! A light node prunes too: it keeps the service nodes it needs (its mailboxes, its filter
//! subscriptions) and [`LIGHT_TARGET_PEERS`] others.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use rand::seq::IndexedRandom;

/// How often a node looks at its peer count.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Service nodes a light node keeps besides those it needs (the mailboxes of its open
/// intents, the service nodes a light vendor is subscribed at): mDNS and a light vendor's
/// Kademlia queries connect it to many, and gossip would keep them all. Below it, a light
/// node asks for more by peer exchange (`node::peer_exchange`).
pub const LIGHT_TARGET_PEERS: usize = 4;

/// A connected peer as pruning sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// Its gossip score (none: not scored yet).
    pub score: Option<f64>,
    /// The shards it joined.
    pub shards: Vec<u8>,
    /// Whether it is a service node (otherwise a light client of ours: never dropped).
    pub service: bool,
    /// Whether it opened the connection.
    pub inbound: bool,
}

/// Why a peer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its gossip score is negative.
    LowScore,
    /// Every shard it carries, two other peers carry too.
    Redundant,
    /// Over the target with no better choice.
    Random,
}

impl Reason {
    /// The name counted in the node's stats (`pruned:<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::LowScore => "low-score",
            Reason::Redundant => "redundant",
            Reason::Random => "random",
        }
    }
}

/// The peers to drop so that at most `target` service nodes remain, each with its reason.
pub fn to_drop(peers: &[Candidate], target: usize) -> Vec<(PeerId, Reason)> {
    let mut left: Vec<&Candidate> = peers.iter().filter(|c| c.service).collect();
    let mut excess = left.len().saturating_sub(target);
    let mut dropped = Vec::new();
    let mut drop = |chosen: &Candidate, reason, left: &mut Vec<&Candidate>| {
        left.retain(|c| c.peer != chosen.peer);
        dropped.push((chosen.peer, reason));
    };
    // Lowest score first; inbound before outbound at equal standing.
    let mut low: Vec<&Candidate> = left
        .iter()
        .copied()
        .filter(|c| c.score.is_some_and(|s| s < 0.0))
        .collect();
    low.sort_by(|a, b| {
        let (sa, sb) = (a.score.unwrap_or(0.0), b.score.unwrap_or(0.0));
        sa.total_cmp(&sb).then(b.inbound.cmp(&a.inbound))
    });
    for chosen in low {
        if excess == 0 {
            break;
        }
        drop(chosen, Reason::LowScore, &mut left);
        excess -= 1;
    }
    while excess > 0 {
        let coverage = coverage(&left);
        let redundant: Vec<&Candidate> = left
            .iter()
            .copied()
            .filter(|c| {
                c.shards
                    .iter()
                    .all(|s| coverage.get(s).copied().unwrap_or(0) >= 3)
            })
            .collect();
        let (pool, reason) = if redundant.is_empty() {
            (left.clone(), Reason::Random)
        } else {
            (redundant, Reason::Redundant)
        };
        let Some(chosen) = pick(&pool) else {
            break;
        };
        drop(chosen, reason, &mut left);
        excess -= 1;
    }
    dropped
}

/// How many of `peers` carry each shard.
fn coverage(peers: &[&Candidate]) -> HashMap<u8, usize> {
    let mut carried = HashMap::new();
    for peer in peers {
        for shard in &peer.shards {
            *carried.entry(*shard).or_default() += 1;
        }
    }
    carried
}

/// One of `pool` at random, among the inbound ones if there are any.
fn pick<'a>(pool: &[&'a Candidate]) -> Option<&'a Candidate> {
    let inbound: Vec<&Candidate> = pool.iter().copied().filter(|c| c.inbound).collect();
    let from = if inbound.is_empty() { pool } else { &inbound };
    from.choose(&mut rand::rng()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(score: f64, shards: &[u8], inbound: bool) -> Candidate {
        Candidate {
            peer: PeerId::random(),
            score: Some(score),
            shards: shards.to_vec(),
            service: true,
            inbound,
        }
    }

    fn light_client() -> Candidate {
        Candidate {
            service: false,
            ..peer(0.0, &[], true)
        }
    }

    #[test]
    fn nothing_is_dropped_at_or_under_the_target() {
        let peers = vec![peer(-5.0, &[0], true), peer(1.0, &[0], true)];
        assert!(to_drop(&peers, 2).is_empty());
        assert!(to_drop(&peers, 3).is_empty());
    }

    #[test]
    fn negative_scores_go_first_lowest_first() {
        let peers = vec![
            peer(1.0, &[0], true),
            peer(-1.0, &[0], false),
            peer(-9.0, &[0], false),
            peer(2.0, &[0], true),
        ];
        let dropped = to_drop(&peers, 3);
        assert_eq!(dropped, vec![(peers[2].peer, Reason::LowScore)]);
        let dropped = to_drop(&peers, 2);
        assert_eq!(
            dropped,
            vec![
                (peers[2].peer, Reason::LowScore),
                (peers[1].peer, Reason::LowScore)
            ]
        );
    }

    #[test]
    fn a_peer_that_carries_a_shard_few_others_carry_is_kept() {
        // Shard 0 is carried by all four, shard 5 only by the last: it stays.
        let peers = vec![
            peer(0.0, &[0], true),
            peer(0.0, &[0], true),
            peer(0.0, &[0], true),
            peer(0.0, &[0, 5], true),
        ];
        for _ in 0..20 {
            let dropped = to_drop(&peers, 3);
            assert_eq!(dropped.len(), 1);
            assert_ne!(dropped[0].0, peers[3].peer);
            assert_eq!(dropped[0].1, Reason::Redundant);
        }
    }

    #[test]
    fn peers_that_dialed_us_go_before_the_ones_we_dialed_and_light_clients_stay() {
        let peers = vec![
            peer(0.0, &[1], false),
            peer(0.0, &[2], true),
            peer(0.0, &[3], false),
            light_client(),
            light_client(),
        ];
        for _ in 0..20 {
            let dropped = to_drop(&peers, 2);
            assert_eq!(dropped, vec![(peers[1].peer, Reason::Random)]);
        }
        assert!(to_drop(&peers, 3).is_empty(), "light clients do not count");
        // Far over the target: every service node may go, no light client does.
        let dropped = to_drop(&peers, 0);
        assert_eq!(dropped.len(), 3);
        assert!(
            dropped
                .iter()
                .all(|(p, _)| *p != peers[3].peer && *p != peers[4].peer)
        );
    }
}
