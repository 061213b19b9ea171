//! Arbitrary bytes as a node export file (`vrm import` reads them before writing anything):
//! the outer map, the digest, the contents. Nothing may panic; what decodes must carry a
//! digest that matches.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vrm::export::decode(data);
});
