//! The message kinds and their bodies, as `proto/vrm.cddl` defines them.
//!
//! Bodies are CBOR maps with text keys. Optional fields are left out when empty. Unknown keys
//! are ignored on decode, so a later minor revision can add optional fields without breaking
//! older nodes (the signature covers the bytes as sent, so nothing is lost by ignoring them).
//! Amounts of money are integers in the currency's minor unit (cents), never floats.
//!
//! This file holds what every family shares: [`Kind`], the [`Body`] trait, the small types
//! several bodies use, and [`Payload`], the decoded body of any handled kind. Each family of
//! kinds has its own file: `intent.rs`, `offer.rs`, `profile.rs`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::{ByteArray, ByteBuf};

mod data;
mod intent;
mod offer;
mod profile;
mod relationship;
mod review;

pub use data::{
    Agreement, Grant, GrantDelivery, MAX_GRANT_FIELDS, MAX_GRANT_SECS, Receipt, ReceiptStatus,
    Revoke, is_field_name,
};
pub use intent::{Constraints, DateRange, GroupTerms, Intent, IntentWithdraw, group_id};
pub use offer::{GroupOffer, Offer, OfferItem};
pub use profile::VendorProfile;
pub use relationship::{
    Accept, EntryAck, IdBytes, LINK_PREFIX, Message, Order, OrderUpdate, RelationshipEnd, Status,
    link_input,
};
pub use review::{HISTORY_PREFIX, HistoryItem, Review, ReviewToken, history_input};

/// A 16-byte random intent id, chosen by the caster.
pub type IntentId = ByteArray<16>;
/// A 32-byte Ed25519 public key as carried in bodies.
pub type KeyBytes = ByteArray<32>;

/// Every kind the protocol defines. The relationship kinds (from `Accept` to
/// `ReviewToken`) travel sealed through mailboxes, never on gossip; a `Review` travels on
/// the directory topic.
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
    /// A change of an order's state, by the side the status belongs to.
    OrderUpdate,
    /// A message inside a relationship.
    Message,
    /// Either side ends a relationship.
    RelationshipEnd,
    /// One side holds the other's relationship entry.
    EntryAck,
    /// The vendor agrees to the person's terms.
    Agreement,
    /// The person grants vault fields for a purpose and a period.
    Grant,
    /// The person withdraws a grant.
    Revoke,
    /// The vendor's signed word on a grant: held, refused or deleted.
    Receipt,
    /// The vendor's signed word that an order was fulfilled: what a review proves it with.
    ReviewToken,
    /// A person's review of a vendor, with the vendor's token of a fulfilled order.
    Review,
}

impl Kind {
    /// All kinds, in the order of the CDDL.
    pub const ALL: [Kind; 16] = [
        Kind::Intent,
        Kind::IntentWithdraw,
        Kind::Offer,
        Kind::VendorProfile,
        Kind::Accept,
        Kind::Order,
        Kind::OrderUpdate,
        Kind::Message,
        Kind::RelationshipEnd,
        Kind::EntryAck,
        Kind::Agreement,
        Kind::Grant,
        Kind::Revoke,
        Kind::Receipt,
        Kind::ReviewToken,
        Kind::Review,
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
            Kind::RelationshipEnd => "relationship-end",
            Kind::EntryAck => "entry-ack",
            Kind::Agreement => "agreement",
            Kind::ReviewToken => "review-token",
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

/// A term the person proffers (ids from `proto/terms.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// Term id.
    pub id: String,
    /// If true, an offer that does not accept this term is refused.
    #[serde(default)]
    pub required: bool,
}

/// Where offers for an intent go: a mailbox on a service node, a one-time queue there and
/// a one-time key to seal them to. Nothing in it names the person's node, and no part of it
/// is used for two intents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The mailbox's service node: its peer id, binary.
    pub mailbox: ByteBuf,
    /// The one address vendors dial the mailbox at, a binary multiaddr.
    pub addr: ByteBuf,
    /// The one-time queue id at the mailbox (16 bytes).
    pub queue: ByteBuf,
    /// The one-time X25519 public key offers are sealed to (32 bytes, `proto/README.md`).
    pub key: ByteBuf,
}

impl ReplyTo {
    /// The reply path to queue `queue` of the mailbox on `mailbox` at `addr`, sealed to `key`.
    pub fn new(
        mailbox: &libp2p::PeerId,
        addr: &libp2p::Multiaddr,
        queue: [u8; 16],
        key: [u8; 32],
    ) -> ReplyTo {
        ReplyTo {
            mailbox: mailbox.to_bytes().into(),
            addr: addr.to_vec().into(),
            queue: queue.to_vec().into(),
            key: key.to_vec().into(),
        }
    }

    /// A well-formed reply path to a mailbox that exists nowhere.
    #[cfg(test)]
    pub(crate) fn nowhere() -> ReplyTo {
        let addr = "/ip4/127.0.0.1/tcp/9".parse().expect("a multiaddr");
        ReplyTo::new(&libp2p::PeerId::random(), &addr, [7; 16], [9; 32])
    }
}

/// Where a public node (a vendor's) can be reached: its peer id and some addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// The peer id, in its binary (multihash) form.
    pub peer: ByteBuf,
    /// Multiaddrs in their binary form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<ByteBuf>,
}

/// A decoded body of one of the kinds this node handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// An intent.
    Intent(Intent),
    /// A withdrawal.
    IntentWithdraw(IntentWithdraw),
    /// An offer.
    Offer(Offer),
    /// A vendor profile.
    VendorProfile(VendorProfile),
    /// A review.
    Review(Review),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_from_decimal_text_in_minor_units() {
        let eur = |amount: u64| {
            Some(Price {
                amount,
                currency: "EUR".into(),
            })
        };
        assert_eq!(Price::parse("150", "EUR"), eur(15_000));
        assert_eq!(Price::parse("150.5", "EUR"), eur(15_050));
        assert_eq!(Price::parse(" 0.05 ", "EUR"), eur(5));
        for bad in ["", ".5", "1.234", "1.+5", "+1", "1.a", "a.1", "1,50", "-1"] {
            assert_eq!(Price::parse(bad, "EUR"), None, "{bad:?}");
        }
        for currency in ["EURO", "eur", "EU", "E1R"] {
            assert_eq!(Price::parse("1", currency), None, "{currency:?}");
        }
    }

    #[test]
    fn prices_and_kinds_show_as_people_and_the_wire_name_them() {
        let price = Price {
            amount: 1_050,
            currency: "EUR".into(),
        };
        assert_eq!(price.to_string(), "10.50 EUR");
        for kind in Kind::ALL {
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(Kind::from_wire(kind.as_str()), Some(kind));
        }
    }
}
