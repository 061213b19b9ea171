//! Collective intents, the person's side (`proto/README.md`, "Collective intents"): start a
//! group, join one, leave it, see every group with its running count.
//!
//! Each member's intent is an ordinary intent under a fresh persona with its own reply
//! path, carrying the group's terms ([`GroupTerms`]): joining casts one, leaving withdraws
//! it. So a vendor (or the person who started the group) learns the terms and how many
//! joined, and about each member no more than about any intent's caster: nothing that
//! links it to a person or to the other members. Each member receives the vendor's group
//! offer in their own mailbox queue and accepts it, or not, alone.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::handle::{CastRequest, NodeError, NodeHandle};
use crate::clock::unix_now;
use crate::proto::{GroupTerms, Intent, IntentId, group_id};
use crate::store::Origin;

/// A collective intent as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    /// The group id, hex.
    pub id: String,
    /// Top-level category.
    pub category: String,
    /// What the group wants.
    pub text: String,
    /// Price ceiling per member, e.g. "20.00 EUR", if any.
    pub max_price: Option<String>,
    /// Place, if any.
    pub place: Option<String>,
    /// How many members the group looks for.
    pub size: u32,
    /// How many joined, as far as this node has seen.
    pub members: usize,
    /// When the group's intents expire (unix seconds).
    pub expires: u64,
    /// This node's member intent, if the person joined (hex).
    pub joined: Option<String>,
}

impl NodeHandle {
    /// Starts a collective intent of `size` members with the terms of `request`: the
    /// person's own member intent is the first.
    pub async fn start_group(
        &self,
        mut request: CastRequest,
        size: u32,
    ) -> Result<(IntentId, [u8; 16]), NodeError> {
        request.group = Some(GroupTerms {
            nonce: rand::random::<[u8; 16]>().into(),
            size,
        });
        let id = self.cast(request).await?;
        let intent = self.intent(&id)?.map(|s| s.intent);
        let group = intent.as_ref().and_then(group_id).ok_or_else(|| {
            NodeError::Relationship("the group's first intent was not kept".into())
        })?;
        Ok((id, group))
    }

    /// Joins group `group` (hex): casts a member intent with exactly its terms under a
    /// fresh persona.
    pub async fn join_group(&self, group: &str) -> Result<IntentId, NodeError> {
        let id = parse_group(group)?;
        if self.own_member(&id)?.is_some() {
            return Err(NodeError::Relationship(format!(
                "this node is a member of group {group} already"
            )));
        }
        let Some(known) = self.store.groups(Some(&id))?.pop() else {
            return Err(NodeError::Relationship(format!("no group {group}")));
        };
        let now = unix_now();
        let intent_id: IntentId = rand::random::<[u8; 16]>().into();
        let intent = Intent {
            id: intent_id,
            created: now,
            reply_to: self.stand_in(&intent_id),
            ..known.terms
        };
        self.publish_intent(intent, now).await
    }

    /// Leaves group `group` (hex): withdraws this node's member intent.
    pub async fn leave_group(&self, group: &str) -> Result<IntentId, NodeError> {
        let id = parse_group(group)?;
        let Some(intent) = self.own_member(&id)? else {
            return Err(NodeError::Relationship(format!(
                "this node is not a member of group {group}"
            )));
        };
        self.withdraw(&intent).await?;
        Ok(intent)
    }

    /// Every group this node has seen a member of, newest expiry first.
    pub fn groups(&self) -> Result<Vec<GroupView>, NodeError> {
        let mine = self.own_members()?;
        let mut views = Vec::new();
        for group in self.store.groups(None)? {
            let terms = &group.terms;
            let constraints = &terms.constraints;
            views.push(GroupView {
                id: hex::encode(group.id),
                category: terms.category.clone(),
                text: terms.text.clone(),
                max_price: constraints.max_price.as_ref().map(ToString::to_string),
                place: constraints.place.clone(),
                size: terms.group.as_ref().map_or(0, |g| g.size),
                members: group.members,
                expires: terms.expires,
                joined: mine.get(&group.id).map(|i| hex::encode(**i)),
            });
        }
        views.sort_by_key(|g| std::cmp::Reverse(g.expires));
        Ok(views)
    }

    /// This node's open member intent of group `id`, if any.
    fn own_member(&self, id: &[u8; 16]) -> Result<Option<IntentId>, NodeError> {
        Ok(self.own_members()?.remove(id))
    }

    /// This node's open member intents, by group.
    fn own_members(&self) -> Result<HashMap<[u8; 16], IntentId>, NodeError> {
        Ok(self
            .store
            .intents()?
            .into_iter()
            .filter(|s| s.origin == Origin::Own && s.withdrawn_at.is_none())
            .filter_map(|s| Some((group_id(&s.intent)?, s.intent.id)))
            .collect())
    }
}

fn parse_group(group: &str) -> Result<[u8; 16], NodeError> {
    hex::decode(group)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| {
            NodeError::Relationship(format!("{group:?} is not a group id (32 hex digits)"))
        })
}
