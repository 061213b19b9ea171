//! The store on a real disk: records survive reopening, a second opener is refused with a
//! clear error, concurrent writers share flushes, a newer schema is refused, and every write
//! a killed (SIGKILL) process had acknowledged is there afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use vrm::proto::*;
use vrm::store::*;

const CACHE: u64 = 8 * 1024 * 1024;

fn intent(id: [u8; 16]) -> Intent {
    let mut seed = [5u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .unwrap()
        .public()
        .to_peer_id();
    Intent {
        id: id.into(),
        category: "books".into(),
        subcategory: None,
        text: "Any book by Ursula K. Le Guin".into(),
        constraints: Constraints::default(),
        terms: vec![],
        created: 1_800_000_000,
        expires: 1_800_086_400,
        reply_to: ReplyTo::new(
            &peer,
            &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
            [7; 16],
            [9; 32],
        ),
        group: None,
    }
}

fn sealed(id: [u8; 16]) -> (Envelope, Intent) {
    let body = intent(id);
    (
        Envelope::seal(&body, &SigningKey::from_bytes(&[3; 32])),
        body,
    )
}

/// The person casts intent `id`: durable when this returns.
fn cast(store: &Store, id: [u8; 16]) -> Outgoing {
    let (envelope, body) = sealed(id);
    store.cast(&envelope, &body, 1_800_000_000).unwrap()
}

fn withdrawal(id: [u8; 16]) -> Envelope {
    let body = IntentWithdraw {
        intent: id.into(),
        created: 1_800_000_100,
    };
    Envelope::seal(&body, &SigningKey::from_bytes(&[3; 32]))
}

/// A vendor's signed offer for `wanted`, cast in `envelope`.
fn offer_to(envelope: &Envelope, wanted: &Intent) -> Envelope {
    let vendor = SigningKey::from_bytes(&[4; 32]);
    let offer = Offer {
        intent: wanted.id,
        persona: envelope.signer().to_bytes().into(),
        vendor: vendor.verifying_key().to_bytes().into(),
        items: vec![],
        text: "ours".into(),
        created: 1_800_000_000,
        valid_until: 1_800_000_600,
        accepted_terms: vec![],
        inbox: None,
        group: None,
    };
    Envelope::seal(&offer, &vendor)
}

/// The key of the person's own intent `id_of(n)`.
fn own(n: u64) -> IntentKey {
    IntentKey::own(&id_of(n).into())
}

/// The key of intent `id_of(n)` received from [`sealed`]'s signer.
fn received_key(n: u64) -> IntentKey {
    let signer = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    IntentKey::received(&signer, &id_of(n).into())
}

fn id_of(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

#[test]
fn records_survive_reopen_and_ids_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let (other_envelope, other) = sealed(id_of(2));
    {
        let store = Store::open(dir.path(), CACHE).unwrap();
        let published = cast(&store, id_of(1));
        assert_eq!(
            store.receive_intent(&other_envelope, &other, 1).unwrap(),
            ReceivedIntent::Stored
        );
        assert_eq!(
            store.receive_intent(&other_envelope, &other, 2).unwrap(),
            ReceivedIntent::Replay,
            "same envelope twice"
        );
        let mut impostor = other.clone();
        impostor.text = "something else".into();
        let impostor_envelope = Envelope::seal(&impostor, &SigningKey::from_bytes(&[6; 32]));
        assert_eq!(
            store
                .receive_intent(&impostor_envelope, &impostor, 3)
                .unwrap(),
            ReceivedIntent::Stored,
            "same id, another signer: another intent"
        );
        let equivocation = Envelope::seal(&impostor, &SigningKey::from_bytes(&[3; 32]));
        assert_eq!(
            store.receive_intent(&equivocation, &impostor, 3).unwrap(),
            ReceivedIntent::Conflict,
            "same id and signer, other envelope"
        );
        let withdrawn = store
            .withdraw_own(&id_of(1).into(), &withdrawal(id_of(1)), 1_800_000_100)
            .unwrap();
        let WithdrawOwn::Withdrawn { queued, unqueued } = withdrawn else {
            panic!("not withdrawn: {withdrawn:?}");
        };
        assert_eq!(unqueued, published.id, "the publication leaves the outbox");
        assert_eq!(queued.id, withdrawal(id_of(1)).id());
        assert_eq!(
            store
                .withdraw_own(&id_of(1).into(), &withdrawal(id_of(1)), 1_800_000_200)
                .unwrap(),
            WithdrawOwn::AlreadyWithdrawn
        );
        assert_eq!(
            store
                .withdraw_own(&id_of(2).into(), &withdrawal(id_of(2)), 1_800_000_100)
                .unwrap(),
            WithdrawOwn::Unknown,
            "received, not the person's"
        );
        assert_eq!(
            store
                .withdraw_own(&id_of(9).into(), &withdrawal(id_of(9)), 1_800_000_100)
                .unwrap(),
            WithdrawOwn::Unknown
        );
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    assert_eq!(
        store.intents().unwrap().len(),
        3,
        "own, and two signers' received"
    );
    let cast_here = store.intent(&own(1)).unwrap().unwrap();
    assert_eq!(cast_here.withdrawn_at, Some(1_800_000_100));
    assert_eq!(cast_here.origin, Origin::Own);
    assert_eq!(cast_here.intent, intent(id_of(1)));
    let received = store.intent(&received_key(2)).unwrap().unwrap();
    assert_eq!(received.origin, Origin::Received);
    assert_eq!(received.intent, other, "its signer's first envelope stays");
    let outbox = store.outgoing().unwrap();
    assert_eq!(outbox.len(), 1, "only the withdrawal waits");
    assert_eq!(outbox[0].id, withdrawal(id_of(1)).id());
    assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
}

#[test]
fn second_open_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), CACHE).unwrap();
    let err = Store::open(dir.path(), CACHE)
        .err()
        .expect("second open fails");
    assert!(matches!(err, StoreError::Locked(_)));
    assert!(
        err.to_string().contains("in use by another vrm process"),
        "{err}"
    );
}

