//! Property tests of the wire protocol: every kind round-trips through seal and decode, any
//! single flipped byte of a valid envelope is refused, and arbitrary bytes never panic.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use vrm::proto::*;

fn key() -> impl Strategy<Value = SigningKey> {
    any::<[u8; 32]>().prop_map(|seed| SigningKey::from_bytes(&seed))
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(".{{1,{max}}}")).expect("regex")
}

fn price() -> impl Strategy<Value = Price> {
    (any::<u64>(), "[A-Z]{3}").prop_map(|(amount, currency)| Price { amount, currency })
}

fn reply_to() -> impl Strategy<Value = ReplyTo> {
    (
        proptest::collection::vec(any::<u8>(), 1..64),
        proptest::collection::vec(any::<u8>(), 1..40),
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(mailbox, addr, queue, key)| ReplyTo {
            mailbox: mailbox.into(),
            addr: addr.into(),
            queue: queue.into(),
            key: key.into(),
        })
}

fn node_address() -> impl Strategy<Value = NodeAddress> {
    (
        proptest::collection::vec(any::<u8>(), 1..64),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..4),
    )
        .prop_map(|(peer, addrs)| NodeAddress {
            peer: peer.into(),
            addrs: addrs.into_iter().map(Into::into).collect(),
        })
}

fn intent() -> impl Strategy<Value = Intent> {
    (
        any::<[u8; 16]>(),
        "[a-z]{1,16}",
        proptest::option::of("[a-z]{1,16}"),
        text(200),
        (
            proptest::option::of(price()),
            proptest::option::of(text(40)),
            proptest::option::of(("[0-9]{4}-[0-9]{2}-[0-9]{2}", "[0-9]{4}-[0-9]{2}-[0-9]{2}")),
            proptest::option::of(any::<u32>()),
        ),
        proptest::collection::vec(("[a-z-]{1,20}", any::<bool>()), 0..5),
        any::<u64>(),
        any::<u64>(),
        reply_to(),
    )
        .prop_map(
            |(
                id,
                category,
                subcategory,
                text,
                (max_price, place, dates, quantity),
                terms,
                created,
                expires,
                reply_to,
            )| {
                Intent {
                    id: id.into(),
                    category,
                    subcategory,
                    text,
                    constraints: Constraints {
                        max_price,
                        place,
                        dates: dates.map(|(from, to)| DateRange { from, to }),
                        quantity,
                    },
                    terms: terms
                        .into_iter()
                        .map(|(id, required)| Term { id, required })
                        .collect(),
                    created,
                    expires,
                    reply_to,
                    group: None,
                }
            },
        )
}

fn offer() -> impl Strategy<Value = Offer> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        proptest::collection::vec(
            (
                text(40),
                price(),
                any::<u32>(),
                proptest::option::of("[A-Z0-9-]{1,10}"),
            ),
            1..5,
        ),
        ".{0,100}",
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec("[a-z-]{1,20}", 0..4),
    )
        .prop_map(
            |(intent, persona, vendor, items, text, created, valid_until, accepted_terms)| Offer {
                intent: intent.into(),
                persona: persona.into(),
                vendor: vendor.into(),
                items: items
                    .into_iter()
                    .map(|(title, price, quantity, sku)| OfferItem {
                        title,
                        price,
                        quantity,
                        sku,
                    })
                    .collect(),
                text,
                created,
                valid_until,
                accepted_terms,
                inbox: None,
                group: None,
            },
        )
}

fn profile() -> impl Strategy<Value = VendorProfile> {
    (
        text(40),
        proptest::collection::vec("[a-z]{1,16}", 1..5),
        ".{0,100}",
        proptest::collection::vec("[a-z-]{1,20}", 0..4),
        any::<u64>(),
        proptest::option::of(node_address()),
    )
        .prop_map(
            |(name, categories, contact, accepted_terms, created, reply_to)| VendorProfile {
                name,
                categories,
                contact,
                accepted_terms,
                created,
                reply_to,
            },
        )
}

fn withdraw() -> impl Strategy<Value = IntentWithdraw> {
    (any::<[u8; 16]>(), any::<u64>()).prop_map(|(intent, created)| IntentWithdraw {
        intent: intent.into(),
        created,
    })
}

/// Seal, decode, open: the same body, the same id, the same signer.
fn round_trip<B: Body + PartialEq + std::fmt::Debug>(body: &B, key: &SigningKey) {
    let sealed = Envelope::seal(body, key);
    let decoded = Envelope::decode(sealed.as_bytes()).expect("own envelope decodes");
    assert_eq!(decoded.id(), sealed.id());
    assert_eq!(decoded.signer(), &key.verifying_key());
    assert_eq!(&decoded.open::<B>().expect("body opens"), body);
}

proptest! {
    // Each case verifies signatures; 128 cases per property keep the suite quick.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn intents_round_trip(body in intent(), key in key()) { round_trip(&body, &key) }

    #[test]
    fn withdrawals_round_trip(body in withdraw(), key in key()) { round_trip(&body, &key) }

    #[test]
    fn offers_round_trip(body in offer(), key in key()) { round_trip(&body, &key) }

    #[test]
    fn profiles_round_trip(body in profile(), key in key()) { round_trip(&body, &key) }

    #[test]
    fn any_flipped_byte_is_refused(body in intent(), key in key(), index in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let sealed = Envelope::seal(&body, &key);
        let mut bytes = sealed.as_bytes().to_vec();
        let i = index.index(bytes.len());
        bytes[i] ^= mask;
        prop_assert!(Envelope::decode(&bytes).is_err(), "flip at {} of {} accepted", i, bytes.len());
    }

    #[test]
    fn every_flip_of_an_offer_is_refused(body in offer(), key in key()) {
        let sealed = Envelope::seal(&body, &key);
        for i in 0..sealed.as_bytes().len() {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[i] ^= 0x80;
            prop_assert!(Envelope::decode(&bytes).is_err(), "flip at {} accepted", i);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_and_check(&bytes, 1_800_000_000);
    }

    #[test]
    fn truncations_are_refused(body in withdraw(), key in key(), cut in any::<prop::sample::Index>()) {
        let sealed = Envelope::seal(&body, &key);
        let bytes = sealed.as_bytes();
        let end = cut.index(bytes.len());
        prop_assert!(Envelope::decode(&bytes[..end]).is_err());
    }
}
