//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found, kept as tests.

use ed25519_dalek::SigningKey;
use vrm::api::views::CastBody;
use vrm::proto::validate::{check_intent, check_offer};
use vrm::proto::{Envelope, Offer, OfferItem, Payload, Price, ReplyTo, decode_and_check};

const NOW: u64 = 1_800_000_060;

fn reply_to() -> ReplyTo {
    ReplyTo::new(
        &libp2p::PeerId::random(),
        &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
        [7; 16],
        [9; 32],
    )
}

/// `api_json`: a cast with 65 terms passed the node's check, so the node signed, stored and
/// published an intent that every peer's decoder refuses (a list in a body holds at most 64
/// entries), costing the node its gossip score. The check now refuses it; 64 still go out.
#[test]
fn a_cast_with_more_terms_than_a_body_holds_is_refused_before_signing() {
    let key = SigningKey::from_bytes(&[0x11; 32]);
    for (terms, ok) in [(64, true), (65, false)] {
        let json = serde_json::json!({
            "category": "books",
            "text": "a novel",
            "terms": vec![serde_json::json!({"id": "no-tracking"}); terms],
        });
        let body: CastBody = serde_json::from_value(json).expect("parses");
        let intent =
            body.into_request()
                .expect("a request")
                .into_intent([1; 16].into(), NOW, reply_to());
        let checked = check_intent(&intent, NOW);
        assert_eq!(checked.is_ok(), ok, "{terms} terms: {checked:?}");
        let sealed = Envelope::seal(&intent, &key);
        let decoded = decode_and_check(sealed.as_bytes(), NOW);
        assert_eq!(
            decoded.is_ok(),
            ok,
            "{terms} terms on the wire: {decoded:?}"
        );
        if let Ok((_, Payload::Intent(back))) = decoded {
            assert_eq!(back, intent);
        }
    }
}

/// The same gap for the lists of a vendor's own offers, which it checks with these rules
/// before signing them (`vendor_role::seal_offer`): a catalog answer of 65 lines.
#[test]
fn offers_with_lists_over_the_body_limit_are_refused_before_signing() {
    let key = SigningKey::from_bytes(&[0x22; 32]);
    let item = OfferItem {
        title: "a book".into(),
        price: Price {
            amount: 100,
            currency: "EUR".into(),
        },
        quantity: 1,
        sku: None,
    };
    let offer = |items: usize, terms: usize| Offer {
        intent: [1; 16].into(),
        persona: [3; 32].into(),
        vendor: key.verifying_key().to_bytes().into(),
        items: vec![item.clone(); items],
        text: String::new(),
        created: NOW,
        valid_until: NOW + 3600,
        accepted_terms: vec!["no-tracking".into(); terms],
        inbox: None,
        group: None,
    };
    let signer = key.verifying_key();
    for (items, terms, ok) in [(64, 64, true), (65, 1, false), (1, 65, false)] {
        let offer = offer(items, terms);
        assert_eq!(
            check_offer(&offer, &signer, NOW).is_ok(),
            ok,
            "{items}/{terms}"
        );
        let wire = Envelope::seal(&offer, &key);
        assert_eq!(decode_and_check(wire.as_bytes(), NOW).is_ok(), ok);
    }
}
