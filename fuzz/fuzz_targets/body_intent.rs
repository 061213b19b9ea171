//! Arbitrary bytes as the body of an intent correctly signed by the vectors' persona: the
//! body scanner, the intent schema and the intent rules behind the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrm::proto::Kind;
use vrm_fuzz::{check_signed_body, persona};

fuzz_target!(|body: &[u8]| {
    check_signed_body(Kind::Intent, body, persona());
});
