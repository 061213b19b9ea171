//! One test per rejection reason of the pure protocol layer: each builds the smallest
//! message that breaks exactly one rule and checks the error code a node reports for it.
//! (Replay, id conflicts and withdrawals by a stranger need a store: see `tests/ingest.rs`.)

use ed25519_dalek::{Signer, SigningKey};
use vrm::proto::envelope::{VERSION, encode_body, encode_wire, signing_input};
use vrm::proto::validate::check_offer_for_intent;
use vrm::proto::*;

const NOW: u64 = 1_800_000_000;

fn persona() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn vendor() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

fn intent() -> Intent {
    let peer = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    Intent {
        id: [5; 16].into(),
        category: "travel".into(),
        subcategory: Some("lodging".into()),
        text: "A room in Porto".into(),
        constraints: Constraints {
            max_price: Some(Price {
                amount: 10_000,
                currency: "EUR".into(),
            }),
            ..Constraints::default()
        },
        terms: vec![Term {
            id: "no-tracking".into(),
            required: true,
        }],
        created: NOW,
        expires: NOW + 3600,
        reply_to: ReplyTo::new(
            &peer,
            &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
            [7; 16],
            [9; 32],
        ),
        group: None,
    }
}

fn offer() -> Offer {
    Offer {
        intent: [5; 16].into(),
        persona: persona().verifying_key().to_bytes().into(),
        vendor: vendor().verifying_key().to_bytes().into(),
        items: vec![OfferItem {
            title: "Room".into(),
            price: Price {
                amount: 9_000,
                currency: "EUR".into(),
            },
            quantity: 1,
            sku: None,
        }],
        text: String::new(),
        created: NOW,
        valid_until: NOW + 600,
        accepted_terms: vec!["no-tracking".into()],
        inbox: None,
        group: None,
    }
}

/// Signs raw body bytes as `kind` and wraps them in a canonical envelope.
fn signed_raw(kind: &str, body: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&signing_input(kind, body));
    encode_wire(
        VERSION,
        kind,
        body,
        key.verifying_key().as_bytes(),
        &sig.to_bytes(),
    )
}

fn code_of(bytes: &[u8]) -> &'static str {
    decode_and_check(bytes, NOW)
        .err()
        .map(|e| e.code())
        .unwrap_or("accepted")
}

fn intent_code(change: impl FnOnce(&mut Intent)) -> &'static str {
    let mut i = intent();
    change(&mut i);
    code_of(Envelope::seal(&i, &persona()).as_bytes())
}

fn offer_code(change: impl FnOnce(&mut Offer)) -> &'static str {
    let mut o = offer();
    change(&mut o);
    code_of(Envelope::seal(&o, &vendor()).as_bytes())
}

fn offer_for_intent_code(
    change: impl FnOnce(&mut Offer),
    withdrawn: bool,
    now: u64,
) -> &'static str {
    let mut o = offer();
    change(&mut o);
    match check_offer_for_intent(&o, &intent(), &persona().verifying_key(), withdrawn, now) {
        Ok(()) => "accepted",
        Err(e) => e.code(),
    }
}

#[test]
fn baseline_messages_are_accepted() {
    assert_eq!(intent_code(|_| {}), "accepted");
    assert_eq!(offer_code(|_| {}), "accepted");
    assert_eq!(offer_for_intent_code(|_| {}, false, NOW), "accepted");
}

// ---- decoding -----------------------------------------------------------------------------

#[test]
fn envelope_too_large() {
    assert_eq!(
        code_of(&vec![0u8; limits::MAX_ENVELOPE_BYTES + 1]),
        "envelope-too-large"
    );
}

#[test]
fn truncated() {
    let bytes = Envelope::seal(&intent(), &persona()).as_bytes().to_vec();
    assert_eq!(code_of(&bytes[..bytes.len() / 2]), "truncated");
}

#[test]
fn trailing_bytes() {
    let mut bytes = Envelope::seal(&intent(), &persona()).as_bytes().to_vec();
    bytes.push(0);
    assert_eq!(code_of(&bytes), "trailing-bytes");
}

#[test]
fn malformed_cbor() {
    assert_eq!(code_of(&[0x1c]), "malformed-cbor");
}

