//! Collective intents (`proto/README.md`, "Collective intents"): the member intents of each
//! group seen on the directory topic, so every node can show a group's terms and how many
//! joined, and nothing about who.
//!
//! A member is its intent's signer (a fresh persona) and id; members of one group share its
//! terms and expiry (both are in the group id), so a whole group is purged at once. A member
//! that withdraws its intent leaves. At most [`MAX_MEMBERS`] members per group and
//! [`MAX_GROUPED`] in all are kept; past either, a member intent is relayed but not counted.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Store, StoreError, warn_full};
use crate::proto::{Envelope, Intent};

/// Most members counted in one group.
pub const MAX_MEMBERS: usize = crate::proto::limits::MAX_GROUP_SIZE as usize;
/// Most member intents kept across all groups.
pub const MAX_GROUPED: u64 = 100_000;

/// When the full group store was last logged.
static LAST_FULL_WARNING: AtomicU64 = AtomicU64::new(0);

/// One group as this node knows it.
#[derive(Debug, Clone)]
pub struct StoredGroup {
    /// The group id.
    pub id: [u8; 16],
    /// One member's intent: the group's terms (each member's reply path is its own).
    pub terms: Intent,
    /// How many members this node counts.
    pub members: usize,
}

/// What became of a member intent offered to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// A new member.
    Counted,
    /// Known already.
    Known,
    /// The group, or the store, is full.
    Full,
}

/// The key of a member: group id (16) ‖ signer (32) ‖ intent id (16).
fn member_key(group: &[u8; 16], signer: &[u8; 32], intent: &[u8; 16]) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..16].copy_from_slice(group);
    key[16..48].copy_from_slice(signer);
    key[48..].copy_from_slice(intent);
    key
}

fn member_index(signer: &[u8; 32], intent: &[u8; 16]) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(signer);
    key[32..].copy_from_slice(intent);
    key
}

impl Store {
    /// Counts `envelope`, a member intent of group `group`.
    pub fn join_group(
        &self,
        group: &[u8; 16],
        envelope: &Envelope,
        intent: &Intent,
    ) -> Result<Joined, StoreError> {
        let t = self.trees()?;
        let signer = envelope.signer().to_bytes();
        let key = member_key(group, &signer, &intent.id);
        if t.group_members.contains_key(key)? {
            return Ok(Joined::Known);
        }
        let full = t.grouped_count.load(Ordering::SeqCst) >= MAX_GROUPED
            || t.group_members.scan_prefix(group).count() >= MAX_MEMBERS;
        if full {
            warn_full(&LAST_FULL_WARNING, || {
                format!(
                    "a group reached {MAX_MEMBERS} members, or all groups {MAX_GROUPED}: more members are relayed but not counted"
                )
            });
            return Ok(Joined::Full);
        }
        t.group_members.insert(key, envelope.as_bytes())?;
        t.group_by_member
            .insert(member_index(&signer, &intent.id), group)?;
        t.grouped_count.fetch_add(1, Ordering::SeqCst);
        Ok(Joined::Counted)
    }

