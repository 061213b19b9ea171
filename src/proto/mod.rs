//! The wire protocol: envelope, kinds, limits, taxonomy and validation. Pure code, no I/O;
//! `proto/` at the top of the repository is its language-neutral specification.

pub mod batch;
pub mod cbor_scan;
pub mod envelope;
pub mod error;
pub mod json;
pub mod kinds;
pub mod limits;
pub mod sealed;
pub mod service;
pub mod taxonomy;
pub mod validate;

pub use envelope::{Envelope, MessageId};
pub use error::{DecodeError, Rejection, ValidationError};
pub use kinds::*;

/// Gossipsub topic of intents (and their withdrawals) in a top-level category.
pub fn intent_topic(category: &str) -> String {
    format!("/vrm/2/intent/{category}")
}

/// Gossipsub topic of vendor profiles.
pub const DIRECTORY_TOPIC: &str = "/vrm/2/directory";

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
