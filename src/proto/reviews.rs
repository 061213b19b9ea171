//! The rules of reviews (`proto/README.md`, "Reviews and reputation"), as pure code: what a
//! review must carry to be taken by any node, and what it proves.
//!
//! A review is signed by a relationship persona and carries the vendor's review token for
//! that persona's fulfilled order. The token is an entry of the relationship's log, so the
//! log's rules ([`super::relationship::Chain`]) decide when a vendor's node may write one:
//! once per relationship, after `fulfilled` or `received`, never for a declined or cancelled
//! order. A review proves that the vendor signed such a token to this persona. It does not
//! prove that the persona is not the vendor itself: weighing that is the reputation's job
//! (`node::reputation`).

use ed25519_dalek::{Signature, VerifyingKey};

use super::Envelope;
use super::error::ValidationError as E;
use super::kinds::{Kind, Review, ReviewToken, history_input};
use super::limits::MAX_TEXT_BYTES;
use super::validate::check_created;

/// Most history items in one review.
pub const MAX_HISTORY: usize = 8;
/// How long a review counts and is kept (and remembered against replay): a year from its
/// `created`.
pub const REVIEW_LIFETIME_SECS: u64 = 365 * 86_400;

/// What a valid review says, ready to be stored and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    /// The vendor reviewed: the token's signer.
    pub vendor: [u8; 32],
    /// The order reviewed: the id of the vendor's order entry. One review counts per order.
    pub order: [u8; 32],
    /// The relationship persona: the review's signer.
    pub persona: [u8; 32],
    /// 1 to 5.
    pub rating: u8,
    /// When the person wrote it.
    pub created: u64,
    /// The other vendors the reviewer showed a fulfilled order with.
    pub history: Vec<[u8; 32]>,
}

/// Opens a review token envelope: a review-token signed by its vendor.
pub fn open_token(bytes: &[u8]) -> Result<(VerifyingKey, ReviewToken), String> {
    let token = Envelope::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
    if token.kind() != Kind::ReviewToken {
        return Err(format!(
            "is a vendor's {}, not a review-token: no order was fulfilled",
            token.kind()
        ));
    }
    let body: ReviewToken = token.open().map_err(|e| format!("does not open: {e}"))?;
    Ok((*token.signer(), body))
}

/// Checks `review`, signed by `signer`, at `now`: its rating and text, its token (a vendor's
/// review token naming `signer`), and each history item (another vendor's token, whose
/// persona signed the link to `signer` and this vendor). Returns what it says.
pub fn check_review(review: &Review, signer: &VerifyingKey, now: u64) -> Result<Reviewed, E> {
    check_created(review.created, now)?;
    if !(1..=5).contains(&review.rating) {
        return Err(E::InvalidField {
            field: "rating",
            reason: "not from 1 to 5",
        });
    }
    if review.text.len() > MAX_TEXT_BYTES {
        return Err(E::FieldTooLong {
            field: "text",
            len: review.text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    let (vendor, token) = open_token(&review.token).map_err(E::BadToken)?;
    if token.persona.as_slice() != signer.as_bytes() {
        return Err(E::BadToken(
            "names another persona than the review's signer".into(),
        ));
    }
    if token.created > review.created {
        return Err(E::BadToken("is newer than the review".into()));
    }
    if review.history.len() > MAX_HISTORY {
        return Err(E::BadHistory(format!("has more than {MAX_HISTORY} items")));
    }
    let vendor = vendor.to_bytes();
    let link = history_input(&signer.to_bytes(), &vendor);
    let mut history = Vec::with_capacity(review.history.len());
    for item in &review.history {
        let (other, token) = open_token(&item.token).map_err(E::BadHistory)?;
        let other = other.to_bytes();
        if other == vendor || history.contains(&other) {
            return Err(E::BadHistory(
                "names the reviewed vendor, or one vendor twice".into(),
            ));
        }
        VerifyingKey::from_bytes(&token.persona)
            .and_then(|persona| persona.verify_strict(&link, &Signature::from_bytes(&item.sig)))
            .map_err(|_| E::BadHistory("holds a link its persona did not sign".into()))?;
        history.push(other);
    }
    Ok(Reviewed {
        vendor,
        order: *token.order,
        persona: signer.to_bytes(),
        rating: review.rating,
        created: review.created,
        history,
    })
}
