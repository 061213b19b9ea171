//! Arbitrary bytes as the body of a review correctly signed by the vectors' reviewer: the
//! body scanner, the review schema, the token inside it (decoded and verified as an
//! envelope of its own), the history items and their link signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrm::proto::Kind;
use vrm_fuzz::{check_signed_body, reviewer};

fuzz_target!(|body: &[u8]| {
    check_signed_body(Kind::Review, body, reviewer());
});
