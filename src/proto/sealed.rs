//! Sealing a message to a one-time reply key: HPKE (RFC 9180) in base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, from the `hpke` crate.
//!
//! A sealed message is `enc || ciphertext`: the 32-byte encapsulated key, then the AEAD
//! output (plaintext length + 16). The `info` string names what is sealed and the queue id
//! is the associated data, so a sealed offer cannot be moved to another queue or read as
//! another kind of message. The person's node derives each intent's reply key pair with
//! RFC 9180's `DeriveKeyPair` from a secret of its own, so nothing needs storing.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};

/// The `info` of a sealed offer.
pub const OFFER_INFO: &[u8] = b"vrm/2/offer";
/// The `info` of a sealed relationship entry or acknowledgement.
pub const RELATIONSHIP_INFO: &[u8] = b"vrm/2/relationship";
/// Length of a reply public key and of the encapsulated key, in bytes.
pub const KEY_BYTES: usize = 32;
/// What sealing adds to a message: the encapsulated key and the AEAD tag.
pub const SEAL_OVERHEAD: usize = KEY_BYTES + 16;

/// Why a sealed message could not be opened (or a key could not be used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The public key is not a usable X25519 key.
    #[error("not a usable X25519 public key")]
    BadKey,
    /// Shorter than the encapsulated key and tag.
    #[error("sealed message too short")]
    TooShort,
    /// Wrong key, queue or info, or the bytes were changed.
    #[error("sealed message does not open")]
    DoesNotOpen,
}

/// A reply key pair: the secret stays with the person's node, the public half goes into
/// the intent.
pub struct ReplyKey {
    secret: <X25519HkdfSha256 as Kem>::PrivateKey,
    public: [u8; KEY_BYTES],
}

impl ReplyKey {
    /// The key pair RFC 9180 `DeriveKeyPair` gives for `ikm` (at least 32 secret bytes).
    pub fn derive(ikm: &[u8]) -> ReplyKey {
        let (secret, public) = X25519HkdfSha256::derive_keypair(ikm);
        let mut bytes = [0u8; KEY_BYTES];
        bytes.copy_from_slice(&public.to_bytes());
        ReplyKey {
            secret,
            public: bytes,
        }
    }

    /// The public key, as it goes into an intent.
    pub fn public(&self) -> [u8; KEY_BYTES] {
        self.public
    }

    /// Opens `sealed` made for this key with `info` and `aad`.
    pub fn open(&self, info: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(SealError::TooShort);
        }
        let (enc, ciphertext) = sealed.split_at(KEY_BYTES);
        let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc)
            .map_err(|_| SealError::DoesNotOpen)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .map_err(|_| SealError::DoesNotOpen)
    }
}

/// Seals `plaintext` to the public key `public` with `info` and `aad`.
pub fn seal(
    public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_with_rng(&mut rand::rng(), public, info, aad, plaintext)
}

/// [`seal`] with the encapsulation's randomness from `rng` (a seeded one writes test
/// vectors that stay the same).
pub fn seal_with_rng(
    rng: &mut impl hpke::rand_core::CryptoRng,
    public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let public =
        <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(public).map_err(|_| SealError::BadKey)?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<
        ChaCha20Poly1305,
        HkdfSha256,
        X25519HkdfSha256,
    >(&OpModeS::Base, &public, info, plaintext, aad, rng)
    .map_err(|_| SealError::BadKey)?;
    let mut sealed = enc.to_bytes().to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_with_its_key_info_and_queue() {
        let key = ReplyKey::derive(&[7; 32]);
        let sealed = seal(&key.public(), OFFER_INFO, b"queue-1", b"an offer").unwrap();
        assert_eq!(sealed.len(), b"an offer".len() + SEAL_OVERHEAD);
        assert_eq!(
            key.open(OFFER_INFO, b"queue-1", &sealed).unwrap(),
            b"an offer"
        );
        let other = ReplyKey::derive(&[8; 32]);
        assert_eq!(
            other.open(OFFER_INFO, b"queue-1", &sealed),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            key.open(OFFER_INFO, b"queue-2", &sealed),
            Err(SealError::DoesNotOpen),
            "moved to another queue"
        );
        assert_eq!(
            key.open(b"vrm/2/other", b"queue-1", &sealed),
            Err(SealError::DoesNotOpen)
        );
        let mut changed = sealed.clone();
        changed[KEY_BYTES + 1] ^= 1;
        assert_eq!(
            key.open(OFFER_INFO, b"queue-1", &changed),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(
            key.open(OFFER_INFO, b"queue-1", &sealed[..SEAL_OVERHEAD - 1]),
            Err(SealError::TooShort)
        );
    }

    #[test]
    fn an_empty_message_seals_to_exactly_the_overhead_and_opens() {
        let key = ReplyKey::derive(&[7; 32]);
        let sealed = seal(&key.public(), OFFER_INFO, b"q", b"").unwrap();
        assert_eq!(sealed.len(), SEAL_OVERHEAD);
        assert_eq!(key.open(OFFER_INFO, b"q", &sealed).unwrap(), b"");
    }

    #[test]
    fn derivation_is_deterministic_and_each_seal_is_fresh() {
        let a = ReplyKey::derive(&[7; 32]);
        let b = ReplyKey::derive(&[7; 32]);
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), ReplyKey::derive(&[9; 32]).public());
        let one = seal(&a.public(), OFFER_INFO, b"q", b"x").unwrap();
        let two = seal(&a.public(), OFFER_INFO, b"q", b"x").unwrap();
        assert_ne!(one, two, "a fresh encapsulated key each time");
    }
}
