//! The vendor role end to end: catalogs that imply exact offers, the vendor's own responder
//! program (good, crashing, hanging, garbage), catalog reload, vendor views and fair use.

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use vrm::config::VendorConfig;
use vrm::node::NodeEvent;
use vrm::proto::{Envelope, intent_topic};
use vrm::store::{Decision, Delivery};

fn prices(node: &TestNode, id: &vrm::proto::IntentId) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = offers(node, id)
        .into_iter()
        .map(|(_, offer)| (offer.items[0].title.clone(), offer.items[0].price.amount))
        .collect();
    out.sort();
    out
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
    let mut net = Net::new();
    let [p, v1, v2, _v3] = net
        .star([
            person("p"),
            vendor_with("v1", PAPERBACKS, vendor_config("v1", "books")),
            vendor_with("v2", HARDCOVERS_ONLY, vendor_config("v2", "books")),
            vendor_with("v3", HAGGLER, vendor_config("v3", "books")),
        ])
        .await;

    let id = cast(&p, "books", "A used paperback of Solaris", "20").await;
    eventually("v2 decides", || async { decision(&v2, &id) }).await;
    offers_arrive(&p, &id, 2).await;
    assert_eq!(
        prices(&p, &id),
        vec![
            ("Collector's copy".to_string(), 2_000),
            ("Used paperback".to_string(), 650)
        ]
    );
    assert_eq!(
        decisions(&v2),
        vec![(
            id,
            Some(Decision::Declined {
                reason: "no catalog match: over the price ceiling".into()
            })
        )]
    );
    // The vendor views show the offer as delivered.
    eventually("v1 sees its offer delivered", || async {
        matches!(deliveries(&v1)[..], [Delivery::Delivered { .. }]).then_some(())
    })
    .await;
    assert!(matches!(
        decisions(&v1)[..],
        [(_, Some(Decision::Offered { .. }))]
    ));
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example-responder.py");
    let mut net = Net::new();
    let [p, good, crash, hang, garbage] = net
        .star([
            person("p"),
            vendor_with(
                "good",
                BIKES,
                responder_config("good", &["python3", script]),
            ),
            vendor_with(
                "crash",
                BIKES,
                responder_config("crash", &["sh", "-c", "echo boom >&2; exit 3"]),
            ),
            vendor_with("hang", BIKES, responder_config("hang", &["sleep", "30"])),
            vendor_with(
                "garbage",
                BIKES,
                responder_config("garbage", &["echo", "nonsense"]),
            ),
        ])
        .await;

    for round in 0..2 {
        let id = cast(&p, "sport", "A city bike for commuting", "300").await;
        offers_arrive(&p, &id, 4).await;
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
    let id = cast(&p, "sport", "Tennis rackets", "300").await;
    eventually("good declines", || async {
        decision(&good, &id).filter(|d| matches!(d, Decision::Declined { .. }))
    })
    .await;
}

/// Replaces `node`'s catalog file in one step. The node polls the file's modification time:
/// written in place, the file could be read half-written, and the complete one missed if the
/// time did not change in between.
fn replace_catalog(node: &TestNode, text: &str) {
    let staged = node.dir.join("catalog.toml.new");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, node.dir.join("catalog.toml")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_catalog_is_refused_on_reload_and_the_old_one_still_answers() {
    let mut net = Net::new();
    let [p, v] = net.line([person("p"), vendor("v", "food", "3.00")]).await;

    replace_catalog(
        &v,
        "[[item]]\ncategory = \"food\"\ntitle = \"Bread\"\nprice = \"three\"\ncurrency = \"EUR\"\n",
    );
    let err = v.handle.reload_catalog().await.unwrap_err().to_string();
    assert!(err.contains("bad price"), "{err}");
    let id = cast(&p, "food", "Bread", "10").await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(prices(&p, &id), vec![("v item".to_string(), 300)]);

    // A good file is picked up by itself (the node watches the file).
    let mut events = v.handle.subscribe();
    replace_catalog(&v, &catalog("food", "Fresh bread", "2.50"));
    next_event(&mut events, "catalog reloaded on change", |e| {
        matches!(e, NodeEvent::CatalogReloaded { items: 1 }).then_some(())
    })
    .await;
    let id = cast(&p, "food", "Bread", "10").await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(prices(&p, &id), vec![("Fresh bread".to_string(), 250)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_offer_per_intent_and_a_rate_limit_per_persona() {
    let mut net = Net::new();
    let [p, v, x] = net
        .line([person("p"), vendor("v", "garden", "12.00"), person("x")])
        .await;

    // Eight intents signed by one persona, relayed by X, all answered to P.
    let persona = SigningKey::from_bytes(&[42; 32]);
    let mut envelopes = Vec::new();
    for n in 0..8u8 {
        // A queue at P that P never opened: the offers are made, not delivered.
        let intent = garden_intent(n, &format!("Seedlings, batch {n}"), &p);
        envelopes.push(Envelope::seal(&intent, &persona));
    }
    for env in &envelopes {
        x.handle
            .publish_raw(&intent_topic("garden"), env.as_bytes().to_vec())
            .await
            .unwrap();
    }
    eventually("eight decisions", || async {
        let decided = decisions(&v).iter().filter(|(_, d)| d.is_some()).count();
        (decided == 8).then_some(())
    })
    .await;
    let declined: Vec<String> = decisions(&v)
        .into_iter()
        .filter_map(|(_, d)| match d {
            Some(Decision::Declined { reason }) => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(declined.len(), 3, "burst of 5, then limited: {declined:?}");
    assert!(declined.iter().all(|r| r.contains("rate limit")));

    // The same intent delivered again is not answered twice. Other then casts an intent of
    // its own, which V answers: once it has, the repeat that came before it on the same path
    // had its chance.
    let other = net.add(person("other"), &[&v]).await;
    other
        .handle
        .publish_raw(&intent_topic("garden"), envelopes[0].as_bytes().to_vec())
        .await
        .unwrap();
    let own = cast(&other, "garden", "A rose bush", "20").await;
    let answer = eventually("v answers other's own intent", || async {
        decision(&v, &own)
    })
    .await;
    assert!(matches!(answer, Decision::Offered { .. }), "{answer:?}");
    assert_eq!(
        deliveries(&v).len(),
        6,
        "five offers to the eight intents, one to other's"
    );
}
