//! Arbitrary bytes as the body of an intent withdrawal correctly signed by the vectors'
//! persona: the body scanner, the withdrawal schema and its rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrm::proto::Kind;
use vrm_fuzz::{check_signed_body, persona};

fuzz_target!(|body: &[u8]| {
    check_signed_body(Kind::IntentWithdraw, body, persona());
});
