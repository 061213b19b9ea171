//! The vendor's profile on the directory topic: published at start, every
//! `profile_interval`, and when a new peer subscribes to the directory (at most every
//! [`MIN_INTERVAL`]), so that persons learn the vendor's name and terms.

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
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Publishes the vendor's profile.
pub struct ProfilePublisher {
    config: VendorConfig,
    key: SigningKey,
    published_at: Option<Instant>,
}

impl ProfilePublisher {
    /// The publisher of the vendor `config`, signing with `key`.
    pub fn new(config: VendorConfig, key: SigningKey) -> Self {
        ProfilePublisher {
            config,
            key,
            published_at: None,
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

    /// Whether a new subscriber to the directory at `at` is worth a publication.
    pub fn wants_to_greet(&self, at: Instant) -> bool {
        self.published_at
            .is_none_or(|last| at.duration_since(last) >= MIN_INTERVAL)
    }

    /// The result of a publication.
    pub fn published(&mut self, result: Result<(), String>, at: Instant) {
        match result {
            Ok(()) => {
                debug!("published the vendor profile");
                self.published_at = Some(at);
            }
            Err(e) => debug!("vendor profile not published now: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_new_subscribers_at_most_every_min_interval() {
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
        assert!(publisher.wants_to_greet(t0), "never published: greet");
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
            publisher.wants_to_greet(t0),
            "a failed publication does not count"
        );
        publisher.published(Ok(()), t0);
        assert!(!publisher.wants_to_greet(t0 + Duration::from_secs(4)));
        assert!(publisher.wants_to_greet(t0 + MIN_INTERVAL));
    }
}
