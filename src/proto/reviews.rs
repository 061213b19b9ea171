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
    let mut seen = vec![vendor];
    for item in &review.history {
        let (other, token) = open_token(&item.token).map_err(E::BadHistory)?;
        let other = other.to_bytes();
        if seen.contains(&other) {
            return Err(E::BadHistory(
                "names the reviewed vendor, or one vendor twice".into(),
            ));
        }
        VerifyingKey::from_bytes(&token.persona)
            .and_then(|persona| persona.verify_strict(&link, &Signature::from_bytes(&item.sig)))
            .map_err(|_| E::BadHistory("holds a link its persona did not sign".into()))?;
        seen.push(other);
    }
    reviewed(review, signer).ok_or_else(|| E::BadToken("does not parse".into()))
}

/// What `review`, signed by `signer`, says, for a review that passed [`check_review`]
/// already (as every review [`super::check`] returns did): its tokens are read again without
/// verifying their signatures a second time. `None` if a token does not even parse.
pub fn reviewed(review: &Review, signer: &VerifyingKey) -> Option<Reviewed> {
    let read = |bytes: &[u8]| -> Option<([u8; 32], ReviewToken)> {
        let token = Envelope::parse(bytes).ok()?.envelope;
        Some((token.signer().to_bytes(), token.open().ok()?))
    };
    let (vendor, token) = read(&review.token)?;
    let history = review
        .history
        .iter()
        .map(|item| read(&item.token).map(|(other, _)| other))
        .collect::<Option<Vec<_>>>()?;
    Some(Reviewed {
        vendor,
        order: *token.order,
        persona: signer.to_bytes(),
        rating: review.rating,
        created: review.created,
        history,
    })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::proto::{HistoryItem, ReviewToken};

    const NOW: u64 = 1_800_000_000;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn token(vendor: &SigningKey, persona: &SigningKey, created: u64) -> Vec<u8> {
        let body = ReviewToken {
            rel: [1; 32].into(),
            seq: 4,
            prev: [2; 32].into(),
            persona: persona.verifying_key().to_bytes().into(),
            order: [3; 32].into(),
            created,
        };
        Envelope::seal(&body, vendor).as_bytes().to_vec()
    }

    fn item(
        other: &SigningKey,
        elsewhere: &SigningKey,
        persona: &SigningKey,
        vendor: &SigningKey,
    ) -> HistoryItem {
        let link = history_input(
            &persona.verifying_key().to_bytes(),
            &vendor.verifying_key().to_bytes(),
        );
        HistoryItem {
            token: token(other, elsewhere, NOW).into(),
            sig: elsewhere.sign(&link).to_bytes().into(),
        }
    }

    fn review(token: Vec<u8>, rating: u8, history: Vec<HistoryItem>) -> Review {
        Review {
            token: token.into(),
            rating,
            text: "fine".into(),
            history,
            created: NOW,
        }
    }

    fn code(review: &Review, signer: &SigningKey) -> &'static str {
        match check_review(review, &signer.verifying_key(), NOW) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn the_documented_limits() {
        assert_eq!(REVIEW_LIFETIME_SECS, 31_536_000, "365 days");
        assert_eq!(MAX_HISTORY, 8);
    }

    #[test]
    fn a_review_says_who_was_reviewed_for_which_order_by_whom() {
        let (vendor, persona, other, elsewhere) = (key(1), key(2), key(3), key(4));
        let shown = item(&other, &elsewhere, &persona, &vendor);
        let ok = review(token(&vendor, &persona, NOW), 5, vec![shown]);
        let reviewed = check_review(&ok, &persona.verifying_key(), NOW).unwrap();
        assert_eq!(reviewed.vendor, vendor.verifying_key().to_bytes());
        assert_eq!(reviewed.order, [3; 32]);
        assert_eq!(reviewed.persona, persona.verifying_key().to_bytes());
        assert_eq!((reviewed.rating, reviewed.created), (5, NOW));
        assert_eq!(reviewed.history, vec![other.verifying_key().to_bytes()]);
    }

    #[test]
    fn every_rule_of_a_review_has_its_code() {
        let (vendor, persona, other) = (key(1), key(2), key(3));
        let good = || token(&vendor, &persona, NOW);
        for rating in [1, 5] {
            assert_eq!(code(&review(good(), rating, vec![]), &persona), "ok");
        }
        for rating in [0, 6] {
            assert_eq!(
                code(&review(good(), rating, vec![]), &persona),
                "invalid-field"
            );
        }
        let mut long = review(good(), 3, vec![]);
        long.text = "x".repeat(MAX_TEXT_BYTES);
        assert_eq!(code(&long, &persona), "ok");
        long.text.push('x');
        assert_eq!(code(&long, &persona), "field-too-long");
        let mut ahead = review(good(), 3, vec![]);
        ahead.created = NOW + 301;
        assert_eq!(code(&ahead, &persona), "from-the-future");
        assert_eq!(
            code(&review(good(), 3, vec![]), &other),
            "bad-token",
            "another signer"
        );
        let newer = token(&vendor, &persona, NOW + 1);
        assert_eq!(code(&review(newer, 3, vec![]), &persona), "bad-token");
        assert_eq!(
            code(&review(token(&vendor, &persona, NOW), 3, vec![]), &persona),
            "ok",
            "same second"
        );
        let withdraw = crate::proto::IntentWithdraw {
            intent: [1; 16].into(),
            created: NOW,
        };
        let not_a_token = Envelope::seal(&withdraw, &vendor).as_bytes().to_vec();
        assert_eq!(code(&review(not_a_token, 3, vec![]), &persona), "bad-token");
    }

    #[test]
    fn history_items_are_other_vendors_tokens_whose_personas_signed_the_link() {
        let (vendor, persona) = (key(1), key(2));
        let shown = |n: u8| item(&key(10 + n), &key(40 + n), &persona, &vendor);
        let with = |history: Vec<HistoryItem>| {
            code(&review(token(&vendor, &persona, NOW), 4, history), &persona)
        };
        assert_eq!(with((0..8).map(shown).collect()), "ok");
        assert_eq!(
            with((0..9).map(shown).collect()),
            "bad-history",
            "more than 8"
        );
        assert_eq!(
            with(vec![shown(1), shown(1)]),
            "bad-history",
            "one vendor twice"
        );
        let own = item(&vendor, &key(40), &persona, &vendor);
        assert_eq!(with(vec![own]), "bad-history", "the reviewed vendor itself");
        let mut unsigned = shown(1);
        unsigned.sig = persona
            .sign(&history_input(
                &persona.verifying_key().to_bytes(),
                &vendor.verifying_key().to_bytes(),
            ))
            .to_bytes()
            .into();
        assert_eq!(
            with(vec![unsigned]),
            "bad-history",
            "signed by the wrong persona"
        );
        let other_vendor = key(99);
        let for_another = item(&key(11), &key(41), &persona, &other_vendor);
        assert_eq!(
            with(vec![for_another]),
            "bad-history",
            "a link to another vendor"
        );
        let mut garbage = shown(1);
        garbage.token = b"no".to_vec().into();
        assert_eq!(with(vec![garbage]), "bad-history");
    }
}
