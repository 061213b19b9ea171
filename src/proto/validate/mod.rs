//! Content rules for decoded messages, as pure functions of the message and the time.
//!
//! Decoding ([`super::Envelope::decode`]) already guarantees structure, limits and the
//! signature. These checks add what the bytes alone cannot show: times, taxonomy, field
//! shapes, and for offers, that they answer an intent we hold. Replay is checked by the
//! store, which remembers what it has seen.
//!
//! This file dispatches on the kind and holds the field checks every family shares; the
//! rules of each family live in `intent.rs`, `offer.rs` and `profile.rs`.

mod intent;
mod offer;
mod profile;

pub use intent::{check_intent, check_withdraw};
pub use offer::{check_offer, check_offer_for_intent};
pub use profile::check_profile;

use ed25519_dalek::VerifyingKey;

use super::error::ValidationError as E;
use super::kinds::{NodeAddress, Payload, Price, ReplyTo};
use super::limits::*;
use super::sealed::KEY_BYTES;
use super::service::QUEUE_BYTES;
use super::taxonomy;

/// Checks any payload against the rules of its kind at time `now` (unix seconds).
pub fn check_payload(payload: &Payload, signer: &VerifyingKey, now: u64) -> Result<(), E> {
    match payload {
        Payload::Intent(intent) => check_intent(intent, now),
        Payload::IntentWithdraw(withdraw) => check_withdraw(withdraw, now),
        Payload::Offer(offer) => check_offer(offer, signer, now),
        Payload::VendorProfile(profile) => check_profile(profile, now),
        Payload::Review(review) => super::reviews::check_review(review, signer, now).map(|_| ()),
    }
}

/// `created` is not further ahead of `now` than the clock skew allows.
pub(crate) fn check_created(created: u64, now: u64) -> Result<(), E> {
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

/// A list the node builds itself (an intent's terms, an offer's items) must fit the body
/// limits the decoder enforces, or every peer refuses the message. Received lists passed the
/// decoder already; this is for the node's own intents and offers.
fn check_count(field: &'static str, len: usize) -> Result<(), E> {
    if len > MAX_ITEMS {
        return Err(E::InvalidField {
            field,
            reason: "more entries than a list in a body may hold (64)",
        });
    }
    Ok(())
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

fn check_peer_id(field: &'static str, bytes: &[u8]) -> Result<(), E> {
    libp2p::PeerId::from_bytes(bytes)
        .map(|_| ())
        .map_err(|_| E::InvalidField {
            field,
            reason: "not a libp2p peer id",
        })
}

fn check_multiaddr(field: &'static str, bytes: &[u8]) -> Result<(), E> {
    if bytes.is_empty()
        || bytes.len() > MAX_ADDR_BYTES
        || libp2p::Multiaddr::try_from(bytes.to_vec()).is_err()
    {
        return Err(E::InvalidField {
            field,
            reason: "not a multiaddr",
        });
    }
    Ok(())
}

fn check_length(
    field: &'static str,
    bytes: &[u8],
    len: usize,
    reason: &'static str,
) -> Result<(), E> {
    if bytes.len() != len {
        return Err(E::InvalidField { field, reason });
    }
    Ok(())
}

pub(crate) fn check_reply_to(reply_to: &ReplyTo) -> Result<(), E> {
    check_peer_id("reply_to.mailbox", &reply_to.mailbox)?;
    check_multiaddr("reply_to.addr", &reply_to.addr)?;
    check_length(
        "reply_to.queue",
        &reply_to.queue,
        QUEUE_BYTES,
        "not 16 bytes",
    )?;
    check_length("reply_to.key", &reply_to.key, KEY_BYTES, "not 32 bytes")
}

fn check_node_address(node: &NodeAddress) -> Result<(), E> {
    check_peer_id("reply_to.peer", &node.peer)?;
    if node.addrs.len() > MAX_ADDRS {
        return Err(E::InvalidField {
            field: "reply_to.addrs",
            reason: "too many addresses",
        });
    }
    for addr in &node.addrs {
        check_multiaddr("reply_to.addrs", addr)?;
    }
    Ok(())
}
