//! The node's rules for messages from the network that need its memory (replay, id
//! conflicts, who may withdraw, which route a kind may take), tested on a real store
//! without a network.

use ed25519_dalek::SigningKey;
use vrm::node::ingest::{self, Effect, Scope, Verdict};
use vrm::proto::*;
use vrm::store::{IntentKey, Store};

const NOW: u64 = 1_800_000_000;

fn intent(id: u8, text: &str) -> Intent {
    let mut seed = [9u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .unwrap()
        .public()
        .to_peer_id();
    Intent {
        id: [id; 16].into(),
        category: "travel".into(),
        subcategory: None,
        text: text.into(),
        constraints: Constraints::default(),
        terms: vec![],
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

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// The key intent `[n; 16]` signed by `key(n)` is held under once received.
fn held(n: u8) -> IntentKey {
    IntentKey::received(&key(n).verifying_key().to_bytes(), &[n; 16].into())
}

fn code(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Accept => "accept",
        Verdict::Ignore(reason) => reason,
        Verdict::Reject(r) => r.code(),
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    (dir, store)
}

const SERVED: &[&str] = &["travel"];

/// A vendor node serving [`SERVED`] that carries no shard for others.
fn served() -> Scope {
    Scope::serving(SERVED.iter().map(|s| s.to_string()).collect())
}

#[test]
fn a_vendor_stores_and_answers_an_intent_once_then_ignores_replays() {
    let (_dir, store) = store();
    let env = Envelope::seal(&intent(1, "room"), &key(1));
    let topic = intent_topic("travel");
    let first = ingest::gossip(&store, &served(), &topic, env.as_bytes(), NOW).unwrap();
    assert_eq!(first.verdict, Verdict::Accept);
    assert!(matches!(first.effect, Some(Effect::IntentToAnswer { .. })));
    let again = ingest::gossip(&store, &served(), &topic, env.as_bytes(), NOW).unwrap();
    assert_eq!(code(&again.verdict), "replay");
    assert!(again.effect.is_none(), "a replay is not answered twice");
}

#[test]
fn a_relay_accepts_but_does_not_store_other_categories() {
    let (_dir, store) = store();
    let env = Envelope::seal(&intent(1, "room"), &key(1));
    let outcome = ingest::gossip(
        &store,
        &Scope::default(),
        &intent_topic("travel"),
        env.as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(outcome.verdict, Verdict::Accept);
    assert!(outcome.effect.is_none());
    assert!(store.intents().unwrap().is_empty());
}

/// An intent is its signer's and id's: another signer's intent under the same id takes
/// nobody's place (both are kept and answered, none blamed), and its own signer's second
/// intent under one id is dropped without blaming whoever forwarded it.
#[test]
fn a_squatted_id_takes_no_ones_place_and_blames_no_forwarder() {
    let (_dir, store) = store();
    let topic = intent_topic("travel");
    let squatter = Envelope::seal(&intent(1, "something else"), &key(2));
    let outcome = ingest::gossip(&store, &served(), &topic, squatter.as_bytes(), NOW).unwrap();
    assert_eq!(outcome.verdict, Verdict::Accept);
    let original = Envelope::seal(&intent(1, "room"), &key(1));
    let outcome = ingest::gossip(&store, &served(), &topic, original.as_bytes(), NOW).unwrap();
    assert_eq!(
        outcome.verdict,
        Verdict::Accept,
        "the honest one comes second"
    );
    assert!(matches!(
        outcome.effect,
        Some(Effect::IntentToAnswer { .. })
    ));
    assert_eq!(store.intents().unwrap().len(), 2);
    let honest = store
        .intent(&IntentKey::received(
            &key(1).verifying_key().to_bytes(),
            &[1; 16].into(),
        ))
        .unwrap()
        .expect("held under its signer");
    assert_eq!(honest.envelope.as_bytes(), original.as_bytes());
    let equivocation = Envelope::seal(&intent(1, "a third text"), &key(1));
    let outcome = ingest::gossip(&store, &served(), &topic, equivocation.as_bytes(), NOW).unwrap();
    assert!(
        matches!(outcome.verdict, Verdict::Ignore(_)),
        "not rejected: no one blamed"
    );
    assert_eq!(store.intents().unwrap().len(), 2);
}

#[test]
fn only_the_caster_may_withdraw() {
    let (_dir, store) = store();
    let topic = intent_topic("travel");
    ingest::gossip(
        &store,
        &served(),
        &topic,
        Envelope::seal(&intent(1, "room"), &key(1)).as_bytes(),
        NOW,
    )
    .unwrap();
    let withdraw = IntentWithdraw {
        intent: [1; 16].into(),
        created: NOW,
    };
    let withdrawn = |store: &Store| {
        store
            .intent(&IntentKey::received(
                &key(1).verifying_key().to_bytes(),
                &[1; 16].into(),
            ))
            .unwrap()
            .unwrap()
            .withdrawn_at
            .is_some()
    };
    let stranger = Envelope::seal(&withdraw, &key(2));
    let outcome = ingest::gossip(&store, &served(), &topic, stranger.as_bytes(), NOW).unwrap();
    assert_eq!(
        outcome.verdict,
        Verdict::Accept,
        "relayed: it names another intent"
    );
    assert!(outcome.effect.is_none());
    assert!(!withdrawn(&store));
    let caster = Envelope::seal(&withdraw, &key(1));
    let outcome = ingest::gossip(&store, &served(), &topic, caster.as_bytes(), NOW).unwrap();
    assert_eq!(outcome.verdict, Verdict::Accept);
    assert!(withdrawn(&store));
}

#[test]
fn kinds_on_the_wrong_route_are_rejected() {
    let (_dir, store) = store();
    let env = Envelope::seal(&intent(1, "room"), &key(1));
    let on_other_topic = ingest::gossip(
        &store,
        &served(),
        &intent_topic("books"),
        env.as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(code(&on_other_topic.verdict), "wrong-route");
    let as_direct = ingest::reply(&store, env.as_bytes(), NOW).unwrap();
    assert_eq!(code(&as_direct.verdict), "wrong-route");

    // A vendor profile travels on the directory topic only, and is not stored from another.
    let profile = VendorProfile {
        name: "Shop".into(),
        categories: vec!["books".into()],
        contact: String::new(),
        accepted_terms: vec![],
        created: NOW,
        reply_to: None,
    };
    let profile = Envelope::seal(&profile, &key(2));
    let on_intent_topic = ingest::gossip(
        &store,
        &served(),
        &intent_topic("books"),
        profile.as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(code(&on_intent_topic.verdict), "wrong-route");
    assert!(store.profiles().unwrap().is_empty());
    let on_directory =
        ingest::gossip(&store, &served(), DIRECTORY_TOPIC, profile.as_bytes(), NOW).unwrap();
    assert_eq!(on_directory.verdict, Verdict::Accept);
    assert_eq!(store.profiles().unwrap().len(), 1);
}

#[test]
fn an_offer_is_stored_once_for_an_own_intent_and_refused_otherwise() {
    let (_dir, store) = store();
    let persona = key(1);
    let intent_env = Envelope::seal(&intent(1, "room"), &persona);
    store.cast(&intent_env, &intent(1, "room"), NOW).unwrap();
    let vendor = key(5);
    let offer = |intent_id: u8| Offer {
        intent: [intent_id; 16].into(),
        persona: persona.verifying_key().to_bytes().into(),
        vendor: vendor.verifying_key().to_bytes().into(),
        items: vec![OfferItem {
            title: "Room".into(),
            price: Price {
                amount: 5000,
                currency: "EUR".into(),
            },
            quantity: 1,
            sku: None,
        }],
        text: String::new(),
        created: NOW,
        valid_until: NOW + 60,
        accepted_terms: vec![],
        inbox: None,
        group: None,
    };
    let good = Envelope::seal(&offer(1), &vendor);
    let first = ingest::reply(&store, good.as_bytes(), NOW).unwrap();
    assert_eq!(first.verdict, Verdict::Accept);
    assert!(matches!(first.effect, Some(Effect::OfferStored { .. })));
    let retried = ingest::reply(&store, good.as_bytes(), NOW).unwrap();
    assert_eq!(
        retried.verdict,
        Verdict::Accept,
        "a retried delivery is acknowledged"
    );
    assert!(
        retried.effect.is_none(),
        "but not stored or announced twice"
    );
    let unknown =
        ingest::reply(&store, Envelope::seal(&offer(2), &vendor).as_bytes(), NOW).unwrap();
    assert_eq!(code(&unknown.verdict), "unknown-intent");
    assert_eq!(
        store
            .offers_for(&IntentKey::own(&[1; 16].into()))
            .unwrap()
            .len(),
        1
    );

    // An intent this node holds but did not cast (received on gossip) takes no offers:
    // it answers as for an intent it never saw.
    let received = intent(3, "room");
    let received_env = Envelope::seal(&received, &persona);
    store.receive_intent(&received_env, &received, NOW).unwrap();
    let not_ours =
        ingest::reply(&store, Envelope::seal(&offer(3), &vendor).as_bytes(), NOW).unwrap();
    assert_eq!(code(&not_ours.verdict), "unknown-intent");
    assert!(
        store
            .offers_for(&IntentKey::own(&[3; 16].into()))
            .unwrap()
            .is_empty()
    );
}

/// A batch as the event loop hands it over: one forged intent among good ones is rejected
/// alone, a replay inside the same batch is ignored, and every good intent is stored and
/// survives reopening the store (the batch's single flush made them durable).
#[test]
fn a_batch_rejects_only_the_forgery_and_stores_the_rest_durably() {
    let dir = tempfile::tempdir().unwrap();
    let topic = intent_topic("travel");
    let mut wires: Vec<Vec<u8>> = (1..=10u8)
        .map(|n| {
            Envelope::seal(&intent(n, &format!("trip {n}")), &key(n))
                .as_bytes()
                .to_vec()
        })
        .collect();
    let last = wires[3].len() - 1;
    wires[3][last] ^= 1; // the forgery
    wires.push(wires[5].clone()); // a replay of a good one
    {
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let messages: Vec<(&str, &[u8])> = wires
            .iter()
            .map(|w| (topic.as_str(), w.as_slice()))
            .collect();
        let flushes = store.flush_count();
        let outcomes = ingest::gossip_batch(&store, &served(), &messages, NOW);
        // Durable before any verdict is reported (a drop would flush too, so the flush is
        // counted rather than observed through a reopen): one flush for the whole batch.
        assert_eq!(
            store.flush_count(),
            flushes + 1,
            "the batch was flushed once"
        );
        let codes: Vec<String> = outcomes
            .iter()
            .map(|o| code(&o.as_ref().unwrap().verdict).to_owned())
            .collect();
        let mut expected = vec!["accept".to_owned(); 11];
        expected[3] = "bad-signature".into();
        expected[10] = "replay".into();
        assert_eq!(codes, expected);
    }
    let reopened = Store::open(dir.path(), 8 << 20).unwrap();
    for n in (1..=10u8).filter(|&n| n != 4) {
        assert!(reopened.intent(&held(n)).unwrap().is_some(), "intent {n}");
    }
    assert!(reopened.intent(&held(4)).unwrap().is_none());
}

/// A service node checks a light push as gossip: a valid intent is relayed on its topic
/// (and stored), a bad one refused with its rejection code. A flood from one client is
/// refused past its burst while another client's push still goes out.
#[test]
fn light_pushes_are_checked_like_gossip_and_a_flood_from_one_client_is_limited() {
    use vrm::node::events::Stats;
    use vrm::node::light_push::{CLIENT_BURST, LightPush, Served};
    use vrm::proto::service::LightPushRequest;

    let (_dir, store) = store();
    let stats = Stats::default();
    let mut service = LightPush::new(served());
    let now = std::time::Instant::now();
    let push = |n: u8, topic: &str| LightPushRequest {
        topic: topic.into(),
        envelope: Envelope::seal(&intent(n, "room"), &key(n))
            .as_bytes()
            .to_vec()
            .into(),
    };
    let (flooder, other) = (libp2p::PeerId::random(), libp2p::PeerId::random());
    let travel = intent_topic("travel");
    let mut serve =
        |peer, request: LightPushRequest| service.serve(&store, &stats, &peer, request, NOW, now).0;
    assert_eq!(
        serve(flooder, push(1, &intent_topic("books"))),
        Served::Refused("wrong-route".into()),
        "an intent on another category's topic"
    );
    for n in 2..=CLIENT_BURST as u8 {
        assert!(
            matches!(serve(flooder, push(n, &travel)), Served::Relay { ref topic, .. } if *topic == travel),
            "push {n} within the burst"
        );
    }
    assert_eq!(
        serve(flooder, push(200, &travel)),
        Served::Refused("rate-limited".into())
    );
    assert!(matches!(
        serve(other, push(201, &travel)),
        Served::Relay { .. }
    ));
    assert!(
        store.intent(&held(2)).unwrap().is_some(),
        "stored as received"
    );
    assert!(
        store.intent(&held(200)).unwrap().is_none(),
        "refused before any work"
    );
}

/// Neither gossip nor light push keeps order: a withdrawal that overtakes its intent is
/// relayed and remembered, and the intent, when it comes, is stored withdrawn and not
/// answered. A withdrawal by someone else than the caster is remembered for no one.
#[test]
fn a_withdrawal_that_overtakes_its_intent_still_withdraws_it() {
    let (_dir, store) = store();
    let topic = intent_topic("travel");
    let withdraw = |id: u8, signer: u8| {
        let w = IntentWithdraw {
            intent: [id; 16].into(),
            created: NOW,
        };
        Envelope::seal(&w, &key(signer))
    };
    let early = ingest::gossip(&store, &served(), &topic, withdraw(1, 1).as_bytes(), NOW).unwrap();
    assert_eq!(
        early.verdict,
        Verdict::Accept,
        "relayed for the nodes that hold it"
    );
    let env = Envelope::seal(&intent(1, "room"), &key(1));
    let late = ingest::gossip(&store, &served(), &topic, env.as_bytes(), NOW).unwrap();
    assert_eq!(late.verdict, Verdict::Accept);
    assert!(
        matches!(late.effect, Some(Effect::IntentWithdrawn { .. })),
        "not answered: {:?}",
        late.effect
    );
    assert!(store.is_withdrawn(&held(1)).unwrap());

    // A stranger's early withdrawal does not withdraw the caster's intent.
    ingest::gossip(&store, &served(), &topic, withdraw(2, 9).as_bytes(), NOW).unwrap();
    let env = Envelope::seal(&intent(2, "room"), &key(2));
    let stored = ingest::gossip(&store, &served(), &topic, env.as_bytes(), NOW).unwrap();
    assert!(matches!(stored.effect, Some(Effect::IntentToAnswer { .. })));
    assert!(!store.is_withdrawn(&held(2)).unwrap());
}
