//! The vendor role: which intents a vendor node answers, and with what offer.
//!
//! Two sources of answers: the catalog (`catalog.toml`, matched by [`catalog`] as a pure
//! function) and, when configured, the vendor's own program ([`responder`]). Either way
//! the offer is built and checked here, by [`seal_offer`], against the same rules the
//! person's node will apply, so a vendor never sends an offer that is bound to be refused.

pub mod catalog;
pub mod responder;

use ed25519_dalek::SigningKey;

use crate::config::VendorConfig;
use crate::proto::validate::{check_offer, check_offer_for_intent};
use crate::proto::{
    Envelope, GroupOffer, Intent, NodeAddress, Offer, OfferItem, Price, ReplyTo, ValidationError,
    VendorProfile,
};
use catalog::{Catalog, NoMatch};
use responder::ResponderOffer;

/// How long an offer holds at most, in seconds (never beyond the intent's expiry).
pub const OFFER_VALIDITY_SECS: u64 = 24 * 3600;

/// Why a vendor made no offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoOffer {
    /// A term the person requires is not among the vendor's accepted terms.
    RequiredTermRefused(String),
    /// No catalog item fits.
    NoMatch(NoMatch),
    /// The vendor's program chose not to offer.
    Declined,
    /// The same persona cast too many intents too fast.
    RateLimited,
    /// The offer built from the program's answer breaks a rule.
    Invalid(ValidationError),
}

impl std::fmt::Display for NoOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoOffer::RequiredTermRefused(term) => write!(f, "required term {term:?} not accepted"),
            NoOffer::NoMatch(why) => write!(f, "no catalog match: {why}"),
            NoOffer::Declined => f.write_str("declined by the responder program"),
            NoOffer::RateLimited => f.write_str("rate limit for this persona"),
            NoOffer::Invalid(e) => write!(f, "the responder's offer is invalid: {e}"),
        }
    }
}

/// Whether the vendor may answer `intent` at all: every term the person requires must be
/// among the vendor's accepted terms. The one place this rule is applied, before either
/// source of answers is asked.
pub fn screen(vendor: &VendorConfig, intent: &Intent) -> Result<(), NoOffer> {
    match intent
        .terms
        .iter()
        .find(|t| t.required && !vendor.accepted_terms.contains(&t.id))
    {
        Some(term) => Err(NoOffer::RequiredTermRefused(term.id.clone())),
        None => Ok(()),
    }
}

/// Who signs offers: the vendor key, and the inbox its offers name (where accepts go;
/// `None`: the vendor takes no relationships).
pub struct Seller {
    /// The vendor key.
    pub key: SigningKey,
    /// The vendor node's inbox.
    pub inbox: Option<ReplyTo>,
}

/// The catalog's offer for `intent` (signed by `seller`), or why there is none. It is
/// [`screen`]ed first, so this is the whole answer of a vendor without a program.
pub fn answer(
    vendor: &VendorConfig,
    catalog: &Catalog,
    seller: &Seller,
    intent_envelope: &Envelope,
    intent: &Intent,
    now: u64,
) -> Result<Envelope, NoOffer> {
    screen(vendor, intent)?;
    let found = catalog.best_match(intent, now).map_err(NoOffer::NoMatch)?;
    seal_offer(
        vendor,
        seller,
        intent_envelope,
        intent,
        vec![found.item],
        found.description,
        None,
        now,
    )
}

/// The offer the vendor's program proposed, checked and signed.
pub fn answer_from_program(
    vendor: &VendorConfig,
    seller: &Seller,
    intent_envelope: &Envelope,
    intent: &Intent,
    proposed: ResponderOffer,
    now: u64,
) -> Result<Envelope, NoOffer> {
    let default_quantity = intent.constraints.quantity.unwrap_or(1);
    let mut items = Vec::with_capacity(proposed.items.len());
    for item in proposed.items {
        let price = Price::parse(&item.price, &item.currency).ok_or(NoOffer::Invalid(
            ValidationError::InvalidField {
                field: "items.price",
                reason: "not a decimal amount with a three-letter currency",
            },
        ))?;
        items.push(OfferItem {
            title: item.title,
            price,
            quantity: item.quantity.unwrap_or(default_quantity),
            sku: item.sku,
        });
    }
    seal_offer(
        vendor,
        seller,
        intent_envelope,
        intent,
        items,
        proposed.text,
        proposed.valid_until,
        now,
    )
}

/// Builds, checks and signs an offer to `intent`: it accepts the person's terms the vendor
/// accepts, holds for a day at most (never past the intent), and must pass the checks the
/// person's node will make.
#[allow(clippy::too_many_arguments)]
pub fn seal_offer(
    vendor: &VendorConfig,
    seller: &Seller,
    intent_envelope: &Envelope,
    intent: &Intent,
    items: Vec<OfferItem>,
    text: String,
    valid_until: Option<u64>,
    now: u64,
) -> Result<Envelope, NoOffer> {
    let latest = intent.expires.min(now + OFFER_VALIDITY_SECS);
    let valid_until = valid_until.map_or(latest, |v| v.min(latest));
    let key = &seller.key;
    let offer = Offer {
        intent: intent.id,
        persona: intent_envelope.signer().to_bytes().into(),
        vendor: key.verifying_key().to_bytes().into(),
        items,
        text,
        created: now,
        valid_until,
        accepted_terms: intent
            .terms
            .iter()
            .filter(|t| vendor.accepted_terms.contains(&t.id))
            .map(|t| t.id.clone())
            .collect(),
        inbox: seller.inbox.clone(),
        // A member's intent gets a group offer: it binds once enough members accept it
        // before it runs out.
        group: intent.group.as_ref().map(|group| GroupOffer {
            min: vendor
                .group_min
                .unwrap_or(group.size)
                .clamp(2, crate::proto::limits::MAX_GROUP_SIZE),
            deadline: valid_until,
        }),
    };
    check_offer(&offer, &key.verifying_key(), now).map_err(NoOffer::Invalid)?;
    check_offer_for_intent(&offer, intent, intent_envelope.signer(), false, now)
        .map_err(NoOffer::Invalid)?;
    Ok(Envelope::seal(&offer, key))
}

/// The vendor's signed profile for the directory: who it is, what it serves, which terms it
/// accepts, and where its node listens.
pub fn profile(
    vendor: &VendorConfig,
    key: &SigningKey,
    reply_to: NodeAddress,
    now: u64,
) -> Envelope {
    let profile = VendorProfile {
        name: vendor.name.clone(),
        categories: vendor.categories.clone(),
        contact: vendor.contact.clone(),
        accepted_terms: vendor.accepted_terms.clone(),
        created: now,
        reply_to: Some(reply_to),
    };
    Envelope::seal(&profile, key)
}
