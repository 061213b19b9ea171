//! The offer family: a vendor's signed [`Offer`], made of [`OfferItem`]s, sent straight to
//! the person who cast the intent it answers.

use serde::{Deserialize, Serialize};

use super::{Body, IntentId, KeyBytes, Kind, Price, ReplyTo};

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
    /// Where an accept of this offer goes: the vendor's inbox queue (and key). Without
    /// it the vendor takes no relationships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<ReplyTo>,
    /// Present on an offer to a member of a collective intent: it binds only if enough
    /// members accept it in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupOffer>,
}

/// The terms of a group offer: the vendor confirms the members' orders only once `min` of
/// them accepted, by `deadline`; past it with fewer, it declines them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOffer {
    /// Members who must accept for the offer to bind.
    pub min: u32,
    /// Unix time, seconds: accepts count until then.
    pub deadline: u64,
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
