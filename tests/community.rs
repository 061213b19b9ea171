//! Reviews, reputation and groups between real `vrm` daemons: three people buy from one
//! vendor and review it with `vrm review`; every daemon, and one started afterwards, shows
//! the same reputation with `vrm reputation`; a review without an order, published by a
//! peer in the mesh, is refused and costs that peer its connection; a group started with
//! `vrm group start` is joined with `vrm group join` and the vendor counts its members.

mod common;

use std::path::{Path, PathBuf};

use common::process::{Daemon, cast_book, json, log_settled, service_and_bookshop, until, vrm};
use common::{Net, person};
use serde_json::Value;

/// A person's daemon buys a book, the vendor fulfils it; returns the relationship id.
fn buy_fulfilled(p: &Path, v: &Path) -> String {
    let cast = json(&cast_book(p, "A signed first edition"));
    let id = cast["id"].as_str().unwrap().to_owned();
    let offers = until(p, &["offers", "--intent", &id, "--json"], "an offer", |o| {
        o.as_array().is_some_and(|a| !a.is_empty())
    });
    let offer = offers[0]["id"].as_str().unwrap().to_owned();
    let accepted = json(&vrm(p, &["accept", &offer, "--json"]));
    let rel = accepted["id"].as_str().unwrap().to_owned();
    let show = ["relationship", "show", &rel, "--json"];
    // accept, the vendor's agreement to the standing terms, order, agreed
    until(v, &show, "the agreed order at the vendor", |l| {
        log_settled(l, 4)
    });
    assert!(vrm(v, &["vendor", "fulfil", &rel]).status.success());
    let done = until(p, &show, "fulfilment and the review token", |l| {
        log_settled(l, 6)
    });
    assert_eq!(done["log"][5]["kind"], "review-token");
    rel
}

/// The reputation of `vendor` as `dir`'s daemon shows it, once it counts `reviews`.
fn reputation(dir: &Path, vendor: &str, reviews: u64) -> Value {
    let all = until(dir, &["reputation", "--json"], "the reviews", |all| {
        all.as_array().is_some_and(|a| {
            a.iter()
                .any(|r| r["vendor"] == vendor && r["reviews"] == reviews)
        })
    });
    let found = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["vendor"] == vendor);
    found.unwrap().clone()
}

/// What every node must agree on.
fn shared(r: &Value) -> Value {
    serde_json::json!([
        r["reviews"],
        r["mean"],
        r["distribution"],
        r["newest"],
        r["buyers"]
    ])
}

#[test]
fn three_buyers_review_one_vendor_and_every_daemon_shows_the_same_reputation() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| -> PathBuf { root.path().join(name) };
    let (mut service, service_addr) = service_and_bookshop(root.path());
    let mut vendor = Daemon::start(&dir("vendor"), &["--no-mdns", "--bootstrap", &service_addr]);
    vendor.connected_to(&service.peer_id());
    let light = ["--no-mdns", "--role", "light", "--bootstrap", &service_addr];
    let mut daemons = vec![service, vendor];
    let buyers = ["a", "b", "c"];
    for name in buyers {
        let mut d = Daemon::start(&dir(name), &light);
        d.connected_to(&daemons[0].peer_id());
        daemons.push(d);
    }
    let key = json(&vrm(&dir("vendor"), &["status", "--json"]))["vendor_key"]
        .as_str()
        .unwrap()
        .to_owned();

    for (name, rating) in buyers.iter().zip(["5", "4", "2"]) {
        let rel = buy_fulfilled(&dir(name), &dir("vendor"));
        let text = format!("{rating} stars");
        let review = json(&vrm(
            &dir(name),
            &[
                "review",
                &rel[..12],
                "--rating",
                rating,
                "--text",
                &text,
                "--json",
            ],
        ));
        assert_eq!(review["rating"].to_string(), rating);
    }
    let at_service = reputation(&dir("service"), &key, 3);
    assert_eq!(
        at_service["distribution"],
        serde_json::json!([0, 1, 0, 1, 1])
    );
    for name in ["vendor", "a", "b", "c"] {
        assert_eq!(
            shared(&reputation(&dir(name), &key, 3)),
            shared(&at_service),
            "{name}"
        );
    }
    let mine = reputation(&dir("a"), &key, 3);
    assert_eq!(
        mine["yours"]["rating"], 5,
        "the buyer's own review is marked"
    );
    let table =
        String::from_utf8_lossy(&vrm(&dir("a"), &["reputation", &key[..12]]).stdout).into_owned();
    assert!(
        table.contains("2 stars") && table.contains("1 orders, rated 5"),
        "{table}"
    );

    // A daemon started afterwards catches up on the directory.
    let mut late = Daemon::start(&dir("late"), &light);
    late.connected_to(&daemons[0].peer_id());
    assert_eq!(
        shared(&reputation(&dir("late"), &key, 3)),
        shared(&at_service)
    );
    daemons.push(late);

    // A review without an order, published by a peer in the service node's mesh.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let mut net = Net::new();
        let rogue = net
            .add_dialing(person("rogue"), service_addr.parse().unwrap())
            .await;
        let forged = vrm::proto::Review {
            token: b"trust me".to_vec().into(),
            rating: 5,
            text: "best shop ever".into(),
            history: Vec::new(),
            created: vrm::clock::unix_now(),
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let bytes = vrm::proto::Envelope::seal(&forged, &key)
            .as_bytes()
            .to_vec();
        common::eventually("the rogue publishes", || async {
            rogue
                .handle
                .publish_raw(vrm::proto::DIRECTORY_TOPIC, bytes.clone())
                .await
                .ok()
        })
        .await;
        // The rogue stays up (on the runtime's other threads) until the service node acts.
        until(
            &dir("service"),
            &["status", "--json"],
            "the refusal and the ban",
            |s| s["counters"]["rejected:bad-token"] == 1 && s["counters"]["banned"] == 1,
        )
    });
    assert_eq!(status["counters"]["reviews-stored"], 3);
    assert_eq!(
        shared(&reputation(&dir("service"), &key, 3)),
        shared(&at_service)
    );

    // A group: started by one person, joined by another, counted by the vendor.
    let started = json(&vrm(
        &dir("a"),
        &[
            "group",
            "start",
            "--size",
            "3",
            "--category",
            "books",
            "--text",
            "A box of 30 school atlases",
            "--max-price",
            "12",
            "--currency",
            "EUR",
            "--json",
        ],
    ));
    let group = started["group"].as_str().unwrap().to_owned();
    until(
        &dir("b"),
        &["group", "list", "--json"],
        "the group at b",
        |g| {
            g.as_array()
                .is_some_and(|a| a.iter().any(|g| g["id"] == group))
        },
    );
    assert!(
        vrm(&dir("b"), &["group", "join", &group[..8]])
            .status
            .success()
    );
    until(
        &dir("vendor"),
        &["group", "list", "--json"],
        "two members at the vendor",
        |g| {
            g.as_array()
                .is_some_and(|a| a.iter().any(|g| g["id"] == group && g["members"] == 2))
        },
    );
    for d in daemons {
        d.terminate();
    }
}
