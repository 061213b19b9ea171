//! Discovery of service nodes per shard, through Kademlia provider records.
//!
//! A service node announces itself as a provider of each shard it carries, under the key
//! `/vrm/2/shard/<n>` (the shard's topic name), once it has a peer to announce to;
//! Kademlia republishes the records every [`PUBLICATION_INTERVAL`] and drops them after
//! [`RECORD_TTL`], so a node that left stops being found. A node with fewer than
//! [`MIN_PEERS_PER_SHARD`] connected peers on a shard it wants (a service node: the shards
//! it carries; a light vendor: its categories' shards) looks up that shard's providers and
//! dials those it is not connected to. Kademlia only takes a provider record from the
//! provider itself, and what a found peer carries is then seen in its gossip
//! subscriptions, so a false record costs a dial, and pruning drops the peer again.
//!
//! A person's light node never looks up a shard: the lookup would tell the nodes of the
//! DHT which shards interest this PeerId. It hands its intents to any service node, which
//! publishes them to the shard's carriers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::{PeerId, kad};

use crate::proto::shard_topic;

/// Peers on a shard a node wants before it stops looking for more: pruning keeps a peer
/// whose shard fewer than two others carry, so three is what it holds on to.
pub const MIN_PEERS_PER_SHARD: usize = 3;
/// How long a provider record lives at the nodes that store it.
pub const RECORD_TTL: Duration = Duration::from_secs(60 * 60);
/// How often a provider announces itself again.
pub const PUBLICATION_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// The DHT key under which the carriers of `shard` announce themselves.
pub fn shard_key(shard: u8) -> kad::RecordKey {
    kad::RecordKey::new(&shard_topic(shard))
}

/// Announcements made and lookups in flight.
#[derive(Debug, Default)]
pub struct ShardDiscovery {
    /// Whether this node announced the shards it carries.
    announced: bool,
    /// Lookups in flight: the shard, and how many more of its providers to dial.
    lookups: HashMap<kad::QueryId, (u8, usize)>,
}

/// What to do about one shard now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// The shard.
    pub shard: u8,
    /// How many more of its peers the node wants.
    pub wanted: usize,
}

impl ShardDiscovery {
    /// Whether to announce the shards carried now: once, when there is a peer to tell.
    pub fn announce_now(&mut self, carried: &[u8], has_peers: bool) -> bool {
        if self.announced || carried.is_empty() || !has_peers {
            return false;
        }
        self.announced = true;
        true
    }

    /// The shards of `wanted` to look up: those with fewer than [`MIN_PEERS_PER_SHARD`]
    /// connected peers on them (`peers_on`) and no lookup in flight.
    pub fn lookups(&self, wanted: &[u8], peers_on: impl Fn(u8) -> usize) -> Vec<Lookup> {
        wanted
            .iter()
            .filter(|shard| !self.lookups.values().any(|(s, _)| s == *shard))
            .filter_map(|&shard| {
                let wanted = MIN_PEERS_PER_SHARD.saturating_sub(peers_on(shard));
                (wanted > 0).then_some(Lookup { shard, wanted })
            })
            .collect()
    }

    /// Records a lookup started for `lookup`.
    pub fn started(&mut self, query: kad::QueryId, lookup: Lookup) {
        self.lookups.insert(query, (lookup.shard, lookup.wanted));
    }

    /// Providers found by `query`: the ones to dial (not this node, not connected), at most
    /// as many as the lookup still wants; `None` if the query is not a shard lookup.
    pub fn found(
        &mut self,
        query: kad::QueryId,
        providers: &HashSet<PeerId>,
        local: &PeerId,
        is_connected: impl Fn(&PeerId) -> bool,
    ) -> Option<Vec<PeerId>> {
        let (_, wanted) = self.lookups.get_mut(&query)?;
        let dial: Vec<PeerId> = providers
            .iter()
            .filter(|p| *p != local && !is_connected(p))
            .take(*wanted)
            .copied()
            .collect();
        *wanted -= dial.len();
        Some(dial)
    }

    /// A lookup ended (its last step, or an error).
    pub fn finished(&mut self, query: &kad::QueryId) {
        self.lookups.remove(query);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_ids(n: usize) -> Vec<kad::QueryId> {
        // QueryIds come only from a Kademlia behaviour: start lookups on an empty one.
        let local = PeerId::random();
        let mut kad = kad::Behaviour::new(local, kad::store::MemoryStore::new(local));
        (0..n)
            .map(|i| kad.get_providers(shard_key(i as u8)))
            .collect()
    }

    #[test]
    fn a_node_announces_once_and_only_when_it_has_someone_to_tell() {
        let mut discovery = ShardDiscovery::default();
        assert!(!discovery.announce_now(&[1, 2], false));
        assert!(!discovery.announce_now(&[], true));
        assert!(discovery.announce_now(&[1, 2], true));
        assert!(!discovery.announce_now(&[1, 2], true));
    }

    #[test]
    fn shards_short_of_peers_are_looked_up_once_at_a_time() {
        let mut discovery = ShardDiscovery::default();
        let peers = |shard: u8| match shard {
            0 => 0,
            1 => 2,
            _ => 3,
        };
        let wanted = discovery.lookups(&[0, 1, 2], peers);
        assert_eq!(
            wanted,
            vec![
                Lookup {
                    shard: 0,
                    wanted: 3
                },
                Lookup {
                    shard: 1,
                    wanted: 1
                }
            ]
        );
        let ids = query_ids(1);
        discovery.started(ids[0], wanted[0]);
        assert_eq!(discovery.lookups(&[0, 1, 2], peers), vec![wanted[1]]);
        discovery.finished(&ids[0]);
        assert_eq!(discovery.lookups(&[0, 1, 2], peers), wanted);
    }

    #[test]
    fn found_providers_are_dialed_up_to_what_the_lookup_wants() {
        let mut discovery = ShardDiscovery::default();
        let ids = query_ids(2);
        discovery.started(
            ids[0],
            Lookup {
                shard: 4,
                wanted: 2,
            },
        );
        let (local, connected) = (PeerId::random(), PeerId::random());
        let fresh: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let first: HashSet<PeerId> = [local, connected, fresh[0]].into();
        let dial = discovery
            .found(ids[0], &first, &local, |p| *p == connected)
            .unwrap();
        assert_eq!(dial, vec![fresh[0]]);
        let rest: HashSet<PeerId> = [fresh[1], fresh[2]].into();
        let dial = discovery.found(ids[0], &rest, &local, |_| false).unwrap();
        assert_eq!(dial.len(), 1, "one more was wanted");
        let none = discovery.found(ids[0], &rest, &local, |_| false).unwrap();
        assert!(none.is_empty());
        assert!(discovery.found(ids[1], &rest, &local, |_| false).is_none());
    }
}
