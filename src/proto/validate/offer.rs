//! Rules for offers: an offer on its own, and an offer against the intent it answers (the
//! person's side; the vendor checks its own offers the same way before sending them).

use ed25519_dalek::VerifyingKey;

use super::{check_count, check_created, check_len, check_price, check_term_ids, check_text};
use crate::proto::error::ValidationError as E;
use crate::proto::kinds::{Intent, Offer};
use crate::proto::limits::*;

/// Rules for an offer on its own.
pub fn check_offer(offer: &Offer, signer: &VerifyingKey, now: u64) -> Result<(), E> {
    check_created(offer.created, now)?;
    if offer.vendor.as_slice() != signer.as_bytes() {
        return Err(E::SignerMismatch { field: "vendor" });
    }
    if offer.valid_until <= now {
        return Err(E::Expired {
            expires: offer.valid_until,
            now,
        });
    }
    if offer.items.is_empty() {
        return Err(E::EmptyField("items"));
    }
    check_count("items", offer.items.len())?;
    for item in &offer.items {
        check_text("items.title", &item.title, MAX_SHORT_BYTES)?;
        check_price(&item.price)?;
        if item.quantity == 0 {
            return Err(E::InvalidField {
                field: "items.quantity",
                reason: "must be at least 1",
            });
        }
        if let Some(sku) = &item.sku {
            check_len("items.sku", sku, MAX_SHORT_BYTES)?;
        }
    }
    if offer.total().is_none() {
        return Err(E::InvalidField {
            field: "items",
            reason: "items mix currencies or the total overflows",
        });
    }
    check_len("text", &offer.text, MAX_TEXT_BYTES)?;
    check_count("accepted_terms", offer.accepted_terms.len())?;
    check_term_ids(offer.accepted_terms.iter().map(String::as_str))
}

/// The person's side: does this offer answer `intent` (signed by `persona`, `withdrawn` or
/// not) acceptably at `now`?
pub fn check_offer_for_intent(
    offer: &Offer,
    intent: &Intent,
    persona: &VerifyingKey,
    withdrawn: bool,
    now: u64,
) -> Result<(), E> {
    if offer.intent != intent.id {
        return Err(E::UnknownIntent);
    }
    if offer.persona.as_slice() != persona.as_bytes() {
        return Err(E::WrongPersona);
    }
    if withdrawn {
        return Err(E::IntentWithdrawn);
    }
    if intent.expires <= now {
        return Err(E::IntentExpired);
    }
    if let Some(group) = &offer.group {
        if intent.group.is_none() {
            return Err(E::InvalidField {
                field: "group",
                reason: "a group offer answers only a member's intent",
            });
        }
        if !(2..=MAX_GROUP_SIZE).contains(&group.min) || group.deadline > offer.valid_until {
            return Err(E::InvalidField {
                field: "group",
                reason: "min not from 2 to 1000, or a deadline after the offer's validity",
            });
        }
    }
    for term in intent.terms.iter().filter(|t| t.required) {
        if !offer.accepted_terms.contains(&term.id) {
            return Err(E::RequiredTermRefused(term.id.clone()));
        }
    }
    if let (Some(ceiling), Some(total)) = (&intent.constraints.max_price, offer.total()) {
        if total.currency != ceiling.currency {
            return Err(E::CurrencyMismatch {
                offered: total.currency,
                wanted: ceiling.currency.clone(),
            });
        }
        if total.amount > ceiling.amount {
            return Err(E::OverPriceCeiling {
                total: total.amount,
                ceiling: ceiling.amount,
            });
        }
    }
    Ok(())
}
