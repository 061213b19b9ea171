//! Reviews and reputation end to end between real nodes in one process: three buyers review
//! one vendor after their orders were fulfilled, every node (and one that joins later)
//! computes the same reputation, forged reviews are refused by every node that gets them
//! and cost their sender its connections.

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use vrm::node::relationships::Draft;
use vrm::node::reviews::{Reputation, ReviewDraft};
use vrm::proto::relationship::Stage;
use vrm::proto::{DIRECTORY_TOPIC, Envelope, Kind, Review, Status};

/// A light person's node on `s` buys from `v` and the vendor fulfils the order: returns
/// the relationship, with the vendor's review token in both logs.
async fn fulfilled(net: &mut Net, s: &TestNode, v: &TestNode, name: &str) -> (TestNode, String) {
    let (p, rel) = agreed_buyer(net, name, s, v).await;
    let early = p.handle.review(&rel, draft(5)).await.unwrap_err();
    assert!(
        early.to_string().contains("has not issued a review token"),
        "{early}"
    );
    v.handle
        .relationship_write(&rel, Draft::Update(Status::Fulfilled, String::new()))
        .await
        .unwrap();
    let done = settled(&p, v, &rel, 5).await;
    assert_eq!(
        done.log[4].kind, "review-token",
        "the vendor's node issues it"
    );
    (p, rel)
}

fn draft(rating: u8) -> ReviewDraft {
    ReviewDraft {
        rating,
        text: format!("{rating} stars"),
        history: false,
    }
}

/// `node`'s reputation of `vendor`, once it holds `reviews` reviews of it.
async fn reputation(node: &TestNode, vendor: &str, reviews: usize) -> Reputation {
    eventually("the reviews reach the node", || async {
        node.handle
            .reputations()
            .unwrap()
            .into_iter()
            .find(|r| r.vendor == vendor && r.reviews == reviews)
    })
    .await
}

