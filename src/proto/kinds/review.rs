//! The review family (`proto/README.md`, "Reviews and reputation"): the vendor's
//! [`ReviewToken`], an entry of the relationship log its node writes once the order is
//! fulfilled or received, and the person's [`Review`], gossiped on the directory topic under
//! the relationship persona with the token inside it as the proof of a real order.
//!
//! The token says only "this vendor fulfilled order X to persona P": no items, prices, times
//! of the order or text. A review may carry [`HistoryItem`]s, tokens the same person holds
//! from other vendors, each with its persona's signature over the link, when the person
//! chooses to show that they are a buyer with a history (which links those relationships).

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

use super::relationship::IdBytes;
use super::{Body, KeyBytes, Kind};

/// The vendor's signed word that an order to `persona` was fulfilled (or received): what a
/// review proves its order with. An entry of the relationship log, one per relationship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewToken {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// The relationship persona the order was made to.
    pub persona: KeyBytes,
    /// The id of the vendor's order entry.
    pub order: IdBytes,
    /// Unix time, seconds.
    pub created: u64,
}

impl Body for ReviewToken {
    const KIND: Kind = Kind::ReviewToken;
}

/// One more fulfilled order of the same person, with another vendor: its token, and the
/// token persona's signature over [`history_input`] (this review's persona and vendor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// A review-token envelope from another vendor.
    pub token: ByteBuf,
    /// The token persona's signature over [`history_input`].
    pub sig: ByteArray<64>,
}

/// A person's review of a vendor, signed by the relationship persona the token names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The vendor's review-token envelope.
    pub token: ByteBuf,
    /// 1 (bad) to 5 (excellent).
    pub rating: u8,
    /// In the person's words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Orders of the same person with other vendors, shown by choice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryItem>,
    /// Unix time, seconds; a newer review of the same order replaces the older.
    pub created: u64,
}

impl Body for Review {
    const KIND: Kind = Kind::Review;
}

/// Domain prefix of [`history_input`].
pub const HISTORY_PREFIX: &[u8] = b"vrm/2/review-history";

/// What a history item's persona signs: the prefix, a zero byte, the reviewing persona and
/// the reviewed vendor. It links the two personas for this vendor's reviews only, and can
/// never pass for an envelope's signing input.
pub fn history_input(persona: &[u8; 32], vendor: &[u8; 32]) -> Vec<u8> {
    let mut input = Vec::with_capacity(HISTORY_PREFIX.len() + 65);
    input.extend_from_slice(HISTORY_PREFIX);
    input.push(0);
    input.extend_from_slice(persona);
    input.extend_from_slice(vendor);
    input
}
