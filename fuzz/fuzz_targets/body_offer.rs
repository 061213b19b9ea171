//! Arbitrary bytes as the body of an offer correctly signed by the vectors' vendor: the body
//! scanner, the offer schema and rules, and for an accepted offer the person's side, which
//! matches it against the intent it answers (the vectors' `intent-full`, signed by the
//! vectors' persona), as a person's node does with an offer that reaches it.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vrm::proto::validate::check_offer_for_intent;
use vrm::proto::{Intent, Kind, Payload, decode_and_check};
use vrm_fuzz::{NOW, check_signed_body, persona, vector, vendor};

static HELD: LazyLock<Intent> =
    LazyLock::new(|| match decode_and_check(vector("intent-full.json"), NOW) {
        Ok((_, Payload::Intent(intent))) => intent,
        other => panic!("intent-full.json is not a valid intent: {other:?}"),
    });

fuzz_target!(|body: &[u8]| {
    if let Some(Payload::Offer(offer)) = check_signed_body(Kind::Offer, body, vendor()) {
        let persona = persona().verifying_key();
        let _ = check_offer_for_intent(&offer, &HELD, &persona, false, NOW);
        let _ = check_offer_for_intent(&offer, &HELD, &persona, true, NOW);
        let _ = offer.total();
    }
});