/// What every node must agree on: count, mean, distribution, newest, buyers.
fn shared(r: &Reputation) -> (usize, String, [usize; 5], u64, usize) {
    (
        r.reviews,
        format!("{:.3}", r.mean),
        r.distribution,
        r.newest,
        r.buyers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_buyers_review_a_vendor_and_every_node_shows_the_same_reputation() {
    let mut net = Net::new();
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let vendor = hex::encode(v.handle.vendor_key().unwrap());
    let mut buyers = Vec::new();
    for (name, rating) in [("p1", 5), ("p2", 4), ("p3", 2)] {
        let (p, rel) = fulfilled(&mut net, &s, &v, name).await;
        let view = p.handle.review(&rel, draft(rating)).await.unwrap();
        assert_eq!(
            (view.rating, view.text.as_str()),
            (rating, &*format!("{rating} stars"))
        );
        buyers.push((p, rel));
    }
    let at_s = reputation(&s, &vendor, 3).await;
    assert_eq!(at_s.distribution, [0, 1, 0, 1, 1]);
    assert_eq!(format!("{:.3}", at_s.mean), "3.667");
    assert_eq!(
        (at_s.buyers, at_s.proven),
        (3, 0),
        "no buyer showed a history"
    );
    for node in [&v, &buyers[0].0, &buyers[1].0, &buyers[2].0] {
        assert_eq!(shared(&reputation(node, &vendor, 3).await), shared(&at_s));
    }
    let mine = reputation(&buyers[0].0, &vendor, 3).await.yours;
    assert_eq!(
        (mine.relationships, mine.fulfilled, mine.rating),
        (1, 1, Some(5)),
        "the buyer's own relationship is marked"
    );
    assert_eq!(at_s.yours.relationships, 0);

    // A node that joins later catches up on the directory: the same reputation, and the
    // reviews' texts.
    let late = net.add(person("late").light(), &[&s]).await;
    assert_eq!(shared(&reputation(&late, &vendor, 3).await), shared(&at_s));
    let texts: Vec<String> = late
        .handle
        .reviews(&vendor)
        .unwrap()
        .into_iter()
        .map(|r| r.text)
        .collect();
    assert_eq!(texts.len(), 3);
    assert!(texts.contains(&"2 stars".to_owned()), "{texts:?}");

    // A later review of the same order replaces the earlier one, everywhere.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (p1, rel1) = &buyers[0];
    p1.handle.review(rel1, draft(3)).await.unwrap();
    for node in [&s, &v, &late, &buyers[1].0] {
        let after = eventually("the newer review replaces the older", || async {
            let r = reputation(node, &vendor, 3).await;
            (r.distribution == [0, 1, 1, 1, 0]).then_some(r)
        })
        .await;
        assert_eq!(format!("{:.3}", after.mean), "3.000");
    }
}

/// A review signed by `key` carrying `token` as its proof.
fn review_with(token: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let review = Review {
        token: token.into(),
        rating: 5,
        text: "best shop ever".into(),
        history: Vec::new(),
        created: vrm::clock::unix_now(),
    };
    Envelope::seal(&review, key).as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reviews_are_refused_by_every_node_and_cost_their_sender() {
    let mut net = Net::new();
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let vendor = hex::encode(v.handle.vendor_key().unwrap());
    // A real order, cancelled before fulfilment: its vendor-signed order entry is no token.
    let (p, rel) = agreed_buyer(&mut net, "p", &s, &v).await;
    p.handle
        .relationship_write(&rel, Draft::Update(Status::Cancelled, String::new()))
        .await
        .unwrap();
    let cancelled = settled(&p, &v, &rel, 4).await;
    assert_eq!(cancelled.summary.state.stage, Stage::Cancelled);
    let order = v.handle.relationship_export(&rel).unwrap();
    let order = vrm::proto::relationship::LogFile::decode(&order)
        .unwrap()
        .entries[1]
        .entry
        .to_vec();
    assert_eq!(Envelope::decode(&order).unwrap().kind(), Kind::Order);

    // A token the vendor never signed: a review-token body under a key that is not the
    // vendor's, then given the vendor's name as signer (the signature fails).
    let forger = SigningKey::from_bytes(&[42; 32]);
    let token = vrm::proto::ReviewToken {
        rel: [1; 32].into(),
        seq: 5,
        prev: [2; 32].into(),
        persona: forger.verifying_key().to_bytes().into(),
        order: [3; 32].into(),
        created: vrm::clock::unix_now(),
    };
    let mut forged_token = Envelope::seal(&token, &SigningKey::from_bytes(&[43; 32]))
        .as_bytes()
        .to_vec();
    let signer_at = forged_token
        .windows(32)
        .position(|w| w == SigningKey::from_bytes(&[43; 32]).verifying_key().as_bytes())
        .unwrap();
    forged_token[signer_at..signer_at + 32].copy_from_slice(&v.handle.vendor_key().unwrap());

    let forgeries = [
        ("a forged token", review_with(forged_token, &forger)),
        (
            "no order at all",
            review_with(b"trust me".to_vec(), &forger),
        ),
        ("a cancelled order", review_with(order, &forger)),
    ];
    for (n, (what, bytes)) in forgeries.into_iter().enumerate() {
        let x = net.add(person(&format!("x{n}")), &[&s, &v]).await;
        x.handle.publish_raw(DIRECTORY_TOPIC, bytes).await.unwrap();
        let x_id = x.handle.peer_id().to_string();
        for node in [&s, &v] {
            eventually(what, || async {
                (node.handle.stats().get("rejected:bad-token") == n as u64 + 1).then_some(())
            })
            .await;
            eventually("the sender is banned", || async {
                (!connected_peers(node).await.contains(&x_id)).then_some(())
            })
            .await;
        }
    }
    for node in [&s, &v, &p] {
        assert!(
            node.handle
                .reputations()
                .unwrap()
                .iter()
                .all(|r| r.vendor != vendor || r.reviews == 0),
            "no forged review counts"
        );
    }
}

/// A vendor's review token for an order to `persona`.
fn token(vendor: &SigningKey, persona: &SigningKey, order: u8) -> Vec<u8> {
    let token = vrm::proto::ReviewToken {
        rel: [order; 32].into(),
        seq: 4,
        prev: [order; 32].into(),
        persona: persona.verifying_key().to_bytes().into(),
        order: [order; 32].into(),
        created: vrm::clock::unix_now() - 60,
    };
    Envelope::seal(&token, vendor).as_bytes().to_vec()
}

/// A buyer reviews `vendor` with `rating` under `persona`, showing an order with `other`
/// under `other_persona` if given.
fn buyer_review(
    vendor: &SigningKey,
    persona: &SigningKey,
    rating: u8,
    order: u8,
    shown: Option<(&SigningKey, &SigningKey)>,
) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let link = vrm::proto::history_input(
        &persona.verifying_key().to_bytes(),
        &vendor.verifying_key().to_bytes(),
    );
    let history = shown
        .map(|(other, other_persona)| vrm::proto::HistoryItem {
            token: token(other, other_persona, order).into(),
            sig: other_persona.sign(&link).to_bytes().into(),
        })
        .into_iter()
        .collect();
    let review = Review {
        token: token(vendor, persona, order).into(),
        rating,
        text: String::new(),
        history,
        created: vrm::clock::unix_now(),
    };
    Envelope::seal(&review, persona).as_bytes().to_vec()
}

/// The documented weighting (`node::reviews`): a vendor that makes 20 orders to its own
/// personas (and a second vendor of its own to give them a history) and reviews itself 5
/// stars scores below a vendor with 5 real reviews of 4 and 5 stars from buyers who show an
/// order with a vendor this node bought from. Every review goes through the gossip rules
/// into a real store.
#[test]
fn twenty_self_made_reviews_do_not_outweigh_five_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = vrm::store::Store::open(dir.path(), 16 << 20).unwrap();
    let scope = vrm::node::ingest::Scope::default();
    let now = vrm::clock::unix_now();
    let take = |bytes: Vec<u8>| {
        let outcome =
            vrm::node::ingest::gossip(&store, &scope, DIRECTORY_TOPIC, &bytes, now).unwrap();
        assert_eq!(outcome.verdict, vrm::node::ingest::Verdict::Accept);
    };
    let key = |n: u16| {
        let mut seed = [0u8; 32];
        seed[..2].copy_from_slice(&n.to_be_bytes());
        SigningKey::from_bytes(&seed)
    };
    let (trusted, honest, faker, faker_too) = (key(1), key(2), key(3), key(4));
    for (n, rating) in [5, 4, 4, 5, 4].into_iter().enumerate() {
        let (persona, elsewhere) = (key(100 + n as u16), key(200 + n as u16));
        take(buyer_review(
            &honest,
            &persona,
            rating,
            n as u8,
            Some((&trusted, &elsewhere)),
        ));
    }
    for n in 0..20u16 {
        let (persona, elsewhere) = (key(300 + n), key(400 + n));
        take(buyer_review(
            &faker,
            &persona,
            5,
            n as u8,
            Some((&faker_too, &elsewhere)),
        ));
        // The faker's second vendor gets its own glowing reviews, vouched by the first.
        take(buyer_review(
            &faker_too,
            &key(500 + n),
            5,
            n as u8,
            Some((&faker, &key(600 + n))),
        ));
    }
    let experienced = [trusted.verifying_key().to_bytes()].into();
    let reviews = store.reviews(None).unwrap();
    let reps = vrm::node::reviews::reputations(&reviews, &experienced, now);
    let of = |k: &SigningKey| reps[&k.verifying_key().to_bytes()].clone();
    let (real, fake) = (of(&honest), of(&faker));
    assert_eq!((real.reviews, real.proven, real.trusted), (5, 5, true));
    assert_eq!((fake.reviews, fake.proven, fake.trusted), (20, 0, false));
    assert_eq!(fake.mean, 5.0, "the plain mean is flattered");
    assert!(
        real.score > fake.score,
        "real {:.2} must beat self-made {:.2}",
        real.score,
        fake.score
    );
    assert!(
        !of(&faker_too).trusted,
        "vouching among one's own vendors earns nothing"
    );
}