#[test]
fn offers_scan_by_intent_and_profiles_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let vendor = SigningKey::from_bytes(&[4; 32]);
    for (intent_id, n) in [(id_of(1), 3), (id_of(2), 2)] {
        for i in 0..n {
            let offer = Offer {
                intent: intent_id.into(),
                persona: [3; 32].into(),
                vendor: vendor.verifying_key().to_bytes().into(),
                items: vec![OfferItem {
                    title: format!("item {i}"),
                    price: Price {
                        amount: 100,
                        currency: "EUR".into(),
                    },
                    quantity: 1,
                    sku: None,
                }],
                text: String::new(),
                created: 1_800_000_000,
                valid_until: 1_800_000_600,
                accepted_terms: vec![],
                inbox: None,
                group: None,
            };
            let env = Envelope::seal(&offer, &vendor);
            assert!(store.record_offer_received(&env, &offer, 0).unwrap());
            assert!(
                !store.record_offer_received(&env, &offer, 0).unwrap(),
                "a retried delivery is stored once"
            );
        }
    }
    assert_eq!(store.offers_for(&own(1)).unwrap().len(), 3);
    assert_eq!(store.offers_for(&own(2)).unwrap().len(), 2);
    assert_eq!(store.offers().unwrap().len(), 5);

    let profile = |created| VendorProfile {
        name: format!("v{created}"),
        categories: vec!["books".into()],
        contact: String::new(),
        accepted_terms: vec![],
        created,
        reply_to: None,
    };
    for (created, kept) in [(10, true), (5, false), (20, true), (20, false)] {
        let p = profile(created);
        let envelope = Envelope::seal(&p, &vendor);
        assert_eq!(
            store.upsert_profile(&envelope, &p, 0).unwrap(),
            kept,
            "created {created}"
        );
    }
    let profiles = store.profiles().unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].profile.name, "v20");
}

#[test]
fn seen_ids_detect_replay_until_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let id = MessageId([8; 32]);
    assert!(store.mark_seen(&id, 100).unwrap());
    assert!(!store.mark_seen(&id, 100).unwrap());
    assert_eq!(store.purge_seen(99).unwrap(), 0);
    assert_eq!(store.purge_seen(100).unwrap(), 1);
    assert!(store.mark_seen(&id, 200).unwrap());
}

