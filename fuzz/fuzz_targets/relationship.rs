//! Arbitrary bytes as an exported relationship log (`verify_file`), as a grant's delivery,
//! and as the body of each relationship kind (the person's data kinds and the review token
//! too), signed by either
//! side and checked as the next entry of the whole order and of the log with a grant in
//! `proto/relationship-vectors.json` (and of its start, after the accept): the decoder,
//! the signer rules and the rules of the order, as a node applies them to an entry that
//! reaches it. Nothing may panic; an entry the rules take must be one its side may sign.
#![no_main]

use std::sync::LazyLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use vrm::proto::Envelope;
use vrm::proto::relationship::{Chain, LogFile, verify_file};
use vrm_fuzz::{signed, vendor};

/// The whole order's chain after its accept, after its last entry, the chain of the log
/// with a grant, held, revoked and deleted, and the chain of a fulfilled order just before
/// the vendor's review token.
static CHAINS: LazyLock<[Chain; 4]> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/relationship-vectors.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json");
    let bytes = hex::decode(file["logs"][0]["log_hex"].as_str().expect("hex")).expect("hex");
    let log = LogFile::decode(&bytes).expect("a log");
    let offer = Envelope::decode(&log.offer).expect("the offer");
    let accept = Envelope::decode(&log.entries[0].entry).expect("the accept");
    let (start, _) = Chain::start(&accept, &offer).expect("a valid accept");
    let whole = verify_file(&bytes).expect("the whole order verifies").chain;
    let data = hex::decode(file["logs"][8]["log_hex"].as_str().expect("hex")).expect("hex");
    let data = verify_file(&data).expect("the log with a grant verifies").chain;
    assert_eq!(data.grants.len(), 1, "logs[8] is the log with a grant");
    let tokened = hex::decode(file["logs"][15]["log_hex"].as_str().expect("hex")).expect("hex");
    let tokened = LogFile::decode(&tokened).expect("a log");
    let accept = Envelope::decode(&tokened.entries[0].entry).expect("the accept");
    let (mut fulfilled, _) = Chain::start(&accept, &offer).expect("a valid accept");
    let (token, before) = tokened.entries[1..].split_last().expect("entries");
    for record in before {
        let entry = Envelope::decode(&record.entry).expect("an entry");
        let (_, _, state) = fulfilled.check(&entry).expect("a valid entry");
        fulfilled.push(&entry, state);
    }
    let token = Envelope::decode(&token.entry).expect("the token");
    assert!(fulfilled.check(&token).is_ok(), "logs[15] ends in a review token");
    [start, whole, data, fulfilled]
});

fn persona() -> &'static SigningKey {
    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[0x44; 32]));
    &KEY
}

fuzz_target!(|data: &[u8]| {
    let _ = verify_file(data);
    let _ = vrm::proto::GrantDelivery::decode(data);
    let kinds = [
        "order",
        "order-update",
        "message",
        "relationship-end",
        "entry-ack",
        "agreement",
        "grant",
        "revoke",
        "receipt",
        "review-token",
    ];
    for kind in kinds {
        for key in [vendor(), persona()] {
            let Ok(envelope) = Envelope::decode(&signed(kind, data, key)) else {
                continue;
            };
            for chain in CHAINS.iter() {
                if let Ok((_, side, _)) = chain.check(&envelope) {
                    assert_eq!(chain.key_of(side), *key.verifying_key().as_bytes());
                }
                let _ = chain.check_ack(&envelope, 0, &envelope.id());
            }
        }
    }
});
