//! The vendor role: which intents a vendor node answers, and with what offer.
//!
//! The catalog (`catalog.toml` in the data directory) lists what the vendor sells. Matching is
//! a pure function of the catalog, the vendor's terms and the intent: the event loop calls
//! [`answer`] for every intent it stores in a served category and sends what comes back.

pub mod catalog;

use ed25519_dalek::SigningKey;

use crate::config::VendorConfig;
use crate::proto::{Envelope, Intent, Offer};
use catalog::Catalog;

/// How long an offer holds at most, in seconds (never beyond the intent's expiry).
pub const OFFER_VALIDITY_SECS: u64 = 24 * 3600;

/// Why a vendor made no offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoOffer {
    /// A term the person requires is not among the vendor's accepted terms.
    RequiredTermRefused(String),
    /// No catalog item fits category, price, currency and quantity.
    NothingMatches,
}

/// The offer `vendor` makes to `intent` (signed with `key`), or why it makes none.
pub fn answer(
    vendor: &VendorConfig,
    catalog: &Catalog,
    key: &SigningKey,
    intent_envelope: &Envelope,
    intent: &Intent,
    now: u64,
) -> Result<Envelope, NoOffer> {
    if let Some(term) = intent
        .terms
        .iter()
        .find(|t| t.required && !vendor.accepted_terms.contains(&t.id))
    {
        return Err(NoOffer::RequiredTermRefused(term.id.clone()));
    }
    let item = catalog.best_match(intent).ok_or(NoOffer::NothingMatches)?;
    let offer = Offer {
        intent: intent.id,
        persona: intent_envelope.signer().to_bytes().into(),
        vendor: key.verifying_key().to_bytes().into(),
        items: vec![item],
        text: String::new(),
        created: now,
        valid_until: intent.expires.min(now + OFFER_VALIDITY_SECS),
        accepted_terms: intent
            .terms
            .iter()
            .filter(|t| vendor.accepted_terms.contains(&t.id))
            .map(|t| t.id.clone())
            .collect(),
    };
    Ok(Envelope::seal(&offer, key))
}
