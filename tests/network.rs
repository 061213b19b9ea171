//! End-to-end flows between real nodes (libp2p over TCP on 127.0.0.1, ephemeral ports, sled
//! stores in temp dirs), in one process.

mod common;

use std::time::Instant;

use common::*;
use vrm::proto::{Envelope, intent_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_of_two_persons_and_four_vendors() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // P1 - T1 - B1 - T2 - B2 - P2: travel vendors T*, books vendors B*, never adjacent to
    // their own kind, so every message crosses nodes that only relay it.
    let p1 = person(root, "p1", vec![]).await;
    let t1 = vendor(root, "t1", "travel", "100.00", vec![p1.addr.clone()]).await;
    let b1 = vendor(root, "b1", "books", "10.00", vec![t1.addr.clone()]).await;
    let t2 = vendor(root, "t2", "travel", "120.00", vec![b1.addr.clone()]).await;
    let b2 = vendor(root, "b2", "books", "12.00", vec![t2.addr.clone()]).await;
    let p2 = person(root, "p2", vec![b2.addr.clone()]).await;
    for (node, n) in [(&p1, 1), (&t1, 2), (&b1, 2), (&t2, 2), (&b2, 2), (&p2, 1)] {
        connected(node, n).await;
    }

    let started = Instant::now();
    let trip = p1
        .handle
        .cast(cast_request("travel", "A room in Lisbon", "150"))
        .await
        .unwrap();
    let book = p2
        .handle
        .cast(cast_request("books", "The Dispossessed", "20"))
        .await
        .unwrap();

    eventually("both travel offers at p1", || async {
        (offer_count(&p1, &trip) == 2).then_some(())
    })
    .await;
    println!(
        "cast to second offer across the line: {:?}",
        started.elapsed()
    );
    eventually("both book offers at p2", || async {
        (offer_count(&p2, &book) == 2).then_some(())
    })
    .await;

    // Each intent reached exactly the vendors of its category.
    assert_eq!(received_intents(&t1), vec![trip]);
    assert_eq!(received_intents(&t2), vec![trip]);
    assert_eq!(received_intents(&b1), vec![book]);
    assert_eq!(received_intents(&b2), vec![book]);
    // Offers reached exactly the caster, and each verifies and names the right vendor and price.
    assert_eq!(offer_count(&p2, &trip), 0);
    assert_eq!(offer_count(&p1, &book), 0);
    let mut travel_prices: Vec<u64> = p1
        .handle
        .offers_for(&trip)
        .unwrap()
        .into_iter()
        .map(|(record, envelope, offer)| {
            let again = Envelope::decode(&record.envelope).expect("stored offer verifies");
            assert_eq!(again.signer(), envelope.signer());
            assert!(
                [t1.handle.vendor_key(), t2.handle.vendor_key()]
                    .contains(&Some(envelope.signer().to_bytes())),
                "offer from an unexpected signer"
            );
            offer.items[0].price.amount
        })
        .collect();
    travel_prices.sort();
    assert_eq!(travel_prices, vec![10_000, 12_000]);
    for node in [p1, t1, b1, t2, b2, p2] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_stops_at_the_first_hop_and_costs_score() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // X - B - C, and P - B: C, a travel vendor, is two hops from X.
    let b = person(root, "b", vec![]).await;
    let x = person(root, "x", vec![b.addr.clone()]).await;
    let p = person(root, "p", vec![b.addr.clone()]).await;
    let c = vendor(root, "c", "travel", "50.00", vec![b.addr.clone()]).await;
    connected(&b, 3).await;

    // The path works: a valid intent from P reaches C through B.
    let valid = p
        .handle
        .cast(cast_request("travel", "A tent pitch", "80"))
        .await
        .unwrap();
    eventually("valid intent at c", || async {
        received_intents(&c).contains(&valid).then_some(())
    })
    .await;
    let c_before = c.handle.stats().snapshot();

    // X publishes that intent with one signature byte flipped.
    let (_, envelope, _) = p.handle.intents().unwrap().into_iter().next().unwrap();
    let mut bad = envelope.as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    x.handle
        .publish_raw(&intent_topic("travel"), bad)
        .await
        .unwrap();

    eventually("b rejects it", || async {
        (b.handle.stats().get("rejected:bad-signature") == 1).then_some(())
    })
    .await;
    let x_id = x.handle.peer_id().to_string();
    let score = eventually("x's score at b turns negative", || {
        let b = b.handle.clone();
        let x_id = x_id.clone();
        async move {
            let peers = b.peers().await.unwrap();
            peers
                .into_iter()
                .find(|p| p.peer == x_id)
                .and_then(|p| p.score)
                .filter(|s| *s < 0.0)
        }
    })
    .await;
    println!("x's score at b after one invalid message: {score}");
    // Give a forwarded copy time to arrive, then check C never saw it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        c.handle.stats().snapshot(),
        c_before,
        "c saw something after the bad message"
    );
    assert_eq!(received_intents(&c), vec![valid]);
    for node in [x, p, b, c] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_made_alone_reaches_a_vendor_that_connects_later() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let id = p
        .handle
        .cast(cast_request("books", "Any Le Guin novel", "30"))
        .await
        .unwrap();
    assert_eq!(
        p.handle.store().outbox_len(),
        1,
        "the cast waits in the outbox"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let v = vendor(root, "v", "books", "9.90", vec![p.addr.clone()]).await;
    eventually("offer after the vendor connected", || async {
        (offer_count(&p, &id) == 1).then_some(())
    })
    .await;
    assert_eq!(p.handle.store().outbox_len(), 0);
    assert_eq!(received_intents(&v), vec![id]);
    p.handle.shutdown().await;
    v.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_wait_for_a_person_who_is_away_even_across_vendor_restarts() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // P casts through relay R, then goes offline.
    let p = person(root, "p", vec![]).await;
    let r = person(root, "r", vec![p.addr.clone()]).await;
    connected(&p, 1).await;
    let id = p
        .handle
        .cast(cast_request("electronics", "A used ThinkPad", "400"))
        .await
        .unwrap();
    eventually("intent published", || async {
        (p.handle.store().outbox_len() == 0).then_some(())
    })
    .await;
    let (_, intent_envelope, _) = p.handle.intents().unwrap().into_iter().next().unwrap();
    let p_addr = p.addr.clone();
    let p_listen = p_addr.to_string().split("/p2p/").next().unwrap().to_owned();
    p.handle.shutdown().await;
    drop(p);

    // A vendor joins later; any node may relay the signed intent to it (gossip is anonymous).
    let v = vendor(root, "v", "electronics", "350.00", vec![r.addr.clone()]).await;
    connected(&v, 1).await;
    let x = person(root, "x", vec![v.addr.clone()]).await;
    connected(&x, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    x.handle
        .publish_raw(
            &intent_topic("electronics"),
            intent_envelope.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    eventually("offer queued at the vendor", || async {
        (v.handle.store().outbox_len() == 1).then_some(())
    })
    .await;

    // The vendor restarts while the offer is still undelivered.
    let v_dir = v.dir.clone();
    let v_config = v.vendor.clone();
    v.handle.shutdown().await;
    drop(v);
    let v = start(&v_dir, v_config, "/ip4/127.0.0.1/tcp/0", vec![]).await;
    assert_eq!(
        v.handle.store().outbox_len(),
        1,
        "the offer survived the restart"
    );
    assert_eq!(
        received_intents(&v),
        vec![id],
        "the vendor kept its records"
    );

    // The person comes back on the same address and connects to the vendor.
    let p = start(
        root.join("p").as_path(),
        None,
        &p_listen,
        vec![v.addr.clone()],
    )
    .await;
    eventually("offer delivered after both restarts", || async {
        (offer_count(&p, &id) == 1).then_some(())
    })
    .await;
    assert_eq!(
        p.handle.intents().unwrap().len(),
        1,
        "the person kept the intent"
    );
    eventually("vendor outbox drained", || async {
        (v.handle.store().outbox_len() == 0).then_some(())
    })
    .await;
    for node in [p, r, v, x] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_intent_gets_no_further_offers() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let v1 = vendor(root, "v1", "food", "5.00", vec![p.addr.clone()]).await;
    connected(&p, 1).await;
    let id = p
        .handle
        .cast(cast_request("food", "Sourdough bread", "8"))
        .await
        .unwrap();
    eventually("first offer", || async {
        (offer_count(&p, &id) == 1).then_some(())
    })
    .await;
    let (_, intent_envelope, _) = p.handle.intents().unwrap().into_iter().next().unwrap();

    p.handle.withdraw(&id).await.unwrap();
    eventually("the vendor marks it withdrawn", || async {
        let stored = v1.handle.store().intent(&id).unwrap()?;
        stored.withdrawn_at.map(|_| ())
    })
    .await;

    // A vendor that never saw the withdrawal gets the intent late and answers: the person's
    // node refuses the offer.
    let v2 = vendor(root, "v2", "food", "4.00", vec![p.addr.clone()]).await;
    connected(&v2, 1).await;
    let x = person(root, "x", vec![v2.addr.clone()]).await;
    connected(&x, 1).await;
    let mut v2_events = v2.handle.subscribe();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    x.handle
        .publish_raw(&intent_topic("food"), intent_envelope.as_bytes().to_vec())
        .await
        .unwrap();
    let refused = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if let Ok(vrm::node::NodeEvent::OfferRefused { code, .. }) = v2_events.recv().await {
                return code;
            }
        }
    })
    .await
    .expect("v2's late offer is answered");
    assert_eq!(refused, "intent-withdrawn");
    assert_eq!(
        offer_count(&p, &id),
        1,
        "no offer stored after the withdrawal"
    );
    // Withdrawing twice is a clear error.
    assert!(p.handle.withdraw(&id).await.is_err());
    for node in [p, v1, v2, x] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_profiles_spread_and_the_newest_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let v = vendor(root, "v", "books", "3.00", vec![p.addr.clone()]).await;
    let vendor_key = v.handle.vendor_key().unwrap();
    eventually("p stores the profile", || async {
        p.handle
            .store()
            .profiles()
            .unwrap()
            .into_iter()
            .find_map(|record| {
                let (envelope, profile) =
                    vrm::store::open_stored::<vrm::proto::VendorProfile>(&record.envelope).ok()?;
                (envelope.signer().to_bytes() == vendor_key && profile.name == "v").then_some(())
            })
    })
    .await;
    assert_eq!(p.handle.store().profiles().unwrap().len(), 1);
    p.handle.shutdown().await;
    v.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_that_runs_out_is_announced_as_expired() {
    let root = tempfile::tempdir().unwrap();
    let p = person(root.path(), "p", vec![]).await;
    let mut events = p.handle.subscribe();
    let mut request = cast_request("books", "Anything by Borges", "20");
    request.lifetime_secs = 1;
    let id = p.handle.cast(request).await.unwrap();
    let expired = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Ok(vrm::node::NodeEvent::IntentExpired { intent }) = events.recv().await {
                return intent;
            }
        }
    })
    .await
    .expect("an intent-expired event");
    assert_eq!(expired, hex::encode(*id));
    p.handle.shutdown().await;
}
