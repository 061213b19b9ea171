//! The person's data on both sides of a relationship (`proto/README.md`, "Data on the
//! person's terms").
//!
//! Vendor's node: it answers every grant at the moment it places it — `held` (the values
//! go to a file of their own, [`crate::store::granted`]) or `refused` (terms it does not
//! accept, values missing) — and deletes the data, with a signed `deleted` receipt, when
//! the person revokes, a newer grant replaces it, the relationship ends, or it expires
//! ([`GrantSweep`], which also runs at start, so a grant that expired while the node was
//! down is deleted when it comes back).
//!
//! Person's node: a changed vault field goes to every vendor holding it under a live grant
//! ([`refresh`]), and [`holdings`] says who holds what, with grants overdue for deletion.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use tracing::{info, warn};

use super::action::Action;
use super::events::NodeEvent;
use super::relationships::{
    Draft, GrantDraft, RelationshipError, VendorPolicy, Written, follow_up, place, write_locked,
};
use crate::identity::Identity;
use crate::proto::grants::GrantState;
use crate::proto::limits::MAX_TEXT_BYTES;
use crate::proto::relationship::{Entry, Side};
use crate::proto::{Envelope, Grant, ReceiptStatus};
use crate::store::granted::HeldGrant;
use crate::store::relationships::{Relationship, RelationshipWrite};
use crate::store::{Outgoing, Store, StoreError};

/// How long after a revocation, a replacement, an end or an expiry the person's node waits
/// for the vendor's `deleted` receipt before it shows the grant as overdue.
pub const DELETION_GRACE_SECS: u64 = 600;
/// How often the vendor's node looks for expired grants.
pub const SWEEP_EVERY_SECS: u64 = 10;

fn held_file(record: &Relationship, grant: &GrantState) -> HeldGrant {
    HeldGrant {
        expires: grant.expires,
        rel: record.chain.rel,
        grant: grant.id,
    }
}

/// What the vendor's node writes before its order: its agreement to the terms its offer
/// accepted, once.
pub fn before_order(record: &Relationship) -> Vec<Draft> {
    let chain = &record.chain;
    if chain.agreed_terms.is_none() && !chain.offered_terms.is_empty() {
        vec![Draft::Agreement(chain.offered_terms.clone())]
    } else {
        Vec::new()
    }
}

/// Why the vendor's node does not take a grant, if it does not.
fn refusal(
    grant: &Grant,
    values: Option<&BTreeMap<String, String>>,
    policy: &VendorPolicy,
    now: u64,
) -> Option<String> {
    let Some(values) = values else {
        return Some("the values of the granted fields did not come with the grant".into());
    };
    if !values
        .keys()
        .eq(grant.fields.iter().collect::<BTreeSet<_>>())
    {
        return Some("the values that came are not those of the granted fields".into());
    }
    if values.values().any(|v| v.len() > MAX_TEXT_BYTES) {
        return Some(format!("a value is over {MAX_TEXT_BYTES} bytes"));
    }
    let unaccepted: Vec<&str> = grant
        .terms
        .iter()
        .filter(|t| !policy.accepted_terms.contains(t))
        .map(String::as_str)
        .collect();
    if !unaccepted.is_empty() {
        return Some(format!(
            "this vendor does not accept the terms {}",
            unaccepted.join(", ")
        ));
    }
    if grant.expires <= now {
        return Some("the grant had expired when it arrived".into());
    }
    None
}