    /// The member intent `intent` of `signer` left its group (withdrawn). Returns the group.
    pub fn leave_group(
        &self,
        signer: &[u8; 32],
        intent: &[u8; 16],
    ) -> Result<Option<[u8; 16]>, StoreError> {
        let t = self.trees()?;
        let Some(group) = t.group_by_member.remove(member_index(signer, intent))? else {
            return Ok(None);
        };
        let group: [u8; 16] = super::fixed_key("group_by_member", &group)?;
        if t.group_members
            .remove(member_key(&group, signer, intent))?
            .is_some()
        {
            t.grouped_count.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(Some(group))
    }

    /// Every group with at least one member, or the one with id `only`.
    pub fn groups(&self, only: Option<&[u8; 16]>) -> Result<Vec<StoredGroup>, StoreError> {
        let t = self.trees()?;
        let scan = match only {
            Some(id) => t.group_members.scan_prefix(id),
            None => t.group_members.iter(),
        };
        let mut groups: Vec<StoredGroup> = Vec::new();
        for kv in scan {
            let (k, v) = kv?;
            let id: [u8; 16] = super::fixed_key("group_members", &k[..16.min(k.len())])?;
            match groups.last_mut() {
                Some(last) if last.id == id => last.members += 1,
                _ => {
                    let (_, terms) = super::open_stored::<Intent>(&v)?;
                    groups.push(StoredGroup {
                        id,
                        terms,
                        members: 1,
                    });
                }
            }
        }
        Ok(groups)
    }

    /// Forgets the groups whose terms expired by `now`. Returns how many members went.
    pub fn purge_groups(&self, now: u64) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let mut purged = 0;
        for group in self.groups(None)? {
            if group.terms.expires > now {
                continue;
            }
            for kv in t.group_members.scan_prefix(group.id) {
                let (k, _) = kv?;
                let member: [u8; 64] = super::fixed_key("group_members", &k)?;
                t.group_by_member.remove(&member[16..])?;
                if t.group_members.remove(&k)?.is_some() {
                    t.grouped_count.fetch_sub(1, Ordering::SeqCst);
                    purged += 1;
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GroupTerms, group_id};
    use crate::store::fixtures::{NOW, intent};

    /// Member `n`'s intent of group `nonce` (each member its own signer and id).
    fn member(n: u8, nonce: u8) -> (Envelope, Intent, [u8; 16]) {
        let (_, mut body) = intent(n);
        body.group = Some(GroupTerms {
            nonce: [nonce; 16].into(),
            size: 5,
        });
        let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        let group = group_id(&body).unwrap();
        (Envelope::seal(&body, &key), body, group)
    }

    #[test]
    fn members_join_once_leave_and_go_with_their_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (e1, i1, g) = member(1, 7);
        let (e2, i2, _) = member(2, 7);
        let (e3, i3, other) = member(3, 8);
        assert_ne!(g, other, "another nonce, another group");
        assert_eq!(store.join_group(&g, &e1, &i1).unwrap(), Joined::Counted);
        assert_eq!(store.join_group(&g, &e1, &i1).unwrap(), Joined::Known);
        assert_eq!(store.join_group(&g, &e2, &i2).unwrap(), Joined::Counted);
        assert_eq!(store.join_group(&other, &e3, &i3).unwrap(), Joined::Counted);
        let groups = store.groups(None).unwrap();
        let counts: Vec<(usize, [u8; 16])> = groups.iter().map(|g| (g.members, g.id)).collect();
        assert!(
            counts.contains(&(2, g)) && counts.contains(&(1, other)),
            "{counts:?}"
        );
        assert_eq!(store.groups(Some(&g)).unwrap()[0].terms.text, "A paperback");
        let signer = e1.signer().to_bytes();
        assert_eq!(store.leave_group(&signer, &i1.id).unwrap(), Some(g));
        assert_eq!(
            store.leave_group(&signer, &i1.id).unwrap(),
            None,
            "left already"
        );
        assert_eq!(store.groups(Some(&g)).unwrap()[0].members, 1);
        assert_eq!(store.purge_groups(NOW + 3599).unwrap(), 0);
        assert_eq!(store.purge_groups(NOW + 3600).unwrap(), 2);
        assert!(store.groups(None).unwrap().is_empty());
        assert_eq!(
            store.leave_group(&e2.signer().to_bytes(), &i2.id).unwrap(),
            None
        );
        assert_eq!(
            store.trees().unwrap().grouped_count.load(Ordering::SeqCst),
            0
        );
    }

    #[test]
    fn a_full_group_or_store_counts_no_more_members() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (e1, i1, g) = member(1, 7);
        store
            .trees()
            .unwrap()
            .grouped_count
            .store(MAX_GROUPED, Ordering::SeqCst);
        assert_eq!(store.join_group(&g, &e1, &i1).unwrap(), Joined::Full);
        store
            .trees()
            .unwrap()
            .grouped_count
            .store(0, Ordering::SeqCst);
        for n in 0..MAX_MEMBERS {
            let key = [
                (n % 250) as u8,
                (n / 250) as u8,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
                9,
            ];
            let signer = [n as u8; 32];
            store
                .trees()
                .unwrap()
                .group_members
                .insert([&g[..], &signer[..], &key[..]].concat(), e1.as_bytes())
                .unwrap();
        }
        assert_eq!(store.join_group(&g, &e1, &i1).unwrap(), Joined::Full);
    }
}
