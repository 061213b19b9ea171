//! Differential: batch verification of gossip envelopes ([`verify_all`], what
//! `node::ingest::gossip_batch` runs) against strict verification of each envelope alone.
//!
//! The input describes a batch of up to 12 envelopes: honestly signed by fixed keys, the
//! test vectors (valid and invalid), honest ones with one byte flipped, raw bytes, and the
//! signatures that separate the two verifiers: small-order keys and `R`, keys and `R` with a
//! small-order component, a non-canonical `s`. For every envelope the batch must give what
//! verifying it alone gives, with one documented exception (`proto::batch`): a signature
//! whose only fault is a small-order component may pass a batch, and alone it must then be
//! reported as [`DecodeError::AmbiguousSignature`], never as valid or plainly bad. A forgery
//! the batch accepts, or an honest message it refuses, crashes the target.
#![no_main]

use std::sync::LazyLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha512};
use vrm::proto::batch::verify_all;
use vrm::proto::envelope::{VERSION, encode_wire, signing_input};
use vrm::proto::{DecodeError, Envelope, MessageId};
use vrm_fuzz::{signed, vectors};

const KINDS: [&str; 5] = [
    "intent",
    "intent-withdraw",
    "offer",
    "vendor-profile",
    "order",
];

static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    (1..=4u8)
        .map(|n| SigningKey::from_bytes(&[n; 32]))
        .collect()
});

/// ℓ, the order of the prime-order subgroup, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        *first
    }

    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (usize::from(self.byte()) % (max + 1)).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    fn key(&mut self) -> &'static SigningKey {
        &KEYS[usize::from(self.byte()) % KEYS.len()]
    }

    fn kind(&mut self) -> &'static str {
        KINDS[usize::from(self.byte()) % KINDS.len()]
    }

    fn torsion(&mut self) -> EdwardsPoint {
        EIGHT_TORSION[usize::from(self.byte()) % 8]
    }
}

/// A Schnorr signature by `key`'s secret scalar, published as key `a` and nonce point `R`
/// (both possibly off the prime-order subgroup): `s = r + H(R ‖ A ‖ input)·secret`.
fn sign_with(
    key: &SigningKey,
    a: EdwardsPoint,
    r: Scalar,
    r_point: EdwardsPoint,
    input: &[u8],
) -> [u8; 64] {
    let a_bytes = a.compress().to_bytes();
    let r_bytes = r_point.compress().to_bytes();
    let hash = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(a_bytes)
        .chain_update(input)
        .finalize();
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&hash);
    let k = Scalar::from_bytes_mod_order_wide(&wide);
    let s = r + k * key.to_scalar();
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// One envelope of the batch, and whether it is honestly signed by a sound key.
fn envelope(input: &mut Input) -> (Vec<u8>, bool) {
    match input.byte() % 8 {
        0 => {
            let (kind, key) = (input.kind(), input.key());
            (signed(kind, input.bytes(48), key), true)
        }
        1 => {
            let (kind, key) = (input.kind(), input.key());
            let mut wire = signed(kind, input.bytes(48), key);
            let at = (usize::from(input.byte()) << 8 | usize::from(input.byte())) % wire.len();
            wire[at] ^= input.byte().max(1);
            (wire, false)
        }
        2 => {
            let all = vectors();
            let v = &all[usize::from(input.byte()) % all.len()];
            (v.envelope.clone(), false)
        }
        3 => {
            // Honest key, nonce point with a small-order component.
            let (kind, key, body) = (input.kind(), input.key(), input.bytes(48));
            let r = Scalar::from(input.u64());
            let r_point = r * ED25519_BASEPOINT_POINT + input.torsion();
            let a = key.verifying_key().to_edwards();
            let sig = sign_with(key, a, r, r_point, &signing_input(kind, body));
            (
                encode_wire(VERSION, kind, body, a.compress().as_bytes(), &sig),
                false,
            )
        }
        4 => {
            // Key with a small-order component.
            let (kind, key, body) = (input.kind(), input.key(), input.bytes(48));
            let a = key.verifying_key().to_edwards() + input.torsion();
            let r = Scalar::from(input.u64());
            let sig = sign_with(
                key,
                a,
                r,
                r * ED25519_BASEPOINT_POINT,
                &signing_input(kind, body),
            );
            (
                encode_wire(VERSION, kind, body, a.compress().as_bytes(), &sig),
                false,
            )
        }
        5 => {
            // Small-order key and small-order R: the plain equation holds for many s.
            let (kind, body) = (input.kind(), input.bytes(48));
            let a = input.torsion().compress().to_bytes();
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(input.torsion().compress().as_bytes());
            sig[32..].copy_from_slice(Scalar::from(input.u64()).as_bytes());
            (encode_wire(VERSION, kind, body, &a, &sig), false)
        }
        6 => {
            // An honest signature with ℓ added to s: same equation, non-canonical s.
            let (kind, key) = (input.kind(), input.key());
            let body = input.bytes(48);
            let wire = signed(kind, body, key);
            let sig = &wire[wire.len() - 64..];
            let mut s = [0u8; 32];
            let mut carry = 0u16;
            for i in 0..32 {
                let sum = u16::from(sig[32 + i]) + u16::from(ELL[i]) + carry;
                s[i] = sum as u8;
                carry = sum >> 8;
            }
            let mut forged = [0u8; 64];
            forged[..32].copy_from_slice(&sig[..32]);
            forged[32..].copy_from_slice(&s);
            let a = key.verifying_key().to_bytes();
            (encode_wire(VERSION, kind, body, &a, &forged), false)
        }
        _ => (input.bytes(255).to_vec(), false),
    }
}

fn id(result: Result<Envelope, DecodeError>) -> Result<MessageId, DecodeError> {
    result.map(|e| e.id())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let count = usize::from(input.byte() % 12) + 1;
    let wires: Vec<(Vec<u8>, bool)> = (0..count).map(|_| envelope(&mut input)).collect();
    // What decoding one envelope at a time gives, strict and as a batch of one.
    let mut parsed = Vec::new();
    let mut singles = Vec::new();
    for (wire, honest) in &wires {
        let Ok(unverified) = Envelope::parse(wire) else {
            assert!(!honest, "an honest envelope did not parse");
            continue;
        };
        parsed.push(unverified);
        let strict = id(Envelope::parse(wire).expect("parses again").verify());
        let alone = id(
            verify_all(vec![Envelope::parse(wire).expect("parses again")])
                .pop()
                .expect("one result"),
        );
        assert!(
            !honest || strict.is_ok(),
            "honest envelope refused: {strict:?}"
        );
        match (&strict, &alone) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(DecodeError::BadSignature), Err(DecodeError::BadSignature))
            | (Err(DecodeError::BadSignature), Err(DecodeError::AmbiguousSignature)) => {}
            other => panic!("strict and a batch of one disagree: {other:?}"),
        }
        singles.push(alone);
    }
    let batch: Vec<_> = verify_all(parsed).into_iter().map(id).collect();
    assert_eq!(batch.len(), singles.len());
    for (i, (batched, alone)) in batch.iter().zip(&singles).enumerate() {
        let agree =
            batched == alone || (batched.is_ok() && *alone == Err(DecodeError::AmbiguousSignature));
        assert!(
            agree,
            "envelope {i} of {count}: batch {batched:?}, alone {alone:?}"
        );
    }
});