/// The vendor's answer to the person's entry `envelope` it has just placed (the last of
/// `record`'s log): receipts, after keeping or deleting the data. Deletions are done
/// (on disk) before the receipt is staged: a crash in between leaves a held grant without
/// its file, which the sweep at start answers as deleted.
pub fn answer(
    store: &Store,
    record: &Relationship,
    entry: &Entry,
    envelope: &Envelope,
    values: Option<&BTreeMap<String, String>>,
    policy: &VendorPolicy,
    now: u64,
) -> Result<Vec<Draft>, StoreError> {
    let find = |id: &[u8; 32]| record.chain.grants.iter().find(|g| g.id == *id);
    let mut drafts = Vec::new();
    match entry {
        Entry::Grant(grant) => {
            let id = envelope.id().0;
            let Some(state) = find(&id) else {
                return Ok(drafts);
            };
            let mut why = refusal(grant, values, policy, now);
            if let (None, Some(values)) = (&why, values)
                && !store.hold_granted(&held_file(record, state), values)?
            {
                why = Some("this vendor holds as much granted data as it may".to_owned());
            }
            match why {
                Some(why) => {
                    info!("grant {} refused: {why}", hex::encode(id));
                    drafts.push(Draft::Receipt(id, ReceiptStatus::Refused, why));
                }
                None => {
                    drafts.push(Draft::Receipt(id, ReceiptStatus::Held, String::new()));
                    if let Some(old) = grant.replaces.as_ref().and_then(|old| find(old)) {
                        drafts.extend(release(store, record, old, "replaced by a newer grant")?);
                    }
                }
            }
        }
        Entry::Revoke(revoke) => {
            if let Some(grant) = find(&revoke.grant) {
                drafts.extend(release(store, record, grant, "revoked")?);
            }
        }
        Entry::End(_) => drafts.extend(release_all(store, record)?),
        _ => {}
    }
    Ok(drafts)
}

/// Deletes a held grant's data; its `deleted` receipt, with why.
fn release(
    store: &Store,
    record: &Relationship,
    grant: &GrantState,
    why: &str,
) -> Result<Option<Draft>, StoreError> {
    if !grant.held() {
        return Ok(None);
    }
    store.delete_granted(&held_file(record, grant))?;
    info!(
        "relationship {}: the data of grant {} deleted ({why})",
        hex::encode(record.chain.rel),
        hex::encode(grant.id)
    );
    Ok(Some(Draft::Receipt(
        grant.id,
        ReceiptStatus::Deleted,
        why.to_owned(),
    )))
}

/// Deletes every grant's data the vendor holds in `record` (the relationship ended).
pub fn release_all(store: &Store, record: &Relationship) -> Result<Vec<Draft>, StoreError> {
    let mut drafts = Vec::new();
    for grant in &record.chain.grants {
        drafts.extend(release(store, record, grant, "the relationship ended")?);
    }
    Ok(drafts)
}

/// The term under which granted data goes once the order is fulfilled.
pub const DELETE_AFTER_FULFILMENT: &str = "delete-after-fulfilment";

/// Deletes the data of grants made under [`DELETE_AFTER_FULFILMENT`] (the vendor has just
/// fulfilled the order).
pub fn release_at_fulfilment(
    store: &Store,
    record: &Relationship,
) -> Result<Vec<Draft>, StoreError> {
    let mut drafts = Vec::new();
    for grant in &record.chain.grants {
        if grant.terms.iter().any(|t| t == DELETE_AFTER_FULFILMENT) {
            drafts.extend(release(store, record, grant, "the order is fulfilled")?);
        }
    }
    Ok(drafts)
}

/// Why a held grant must go now, if it must.
fn due(
    record: &Relationship,
    grant: &GrantState,
    has_file: bool,
    now: u64,
) -> Option<&'static str> {
    if !grant.held() {
        return None;
    }
    if grant.revoked.is_some() {
        Some("revoked")
    } else if grant.replaced_by.is_some() {
        Some("replaced by a newer grant")
    } else if record.chain.state.ended_by.is_some() {
        Some("the relationship ended")
    } else if grant.expires <= now {
        Some("the grant expired")
    } else if record.chain.state.fulfilled
        && grant.terms.iter().any(|t| t == DELETE_AFTER_FULFILMENT)
    {
        Some("the order is fulfilled")
    } else if !has_file {
        Some("the data is no longer held")
    } else {
        None
    }
}

/// The vendor node's watch over the grants it holds: deletes the data of expired grants
/// (and, at its first round, of every grant a crash or a stop left due) and sends the
/// `deleted` receipts.
#[derive(Debug, Default)]
pub struct GrantSweep {
    next: u64,
    repaired: bool,
}

