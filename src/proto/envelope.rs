//! The signed envelope every message travels in (`proto/README.md`, "Envelope").
//!
//! Wire form: a CBOR map `{"v": 1, "kind": tstr, "body": bstr, "signer": bstr, "sig": bstr}`
//! in exactly that key order, definite lengths, shortest integers. The signature is Ed25519 by
//! `signer` over `"vrm/2/" || kind || 0x00 || body`. The body is carried, signed and checked
//! as the exact bytes sent: nothing is re-encoded to verify. The id of a message is the
//! SHA-256 of the envelope bytes; because only the canonical encoding is accepted, one
//! signed message has exactly one id.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};
use sha2::{Digest, Sha256};

use super::cbor_scan::{ScanLimits, scan};
use super::error::DecodeError;
use super::kinds::{Body, Kind, Payload};
use super::limits;

/// The protocol version this node speaks.
pub const VERSION: u64 = 2;
/// The prefix of every signing input.
pub const SIGNING_PREFIX: &[u8] = b"vrm/2/";

/// SHA-256 of an envelope's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id of these envelope bytes.
    pub fn of(envelope_bytes: &[u8]) -> Self {
        MessageId(Sha256::digest(envelope_bytes).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The wire map. Field order is the canonical key order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    v: u64,
    kind: String,
    body: ByteBuf,
    signer: ByteBuf,
    sig: ByteBuf,
}

/// [`WireEnvelope`] borrowed, for encoding without copying the fields.
#[derive(Serialize)]
struct WireEnvelopeRef<'a> {
    v: u64,
    kind: &'a str,
    body: &'a Bytes,
    signer: &'a Bytes,
    sig: &'a Bytes,
}

const ENVELOPE_SCAN: ScanLimits = ScanLimits {
    max_depth: 1,
    max_string: limits::MAX_ENVELOPE_BYTES,
    max_items: 8,
};

const BODY_SCAN: ScanLimits = ScanLimits {
    max_depth: limits::MAX_DEPTH,
    max_string: limits::MAX_STRING_BYTES,
    max_items: limits::MAX_ITEMS,
};

/// A decoded envelope whose signature has been verified.
#[derive(Debug, Clone)]
pub struct Envelope {
    kind: Kind,
    body: Vec<u8>,
    signer: VerifyingKey,
    id: MessageId,
    bytes: Vec<u8>,
}

/// A well-formed envelope whose signature is not checked yet: the only way to an
/// [`Envelope`] from it is through verification.
#[derive(Debug)]
pub struct Unverified {
    pub(super) envelope: Envelope,
    pub(super) sig: Signature,
    pub(super) signing_input: Vec<u8>,
}

impl Unverified {
    /// Verifies the signature strictly (no small-order key or `R`, canonical `s`).
    pub fn verify(self) -> Result<Envelope, DecodeError> {
        self.envelope
            .signer
            .verify_strict(&self.signing_input, &self.sig)
            .map_err(|_| DecodeError::BadSignature)?;
        Ok(self.envelope)
    }
}

/// The bytes an envelope's signature covers.
pub fn signing_input(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_PREFIX.len() + kind.len() + 1 + body.len());
    input.extend_from_slice(SIGNING_PREFIX);
    input.extend_from_slice(kind.as_bytes());
    input.push(0);
    input.extend_from_slice(body);
    input
}

/// Encodes envelope fields as they are, without signing or checking anything. For tools that
/// build test vectors and for tests that need broken envelopes; nodes use [`Envelope::seal`].
pub fn encode_wire(v: u64, kind: &str, body: &[u8], signer: &[u8], sig: &[u8]) -> Vec<u8> {
    let wire = WireEnvelopeRef {
        v,
        kind,
        body: Bytes::new(body),
        signer: Bytes::new(signer),
        sig: Bytes::new(sig),
    };
    let mut out = Vec::with_capacity(body.len() + kind.len() + 128);
    // Writing into a Vec cannot fail, and every field serialises.
    ciborium::into_writer(&wire, &mut out).expect("encoding an envelope into memory");
    out
}

/// Encodes a body as CBOR.
pub fn encode_body<B: Serialize>(body: &B) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(body, &mut out).expect("encoding a body into memory");
    out
}

impl Envelope {
    /// Encodes `body`, signs it with `key` and returns the envelope.
    pub fn seal<B: Body>(body: &B, key: &SigningKey) -> Envelope {
        let body_bytes = encode_body(body);
        let kind = B::KIND.as_str();
        let sig = key.sign(&signing_input(kind, &body_bytes));
        let bytes = encode_wire(
            VERSION,
            kind,
            &body_bytes,
            key.verifying_key().as_bytes(),
            &sig.to_bytes(),
        );
        Envelope {
            kind: B::KIND,
            body: body_bytes,
            signer: key.verifying_key(),
            id: MessageId::of(&bytes),
            bytes,
        }
    }

