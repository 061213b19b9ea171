//! Vendor profiles: the newest signed profile of every vendor seen on the directory topic.

use super::models::StoredProfile;
use super::records::ProfileRecord;
use super::{Store, StoreError, decode, encode, open_stored};
use crate::proto::{Envelope, VendorProfile};

impl Store {
    /// Keeps `profile` if it is newer than the one stored for its vendor (the envelope's
    /// signer). Returns whether it was kept.
    pub fn upsert_profile(
        &self,
        envelope: &Envelope,
        profile: &VendorProfile,
        now: u64,
    ) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let record = encode(&ProfileRecord {
            envelope: envelope.as_bytes().to_vec().into(),
            stored_at: now,
        });
        let mut kept = false;
        let mut failure = None;
        t.profiles
            .fetch_and_update(envelope.signer().as_bytes(), |old| {
                let newer = match old.map(stored_profile_created) {
                    None => true,
                    Some(Ok(created)) => profile.created > created,
                    Some(Err(e)) => {
                        failure = Some(e);
                        false
                    }
                };
                kept = newer;
                if newer {
                    Some(record.clone())
                } else {
                    old.map(<[u8]>::to_vec)
                }
            })?;
        if let Some(e) = failure {
            return Err(e);
        }
        t.durable()?;
        Ok(kept)
    }

    /// All vendor profiles.
    pub fn profiles(&self) -> Result<Vec<StoredProfile>, StoreError> {
        let t = self.trees()?;
        t.profiles
            .iter()
            .values()
            .map(|v| {
                let record: ProfileRecord = decode("profiles", &v?)?;
                let (envelope, profile) = open_stored::<VendorProfile>(&record.envelope)?;
                Ok(StoredProfile {
                    envelope,
                    profile,
                    stored_at: record.stored_at,
                })
            })
            .collect()
    }
}

fn stored_profile_created(bytes: &[u8]) -> Result<u64, StoreError> {
    let record: ProfileRecord = decode("profiles", bytes)?;
    let (_, profile) = open_stored::<VendorProfile>(&record.envelope)?;
    Ok(profile.created)
}

impl Store {
    /// The nodes vendors' profiles name as theirs: a person's node keeps its mailboxes and
    /// light pushes off them where it can (a vendor holding a person's queues could tell
    /// which intents are that person's).
    pub fn vendor_nodes(&self) -> Result<std::collections::HashSet<libp2p::PeerId>, StoreError> {
        Ok(self
            .profiles()?
            .into_iter()
            .filter_map(|stored| stored.profile.reply_to)
            .filter_map(|node| libp2p::PeerId::from_bytes(&node.peer).ok())
            .collect())
    }
}
