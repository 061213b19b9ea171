//! The vendor role end to end: catalogs that imply exact offers, the vendor's own responder
//! program (good, crashing, hanging, garbage), catalog reload, vendor views and fair use.

mod common;

use std::time::Duration;

use common::*;
use ed25519_dalek::SigningKey;
use vrm::config::VendorConfig;
use vrm::proto::{Envelope, Intent, ReplyTo, intent_topic};
use vrm::store::{Decision, Delivery};

fn prices(node: &TestNode, id: &vrm::proto::IntentId) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = node
        .handle
        .offers_for(id)
        .unwrap()
        .into_iter()
        .map(|(_, _, offer)| (offer.items[0].title.clone(), offer.items[0].price.amount))
        .collect();
    out.sort();
    out
}

async fn vendor_with(
    root: &std::path::Path,
    name: &str,
    catalog: &str,
    config: VendorConfig,
    bootstrap: &TestNode,
) -> TestNode {
    let dir = make_dir(root, name, Some((name, catalog)));
    start(
        &dir,
        Some(config),
        "/ip4/127.0.0.1/tcp/0",
        vec![bootstrap.addr.clone()],
    )
    .await
}

const PAPERBACKS: &str = r#"
[[item]]
category = "books"
title = "Used paperback"
keywords = ["paperback", "used"]
price = "6.50"
currency = "EUR"

[[item]]
category = "books"
title = "New hardcover"
keywords = ["hardcover"]
price = "24.00"
currency = "EUR"
"#;

const HARDCOVERS_ONLY: &str = r#"
[[item]]
category = "books"
title = "Signed first edition"
price = "250.00"
currency = "EUR"
"#;

const HAGGLER: &str = r#"
[[item]]
category = "books"
title = "Collector's copy"
price = "30.00"
currency = "EUR"
min_price = "15.00"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_catalogs_imply_exactly_these_offers() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let v1 = vendor_with(root, "v1", PAPERBACKS, vendor_config("v1", "books"), &p).await;
    let v2 = vendor_with(
        root,
        "v2",
        HARDCOVERS_ONLY,
        vendor_config("v2", "books"),
        &p,
    )
    .await;
    let v3 = vendor_with(root, "v3", HAGGLER, vendor_config("v3", "books"), &p).await;
    connected(&p, 3).await;

    let id = p
        .handle
        .cast(cast_request("books", "A used paperback of Solaris", "20"))
        .await
        .unwrap();
    eventually("v2 decides", || async {
        v2.handle
            .vendor_intents()
            .unwrap()
            .first()
            .and_then(|(r, _, _)| r.decision.clone())
    })
    .await;
    eventually("two offers", || async {
        (offer_count(&p, &id) == 2).then_some(())
    })
    .await;
    assert_eq!(
        prices(&p, &id),
        vec![
            ("Collector's copy".to_string(), 2_000),
            ("Used paperback".to_string(), 650)
        ]
    );
    let (record, _, _) = v2.handle.vendor_intents().unwrap().remove(0);
    assert_eq!(
        record.decision,
        Some(Decision::Declined {
            reason: "no catalog match: over the price ceiling".into()
        })
    );
    // The vendor views show the offer as delivered.
    eventually("v1 sees its offer delivered", || async {
        let offers = v1.handle.vendor_offers().unwrap();
        (offers.len() == 1 && matches!(offers[0].0.delivery, Delivery::Delivered { .. }))
            .then_some(())
    })
    .await;
    assert!(matches!(
        v1.handle.vendor_intents().unwrap()[0].0.decision,
        Some(Decision::Offered { .. })
    ));
    for node in [p, v1, v2, v3] {
        node.handle.shutdown().await;
    }
}

const BIKES: &str = r#"
[[item]]
category = "sport"
title = "Catalog bike"
price = "199.00"
currency = "EUR"
"#;