#[test]
fn an_offer_made_is_stored_decided_and_queued_to_the_caster_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (envelope, wanted) = sealed(id_of(7));
    let sealed_offer = offer_to(&envelope, &wanted);
    {
        let store = Store::open(dir.path(), CACHE).unwrap();
        assert_eq!(
            store
                .receive_intent(&envelope, &wanted, 1_800_000_000)
                .unwrap(),
            ReceivedIntent::Stored
        );
        let queued = store
            .record_offer_made(&received_key(7), &wanted, &sealed_offer, 1_800_000_000)
            .unwrap();
        assert_eq!(queued.id, sealed_offer.id());
        assert_eq!(
            queued.subject,
            Subject::Offer {
                intent: received_key(7)
            }
        );
        assert_eq!(queued.expires, wanted.expires, "kept as long as its intent");
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    let entries = store.outgoing().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].route, Route::Mailbox(wanted.reply_to.clone()));
    assert_eq!(
        store
            .outgoing_envelope(&sealed_offer.id())
            .unwrap()
            .as_deref(),
        Some(sealed_offer.as_bytes())
    );
    let held = store.intent(&received_key(7)).unwrap().unwrap();
    assert_eq!(
        held.decision,
        Some(Decision::Offered {
            offer: sealed_offer.id().to_hex()
        })
    );
    let offers = store.offers_for(&received_key(7)).unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(
        (offers[0].origin, &offers[0].delivery),
        (Origin::Own, &Delivery::Pending)
    );
    store.outbox_remove(&sealed_offer.id()).unwrap();
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(store.outgoing_envelope(&sealed_offer.id()).unwrap(), None);
}

/// A store written before protocol 2 holds records the new code cannot read (their
/// envelopes are of version 1, their outbox routes named the person's node): opening moves
/// them, as stored, to `protocol-1-records.cbor`, durably, and keeps what still applies.
#[test]
fn a_store_from_protocol_1_moves_its_records_aside_and_keeps_the_rest() {
    use ed25519_dalek::Signer;
    use vrm::proto::envelope::{encode_body, encode_wire, signing_input};

    let dir = tempfile::tempdir().unwrap();
    // One intent of protocol 2, cast normally (it stays).
    let kept = id_of(3);
    cast(&Store::open(dir.path(), CACHE).unwrap(), kept);
    // The previous release wrote no clean-stop record.
    std::fs::remove_file(dir.path().join("clean-stop")).unwrap();
    let old_id = id_of(4);
    let old_envelope = {
        let body = encode_body(&intent(old_id));
        let key = SigningKey::from_bytes(&[4; 32]);
        let sig = key.sign(&signing_input("intent", &body));
        encode_wire(
            1,
            "intent",
            &body,
            key.verifying_key().as_bytes(),
            &sig.to_bytes(),
        )
    };
    {
        #[derive(serde::Serialize)]
        struct OldIntent {
            #[serde(with = "serde_bytes")]
            envelope: Vec<u8>,
            origin: &'static str,
            stored_at: u64,
            withdrawn_at: Option<u64>,
        }
        #[derive(serde::Serialize)]
        struct OldOutboxEntry {
            #[serde(with = "serde_bytes")]
            envelope: Vec<u8>,
            subject: (),
            route: std::collections::BTreeMap<&'static str, ()>,
            expires: u64,
        }
        fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
            let mut out = Vec::new();
            ciborium::into_writer(value, &mut out).unwrap();
            out
        }
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap();
        let record = OldIntent {
            envelope: old_envelope.clone(),
            origin: "own",
            stored_at: 1_800_000_000,
            withdrawn_at: None,
        };
        db.open_tree("intents")
            .unwrap()
            .insert(old_id, cbor(&record))
            .unwrap();
        let entry = OldOutboxEntry {
            envelope: old_envelope.clone(),
            subject: (),
            route: [("direct", ())].into(),
            expires: 1_900_000_000,
        };
        db.open_tree("outbox")
            .unwrap()
            .insert([4u8; 32], cbor(&entry))
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
    let ids: Vec<IntentId> = store
        .intents()
        .unwrap()
        .iter()
        .map(|s| s.intent.id)
        .collect();
    assert_eq!(ids, vec![IntentId::from(kept)], "protocol 2 records stay");
    assert_eq!(
        store.outgoing().unwrap().len(),
        1,
        "the kept intent's publication"
    );
    let aside: std::collections::BTreeMap<String, Vec<serde_bytes::ByteBuf>> =
        ciborium::from_reader(
            std::fs::read(dir.path().join("protocol-1-records.cbor"))
                .unwrap()
                .as_slice(),
        )
        .unwrap();
    assert_eq!(aside["intents"].len(), 1);
    assert_eq!(aside["outbox"].len(), 1);
    assert!(aside["offers"].is_empty() && aside["profiles"].is_empty());
    let moved = &aside["intents"][0];
    assert!(
        moved.windows(old_envelope.len()).any(|w| w == old_envelope),
        "moved as stored"
    );
}

