//! Arbitrary bytes as the JSON body of `POST /api/v1/intents` ([`CastBody`], the only JSON
//! request body the API takes), through what the route and the node do with it: parse as
//! axum's `Json` does, turn into a cast request, build the intent and check it. An intent
//! the node's check lets through is one it signs and publishes, so it must be one every
//! peer accepts: sealed, it must pass the network decoder and the rules unchanged.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vrm::api::views::CastBody;
use vrm::proto::validate::check_intent;
use vrm::proto::{Envelope, Payload, ReplyTo, decode_and_check};
use vrm_fuzz::{NOW, persona, vector};

/// Where the node says offers go: the vectors' reply-to (a peer id and a QUIC address).
static REPLY_TO: LazyLock<ReplyTo> =
    LazyLock::new(|| match decode_and_check(vector("intent-full.json"), NOW) {
        Ok((_, Payload::Intent(intent))) => intent.reply_to,
        other => panic!("intent-full.json is not a valid intent: {other:?}"),
    });

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<CastBody>(data) else {
        return;
    };
    let Ok(request) = body.into_request() else {
        return;
    };
    let intent = request.into_intent([0xa5; 16].into(), NOW, REPLY_TO.clone());
    if check_intent(&intent, NOW).is_err() {
        return;
    }
    let envelope = Envelope::seal(&intent, persona());
    match decode_and_check(envelope.as_bytes(), NOW) {
        Ok((_, Payload::Intent(decoded))) => assert_eq!(decoded, intent, "changed on the wire"),
        other => panic!("the node would publish an intent peers refuse: {other:?}"),
    }
});