    /// Decodes and verifies envelope bytes from anywhere: size and structure limits first,
    /// then schema, version, canonical form, kind, key and a strict signature check.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        Self::parse(bytes)?.verify()
    }

    /// Every check of [`Envelope::decode`] but the signature, which the caller verifies
    /// with [`Unverified::verify`] or, for many at once, [`super::batch::verify_all`].
    pub fn parse(bytes: &[u8]) -> Result<Unverified, DecodeError> {
        if bytes.len() > limits::MAX_ENVELOPE_BYTES {
            return Err(DecodeError::EnvelopeTooLarge {
                len: bytes.len(),
                max: limits::MAX_ENVELOPE_BYTES,
            });
        }
        scan(bytes, &ENVELOPE_SCAN)?;
        let wire: WireEnvelope =
            ciborium::from_reader(bytes).map_err(|e| DecodeError::EnvelopeSchema(e.to_string()))?;
        if wire.v != VERSION {
            return Err(DecodeError::UnsupportedVersion(wire.v));
        }
        if encode_wire(wire.v, &wire.kind, &wire.body, &wire.signer, &wire.sig) != bytes {
            return Err(DecodeError::NonCanonical);
        }
        let kind = Kind::from_wire(&wire.kind)
            .ok_or_else(|| DecodeError::UnknownKind(wire.kind.clone()))?;
        let signer_bytes: &[u8; 32] = wire
            .signer
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::BadSignerKey)?;
        let signer =
            VerifyingKey::from_bytes(signer_bytes).map_err(|_| DecodeError::BadSignerKey)?;
        let sig_bytes: &[u8; 64] = wire
            .sig
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::EnvelopeSchema("sig must be 64 bytes".into()))?;
        Ok(Unverified {
            signing_input: signing_input(&wire.kind, &wire.body),
            sig: Signature::from_bytes(sig_bytes),
            envelope: Envelope {
                kind,
                body: wire.body.into_vec(),
                signer,
                id: MessageId::of(bytes),
                bytes: bytes.to_vec(),
            },
        })
    }

    /// Decodes the body as `B`, which must be this envelope's kind.
    pub fn open<B: Body>(&self) -> Result<B, DecodeError> {
        if self.kind != B::KIND {
            return Err(DecodeError::BodySchema {
                kind: B::KIND.as_str(),
                reason: format!("envelope holds a {}", self.kind),
            });
        }
        scan(&self.body, &BODY_SCAN)?;
        ciborium::from_reader(self.body.as_slice()).map_err(|e| DecodeError::BodySchema {
            kind: B::KIND.as_str(),
            reason: e.to_string(),
        })
    }

    /// Decodes the body of any kind this node handles.
    pub fn payload(&self) -> Result<Payload, DecodeError> {
        Ok(match self.kind {
            Kind::Intent => Payload::Intent(self.open()?),
            Kind::IntentWithdraw => Payload::IntentWithdraw(self.open()?),
            Kind::Offer => Payload::Offer(self.open()?),
            Kind::VendorProfile => Payload::VendorProfile(self.open()?),
            Kind::Review => Payload::Review(self.open()?),
            other => return Err(DecodeError::KindNotSupported(other.as_str().to_owned())),
        })
    }

    /// The message kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The body bytes exactly as signed.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The key that signed the envelope.
    pub fn signer(&self) -> &VerifyingKey {
        &self.signer
    }

    /// SHA-256 of the envelope bytes.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The envelope bytes exactly as received or sent.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::kinds::IntentWithdraw;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn withdraw() -> IntentWithdraw {
        IntentWithdraw {
            intent: [1u8; 16].into(),
            created: 1_800_000_000,
        }
    }

    #[test]
    fn seal_then_decode_round_trips() {
        let sealed = Envelope::seal(&withdraw(), &key());
        let decoded = Envelope::decode(sealed.as_bytes()).unwrap();
        assert_eq!(decoded.id(), sealed.id());
        assert_eq!(decoded.open::<IntentWithdraw>().unwrap(), withdraw());
    }

    #[test]
    fn signature_for_another_kind_is_refused() {
        let body = encode_body(&withdraw());
        let sig = key().sign(&signing_input("offer", &body));
        let bytes = encode_wire(
            VERSION,
            "intent-withdraw",
            &body,
            key().verifying_key().as_bytes(),
            &sig.to_bytes(),
        );
        assert_eq!(
            Envelope::decode(&bytes).unwrap_err(),
            DecodeError::BadSignature
        );
    }

    #[test]
    fn reordered_keys_are_not_canonical() {
        let sealed = Envelope::seal(&withdraw(), &key());
        let mut value: ciborium::Value = ciborium::from_reader(sealed.as_bytes()).unwrap();
        if let ciborium::Value::Map(entries) = &mut value {
            entries.reverse();
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&value, &mut bytes).unwrap();
        assert_eq!(
            Envelope::decode(&bytes).unwrap_err(),
            DecodeError::NonCanonical
        );
    }

    #[test]
    fn opening_as_the_wrong_kind_fails() {
        let sealed = Envelope::seal(&withdraw(), &key());
        assert!(matches!(
            sealed.open::<crate::proto::kinds::Offer>(),
            Err(DecodeError::BodySchema { .. })
        ));
    }
}
