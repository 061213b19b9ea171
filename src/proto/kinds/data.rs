//! The person's data inside a relationship (`proto/README.md`, "Data on the person's
//! terms"): the vendor's [`Agreement`] to the person's terms, the person's [`Grant`] of
//! vault fields for a purpose and a period, its [`Revoke`], and the vendor's [`Receipt`]
//! for each (held, refused, deleted). All four are entries of the relationship's log.
//!
//! A grant names the fields, never their values: the values travel beside it, sealed to
//! the vendor's inbox in a [`GrantDelivery`] that nobody signs. So the joint log says what
//! was granted, for what and until when, but is no signed proof of the person's data that
//! a vendor could hand on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::relationship::IdBytes;
use super::{Body, Kind};

/// The vendor agrees to terms the person proffered (the ones its offer accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// Term ids from `proto/terms.json`.
    pub terms: Vec<String>,
    /// Unix time, seconds.
    pub created: u64,
}

/// The person grants vault fields for a purpose until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// Names of the granted vault fields (their values travel beside the grant).
    pub fields: Vec<String>,
    /// A purpose id from `proto/purposes.json`.
    pub purpose: String,
    /// The grant ends then (unix seconds): the vendor deletes the data.
    pub expires: u64,
    /// The person's terms the data is shared under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// The grant this one replaces (new values of its fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<IdBytes>,
    /// Unix time, seconds.
    pub created: u64,
}

/// The person withdraws a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// The grant withdrawn.
    pub grant: IdBytes,
    /// Unix time, seconds.
    pub created: u64,
}

/// The vendor's signed word on a grant: it holds the data, refused it, or deleted it. It
/// restates what it is about, so a receipt alone says what the vendor answered for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The relationship.
    pub rel: IdBytes,
    /// Place in the log.
    pub seq: u32,
    /// Id of the entry before.
    pub prev: IdBytes,
    /// The grant it answers.
    pub of: IdBytes,
    /// [`ReceiptStatus`] on the wire.
    pub status: String,
    /// The grant's fields, restated.
    pub fields: Vec<String>,
    /// The grant's purpose, restated.
    pub purpose: String,
    /// The grant's expiry, restated.
    pub expires: u64,
    /// When the vendor deletes the data at the latest (not after `expires`).
    pub delete_by: u64,
    /// The terms the vendor holds the data under (for `held`, all of the grant's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// Why (a refusal's reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
}

impl Body for Agreement {
    const KIND: Kind = Kind::Agreement;
}
impl Body for Grant {
    const KIND: Kind = Kind::Grant;
}
impl Body for Revoke {
    const KIND: Kind = Kind::Revoke;
}
impl Body for Receipt {
    const KIND: Kind = Kind::Receipt;
}

/// What a receipt says of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptStatus {
    /// The vendor holds the data, under the grant's terms, until `delete_by`.
    Held,
    /// The vendor did not take the data (it does not accept the terms, or the values did
    /// not come with the grant).
    Refused,
    /// The vendor deleted the data.
    Deleted,
}

impl ReceiptStatus {
    /// Every status.
    pub const ALL: [ReceiptStatus; 3] = [
        ReceiptStatus::Held,
        ReceiptStatus::Refused,
        ReceiptStatus::Deleted,
    ];

    /// The status's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Held => "held",
            ReceiptStatus::Refused => "refused",
            ReceiptStatus::Deleted => "deleted",
        }
    }

    /// The status with this wire name.
    pub fn from_wire(name: &str) -> Option<ReceiptStatus> {
        ReceiptStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// How a grant travels from the person's node to the vendor's inbox: the signed grant and,
/// beside it, the values of its fields. Only sealed to the inbox; never stored in a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantDelivery {
    /// The grant's envelope.
    pub grant: ByteBuf,
    /// Field name → value, for exactly the grant's fields.
    pub values: BTreeMap<String, String>,
}

impl GrantDelivery {
    /// Reads a delivery (`None` if `payload` is not one).
    pub fn decode(payload: &[u8]) -> Option<GrantDelivery> {
        ciborium::from_reader(payload).ok()
    }

    /// The bytes of a delivery.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// The envelope a relationship payload carries: the payload itself, or a delivery's
    /// grant.
    pub fn envelope_of(payload: &[u8]) -> Vec<u8> {
        match GrantDelivery::decode(payload) {
            Some(delivery) => delivery.grant.into_vec(),
            None => payload.to_vec(),
        }
    }
}

/// Most fields one grant names.
pub const MAX_GRANT_FIELDS: usize = 64;
/// Longest time a grant may run, from its creation: one year.
pub const MAX_GRANT_SECS: u64 = 366 * 24 * 3600;

/// Whether `name` is a vault field name: `[a-z0-9][a-z0-9_-]{0,31}`.
pub fn is_field_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_short_lower_case_words() {
        for good in ["email", "postal-address", "shoe_size", "a", "x1"] {
            assert!(is_field_name(good), "{good}");
        }
        let long = "a".repeat(33);
        for bad in ["", "Email", "-x", "_x", "e mail", "é", long.as_str()] {
            assert!(!is_field_name(bad), "{bad}");
        }
        assert!(is_field_name(&"a".repeat(32)));
    }

    #[test]
    fn receipt_statuses_have_their_wire_names() {
        for status in ReceiptStatus::ALL {
            assert_eq!(ReceiptStatus::from_wire(status.as_str()), Some(status));
        }
        assert_eq!(ReceiptStatus::from_wire("kept"), None);
        assert_eq!(ReceiptStatus::Deleted.as_str(), "deleted");
    }
}
