//! Group offers, the vendor's side (`proto/README.md`, "Collective intents"): a group offer
//! binds only once `min` members accepted it by its deadline. The members' accepts are
//! the orders: the vendor's node counts the relationships its group offers started, and
//! writes the orders of all of them once `min` stand; past the deadline with fewer, it
//! declines the waiting ones. Nobody has to trust a count: each member sees their own order
//! confirmed, or declined with the count in its text.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use tracing::info;

use super::data;
use super::events::NodeEvent;
use super::relationships::{Draft, follow_up, place};
use crate::proto::relationship::{Side, Stage};
use crate::proto::{Envelope, GroupOffer, Offer, group_id};
use crate::store::relationships::{Relationship, RelationshipWrite};
use crate::store::{IntentKey, Outgoing, Store, StoreError};

/// The group of the group offer `record` started from, and its terms, if it is one.
pub fn group_of(store: &Store, record: &Relationship) -> Option<([u8; 16], GroupOffer)> {
    let offer: Offer = Envelope::decode(&record.offer).ok()?.open().ok()?;
    let terms = offer.group?;
    let intent = store
        .intent(&IntentKey::received(&offer.persona, &offer.intent))
        .ok()??;
    Some((group_id(&intent.intent)?, terms))
}

/// Members that accepted, and the relationships waiting for the group to bind.
#[derive(Default)]
struct Tally {
    terms: Option<GroupOffer>,
    accepted: u32,
    waiting: Vec<Relationship>,
}

/// How many members accepted the group offers of `group`: relationships neither declined
/// nor cancelled nor ended.
pub fn accepted(store: &Store, group: &[u8; 16]) -> Result<u32, StoreError> {
    Ok(tallies(store)?.get(group).map_or(0, |t| t.accepted))
}

fn tallies(store: &Store) -> Result<HashMap<[u8; 16], Tally>, StoreError> {
    let mut tallies: HashMap<[u8; 16], Tally> = HashMap::new();
    for record in store.relationships()? {
        if record.side != Side::Vendor {
            continue;
        }
        let Some((group, terms)) = group_of(store, &record) else {
            continue;
        };
        let state = record.chain.state;
        let tally = tallies.entry(group).or_default();
        tally.terms = Some(terms);
        if matches!(state.stage, Stage::Declined | Stage::Cancelled) || state.ended_by.is_some() {
            continue;
        }
        tally.accepted += 1;
        if state.stage == Stage::Accepted {
            tally.waiting.push(record);
        }
    }
    Ok(tallies)
}

/// What [`settle`] wrote: deliveries, events, and whether members still wait.
pub type Settled = (Vec<Outgoing>, Vec<NodeEvent>, bool);

/// Writes the orders of every group that reached its threshold in time, and declines the
/// waiting members of every group whose deadline passed short of it. The caller holds the
/// relationship lock.
pub fn settle(store: &Store, key: &SigningKey, now: u64) -> Result<Settled, StoreError> {
    let mut queued = Vec::new();
    let mut events = Vec::new();
    let mut waiting = false;
    for (group, tally) in tallies(store)? {
        let Some(terms) = tally.terms else { continue };
        // Accepts come only before the deadline (the offer runs out then), so a group that
        // has its minimum is confirmed even if this round runs after the deadline.
        let drafts = if tally.accepted >= terms.min {
            info!(
                "group {}: {} of {} members accepted, the orders are confirmed",
                hex::encode(group),
                tally.accepted,
                terms.min
            );
            vec![Draft::Order]
        } else if now > terms.deadline {
            let why = format!(
                "the group offer needed {} members by its deadline; {} accepted",
                terms.min, tally.accepted
            );
            vec![Draft::Update(crate::proto::Status::Declined, why)]
        } else {
            waiting |= !tally.waiting.is_empty();
            continue;
        };
        for mut record in tally.waiting {
            let first = record.chain.len;
            let mut all = match drafts[0] {
                Draft::Order => data::before_order(&record),
                _ => Vec::new(),
            };
            all.extend(drafts.iter().cloned());
            let placed = follow_up(&mut record, &all, now, key);
            record.updated = now;
            let (more, told) = place(
                store,
                &record,
                RelationshipWrite::default(),
                first,
                &placed,
                now,
            )?;
            queued.extend(more);
            events.extend(told);
        }
    }
    Ok((queued, events, waiting))
}
