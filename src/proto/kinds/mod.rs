//! The message kinds and their bodies, as `proto/vrm.cddl` defines them.
//!
//! Bodies are CBOR maps with text keys. Optional fields are left out when empty. Unknown keys
//! are ignored on decode, so a later minor revision can add optional fields without breaking
//! older nodes (the signature covers the bytes as sent, so nothing is lost by ignoring them).
//! Amounts of money are integers in the currency's minor unit (cents), never floats.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::{ByteArray, ByteBuf};

/// A 16-byte random intent id, chosen by the caster.
pub type IntentId = ByteArray<16>;
/// A 32-byte Ed25519 public key as carried in bodies.
pub type KeyBytes = ByteArray<32>;

/// Every kind the protocol defines. The later ones (from `Accept` on) are specified in
/// `proto/vrm.cddl` but not yet handled by this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A person's signed intention.
    Intent,
    /// The caster takes an intent back.
    IntentWithdraw,
    /// A vendor's answer to an intent.
    Offer,
    /// A vendor's public profile.
    VendorProfile,
    /// The person accepts an offer.
    Accept,
    /// The vendor confirms an accepted offer.
    Order,
    /// The vendor reports fulfilment or cancellation.
    OrderUpdate,
    /// A message inside a relationship.
    Message,
    /// A review backed by a vendor-signed order.
    Review,
    /// Personal data shared under terms.
    Grant,
    /// Withdrawal of a grant.
    Revoke,
    /// The vendor's signed receipt for a grant or a revocation.
    Receipt,
}

impl Kind {
    /// All kinds, in the order of the CDDL.
    pub const ALL: [Kind; 12] = [
        Kind::Intent,
        Kind::IntentWithdraw,
        Kind::Offer,
        Kind::VendorProfile,
        Kind::Accept,
        Kind::Order,
        Kind::OrderUpdate,
        Kind::Message,
        Kind::Review,
        Kind::Grant,
        Kind::Revoke,
        Kind::Receipt,
    ];

    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Intent => "intent",
            Kind::IntentWithdraw => "intent-withdraw",
            Kind::Offer => "offer",
            Kind::VendorProfile => "vendor-profile",
            Kind::Accept => "accept",
            Kind::Order => "order",
            Kind::OrderUpdate => "order-update",
            Kind::Message => "message",
            Kind::Review => "review",
            Kind::Grant => "grant",
            Kind::Revoke => "revoke",
            Kind::Receipt => "receipt",
        }
    }

    /// The kind with this wire name, if the protocol defines one.
    pub fn from_wire(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body type that can be sealed into and opened from an envelope.
pub trait Body: Serialize + DeserializeOwned {
    /// The envelope kind that carries this body.
    const KIND: Kind;
}

/// An amount of money in a currency's minor unit (for EUR, cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
}

impl Price {
    /// Parses a decimal amount in the currency's main unit ("150", "150.5", "150.50") with
    /// two minor digits, as used by every currency vrm names today.
    pub fn parse(amount: &str, currency: &str) -> Option<Price> {
        let (whole, frac) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
        if whole.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let cents = format!("{frac:0<2}").parse::<u64>().ok()?;
        let amount = whole
            .parse::<u64>()
            .ok()?
            .checked_mul(100)?
            .checked_add(cents)?;
        let currency_ok = currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase());
        currency_ok.then(|| Price {
            amount,
            currency: currency.to_owned(),
        })
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.amount / 100,
            self.amount % 100,
            self.currency
        )
    }
}

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

/// A term the person proffers (ids from `proto/terms.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// Term id.
    pub id: String,
    /// If true, an offer that does not accept this term is refused.
    #[serde(default)]
    pub required: bool,
}

/// Where offers for an intent go: a libp2p peer id and some of its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The peer id, in its binary (multihash) form.
    pub peer: ByteBuf,
    /// Multiaddrs in their binary form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<ByteBuf>,
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
}

impl Body for Intent {
    const KIND: Kind = Kind::Intent;
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

/// One line of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferItem {
    /// What is offered.
    pub title: String,
    /// Price per unit.
    pub price: Price,
    /// Number of units.
    pub quantity: u32,
    /// The vendor's own reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
}

/// A vendor's signed answer to one intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The intent answered.
    pub intent: IntentId,
    /// The persona key that signed the intent.
    pub persona: KeyBytes,
    /// The vendor's key; must be the envelope signer.
    pub vendor: KeyBytes,
    /// What is offered.
    pub items: Vec<OfferItem>,
    /// Free text from the vendor.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Unix time, seconds.
    pub created: u64,
    /// Unix time, seconds, until which the vendor holds the offer.
    pub valid_until: u64,
    /// Ids of the person's terms the vendor accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_terms: Vec<String>,
}

impl Offer {
    /// Total price of all items, if they share one currency and the sum does not overflow.
    pub fn total(&self) -> Option<Price> {
        let currency = self.items.first()?.price.currency.clone();
        let mut amount: u64 = 0;
        for item in &self.items {
            if item.price.currency != currency {
                return None;
            }
            amount =
                amount.checked_add(item.price.amount.checked_mul(u64::from(item.quantity))?)?;
        }
        Some(Price { amount, currency })
    }
}

impl Body for Offer {
    const KIND: Kind = Kind::Offer;
}

/// A vendor's public profile, gossiped on the directory topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorProfile {
    /// Display name.
    pub name: String,
    /// Top-level categories served.
    pub categories: Vec<String>,
    /// How to reach the vendor outside vrm (web, mail, phone).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// Term ids the vendor accepts in general.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_terms: Vec<String>,
    /// Unix time, seconds; the newest profile per vendor key wins.
    pub created: u64,
    /// Where the vendor node can be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
}

impl Body for VendorProfile {
    const KIND: Kind = Kind::VendorProfile;
}

/// A decoded body of one of the kinds this node handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An intent.
    Intent(Intent),
    /// A withdrawal.
    IntentWithdraw(IntentWithdraw),
    /// An offer.
    Offer(Offer),
    /// A vendor profile.
    VendorProfile(VendorProfile),
}