impl GrantSweep {
    /// One round, if it is time: the deliveries and events of the receipts written, once
    /// they are on disk.
    pub fn tick(&mut self, store: &Store, identity: &Identity, now: u64) -> Vec<Action> {
        if now < self.next {
            return Vec::new();
        }
        self.next = now + SWEEP_EVERY_SECS;
        match self.round(store, identity, now) {
            Ok((queued, events)) => {
                let queued = queued.into_iter().map(Action::Queue);
                queued.chain(events.into_iter().map(Action::Emit)).collect()
            }
            Err(e) => {
                warn!("the sweep of granted data failed (tried again): {e}");
                Vec::new()
            }
        }
    }

    fn round(
        &mut self,
        store: &Store,
        identity: &Identity,
        now: u64,
    ) -> Result<(Vec<Outgoing>, Vec<NodeEvent>), StoreError> {
        let Some(key) = identity.vendor_key() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let _one_writer = store.relationship_lock();
        let files: BTreeSet<HeldGrant> = store.held_grants()?.into_iter().collect();
        let rels: BTreeSet<[u8; 32]> = if self.repaired {
            files
                .iter()
                .take_while(|f| f.expires <= now)
                .map(|f| f.rel)
                .collect()
        } else {
            let vendor = store.relationships()?.into_iter();
            let held = vendor
                .filter(|r| r.side == Side::Vendor && r.chain.grants.iter().any(GrantState::held));
            held.map(|r| r.chain.rel)
                .chain(files.iter().map(|f| f.rel))
                .collect()
        };
        let mut queued = Vec::new();
        let mut events = Vec::new();
        let mut kept = BTreeSet::new();
        for rel in rels {
            let Some(mut record) = store.relationship(&rel)? else {
                continue;
            };
            let mut drafts = Vec::new();
            for grant in &record.chain.grants {
                let file = held_file(&record, grant);
                match due(&record, grant, files.contains(&file), now) {
                    Some(why) => drafts.extend(release(store, &record, grant, why)?),
                    None if grant.held() => {
                        kept.insert(file);
                    }
                    None => {}
                }
            }
            if drafts.is_empty() {
                continue;
            }
            let (more, told) = write_receipts(store, &mut record, &drafts, key, now)?;
            queued.extend(more);
            events.extend(told);
        }
        if !self.repaired {
            // Files no held grant names: a crash between keeping the data and placing
            // the grant.
            for orphan in files.iter().filter(|f| !kept.contains(*f)) {
                warn!(
                    "deleting granted data no held grant names ({})",
                    hex::encode(orphan.grant)
                );
                store.delete_granted(orphan)?;
            }
            self.repaired = true;
        }
        if !queued.is_empty() {
            store.flush()?;
        }
        Ok((queued, events))
    }
}

fn write_receipts(
    store: &Store,
    record: &mut Relationship,
    drafts: &[Draft],
    key: &SigningKey,
    now: u64,
) -> Result<(Vec<Outgoing>, Vec<NodeEvent>), StoreError> {
    let first = record.chain.len;
    record.updated = now;
    let placed = follow_up(record, drafts, now, key);
    place(
        store,
        record,
        RelationshipWrite::default(),
        first,
        &placed,
        now,
    )
}

/// Person: a vault field changed; every vendor holding it under a live grant gets a grant
/// that replaces the old one, with the new value. Staged.
pub fn refresh(
    store: &Store,
    identity: &Identity,
    field: &str,
    now: u64,
) -> Result<Vec<Written>, RelationshipError> {
    let _one_writer = store.relationship_lock();
    let mut written = Vec::new();
    for record in store.relationships()? {
        if record.side != Side::Person {
            continue;
        }
        let stale = record.chain.grants.iter().filter(|g| {
            g.held() && g.live() && g.expires > now && g.fields.iter().any(|f| f == field)
        });
        let drafts: Vec<Draft> = stale
            .map(|g| {
                Draft::Grant(GrantDraft {
                    fields: g.fields.clone(),
                    purpose: g.purpose.clone(),
                    expires: g.expires,
                    terms: g.terms.clone(),
                    replaces: Some(g.id),
                })
            })
            .collect();
        for draft in drafts {
            match write_locked(store, identity, &record.chain.rel, &draft, now) {
                Ok(w) => written.push(w),
                Err(e) => warn!(
                    "relationship {}: the new value of {field} not sent: {e}",
                    hex::encode(record.chain.rel)
                ),
            }
        }
    }
    Ok(written)
}

