//! Arbitrary bytes as the body of a vendor profile correctly signed by the vectors' vendor:
//! the body scanner, the profile schema and the profile rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vrm::proto::Kind;
use vrm_fuzz::{check_signed_body, vendor};

fuzz_target!(|body: &[u8]| {
    check_signed_body(Kind::VendorProfile, body, vendor());
});