#[test]
fn concurrent_writers_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), CACHE).unwrap());
    let before = store.flush_count();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    cast(&store, id_of(t * 1000 + i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = store.flush_count() - before;
    assert_eq!(store.intents().unwrap().len(), 400);
    assert!(
        flushes < 400,
        "400 writes took {flushes} flushes: nothing was grouped"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), CACHE).unwrap());
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), CACHE).err().expect("refused");
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

/// Child half of the crash test: writes intents as fast as it can and prints "ack N" after
/// each write returns. Runs only when the parent sets VRM_CRASH_CHILD_DIR.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("VRM_CRASH_CHILD_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir), CACHE).unwrap();
    let mut out = std::io::stdout();
    for n in 0.. {
        cast(&store, id_of(n));
        use std::io::Write;
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VRM_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        let line = lines.next().expect("child still writing").unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.push(n.parse::<u64>().unwrap());
        }
    }
    // SIGKILL mid-stream: the child is writing its next record right now.
    child.kill().unwrap();
    child.wait().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    for n in &acked {
        assert!(
            store.intent(&own(*n)).unwrap().is_some(),
            "acknowledged record {n} lost"
        );
    }
}

#[test]
fn expired_intents_are_purged_with_their_offers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let vendor = SigningKey::from_bytes(&[4; 32]);
    let (envelope, received) = sealed(id_of(2));
    let mut later = intent(id_of(3));
    later.expires += 1;
    let later_envelope = Envelope::seal(&later, &SigningKey::from_bytes(&[3; 32]));
    cast(&store, id_of(1));
    assert_eq!(
        store.receive_intent(&envelope, &received, 1).unwrap(),
        ReceivedIntent::Stored
    );
    store.receive_intent(&later_envelope, &later, 1).unwrap();
    for id in [id_of(1), id_of(3)] {
        let offer = Offer {
            intent: id.into(),
            persona: [3; 32].into(),
            vendor: vendor.verifying_key().to_bytes().into(),
            items: vec![],
            text: String::new(),
            created: 1_800_000_000,
            valid_until: 1_800_000_600,
            accepted_terms: vec![],
            inbox: None,
            group: None,
        };
        let sealed_offer = Envelope::seal(&offer, &vendor);
        if id == id_of(1) {
            // The person's node received an offer to its own intent.
            assert!(
                store
                    .record_offer_received(&sealed_offer, &offer, 0)
                    .unwrap()
            );
        } else {
            // This vendor's node made one to the intent it received.
            store
                .record_offer_made(&received_key(3), &later, &sealed_offer, 0)
                .unwrap();
        }
    }
    let expires = intent(id_of(1)).expires;
    assert_eq!(store.purge_expired(expires - 1).unwrap(), 0);
    assert_eq!(store.purge_expired(expires).unwrap(), 2, "own and received");
    assert!(store.intent(&own(1)).unwrap().is_none());
    assert!(store.offers_for(&own(1)).unwrap().is_empty());
    assert!(store.intent(&received_key(3)).unwrap().is_some(), "not yet");
    assert_eq!(store.offers().unwrap().len(), 1);
    assert_eq!(store.purge_expired(expires + 1).unwrap(), 1);
    let counts = store.counts();
    assert_eq!((counts.intents, counts.offers), (0, 0));
    assert_eq!(store.purge_expired(u64::MAX).unwrap(), 0, "once");
}

#[test]
fn a_conflicting_envelope_does_not_choose_when_an_intent_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let (envelope, held) = sealed(id_of(1));
    store.receive_intent(&envelope, &held, 1).unwrap();
    let mut other = intent(id_of(1));
    other.expires -= 1000;
    // Its own signer's other intent under the same id.
    let other_envelope = Envelope::seal(&other, &SigningKey::from_bytes(&[3; 32]));
    assert_eq!(
        store.receive_intent(&other_envelope, &other, 1).unwrap(),
        ReceivedIntent::Conflict
    );
    assert_eq!(store.purge_expired(other.expires).unwrap(), 0);
    assert_eq!(store.purge_expired(held.expires).unwrap(), 1);
}

