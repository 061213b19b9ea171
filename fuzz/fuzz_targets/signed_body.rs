//! Arbitrary bytes as the body of a correctly signed envelope of each kind, so the fuzzer
//! reaches the body scanner, the schemas and the content rules behind the signature check.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use vrm::proto::envelope::{VERSION, encode_wire, signing_input};

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let kinds = [
        "intent",
        "intent-withdraw",
        "offer",
        "vendor-profile",
        "order",
        "review",
    ];
    let kind = kinds[usize::from(*selector) % kinds.len()];
    let key = SigningKey::from_bytes(&[7; 32]);
    let sig = key.sign(&signing_input(kind, body));
    let bytes = encode_wire(
        VERSION,
        kind,
        body,
        key.verifying_key().as_bytes(),
        &sig.to_bytes(),
    );
    let _ = vrm::proto::decode_and_check(&bytes, 1_800_000_000);
});