/// A grant, for people to read.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// Its id (hex).
    pub id: String,
    /// The granted fields.
    pub fields: Vec<String>,
    /// The purpose.
    pub purpose: String,
    /// When the person granted it.
    pub since: u64,
    /// When it ends.
    pub until: u64,
    /// The person's terms.
    pub terms: Vec<String>,
    /// `sent` (not yet placed by the vendor's node), `waiting` (no receipt yet), `held`,
    /// `refused`, `deleting` (revoked, replaced, ended or expired; the deletion receipt is
    /// not here yet), `overdue` (the same, for over [`DELETION_GRACE_SECS`]), `deleted`.
    pub state: &'static str,
    /// The vendor's last receipt: its status and when the vendor signed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<(ReceiptStatus, u64)>,
    /// The vendor deletes the data by then (from its `held` receipt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_by: Option<u64>,
    /// When the person revoked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
    /// The grant that replaced it (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The values, on the vendor's node while it holds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
}

/// Where a grant stands at `now` (`placed`: the vendor's node placed it in the log).
fn state_of(
    chain_grants: &[GrantState],
    g: &GrantState,
    ended_at: Option<u64>,
    placed: bool,
    now: u64,
) -> &'static str {
    if g.deleted.is_some() {
        return "deleted";
    }
    match g.answer {
        Some((ReceiptStatus::Refused, _)) => return "refused",
        None if !placed => return "sent",
        _ => {}
    }
    let replaced_at = g
        .replaced_by
        .and_then(|new| chain_grants.iter().find(|n| n.id == new).map(|n| n.created));
    let expired = (g.expires <= now).then_some(g.expires);
    let due = [g.revoked, replaced_at, ended_at, expired]
        .into_iter()
        .flatten()
        .min();
    match (due, g.answer) {
        (Some(since), _) if now > since + DELETION_GRACE_SECS => "overdue",
        (Some(_), _) => "deleting",
        (None, Some(_)) => "held",
        (None, None) => "waiting",
    }
}

/// The grants of a relationship as this node sees them (the person's pending ones too),
/// with the values on the vendor's node while it holds them.
pub fn grant_views(
    store: &Store,
    record: &Relationship,
    with_pending: &crate::proto::relationship::Chain,
    now: u64,
) -> Vec<GrantView> {
    let ended_at = with_pending.state.ended_by.map(|_| record.updated);
    let placed = record.chain.grants.len();
    with_pending
        .grants
        .iter()
        .enumerate()
        .map(|(n, g)| {
            let values = (record.side == Side::Vendor && g.held() && g.live())
                .then(|| store.granted_values(&held_file(record, g)).ok().flatten())
                .flatten();
            GrantView {
                id: hex::encode(g.id),
                fields: g.fields.clone(),
                purpose: g.purpose.clone(),
                since: g.created,
                until: g.expires,
                terms: g.terms.clone(),
                state: state_of(&with_pending.grants, g, ended_at, n < placed, now),
                receipt: match (g.deleted, g.answer) {
                    (Some(at), _) => Some((ReceiptStatus::Deleted, at)),
                    (None, answer) => answer,
                },
                delete_by: g.delete_by,
                revoked: g.revoked,
                replaced_by: g.replaced_by.map(hex::encode),
                values,
            }
        })
        .collect()
}

