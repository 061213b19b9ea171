//! The relationship family: what a person and a vendor write into the one log they both keep
//! after an offer is taken (`proto/README.md`, "Relationships").
//!
//! The first entry is the person's [`Accept`]; every later entry ([`Order`],
//! [`OrderUpdate`], [`Message`], [`RelationshipEnd`]) names the relationship, its place in
//! the log and the entry before it. An [`EntryAck`] is not an entry: it is one side's
//! signed word that it holds the other side's entry at that place.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

use super::{Body, IntentId, KeyBytes, Kind, OfferItem, ReplyTo};

/// A 32-byte message id as carried in bodies.
pub type IdBytes = ByteArray<32>;

/// The person takes an offer. Signed by the relationship persona: the pairwise persona for
/// this vendor (a returning customer) or a fresh key (a new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The offer taken: the id of its envelope.
    pub offer: IdBytes,
    /// The intent it answers.
    pub intent: IntentId,
    /// The persona that signed the intent (the offer names it too).
    pub intent_persona: KeyBytes,
    /// The relationship persona; must equal the envelope signer.
    pub persona: KeyBytes,
    /// The intent persona's signature over the link input ([`link_input`]): the person who
    /// cast the intent is the one accepting, towards this vendor and this offer only.
    pub link: ByteArray<64>,
    /// Where the vendor's entries go: the person's queue for this relationship.
    pub reply_to: ReplyTo,
    /// Unix time, seconds.
    pub created: u64,
}

/// The vendor's order: the accepted offer's items restated exactly. The vendor's
/// confirmation; the person's node countersigns it with an `agreed` update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The relationship: the id of its accept.
    pub rel: IdBytes,
    /// Place in the log (the accept is 0).
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// The offer's items, exactly.
    pub items: Vec<OfferItem>,
    /// Free text from the vendor.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
}

/// A change of an order's state; who may sign which status is in `proto/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// The new status ([`Status`]).
    pub status: String,
    /// Free text (a tracking number, a reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
}

/// A message from either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// What is said.
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
}

/// Either side ends the relationship: the last entry of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipEnd {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// Why, if the side says.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
}

/// One side's signed word that it holds the other side's entry `entry` at place `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryAck {
    /// The relationship.
    pub rel: IdBytes,
    /// The entry's place in the log.
    pub seq: u32,
    /// The entry's id.
    pub entry: IdBytes,
    /// Unix time, seconds.
    pub created: u64,
}

impl Body for Accept {
    const KIND: Kind = Kind::Accept;
}
impl Body for Order {
    const KIND: Kind = Kind::Order;
}
impl Body for OrderUpdate {
    const KIND: Kind = Kind::OrderUpdate;
}
impl Body for Message {
    const KIND: Kind = Kind::Message;
}
impl Body for RelationshipEnd {
    const KIND: Kind = Kind::RelationshipEnd;
}
impl Body for EntryAck {
    const KIND: Kind = Kind::EntryAck;
}

/// The statuses of an order update, each with the side that may sign it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Person: countersigns the vendor's order.
    Agreed,
    /// Person: calls the order off (before it is shipped or fulfilled).
    Cancelled,
    /// Person: has what was ordered.
    Received,
    /// Vendor: will not sell after all (before the person agreed to the order).
    Declined,
    /// Vendor: sent the goods (may repeat, to add tracking).
    Shipped,
    /// Vendor: has done its part.
    Fulfilled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 6] = [
        Status::Agreed,
        Status::Cancelled,
        Status::Received,
        Status::Declined,
        Status::Shipped,
        Status::Fulfilled,
    ];

    /// The status's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Agreed => "agreed",
            Status::Cancelled => "cancelled",
            Status::Received => "received",
            Status::Declined => "declined",
            Status::Shipped => "shipped",
            Status::Fulfilled => "fulfilled",
        }
    }

    /// The status with this wire name.
    pub fn from_wire(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the vendor signs it (otherwise the person does).
    pub fn by_vendor(self) -> bool {
        matches!(self, Status::Declined | Status::Shipped | Status::Fulfilled)
    }
}

/// The bytes the intent persona signs to link the relationship persona to its intent:
/// `"vrm/2/accept-link" || 0x00 || persona || vendor || offer id`. It names the vendor and
/// the offer, so it cannot be shown to another vendor or for another offer, and
/// `accept-link` is not a kind (every node refuses such an envelope as `unknown-kind`), so
/// it can never pass for a signed envelope.
pub fn link_input(persona: &[u8; 32], vendor: &[u8; 32], offer: &[u8; 32]) -> Vec<u8> {
    let mut input = Vec::with_capacity(LINK_PREFIX.len() + 1 + 96);
    input.extend_from_slice(LINK_PREFIX);
    input.push(0);
    input.extend_from_slice(persona);
    input.extend_from_slice(vendor);
    input.extend_from_slice(offer);
    input
}

/// The prefix of the link input.
pub const LINK_PREFIX: &[u8] = b"vrm/2/accept-link";
