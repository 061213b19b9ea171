//! What the fuzz targets share: the test vectors, the keys that signed them, and signing
//! arbitrary bodies so a target gets past the signature check to the decoder behind it.

use std::path::Path;
use std::sync::LazyLock;

use ed25519_dalek::{Signer, SigningKey};
use vrm::proto::envelope::{VERSION, encode_wire, signing_input};
use vrm::proto::{Envelope, Kind, Payload, decode_and_check};

/// The time the vectors are checked at (`"now"` in every vector).
pub const NOW: u64 = 1_800_000_060;

/// The key that signs the vectors' intents and withdrawals (`examples/make_vectors.rs`).
pub fn persona() -> &'static SigningKey {
    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[0x11; 32]));
    &KEY
}

/// The relationship persona that signs the vectors' review (`review.json`).
pub fn reviewer() -> &'static SigningKey {
    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[0x45; 32]));
    &KEY
}

/// The key that signs the vectors' offers and vendor profiles.
pub fn vendor() -> &'static SigningKey {
    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[0x22; 32]));
    &KEY
}

/// One test vector from `proto/vectors/`.
pub struct Vector {
    /// File name.
    pub name: String,
    /// The envelope bytes.
    pub envelope: Vec<u8>,
    /// Whether the vector is valid at its `now`.
    pub valid: bool,
}

/// Every vector, sorted by file name, read once from the repository.
pub fn vectors() -> &'static [Vector] {
    static ALL: LazyLock<Vec<Vector>> = LazyLock::new(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/vectors");
        let mut all: Vec<Vector> = std::fs::read_dir(&dir)
            .expect("proto/vectors is readable")
            .map(|entry| {
                let path = entry.expect("dir entry").path();
                let text = std::fs::read_to_string(&path).expect("readable vector");
                let v: serde_json::Value = serde_json::from_str(&text).expect("vector is JSON");
                Vector {
                    name: path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                    envelope: hex::decode(v["envelope_hex"].as_str().expect("envelope_hex"))
                        .expect("hex"),
                    valid: v["valid"].as_bool().expect("valid"),
                }
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(!all.is_empty(), "no vectors in {}", dir.display());
        all
    });
    &ALL
}

/// The envelope bytes of the vector named `name`.
pub fn vector(name: &str) -> &'static [u8] {
    &vectors()
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .envelope
}

/// `body` as a correctly signed envelope of `kind` by `key`, whatever the body holds.
pub fn signed(kind: &str, body: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&signing_input(kind, body));
    encode_wire(
        VERSION,
        kind,
        body,
        key.verifying_key().as_bytes(),
        &sig.to_bytes(),
    )
}

/// `body` signed by `key` as a message of `kind`, through the network decoder and the
/// protocol rules. What is accepted must be accepted again, unchanged, once re-sealed: the
/// decoded body encodes back to something the decoder takes (the node re-seals nothing, but
/// it builds and seals its own messages from these same types).
pub fn check_signed_body(kind: Kind, body: &[u8], key: &SigningKey) -> Option<Payload> {
    let bytes = signed(kind.as_str(), body, key);
    let (envelope, payload) = decode_and_check(&bytes, NOW).ok()?;
    assert_eq!(envelope.kind(), kind);
    let resealed = match &payload {
        Payload::Intent(b) => Envelope::seal(b, key),
        Payload::IntentWithdraw(b) => Envelope::seal(b, key),
        Payload::Offer(b) => Envelope::seal(b, key),
        Payload::VendorProfile(b) => Envelope::seal(b, key),
        Payload::Review(b) => Envelope::seal(b, key),
    };
    let (_, again) = decode_and_check(resealed.as_bytes(), NOW)
        .unwrap_or_else(|e| panic!("accepted {kind} refused once re-sealed: {e}"));
    assert_eq!(again, payload, "re-sealing changed the {kind}");
    Some(payload)
}