#[test]
fn unsupported_cbor() {
    assert_eq!(code_of(&[0xbf, 0xff]), "unsupported-cbor");
}

#[test]
fn invalid_utf8() {
    // A body map {"text": <invalid UTF-8>}, correctly signed.
    let body = [0xa1, 0x64, b't', b'e', b'x', b't', 0x62, 0xff, 0xfe];
    assert_eq!(
        code_of(&signed_raw("intent", &body, &persona())),
        "invalid-utf8"
    );
}

#[test]
fn too_deep() {
    let mut body = vec![0x81; limits::MAX_DEPTH + 1];
    body.push(0x01);
    assert_eq!(
        code_of(&signed_raw("intent", &body, &persona())),
        "too-deep"
    );
}

#[test]
fn string_too_long() {
    assert_eq!(
        intent_code(|i| i.text = "y".repeat(limits::MAX_STRING_BYTES + 1)),
        "string-too-long"
    );
}

#[test]
fn too_many_items() {
    let mut body = vec![0x98, (limits::MAX_ITEMS + 1) as u8];
    body.extend(std::iter::repeat_n(0x01, limits::MAX_ITEMS + 1));
    assert_eq!(
        code_of(&signed_raw("intent", &body, &persona())),
        "too-many-items"
    );
}

#[test]
fn envelope_schema() {
    // {"v": 1} alone.
    assert_eq!(code_of(&[0xa1, 0x61, b'v', 0x01]), "envelope-schema");
}

#[test]
fn non_canonical() {
    // The version for "v" in a two-byte encoding.
    let good = Envelope::seal(&intent(), &persona()).as_bytes().to_vec();
    assert_eq!(
        u64::from(good[3]),
        VERSION,
        "the version in its one-byte encoding"
    );
    let mut bytes = vec![good[0], good[1], good[2], 0x18, good[3]];
    bytes.extend_from_slice(&good[4..]);
    assert_eq!(code_of(&bytes), "non-canonical");
}

/// A version this node does not speak is refused: the next one, and protocol 1, whose
/// intents named the person's node.
#[test]
fn unsupported_version() {
    let body = encode_body(&intent());
    let sig = persona().sign(&signing_input("intent", &body));
    for version in [1, VERSION + 1] {
        let bytes = encode_wire(
            version,
            "intent",
            &body,
            persona().verifying_key().as_bytes(),
            &sig.to_bytes(),
        );
        assert_eq!(code_of(&bytes), "unsupported-version", "version {version}");
    }
}

#[test]
fn unknown_kind() {
    assert_eq!(
        code_of(&signed_raw("coupon", &encode_body(&intent()), &persona())),
        "unknown-kind"
    );
}

#[test]
fn kind_not_supported() {
    assert_eq!(
        code_of(&signed_raw("order", &[0xa0], &persona())),
        "kind-not-supported"
    );
}

#[test]
fn bad_signer_key() {
    let not_a_point = (0u8..=255)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
        .expect("some y has no curve point");
    let bytes = encode_wire(VERSION, "intent", &[0xa0], &not_a_point, &[0; 64]);
    assert_eq!(code_of(&bytes), "bad-signer-key");
}

#[test]
fn bad_signature() {
    let mut bytes = Envelope::seal(&intent(), &persona()).as_bytes().to_vec();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    assert_eq!(code_of(&bytes), "bad-signature");
}

#[test]
fn weak_signer_key_is_a_bad_signature() {
    // The identity point has small order; strict verification refuses it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let bytes = encode_wire(VERSION, "intent", &[0xa0], &identity, &[0; 64]);
    assert_eq!(code_of(&bytes), "bad-signature");
}

#[test]
fn body_schema() {
    // A map without any of the intent's required fields.
    assert_eq!(
        code_of(&signed_raw("intent", &[0xa0], &persona())),
        "body-schema"
    );
}

// ---- content rules ------------------------------------------------------------------------

#[test]
fn from_the_future() {
    assert_eq!(
        intent_code(|i| {
            i.created = NOW + limits::MAX_CLOCK_SKEW_SECS + 1;
            i.expires = i.created + 60;
        }),
        "from-the-future"
    );
}

