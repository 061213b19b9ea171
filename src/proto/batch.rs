//! Verifying many envelopes at once: how a node keeps up with a busy gossip topic.
//!
//! Ed25519 batch verification checks one random linear combination of all the signature
//! equations, about twice as fast per signature as checking them one by one. It keeps the
//! strict single check's rules: a small-order key or `R` is refused before the batch, and
//! the batch equation is the same cofactorless one. When a batch fails, each signature is
//! checked alone to find the bad ones, so one forged message costs its sender, not the
//! honest messages queued with it.
//!
//! One case differs. A signer can build a signature whose `R` (or whose own key) carries a
//! small-order component: strict single verification refuses it, yet a batch accepts it
//! when the batch's factor for it is a multiple of the component's order (1/8 to 1/2 of
//! batches; the factors are derived from the batch's contents, so which ones is fixed per
//! batch but differs from peer to peer). Peers that batch may therefore forward such a
//! message while others refuse it. Such a signature still satisfies the cofactored equation
//! `[8]([s]B - [k]A - R) = 0`, which no forger without the key can reach, so it is reported
//! as [`DecodeError::AmbiguousSignature`]: dropped, but the peer that forwarded it is not
//! penalised for something its own batch may have accepted.

use std::sync::LazyLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

use super::envelope::{Envelope, Unverified};
use super::error::DecodeError;

/// Verifies every envelope, in one batch where that is possible. The results are in the
/// order of `items`.
pub fn verify_all(items: Vec<Unverified>) -> Vec<Result<Envelope, DecodeError>> {
    let admissible: Vec<bool> = items.iter().map(admissible).collect();
    let batch: Vec<&Unverified> = items
        .iter()
        .zip(&admissible)
        .filter_map(|(item, ok)| ok.then_some(item))
        .collect();
    let batch_holds = batch.len() > 1 && {
        let messages: Vec<&[u8]> = batch.iter().map(|u| u.signing_input.as_slice()).collect();
        let signatures: Vec<Signature> = batch.iter().map(|u| u.sig).collect();
        let keys: Vec<VerifyingKey> = batch.iter().map(|u| *u.envelope.signer()).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    };
    items
        .into_iter()
        .zip(admissible)
        .map(|(item, ok)| {
            if !ok {
                Err(DecodeError::BadSignature)
            } else if batch_holds {
                Ok(item.envelope)
            } else {
                verify_one(item)
            }
        })
        .collect()
}

/// Strict single verification, telling a signature a batch might accept apart from a bad one.
fn verify_one(item: Unverified) -> Result<Envelope, DecodeError> {
    let signer = item.envelope.signer();
    if signer.verify_strict(&item.signing_input, &item.sig).is_ok() {
        Ok(item.envelope)
    } else if cofactored_equation_holds(&item) {
        Err(DecodeError::AmbiguousSignature)
    } else {
        Err(DecodeError::BadSignature)
    }
}

/// The checks strict verification makes besides its equation: no small-order key or `R`,
/// and `R` canonically encoded (strict verification compares `R`'s bytes, so a `y ≥ p`
/// fails there; the batch compares points and would not notice).
fn admissible(item: &Unverified) -> bool {
    let r = item.sig.r_bytes();
    !item.envelope.signer().is_weak() && canonical_y(r) && !encodes_small_order(r)
}

/// Whether the `y` of a point encoding is below `p = 2^255 - 19`.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let y = y_bytes(bytes);
    // y ≥ p only if its top 250 bits are all ones and its low byte is at least 0xed.
    !(y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed)
}

/// The `y` bytes of every small-order point, canonical and not (see [`encodes_small_order`]).
static SMALL_ORDER_Y: LazyLock<Vec<[u8; 32]>> = LazyLock::new(|| {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut p_plus_1 = p;
    p_plus_1[0] = 0xee;
    EIGHT_TORSION
        .iter()
        .map(|point| y_bytes(point.compress().as_bytes()))
        .chain([p, p_plus_1])
        .collect()
});

/// Whether these point bytes decode to a point of small order, without decompressing: such a
/// point's `y` is one of five values, and `y` bytes are read modulo `p`, so besides the five
/// canonical encodings only `p` (for 0) and `p + 1` (for 1) reach them; the sign bit is free.
fn encodes_small_order(bytes: &[u8; 32]) -> bool {
    SMALL_ORDER_Y.contains(&y_bytes(bytes))
}

/// The `y` coordinate bytes of a point encoding (the sign bit of `x` cleared).
fn y_bytes(bytes: &[u8; 32]) -> [u8; 32] {
    let mut y = *bytes;
    y[31] &= 0x7f;
    y
}