/// Grouping never lets a write ride on a flush that started before it: one writer alone
/// flushes once per write.
#[test]
fn each_write_after_a_flush_gets_its_own_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let before = store.flush_count();
    cast(&store, id_of(1));
    assert_eq!(store.flush_count(), before + 1);
    cast(&store, id_of(2));
    assert_eq!(
        store.flush_count(),
        before + 2,
        "the second write was not flushed"
    );
}

/// What a node reads at start: the person's own intents still open (to watch their queues
/// and expiry), and the received intents the vendor role has yet to decide on.
#[test]
fn a_start_finds_the_own_open_intents_and_the_undecided_received_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    cast(&store, id_of(1));
    cast(&store, id_of(2));
    store
        .withdraw_own(&id_of(2).into(), &withdrawal(id_of(2)), 1_800_000_100)
        .unwrap();
    let receive = |n: u64| {
        let (envelope, body) = sealed(id_of(n));
        store
            .receive_intent(&envelope, &body, 1_800_000_000)
            .unwrap();
    };
    for n in [3, 4, 5] {
        receive(n);
    }
    store.record_declined(&received_key(4), "no stock").unwrap();
    store
        .record_withdrawal(&received_key(5), 1_800_000_100)
        .unwrap();
    let counts = store.counts();
    assert_eq!(
        (counts.intents, counts.outbox),
        (5, 2),
        "one cast, one withdrawal queued"
    );

    let expires = intent(id_of(1)).expires;
    assert_eq!(
        store.own_open_intents().unwrap(),
        vec![(expires, id_of(1).into())],
        "cast, not withdrawn, not received"
    );
    let undecided: Vec<IntentId> = store
        .undecided_received(1_800_000_000)
        .unwrap()
        .into_iter()
        .map(|s| s.intent.id)
        .collect();
    assert_eq!(
        undecided,
        vec![IntentId::from(id_of(3))],
        "received, undecided, open"
    );
    assert!(
        store.undecided_received(expires).unwrap().is_empty(),
        "an expired one waits for no decision"
    );
}

/// The repair at open re-queues an offer a crash left out of the outbox, but only one still
/// pending: a delivered one is never sent twice.
#[test]
fn a_delivered_offer_is_not_queued_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (envelope, wanted) = sealed(id_of(8));
    let sealed_offer = offer_to(&envelope, &wanted);
    {
        let store = Store::open(dir.path(), CACHE).unwrap();
        store
            .receive_intent(&envelope, &wanted, 1_800_000_000)
            .unwrap();
        store
            .record_offer_made(&received_key(8), &wanted, &sealed_offer, 1_800_000_000)
            .unwrap();
        store.outbox_remove(&sealed_offer.id()).unwrap();
        let delivered = Delivery::Delivered { at: 1_800_000_001 };
        store
            .set_delivery(&received_key(8), &sealed_offer.id(), delivered)
            .unwrap();
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    assert_eq!(store.outbox_len(), 0);
}

/// The nodes vendors name in their profiles are known as vendors' nodes (a person's node
/// keeps its mailboxes off them); a profile that names none adds none.
#[test]
fn the_nodes_named_in_vendor_profiles_are_known_as_vendors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let node = libp2p::PeerId::random();
    let profile = |n: u8, reply_to: Option<NodeAddress>| {
        let body = VendorProfile {
            name: format!("v{n}"),
            categories: vec!["books".into()],
            contact: String::new(),
            accepted_terms: vec![],
            created: 10,
            reply_to,
        };
        let envelope = Envelope::seal(&body, &SigningKey::from_bytes(&[n; 32]));
        assert!(store.upsert_profile(&envelope, &body, 0).unwrap());
    };
    profile(1, None);
    assert!(store.vendor_nodes().unwrap().is_empty());
    profile(
        2,
        Some(NodeAddress {
            peer: node.to_bytes().into(),
            addrs: vec![],
        }),
    );
    assert_eq!(
        store.vendor_nodes().unwrap(),
        std::collections::HashSet::from([node])
    );
}