#[test]
fn at_the_edge_of_the_clock_skew_is_not_from_the_future() {
    assert_eq!(
        intent_code(|i| {
            i.created = NOW + limits::MAX_CLOCK_SKEW_SECS;
            i.expires = i.created + 60;
        }),
        "accepted"
    );
}

#[test]
fn expired() {
    assert_eq!(
        intent_code(|i| {
            i.created = NOW - 7200;
            i.expires = NOW;
        }),
        "expired"
    );
}

#[test]
fn an_offer_past_its_own_validity_is_expired() {
    assert_eq!(offer_code(|o| o.valid_until = NOW - 1), "expired");
    assert_eq!(
        offer_code(|o| o.valid_until = NOW),
        "expired",
        "valid until, not through"
    );
    assert_eq!(offer_code(|o| o.valid_until = NOW + 1), "accepted");
}

#[test]
fn expires_before_created() {
    assert_eq!(
        intent_code(|i| i.expires = i.created),
        "expires-before-created"
    );
}

#[test]
fn lifetime_too_long() {
    assert_eq!(
        intent_code(|i| i.expires = i.created + limits::MAX_INTENT_LIFETIME_SECS + 1),
        "lifetime-too-long"
    );
}

#[test]
fn unknown_category() {
    assert_eq!(
        intent_code(|i| i.category = "spaceships".into()),
        "unknown-category"
    );
}

#[test]
fn unknown_subcategory() {
    assert_eq!(
        intent_code(|i| i.subcategory = Some("castles".into())),
        "unknown-subcategory"
    );
}

#[test]
fn unknown_term() {
    assert_eq!(
        intent_code(|i| i.terms.push(Term {
            id: "sell-my-soul".into(),
            required: false
        })),
        "unknown-term"
    );
}

#[test]
fn field_too_long() {
    assert_eq!(
        intent_code(|i| i.text = "z".repeat(limits::MAX_TEXT_BYTES + 1)),
        "field-too-long"
    );
}

#[test]
fn empty_field() {
    assert_eq!(intent_code(|i| i.text = "   ".into()), "empty-field");
    assert_eq!(offer_code(|o| o.items.clear()), "empty-field");
}

#[test]
fn invalid_field() {
    assert_eq!(
        intent_code(|i| i.constraints.max_price = Some(Price {
            amount: 1,
            currency: "euro".into()
        })),
        "invalid-field"
    );
    assert_eq!(
        intent_code(|i| i.constraints.dates = Some(DateRange {
            from: "2027-02-30x".into(),
            to: "2027-03-01".into()
        })),
        "invalid-field"
    );
    assert_eq!(
        intent_code(|i| i.reply_to.mailbox = vec![1, 2, 3].into()),
        "invalid-field"
    );
    assert_eq!(offer_code(|o| o.items[0].quantity = 0), "invalid-field");
}

#[test]
fn signer_mismatch() {
    assert_eq!(offer_code(|o| o.vendor = [9; 32].into()), "signer-mismatch");
}

#[test]
fn unknown_intent() {
    assert_eq!(
        offer_for_intent_code(|o| o.intent = [6; 16].into(), false, NOW),
        "unknown-intent"
    );
}

#[test]
fn wrong_persona() {
    assert_eq!(
        offer_for_intent_code(|o| o.persona = [7; 32].into(), false, NOW),
        "wrong-persona"
    );
}

#[test]
fn intent_withdrawn() {
    assert_eq!(offer_for_intent_code(|_| {}, true, NOW), "intent-withdrawn");
}

#[test]
fn intent_expired() {
    assert_eq!(
        offer_for_intent_code(|_| {}, false, NOW + 3600),
        "intent-expired"
    );
}

#[test]
fn required_term_refused() {
    assert_eq!(
        offer_for_intent_code(|o| o.accepted_terms.clear(), false, NOW),
        "required-term-refused"
    );
}

#[test]
fn currency_mismatch() {
    assert_eq!(
        offer_for_intent_code(|o| o.items[0].price.currency = "USD".into(), false, NOW),
        "currency-mismatch"
    );
}

