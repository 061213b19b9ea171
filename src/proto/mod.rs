//! The wire protocol: envelope, kinds, limits, taxonomy and validation. Pure code, no I/O;
//! `proto/` at the top of the repository is its language-neutral specification.

pub mod batch;
pub mod cbor_scan;
pub mod envelope;
pub mod error;
pub mod grants;
pub mod json;
pub mod kinds;
pub mod limits;
pub mod relationship;
pub mod reviews;
pub mod sealed;
pub mod service;
pub mod taxonomy;
pub mod validate;

pub use envelope::{Envelope, MessageId};
pub use error::{DecodeError, Rejection, ValidationError};
pub use kinds::*;

/// Number of shards intents are spread over, one gossipsub topic each.
pub const SHARDS: u8 = 8;

/// The shard of a top-level category: the first byte of SHA-256("vrm/2/shard" || category id)
/// modulo [`SHARDS`]. A function of the id alone, so every node agrees on the shard of any
/// category, also one appended to the taxonomy after it was built.
pub fn shard_of(category: &str) -> u8 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"vrm/2/shard")
        .chain_update(category.as_bytes())
        .finalize();
    digest[0] % SHARDS
}

/// Gossipsub topic of a shard.
pub fn shard_topic(shard: u8) -> String {
    format!("/vrm/2/shard/{shard}")
}

/// Gossipsub topic of intents (and their withdrawals) in a top-level category: its shard's.
pub fn intent_topic(category: &str) -> String {
    shard_topic(shard_of(category))
}

/// The shard whose topic `topic` is, if it is one.
pub fn shard_of_topic(topic: &str) -> Option<u8> {
    topic
        .strip_prefix("/vrm/2/shard/")
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| *n < SHARDS && shard_topic(*n) == topic)
}

/// Whether `topic` is the topic of a shard.
pub fn is_shard_topic(topic: &str) -> bool {
    shard_of_topic(topic).is_some()
}

/// Gossipsub topic of the directory: vendor profiles, reviews, and collective intents.
pub const DIRECTORY_TOPIC: &str = "/vrm/2/directory";

/// The catch-up number of the directory topic, after the shards' (`proto/README.md`,
/// "Catch-up").
pub const DIRECTORY_SHARD: u8 = SHARDS;

/// The topic `intent` and its withdrawal travel on: the directory for a member's intent of
/// a collective intent (every node shows groups), else its category's shard.
pub fn topic_of(intent: &Intent) -> String {
    match intent.group {
        Some(_) => DIRECTORY_TOPIC.to_owned(),
        None => intent_topic(&intent.category),
    }
}

/// The topic whose messages catch-up number `shard` covers: a shard's, or the directory.
pub fn catch_up_topic(shard: u8) -> String {
    match shard {
        DIRECTORY_SHARD => DIRECTORY_TOPIC.to_owned(),
        shard => shard_topic(shard),
    }
}

/// The catch-up number of `topic`, if catch-up covers it.
pub fn catch_up_shard(topic: &str) -> Option<u8> {
    match topic {
        DIRECTORY_TOPIC => Some(DIRECTORY_SHARD),
        topic => shard_of_topic(topic),
    }
}

/// Decodes, verifies and checks a message from the network at time `now`.
pub fn decode_and_check(bytes: &[u8], now: u64) -> Result<(Envelope, Payload), Rejection> {
    check(Envelope::decode(bytes)?, now)
}

/// Opens a verified envelope's body and checks it against the protocol rules at `now`.
pub fn check(envelope: Envelope, now: u64) -> Result<(Envelope, Payload), Rejection> {
    let payload = envelope.payload()?;
    validate::check_payload(&payload, envelope.signer(), now)?;
    Ok((envelope, payload))
}