/// Whether `[8]([s]B - [k]A - R)` is the identity, `k = SHA-512(R ‖ A ‖ input)`.
fn cofactored_equation_holds(item: &Unverified) -> bool {
    let Some(r) = CompressedEdwardsY(*item.sig.r_bytes()).decompress() else {
        return false;
    };
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*item.sig.s_bytes())) else {
        return false;
    };
    let signer = item.envelope.signer();
    let hash = Sha512::new()
        .chain_update(item.sig.r_bytes())
        .chain_update(signer.as_bytes())
        .chain_update(&item.signing_input)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash);
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    let minus_a = -signer.to_edwards();
    let difference: EdwardsPoint =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s) - r;
    difference.mul_by_cofactor().is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Envelope;
    use crate::proto::envelope::{VERSION, encode_wire, signing_input};
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn sealed(n: u8) -> Vec<u8> {
        let body = profile(&format!("vendor {n}"));
        Envelope::seal(&body, &SigningKey::from_bytes(&[n; 32]))
            .as_bytes()
            .to_vec()
    }

    fn profile(name: &str) -> crate::proto::VendorProfile {
        crate::proto::VendorProfile {
            name: name.into(),
            categories: vec!["books".into()],
            contact: String::new(),
            accepted_terms: vec![],
            created: 1_700_000_000,
            reply_to: None,
        }
    }

    fn parse(bytes: &[u8]) -> Unverified {
        Envelope::parse(bytes).expect("well-formed")
    }

    #[test]
    fn a_batch_of_good_signatures_verifies() {
        let items = (1..=20).map(|n| parse(&sealed(n))).collect();
        assert!(verify_all(items).iter().all(Result::is_ok));
    }

    #[test]
    fn one_forgery_fails_alone_and_the_rest_pass() {
        let mut wires: Vec<Vec<u8>> = (1..=10).map(sealed).collect();
        // Flip one bit of the last signature byte of envelope 4.
        let last = wires[4].len() - 1;
        wires[4][last] ^= 1;
        let results = verify_all(wires.iter().map(|w| parse(w)).collect());
        for (i, r) in results.iter().enumerate() {
            if i == 4 {
                assert!(matches!(r, Err(DecodeError::BadSignature)), "{r:?}");
            } else {
                assert!(r.is_ok(), "{i}: {r:?}");
            }
        }
    }

    /// The identity key with `R` = identity and `s` = 0 satisfies the plain batch equation
    /// for any message; strict rules refuse it, in a batch as alone.
    #[test]
    fn small_order_key_and_r_are_refused_in_a_batch() {
        let body = crate::proto::envelope::encode_body(&profile("weak"));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        let weak = encode_wire(VERSION, "vendor-profile", &body, &identity, &sig);
        let good = sealed(3);
        let results = verify_all(vec![parse(&good), parse(&weak), parse(&good)]);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(matches!(results[1], Err(DecodeError::BadSignature)));
    }

    /// `R` with `y ≥ p` is refused, as strict verification refuses it; `y = p - 1` is fine.
    #[test]
    fn non_canonical_r_is_refused() {
        let mut p = [0xff; 32];
        p[31] = 0x7f;
        for low in 0xed..=0xff {
            p[0] = low;
            assert!(!canonical_y(&p), "{low:x}");
        }
        p[0] = 0xec;
        assert!(canonical_y(&p));
    }

    /// The byte check agrees with decompressing, on every small-order encoding (canonical,
    /// non-canonical `y`, either sign bit) and on random bytes.
    #[test]
    fn small_order_encodings_are_recognised_without_decompressing() {
        let mut candidates: Vec<[u8; 32]> = SMALL_ORDER_Y.clone();
        for y in SMALL_ORDER_Y.iter() {
            let mut signed = *y;
            signed[31] |= 0x80;
            candidates.push(signed);
        }
        for bytes in candidates {
            let decoded = CompressedEdwardsY(bytes).decompress();
            assert_eq!(
                decoded.is_some_and(|p| p.is_small_order()),
                encodes_small_order(&bytes) && decoded.is_some(),
                "{}",
                hex::encode(bytes)
            );
        }
        assert!(encodes_small_order(&EIGHT_TORSION[0].compress().to_bytes()));
    }

    proptest! {
        #[test]
        fn small_order_check_matches_decompression(bytes in any::<[u8; 32]>()) {
            let decoded = CompressedEdwardsY(bytes).decompress();
            if let Some(point) = decoded {
                prop_assert_eq!(point.is_small_order(), encodes_small_order(&bytes));
            }
        }
    }

    /// A signer's own signature with a small-order component in `R`: strict refuses it,
    /// a batch might not, so it is ambiguous rather than bad.
    #[test]
    fn a_torsioned_r_is_ambiguous_not_bad() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let a = key.verifying_key();
        let body = crate::proto::envelope::encode_body(&profile("torsion"));
        let input = signing_input("vendor-profile", &body);
        let r_scalar = Scalar::from(123_456_789u64);
        let r = r_scalar * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1];
        let r_bytes = r.compress().to_bytes();
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(a.as_bytes())
            .chain_update(&input)
            .finalize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash);
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let secret = key.to_scalar();
        let s = r_scalar + k * secret;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        let wire = encode_wire(VERSION, "vendor-profile", &body, a.as_bytes(), &sig);
        let results = verify_all(vec![parse(&wire)]);
        assert!(matches!(results[0], Err(DecodeError::AmbiguousSignature)));
        // An honest signature over the same input is fine, and a plain forgery is bad.
        let honest = key.sign(&input).to_bytes();
        assert!(
            verify_all(vec![parse(&encode_wire(
                VERSION,
                "vendor-profile",
                &body,
                a.as_bytes(),
                &honest
            ))])[0]
                .is_ok()
        );
        let mut forged = honest;
        forged[40] ^= 1;
        let forged = encode_wire(VERSION, "vendor-profile", &body, a.as_bytes(), &forged);
        assert!(matches!(
            verify_all(vec![parse(&forged)])[0],
            Err(DecodeError::BadSignature)
        ));
    }
}