#[test]
fn over_price_ceiling() {
    assert_eq!(
        offer_for_intent_code(|o| o.items[0].quantity = 2, false, NOW),
        "over-price-ceiling"
    );
}

/// A small-order (weak) key makes the signature equation hold for any message whose `s`
/// matches `R`: strict verification refuses the key, and so must the batch a node verifies
/// gossip in, even when the honest messages around it make the batch equation hold.
#[test]
fn a_weak_key_forgery_is_refused_in_a_batch_too() {
    use curve25519_dalek::{EdwardsPoint, Scalar};
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let s = Scalar::from(7u8);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(EdwardsPoint::mul_base(&s).compress().as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    let body = encode_body(&intent());
    let forged = encode_wire(VERSION, "intent", &body, &identity, &sig);
    assert_eq!(code_of(&forged), "bad-signature");

    let honest = |n: u8| {
        let mut i = intent();
        i.id = [n; 16].into();
        Envelope::seal(&i, &persona()).as_bytes().to_vec()
    };
    let batch = [honest(1), forged, honest(2)];
    let parsed = batch.iter().map(|b| Envelope::parse(b).unwrap()).collect();
    let results = vrm::proto::batch::verify_all(parsed);
    assert!(
        results[0].is_ok() && results[2].is_ok(),
        "the honest ones pass"
    );
    assert!(results[1].is_err(), "the forgery does not ride on them");
}

// ---- each limit, at the edge and one past it ---------------------------------------------

#[test]
fn an_envelope_of_exactly_the_largest_size_is_not_refused_for_its_size() {
    let code = code_of(&vec![0u8; limits::MAX_ENVELOPE_BYTES]);
    assert_ne!(code, "envelope-too-large");
}

#[test]
fn text_of_exactly_the_longest_length_is_accepted() {
    assert_eq!(
        intent_code(|i| i.text = "z".repeat(limits::MAX_TEXT_BYTES)),
        "accepted"
    );
}

#[test]
fn a_lifetime_of_exactly_the_longest_is_accepted() {
    assert_eq!(
        intent_code(|i| i.expires = i.created + limits::MAX_INTENT_LIFETIME_SECS),
        "accepted"
    );
}

#[test]
fn a_date_range_of_one_day_is_accepted_and_one_that_ends_before_it_starts_is_not() {
    let range = |from: &str, to: &str| {
        intent_code(|i| {
            i.constraints.dates = Some(DateRange {
                from: from.into(),
                to: to.into(),
            })
        })
    };
    assert_eq!(range("2027-03-01", "2027-03-01"), "accepted");
    assert_eq!(range("2027-03-01", "2027-03-04"), "accepted");
    assert_eq!(range("2027-03-02", "2027-03-01"), "invalid-field");
}

#[test]
fn a_currency_must_be_three_upper_case_letters() {
    let currency = |code: &str| {
        intent_code(|i| {
            i.constraints.max_price = Some(Price {
                amount: 1,
                currency: code.into(),
            })
        })
    };
    assert_eq!(currency("EUR"), "accepted");
    assert_eq!(
        currency("EURO"),
        "invalid-field",
        "upper case, but four letters"
    );
    assert_eq!(
        currency("eur"),
        "invalid-field",
        "three letters, but lower case"
    );
    assert_eq!(currency("EU"), "invalid-field");
}

/// An intent the node builds itself is checked against the list limit before it is signed
/// (a received one meets the decoder's limit first).
#[test]
fn an_own_intent_may_hold_a_full_list_but_not_one_more() {
    let mut full = intent();
    full.terms = vec![
        Term {
            id: "no-tracking".into(),
            required: false,
        };
        limits::MAX_ITEMS
    ];
    assert_eq!(
        validate::check_intent(&full, NOW).map_err(|e| e.code()),
        Ok(())
    );
    full.terms.push(full.terms[0].clone());
    assert_eq!(
        validate::check_intent(&full, NOW).map_err(|e| e.code()),
        Err("invalid-field")
    );
}

/// A `/dns4/<name>/tcp/1` multiaddr of exactly `len` bytes (1 byte protocol code, 2 bytes
/// length, the name, then 3 bytes for the port).
fn dns_addr_of_len(len: usize) -> Vec<u8> {
    let name = "a".repeat(len - 6);
    let addr: libp2p::Multiaddr = format!("/dns4/{name}/tcp/1").parse().unwrap();
    assert_eq!(addr.to_vec().len(), len);
    addr.to_vec()
}

#[test]
fn a_reply_path_names_one_mailbox_address_a_16_byte_queue_and_a_32_byte_key() {
    let addr = |len| intent_code(|i| i.reply_to.addr = dns_addr_of_len(len).into());
    assert_eq!(addr(limits::MAX_ADDR_BYTES), "accepted");
    assert_eq!(
        addr(limits::MAX_ADDR_BYTES + 1),
        "invalid-field",
        "a well-formed address that is too long"
    );
    assert_eq!(
        intent_code(|i| i.reply_to.addr = vec![0xff, 0xff].into()),
        "invalid-field"
    );
    assert_eq!(
        intent_code(|i| i.reply_to.addr = vec![].into()),
        "invalid-field",
        "no address at all"
    );
    for (len, code) in [
        (15, "invalid-field"),
        (16, "accepted"),
        (17, "invalid-field"),
    ] {
        assert_eq!(
            intent_code(|i| i.reply_to.queue = vec![1; len].into()),
            code,
            "queue of {len}"
        );
    }
    for (len, code) in [
        (31, "invalid-field"),
        (32, "accepted"),
        (33, "invalid-field"),
    ] {
        assert_eq!(
            intent_code(|i| i.reply_to.key = vec![1; len].into()),
            code,
            "key of {len}"
        );
    }
}

#[test]
fn a_vendor_profile_names_at_most_eight_addresses_of_limited_length() {
    let profile_code = |addrs: Vec<Vec<u8>>| {
        let profile = VendorProfile {
            name: "Shop".into(),
            categories: vec!["books".into()],
            contact: String::new(),
            accepted_terms: vec![],
            created: NOW,
            reply_to: Some(NodeAddress {
                peer: libp2p::PeerId::random().to_bytes().into(),
                addrs: addrs.into_iter().map(Into::into).collect(),
            }),
        };
        code_of(Envelope::seal(&profile, &vendor()).as_bytes())
    };
    let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
    assert_eq!(
        profile_code(vec![addr.to_vec(); limits::MAX_ADDRS]),
        "accepted"
    );
    assert_eq!(
        profile_code(vec![addr.to_vec(); limits::MAX_ADDRS + 1]),
        "invalid-field"
    );
    assert_eq!(
        profile_code(vec![dns_addr_of_len(limits::MAX_ADDR_BYTES)]),
        "accepted"
    );
    assert_eq!(
        profile_code(vec![dns_addr_of_len(limits::MAX_ADDR_BYTES + 1)]),
        "invalid-field"
    );
}

#[test]
fn a_withdrawal_from_the_future_is_refused() {
    let withdrawal = |created: u64| {
        let w = IntentWithdraw {
            intent: [5; 16].into(),
            created,
        };
        code_of(Envelope::seal(&w, &persona()).as_bytes())
    };
    assert_eq!(withdrawal(NOW), "accepted");
    assert_eq!(
        withdrawal(NOW + limits::MAX_CLOCK_SKEW_SECS + 1),
        "from-the-future"
    );
}

/// Empty constraints and an empty term list are left out of an intent's body, so the same
/// intent has one encoding whoever writes it (and its id hash with it).
#[test]
fn empty_constraints_and_terms_are_left_out_of_the_body() {
    let mut bare = intent();
    bare.constraints = Constraints::default();
    bare.terms = vec![];
    let envelope = Envelope::seal(&bare, &persona());
    let body = vrm::proto::json::body_to_json(envelope.body_bytes()).unwrap();
    assert!(body.get("constraints").is_none(), "{body}");
    assert!(body.get("terms").is_none(), "{body}");
    assert_eq!(code_of(envelope.as_bytes()), "accepted");
    let full = Envelope::seal(&intent(), &persona());
    let body = vrm::proto::json::body_to_json(full.body_bytes()).unwrap();
    assert!(body.get("constraints").is_some() && body.get("terms").is_some());
}