/// One vendor holding (or having held) the person's data: who-holds-what.
#[derive(Debug, Clone, Serialize)]
pub struct Holding {
    /// The relationship (hex).
    pub relationship: String,
    /// The vendor's key (hex).
    pub vendor: String,
    /// The vendor's name, from its profile, if this node has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_name: Option<String>,
    /// The terms the vendor agreed to in the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreed_terms: Option<Vec<String>>,
    /// The grants, the newest first.
    pub grants: Vec<GrantView>,
}

/// Every vendor the person granted data to, the most recent grant first.
pub fn holdings(store: &Store, now: u64) -> Result<Vec<Holding>, RelationshipError> {
    let names: BTreeMap<[u8; 32], String> = store
        .profiles()?
        .into_iter()
        .map(|p| (*p.envelope.signer().as_bytes(), p.profile.name))
        .collect();
    let mut all = Vec::new();
    for record in store.relationships()? {
        if record.side != Side::Person {
            continue;
        }
        let (chain, _) = super::relationships::with_pending(&record)?;
        if chain.grants.is_empty() {
            continue;
        }
        let mut grants = grant_views(store, &record, &chain, now);
        grants.reverse();
        all.push(Holding {
            relationship: hex::encode(record.chain.rel),
            vendor: hex::encode(record.chain.vendor),
            vendor_name: names.get(&record.chain.vendor).cloned(),
            agreed_terms: chain.agreed_terms.clone(),
            grants,
        });
    }
    all.sort_by_key(|h| std::cmp::Reverse(h.grants.first().map(|g| g.since)));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> GrantState {
        GrantState {
            id: [1; 32],
            fields: vec!["email".into()],
            purpose: "delivery".into(),
            expires: 10_000,
            terms: Vec::new(),
            created: 1_000,
            replaces: None,
            answer: None,
            delete_by: None,
            revoked: None,
            replaced_by: None,
            deleted: None,
        }
    }

    fn state(g: &GrantState, ended_at: Option<u64>, placed: bool, now: u64) -> &'static str {
        state_of(std::slice::from_ref(g), g, ended_at, placed, now)
    }

    #[test]
    fn a_grant_shows_overdue_when_its_deletion_receipt_is_late() {
        let mut g = grant();
        assert_eq!(state(&g, None, false, 2_000), "sent");
        assert_eq!(state(&g, None, true, 2_000), "waiting");
        g.answer = Some((ReceiptStatus::Held, 1_010));
        assert_eq!(state(&g, None, true, 2_000), "held");
        let expired = g.expires;
        assert_eq!(state(&g, None, true, expired), "deleting", "expired now");
        assert_eq!(
            state(&g, None, true, expired + DELETION_GRACE_SECS),
            "deleting"
        );
        assert_eq!(
            state(&g, None, true, expired + DELETION_GRACE_SECS + 1),
            "overdue"
        );
        assert_eq!(
            state(&g, Some(3_000), true, 3_000 + DELETION_GRACE_SECS + 1),
            "overdue"
        );
        g.revoked = Some(4_000);
        assert_eq!(
            state(&g, None, true, 4_000 + DELETION_GRACE_SECS),
            "deleting"
        );
        assert_eq!(
            state(&g, None, true, 4_000 + DELETION_GRACE_SECS + 1),
            "overdue"
        );
        g.deleted = Some(4_100);
        assert_eq!(state(&g, None, true, 9_000_000), "deleted");
        let mut refused = grant();
        refused.answer = Some((ReceiptStatus::Refused, 1_010));
        assert_eq!(state(&refused, None, true, 9_000_000), "refused");
    }

    #[test]
    fn a_replaced_grant_is_due_from_the_replacing_one() {
        let mut old = grant();
        old.answer = Some((ReceiptStatus::Held, 1_010));
        old.replaced_by = Some([2; 32]);
        let mut new = grant();
        new.id = [2; 32];
        new.created = 5_000;
        let both = [old.clone(), new];
        assert_eq!(
            state_of(&both, &old, None, true, 5_000 + DELETION_GRACE_SECS),
            "deleting"
        );
        assert_eq!(
            state_of(&both, &old, None, true, 5_001 + DELETION_GRACE_SECS),
            "overdue"
        );
    }
}
