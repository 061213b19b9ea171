//! The vendor's profile on the directory topic: published at start, every
//! `profile_interval`, and when a peer it has not greeted yet subscribes to the directory
//! (at most every [`MIN_INTERVAL`]: newcomers in between are greeted together when it is
//! over), so that persons learn the vendor's name and terms. A peer that reconnects is not
//! greeted again: at 300 nodes, where service nodes connect to each other for deposits and
//! prune again, every reconnection flooded a profile to the whole network.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libp2p::{Multiaddr, PeerId};
use tracing::{debug, warn};

use super::action::{Action, Publisher};
use crate::config::VendorConfig;
use crate::proto::{DIRECTORY_TOPIC, NodeAddress, VendorProfile, limits};
use crate::store::Store;
use crate::vendor_role;

/// A new peer on the directory topic triggers a publication at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Most peers remembered as greeted (past it, the memory starts again).
pub const MAX_GREETED: usize = 4096;

/// Publishes the vendor's profile.
pub struct ProfilePublisher {
    config: VendorConfig,
    key: SigningKey,
    published_at: Option<Instant>,
    /// Peers seen subscribing to the directory.
    greeted: HashSet<PeerId>,
    /// A newcomer came within [`MIN_INTERVAL`] of the last publication.
    greeting_due: bool,
}

impl ProfilePublisher {
    /// The publisher of the vendor `config`, signing with `key`.
    pub fn new(config: VendorConfig, key: SigningKey) -> Self {
        ProfilePublisher {
            config,
            key,
            published_at: None,
            greeted: HashSet::new(),
            greeting_due: false,
        }
    }

    /// A fresh signed profile naming this node's `peer` and `listen` addresses: stored as
    /// our own, and to publish.
    pub fn publish(&self, store: &Store, peer: &PeerId, listen: &[Multiaddr], now: u64) -> Action {
        let reply_to = NodeAddress {
            peer: peer.to_bytes().into(),
            addrs: listen
                .iter()
                .take(limits::MAX_ADDRS)
                .map(|a| a.to_vec().into())
                .collect(),
        };
        let envelope = vendor_role::profile(&self.config, &self.key, reply_to, now);
        match envelope.open::<VendorProfile>() {
            Ok(profile) => {
                if let Err(e) = store.upsert_profile(&envelope, &profile, now) {
                    warn!("storing our own profile failed: {e}");
                }
            }
            Err(e) => warn!("our own profile does not open: {e}"),
        }
        Action::Publish {
            topic: DIRECTORY_TOPIC.to_owned(),
            bytes: envelope.as_bytes().to_vec(),
            by: Publisher::Profile,
        }
    }

    /// Whether `peer`, subscribing to the directory at `at`, is worth a publication now:
    /// not if it was greeted before; if the last publication is too recent, the greeting
    /// waits for [`ProfilePublisher::greeting_due`].
    pub fn wants_to_greet(&mut self, peer: PeerId, at: Instant) -> bool {
        if self.greeted.len() >= MAX_GREETED {
            self.greeted.clear();
        }
        if !self.greeted.insert(peer) {
            return false;
        }
        if self.interval_over(at) {
            return true;
        }
        self.greeting_due = true;
        false
    }

    /// Whether newcomers wait for a greeting that may go out at `at`.
    pub fn greeting_due(&self, at: Instant) -> bool {
        self.greeting_due && self.interval_over(at)
    }

    fn interval_over(&self, at: Instant) -> bool {
        self.published_at
            .is_none_or(|last| at.duration_since(last) >= MIN_INTERVAL)
    }

    /// The result of a publication.
    pub fn published(&mut self, result: Result<(), String>, at: Instant) {
        match result {
            Ok(()) => {
                debug!("published the vendor profile");
                self.published_at = Some(at);
                self.greeting_due = false;
            }
            Err(e) => debug!("vendor profile not published now: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_new_subscribers_once_and_at_most_every_min_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let config = VendorConfig {
            name: "Shop".into(),
            categories: vec!["books".into()],
            ..VendorConfig::default()
        };
        let key = SigningKey::from_bytes(&[4; 32]);
        let mut publisher = ProfilePublisher::new(config, key.clone());
        let t0 = Instant::now();
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        assert!(
            publisher.wants_to_greet(peers[0], t0),
            "never published: greet"
        );
        let action = publisher.publish(&store, &PeerId::random(), &[], 1_800_000_000);
        assert!(matches!(
            action,
            Action::Publish { ref topic, by: Publisher::Profile, .. } if topic == DIRECTORY_TOPIC
        ));
        let stored = store.profiles().unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].profile.name, "Shop");
        assert_eq!(stored[0].envelope.signer(), &key.verifying_key());
        publisher.published(Err("no peers".into()), t0);
        assert!(
            publisher.wants_to_greet(peers[1], t0),
            "a failed publication does not count"
        );
        publisher.published(Ok(()), t0);
        let soon = t0 + Duration::from_secs(4);
        assert!(!publisher.wants_to_greet(peers[2], soon), "too soon");
        assert!(!publisher.greeting_due(soon));
        assert!(publisher.greeting_due(t0 + MIN_INTERVAL), "then it is due");
        publisher.published(Ok(()), t0 + MIN_INTERVAL);
        let later = t0 + 3 * MIN_INTERVAL;
        assert!(!publisher.greeting_due(later), "greeted");
        assert!(!publisher.wants_to_greet(peers[0], later), "greeted before");
        assert!(publisher.wants_to_greet(peers[3], later));
    }
}
