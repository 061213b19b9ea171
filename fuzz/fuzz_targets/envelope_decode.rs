//! Arbitrary bytes as an envelope from the network: decode, verify, check. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vrm::proto::decode_and_check(data, 1_800_000_000);
});
