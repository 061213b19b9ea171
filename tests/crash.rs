//! What a node killed in the middle of a write leaves behind, and what the next start makes of
//! it (`scripts/crashloop.sh` kills real daemons; these tests set up the states it found).

mod common;

use common::*;
use vrm::store::{Decision, Delivery, ReceivedIntent, Store};

/// A vendor killed after it stored an intent (the batch was flushed and gossipsub told
/// Accept) but before it answered: the intent is in its store, undecided, and nothing will
/// bring it over gossip again. The next start answers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_stored_but_not_answered_before_a_crash_is_answered_at_the_next_start() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let p = net.add(person("p"), &[&s]).await;
    let id = cast(&p, "books", "Any Le Guin novel", "20").await;
    let envelope = intent_envelope(&p, &id);
    let intent: vrm::proto::Intent = envelope.open().unwrap();

    let left_by_the_crash = move |dir: &std::path::Path| {
        let store = Store::open(&dir.join("store"), 1 << 20).unwrap();
        let now = vrm::clock::unix_now();
        let stored = store.receive_intent(&envelope, &intent, now).unwrap();
        assert_eq!(stored, ReceivedIntent::Stored);
        store.flush().unwrap();
    };
    let v = net
        .add(
            vendor("v", "books", "9.90").before_start(left_by_the_crash),
            &[&p, &s],
        )
        .await;

    offers_arrive(&p, &id, 1).await;
    assert!(matches!(decision(&v, &id), Some(Decision::Offered { .. })));
    eventually("the offer is delivered", || async {
        matches!(deliveries(&v).as_slice(), [Delivery::Delivered { .. }]).then_some(())
    })
    .await;
    // P's own publication of the intent reached V too (it waited in P's outbox): a replay.
    eventually("p's outbox drained", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
    assert_eq!(offer_count(&p, &id), 1, "answered once");
    assert_eq!(deliveries(&v).len(), 1, "one offer made");
}
