//! The records as they lie in the trees (CBOR). Private to the store: the rest of the node
//! reads [`super::models`] and writes through the store's operations.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::models::{Decision, Delivery, Origin, Route, Subject};

/// A stored intent: the envelope as signed, and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IntentRecord {
    pub envelope: ByteBuf,
    pub origin: Origin,
    pub stored_at: u64,
    pub withdrawn_at: Option<u64>,
    /// Vendor side: whether and how this node answered it.
    #[serde(default)]
    pub decision: Option<Decision>,
}

/// A stored offer, sent (vendor side) or received (person side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OfferRecord {
    pub envelope: ByteBuf,
    pub origin: Origin,
    pub stored_at: u64,
    #[serde(default)]
    pub delivery: Delivery,
}

/// The newest profile seen from one vendor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ProfileRecord {
    pub envelope: ByteBuf,
    pub stored_at: u64,
}

/// An outgoing message waiting to be delivered. Written once when queued and removed when
/// done: attempts and backoff live in the node's outbox planner, so no retry ever writes an
/// entry back (and none can bring back an entry a withdrawal removed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OutboxRecord {
    pub envelope: ByteBuf,
    pub subject: Subject,
    pub route: Route,
    /// Give up after this time (unix seconds).
    pub expires: u64,
}