fn responder_config(name: &str, command: &[&str]) -> VendorConfig {
    VendorConfig {
        responder: Some(command.iter().map(|s| s.to_string()).collect()),
        responder_timeout_secs: 2,
        ..vendor_config(name, "sport")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_programs_answer_and_failing_ones_cost_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example-responder.py");
    let p = person(root, "p", vec![]).await;
    let good = vendor_with(
        root,
        "good",
        BIKES,
        responder_config("good", &["python3", script]),
        &p,
    )
    .await;
    let crash = vendor_with(
        root,
        "crash",
        BIKES,
        responder_config("crash", &["sh", "-c", "echo boom >&2; exit 3"]),
        &p,
    )
    .await;
    let hang = vendor_with(
        root,
        "hang",
        BIKES,
        responder_config("hang", &["sleep", "30"]),
        &p,
    )
    .await;
    let garbage = vendor_with(
        root,
        "garbage",
        BIKES,
        responder_config("garbage", &["echo", "nonsense"]),
        &p,
    )
    .await;
    connected(&p, 4).await;

    for round in 0..2 {
        let id = p
            .handle
            .cast(cast_request("sport", "A city bike for commuting", "300"))
            .await
            .unwrap();
        eventually("four offers", || async {
            (offer_count(&p, &id) == 4).then_some(())
        })
        .await;
        // The program's price (10% under the ceiling) from the good vendor; the catalog's from
        // the three whose program failed.
        assert_eq!(
            prices(&p, &id),
            vec![
                ("Catalog bike".to_string(), 19_900),
                ("Catalog bike".to_string(), 19_900),
                ("Catalog bike".to_string(), 19_900),
                ("City bike, 7 gears".to_string(), 27_000),
            ],
            "round {round}"
        );
    }
    for failing in [&crash, &hang, &garbage] {
        assert_eq!(failing.handle.stats().get("responder-failed"), 2);
    }
    assert_eq!(good.handle.stats().get("responder-failed"), 0);

    // The program declines what it does not sell.
    let id = p
        .handle
        .cast(cast_request("sport", "Tennis rackets", "300"))
        .await
        .unwrap();
    eventually("good declines", || async {
        good.handle
            .vendor_intents()
            .unwrap()
            .into_iter()
            .find_map(|(r, _, i)| {
                (i.id == id)
                    .then_some(r.decision?)
                    .filter(|d| matches!(d, Decision::Declined { .. }))
            })
    })
    .await;
    for node in [p, good, crash, hang, garbage] {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_catalog_is_refused_on_reload_and_the_old_one_still_answers() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let v = vendor(root, "v", "food", "3.00", vec![p.addr.clone()]).await;
    connected(&p, 1).await;
    let catalog_path = v.dir.join("catalog.toml");

    std::fs::write(
        &catalog_path,
        "[[item]]\ncategory = \"food\"\ntitle = \"Bread\"\nprice = \"three\"\ncurrency = \"EUR\"\n",
    )
    .unwrap();
    let err = v.handle.reload_catalog().await.unwrap_err().to_string();
    assert!(err.contains("bad price"), "{err}");
    let id = p
        .handle
        .cast(cast_request("food", "Bread", "10"))
        .await
        .unwrap();
    eventually("offer from the old catalog", || async {
        (offer_count(&p, &id) == 1).then_some(())
    })
    .await;
    assert_eq!(prices(&p, &id), vec![("v item".to_string(), 300)]);

    // A good file is picked up by itself (the node watches the file).
    let mut events = v.handle.subscribe();
    std::fs::write(&catalog_path, catalog("food", "Fresh bread", "2.50")).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(
            events.recv().await,
            Ok(vrm::node::NodeEvent::CatalogReloaded { items: 1 })
        ) {}
    })
    .await
    .expect("catalog reloaded on change");
    let id = p
        .handle
        .cast(cast_request("food", "Bread", "10"))
        .await
        .unwrap();
    eventually("offer from the new catalog", || async {
        (offer_count(&p, &id) == 1).then_some(())
    })
    .await;
    assert_eq!(prices(&p, &id), vec![("Fresh bread".to_string(), 250)]);
    p.handle.shutdown().await;
    v.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_offer_per_intent_and_a_rate_limit_per_persona() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = person(root, "p", vec![]).await;
    let v = vendor(root, "v", "garden", "12.00", vec![p.addr.clone()]).await;
    let x = person(root, "x", vec![v.addr.clone()]).await;
    connected(&v, 2).await;

    // Eight intents signed by one persona, relayed by X, all answered to P.
    let persona = SigningKey::from_bytes(&[42; 32]);
    let now = vrm::clock::unix_now();
    let mut envelopes = Vec::new();
    for n in 0..8u8 {
        let intent = Intent {
            id: [n; 16].into(),
            category: "garden".into(),
            subcategory: None,
            text: format!("Seedlings, batch {n}"),
            constraints: Default::default(),
            terms: vec![],
            created: now,
            expires: now + 600,
            reply_to: ReplyTo {
                peer: p.handle.peer_id().to_bytes().into(),
                addrs: vec![],
            },
        };
        envelopes.push(Envelope::seal(&intent, &persona));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for env in &envelopes {
        x.handle
            .publish_raw(&intent_topic("garden"), env.as_bytes().to_vec())
            .await
            .unwrap();
    }
    eventually("eight decisions", || async {
        let decided = v
            .handle
            .vendor_intents()
            .unwrap()
            .iter()
            .filter(|(r, _, _)| r.decision.is_some())
            .count();
        (decided == 8).then_some(())
    })
    .await;
    let declined: Vec<String> = v
        .handle
        .vendor_intents()
        .unwrap()
        .into_iter()
        .filter_map(|(r, _, _)| match r.decision {
            Some(Decision::Declined { reason }) => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(declined.len(), 3, "burst of 5, then limited: {declined:?}");
    assert!(declined.iter().all(|r| r.contains("rate limit")));

    // The same intent delivered again is not answered twice.
    let other = person(root, "other", vec![v.addr.clone()]).await;
    connected(&other, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    other
        .handle
        .publish_raw(&intent_topic("garden"), envelopes[0].as_bytes().to_vec())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(v.handle.vendor_offers().unwrap().len(), 5);
    for node in [p, v, x, other] {
        node.handle.shutdown().await;
    }
}
