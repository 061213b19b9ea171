//! The intent family: a person's signed [`Intent`] with its [`Constraints`], and the
//! caster's [`IntentWithdraw`]. Both travel on an intent topic.

use serde::{Deserialize, Serialize};

use super::{Body, IntentId, Kind, Price, ReplyTo, Term};

/// A range of calendar days, `YYYY-MM-DD`, both ends included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
}

/// Structured constraints of an intent; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// The most the person will pay in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Price>,
    /// Where (a town, a region, "online").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<DateRange>,
    /// How many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
}

impl Constraints {
    /// True when no constraint is set.
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// "I want X, on these terms, until then", signed by a fresh persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Random id chosen by the caster.
    pub id: IntentId,
    /// Top-level category from the taxonomy.
    pub category: String,
    /// Subcategory of `category`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcategory: Option<String>,
    /// What the person wants, in their own words.
    pub text: String,
    /// Structured constraints.
    #[serde(default, skip_serializing_if = "Constraints::is_empty")]
    pub constraints: Constraints,
    /// Terms the person proffers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<Term>,
    /// Unix time, seconds.
    pub created: u64,
    /// Unix time, seconds, after which the intent is void.
    pub expires: u64,
    /// Where offers go.
    pub reply_to: ReplyTo,
    /// Present on a collective intent: the group this member's intent belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupTerms>,
}

impl Body for Intent {
    const KIND: Kind = Kind::Intent;
}

/// What makes an intent one member's of a collective intent. Every member casts the same
/// intent (category, text, constraints, terms, expiry) with the same `GroupTerms` under its
/// own fresh persona and reply path; the group's id is derived from all of that
/// ([`group_id`]), so members of one group share its terms by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTerms {
    /// Random, chosen by whoever started the group: two groups with the same terms differ.
    pub nonce: serde_bytes::ByteArray<16>,
    /// How many members the group looks for (shown; the vendor's offer sets the threshold).
    pub size: u32,
}

/// The id of the group `intent` is a member's intent of (`None` for a lone intent): the
/// first 16 bytes of SHA-256 over `"vrm/2/group"`, a zero byte and the CBOR array of
/// category, subcategory, text, constraints, terms, expires and the group terms.
pub fn group_id(intent: &Intent) -> Option<[u8; 16]> {
    use sha2::Digest;
    let group = intent.group.as_ref()?;
    let shared = (
        &intent.category,
        &intent.subcategory,
        &intent.text,
        &intent.constraints,
        &intent.terms,
        intent.expires,
        group,
    );
    let mut input = b"vrm/2/group\0".to_vec();
    ciborium::into_writer(&shared, &mut input).expect("writing to a Vec cannot fail");
    let digest = sha2::Sha256::digest(&input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    Some(id)
}

/// The caster withdraws an intent. Signed by the intent's persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentWithdraw {
    /// The intent withdrawn.
    pub intent: IntentId,
    /// Unix time, seconds.
    pub created: u64,
}

impl Body for IntentWithdraw {
    const KIND: Kind = Kind::IntentWithdraw;
}
