//! Content rules for decoded messages, as pure functions of the message and the time.
//!
//! Decoding ([`super::Envelope::decode`]) already guarantees structure, limits and the
//! signature. These checks add what the bytes alone cannot show: times, taxonomy, field
//! shapes, and for offers, that they answer an intent we hold. Replay is checked by the
//! store, which remembers what it has seen.

use ed25519_dalek::VerifyingKey;

use super::error::ValidationError as E;
use super::kinds::{Intent, IntentWithdraw, Message, Offer, Price, ReplyTo, VendorProfile};
use super::limits::*;
use super::taxonomy;

/// Checks any message against the rules of its kind at time `now` (unix seconds).
pub fn check_message(msg: &Message, signer: &VerifyingKey, now: u64) -> Result<(), E> {
    match msg {
        Message::Intent(intent) => check_intent(intent, now),
        Message::IntentWithdraw(withdraw) => check_withdraw(withdraw, now),
        Message::Offer(offer) => check_offer(offer, signer, now),
        Message::VendorProfile(profile) => check_profile(profile, now),
    }
}

/// Rules for an intent.
pub fn check_intent(intent: &Intent, now: u64) -> Result<(), E> {
    check_created(intent.created, now)?;
    if intent.expires <= intent.created {
        return Err(E::ExpiresBeforeCreated {
            created: intent.created,
            expires: intent.expires,
        });
    }
    let lifetime = intent.expires - intent.created;
    if lifetime > MAX_INTENT_LIFETIME_SECS {
        return Err(E::LifetimeTooLong {
            secs: lifetime,
            max: MAX_INTENT_LIFETIME_SECS,
        });
    }
    if intent.expires <= now {
        return Err(E::Expired {
            expires: intent.expires,
            now,
        });
    }
    check_category(&intent.category, intent.subcategory.as_deref())?;
    check_text("text", &intent.text, MAX_TEXT_BYTES)?;
    let c = &intent.constraints;
    if let Some(price) = &c.max_price {
        check_price(price)?;
    }
    if let Some(place) = &c.place {
        check_text("constraints.place", place, MAX_SHORT_BYTES)?;
    }
    if let Some(dates) = &c.dates {
        let from = crate::clock::day_number(&dates.from).ok_or(E::InvalidField {
            field: "constraints.dates.from",
            reason: "not a YYYY-MM-DD date",
        })?;
        let to = crate::clock::day_number(&dates.to).ok_or(E::InvalidField {
            field: "constraints.dates.to",
            reason: "not a YYYY-MM-DD date",
        })?;
        if to < from {
            return Err(E::InvalidField {
                field: "constraints.dates",
                reason: "ends before it starts",
            });
        }
    }
    if c.quantity == Some(0) {
        return Err(E::InvalidField {
            field: "constraints.quantity",
            reason: "must be at least 1",
        });
    }
    check_term_ids(intent.terms.iter().map(|t| t.id.as_str()))?;
    check_reply_to(&intent.reply_to)
}

/// Rules for a withdrawal (that its signer is the caster is checked against the stored intent).
pub fn check_withdraw(withdraw: &IntentWithdraw, now: u64) -> Result<(), E> {
    check_created(withdraw.created, now)
}

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
    check_term_ids(offer.accepted_terms.iter().map(String::as_str))
}

/// Rules for a vendor profile.
pub fn check_profile(profile: &VendorProfile, now: u64) -> Result<(), E> {
    check_created(profile.created, now)?;
    check_text("name", &profile.name, MAX_SHORT_BYTES)?;
    if profile.categories.is_empty() {
        return Err(E::EmptyField("categories"));
    }
    for category in &profile.categories {
        check_category(category, None)?;
    }
    check_len("contact", &profile.contact, MAX_TEXT_BYTES)?;
    check_term_ids(profile.accepted_terms.iter().map(String::as_str))?;
    match &profile.reply_to {
        Some(reply_to) => check_reply_to(reply_to),
        None => Ok(()),
    }
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

fn check_created(created: u64, now: u64) -> Result<(), E> {
    if created > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(E::FromTheFuture { created, now });
    }
    Ok(())
}

fn check_category(category: &str, sub: Option<&str>) -> Result<(), E> {
    let cat = taxonomy::category(category).ok_or_else(|| E::UnknownCategory(category.into()))?;
    if let Some(sub) = sub
        && !cat.subcategories.iter().any(|s| s.id == sub)
    {
        return Err(E::UnknownSubcategory {
            category: category.into(),
            sub: sub.into(),
        });
    }
    Ok(())
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), E> {
    if value.len() > max {
        return Err(E::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), E> {
    if value.trim().is_empty() {
        return Err(E::EmptyField(field));
    }
    check_len(field, value, max)
}

fn check_price(price: &Price) -> Result<(), E> {
    if price.currency.len() != 3 || !price.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(E::InvalidField {
            field: "currency",
            reason: "not a three-letter upper-case ISO 4217 code",
        });
    }
    Ok(())
}

fn check_term_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<(), E> {
    for id in ids {
        if !taxonomy::is_known_term(id) {
            return Err(E::UnknownTerm(id.into()));
        }
    }
    Ok(())
}

fn check_reply_to(reply_to: &ReplyTo) -> Result<(), E> {
    libp2p::PeerId::from_bytes(&reply_to.peer).map_err(|_| E::InvalidField {
        field: "reply_to.peer",
        reason: "not a libp2p peer id",
    })?;
    if reply_to.addrs.len() > MAX_ADDRS {
        return Err(E::InvalidField {
            field: "reply_to.addrs",
            reason: "too many addresses",
        });
    }
    for addr in &reply_to.addrs {
        if addr.len() > MAX_ADDR_BYTES || libp2p::Multiaddr::try_from(addr.to_vec()).is_err() {
            return Err(E::InvalidField {
                field: "reply_to.addrs",
                reason: "not a multiaddr",
            });
        }
    }
    Ok(())
}
