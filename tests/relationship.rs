//! Relationships end to end between real nodes in one process: a light person, a service
//! node holding the person's mailboxes, a vendor node. Accept → order (countersigned) →
//! messages both ways → shipped → fulfilled → received, with each side offline in turn,
//! crossing updates, and the persona the vendor sees.

mod common;

use common::*;
use vrm::node::relationships::Draft;
use vrm::proto::relationship::{Side, Stage, verify_file};
use vrm::proto::{IntentId, MessageId, Status};

/// Casts an intent at `p` and returns the id of the one offer it gets.
async fn offer_for(p: &TestNode, text: &str) -> (IntentId, MessageId) {
    let id = cast(p, "electronics", text, "400").await;
    offers_arrive(p, &id, 1).await;
    (id, offers(p, &id)[0].0.id())
}

fn exports_match(p: &TestNode, v: &TestNode, rel: &str) -> Vec<u8> {
    let (ep, ev) = (
        p.handle.relationship_export(rel).unwrap(),
        v.handle.relationship_export(rel).unwrap(),
    );
    assert_eq!(ep, ev, "both sides' logs are byte-identical");
    ep
}

/// A service node, a vendor of electronics and a light person's node on the service node,
/// with a relationship from the person's accepted offer, agreed on both sides.
async fn agreed(net: &mut Net) -> (TestNode, TestNode, TestNode, String) {
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let (p, rel) = agreed_buyer(net, "p", &s, &v).await;
    (s, v, p, rel)
}

async fn write(node: &TestNode, rel: &str, draft: Draft) -> u32 {
    node.handle.relationship_write(rel, draft).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_runs_from_accept_to_received_and_both_logs_are_the_same() {
    let mut net = Net::new();
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let p = net.add(person("p").light(), &[&s]).await;
    let (intent, offer) = offer_for(&p, "A used ThinkPad").await;

    let rel = p.handle.accept(&offer, false, true).await.unwrap();
    assert!(
        intent_withdrawn(&p, &intent),
        "accepting withdraws the intent by default"
    );
    // The vendor confirms from its catalog at once; the person's node countersigns.
    let agreed = settled(&p, &v, &rel, 3).await;
    assert_eq!(agreed.summary.state.stage, Stage::Agreed);
    let kinds: Vec<&str> = agreed.log.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["accept", "order", "order-update"]);
    assert_eq!(agreed.log[2].status.as_deref(), Some("agreed"));
    assert_eq!(
        agreed.summary.items.len(),
        1,
        "the order restates the offer"
    );

    write(
        &p,
        &rel,
        Draft::Message("Does it come with a charger?".into()),
    )
    .await;
    let asked = settled(&p, &v, &rel, 4).await;
    assert_eq!(asked.log[3].from, Side::Person);
    assert_eq!(
        detail(&v, &rel).unwrap().summary.unread,
        1,
        "the vendor has one unread message"
    );
    write(&v, &rel, Draft::Message("Yes, a 65 W one.".into())).await;
    write(
        &v,
        &rel,
        Draft::Update(Status::Shipped, "tracking 1Z999".into()),
    )
    .await;
    write(&v, &rel, Draft::Update(Status::Fulfilled, String::new())).await;
    // The vendor's node follows its fulfilment with the review token.
    let fulfilled = settled(&p, &v, &rel, 8).await;
    assert_eq!(fulfilled.log[7].kind, "review-token");
    let reply = &detail(&p, &rel).unwrap().log[4];
    assert_eq!(
        (reply.from, reply.text.as_str()),
        (Side::Vendor, "Yes, a 65 W one.")
    );
    // Read as far as a page showed (4 entries): the reply after them stays unread; reading
    // everything clears it, and an older count never makes it unread again.
    let unread = |p: &TestNode| detail(p, &rel).unwrap().summary.unread;
    p.handle.relationship_read(&rel, Some(4)).await.unwrap();
    assert_eq!(unread(&p), 1, "the reply came after what was shown");
    p.handle.relationship_read(&rel, None).await.unwrap();
    assert_eq!(unread(&p), 0);
    p.handle.relationship_read(&rel, Some(2)).await.unwrap();
    assert_eq!(unread(&p), 0, "what was read stays read");
    write(&p, &rel, Draft::Update(Status::Received, String::new())).await;
    let done = settled(&p, &v, &rel, 9).await;
    let state = done.summary.state;
    assert!(state.shipped && state.fulfilled && state.received);

    let file = exports_match(&p, &v, &rel);
    let verified = verify_file(&file).expect("the exported log verifies");
    assert_eq!(verified.chain.len, 9);
    assert_eq!(
        verified.acknowledged, 9,
        "every entry carries the other side's ack"
    );

    // Nothing may be written after the person's side was refused by a rule: a cancel after
    // the shipment is refused at once, with the rule.
    let refused = p
        .handle
        .relationship_write(&rel, Draft::Update(Status::Cancelled, String::new()))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not-now"), "{refused}");

    // Ending it: nothing more is taken on either side.
    write(&v, &rel, Draft::End("Thanks!".into())).await;
    settled(&p, &v, &rel, 10).await;
    let after_end = p
        .handle
        .relationship_write(&rel, Draft::Message("one more thing".into()))
        .await
        .unwrap_err();
    assert!(after_end.to_string().contains("ended"), "{after_end}");
    exports_match(&p, &v, &rel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_offline_in_turn_loses_nothing_and_doubles_nothing() {
    let mut net = Net::new();
    let (s, v, p, rel) = agreed(&mut net).await;

    // The person is away: the vendor writes; its entries wait in the person's mailbox.
    p.handle.shutdown().await;
    write(&v, &rel, Draft::Message("Packed and ready.".into())).await;
    write(
        &v,
        &rel,
        Draft::Update(Status::Shipped, "tracking 42".into()),
    )
    .await;
    let p = net.restart(p, &[&s]).await;
    settled(&p, &v, &rel, 5).await;

    // The vendor is away: the person writes; the forward is refused as unreachable and
    // retried until the vendor is back.
    v.handle.shutdown().await;
    write(&p, &rel, Draft::Message("Got the tracking, thanks.".into())).await;
    write(&p, &rel, Draft::Update(Status::Received, String::new())).await;
    let v = net.restart(v, &[&s]).await;
    // The person's "received" brings the vendor's review token.
    let log = settled(&p, &v, &rel, 8).await;
    let texts: Vec<&str> = log.log.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts[3..7],
        [
            "Packed and ready.",
            "tracking 42",
            "Got the tracking, thanks.",
            ""
        ],
        "each entry once, in order"
    );
    assert_eq!(log.log[7].kind, "review-token");
    exports_match(&p, &v, &rel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_and_a_shipment_sent_at_once_end_the_same_way_on_both_sides() {
    let mut net = Net::new();
    let (_s, v, p, rel) = agreed(&mut net).await;

    let (cancel, ship) = tokio::join!(
        p.handle.relationship_write(
            &rel,
            Draft::Update(Status::Cancelled, "changed my mind".into())
        ),
        v.handle
            .relationship_write(&rel, Draft::Update(Status::Shipped, "tracking 7".into())),
    );
    cancel.unwrap();
    ship.unwrap();
    // Whichever the vendor's node placed first stands; the other is void on both sides.
    let log = settled(&p, &v, &rel, 4).await;
    let last = log.log[3].status.clone();
    let state = log.summary.state;
    match last.as_deref() {
        Some("shipped") => assert!(state.shipped && state.stage == Stage::Agreed),
        Some("cancelled") => assert!(!state.shipped && state.stage == Stage::Cancelled),
        other => panic!("the fourth entry is {other:?}"),
    }
    exports_match(&p, &v, &rel);
    verify_file(&p.handle.relationship_export(&rel).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendor_sees_one_persona_only_across_returning_accepts() {
    let mut net = Net::new();
    let [s, v] = net
        .line([person("s"), vendor("v", "electronics", "350.00")])
        .await;
    let p = net.add(person("p").light(), &[&s]).await;
    let mut rels = Vec::new();
    for (n, returning) in [(1, true), (2, true), (3, false), (4, false)] {
        let (_, offer) = offer_for(&p, &format!("ThinkPad number {n}")).await;
        let rel = p.handle.accept(&offer, returning, true).await.unwrap();
        settled(&p, &v, &rel, 3).await;
        rels.push(rel);
    }
    let persona = |rel: &str| detail(&v, rel).unwrap().summary.persona;
    assert_eq!(
        persona(&rels[0]),
        persona(&rels[1]),
        "a returning customer is recognised"
    );
    assert_ne!(persona(&rels[2]), persona(&rels[0]), "a new one is not");
    assert_ne!(
        persona(&rels[3]),
        persona(&rels[2]),
        "nor are two new ones linked"
    );
    // Nothing the vendor holds names the person's node: the accept's reply path is the
    // service node's mailbox.
    let p_id = p.handle.peer_id().to_string();
    for rel in &rels {
        let view = format!("{:?}", v.handle.relationship(rel).unwrap());
        assert!(!view.contains(&p_id));
    }
    assert!(
        !connected_peers(&v).await.contains(&p_id),
        "the vendor's node never met the person's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendors_own_program_confirms_ships_and_answers() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example-responder.py");
    let config = vrm::config::VendorConfig {
        crm: Some(vec![
            "python3".into(),
            script.into(),
            "--relationships".into(),
        ]),
        confirm_by_hand: true,
        ..vendor_config("v", "electronics")
    };
    let mut net = Net::new();
    let [s, v] = net
        .line([
            person("s"),
            vendor_with("v", &catalog("electronics", "ThinkPad", "350.00"), config),
        ])
        .await;
    let p = net.add(person("p").light(), &[&s]).await;
    let (_, offer) = offer_for(&p, "A used ThinkPad").await;
    let rel = p.handle.accept(&offer, false, true).await.unwrap();
    // accept, order (the program's), agreed, shipped, fulfilled (the program's), and the
    // review token the vendor's node writes after it.
    let done = settled(&p, &v, &rel, 6).await;
    let steps: Vec<String> = done
        .log
        .iter()
        .map(|e| e.status.clone().unwrap_or(e.kind.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            "accept",
            "order",
            "agreed",
            "shipped",
            "fulfilled",
            "review-token"
        ]
    );
    assert!(
        done.log[3].text.starts_with("tracking BIKE-"),
        "{:?}",
        done.log[3]
    );

    write(&p, &rel, Draft::Message("When do you deliver?".into())).await;
    let answered = settled(&p, &v, &rel, 8).await;
    assert_eq!(answered.log[7].from, Side::Vendor);
    assert!(answered.log[7].text.contains("ride out at 9"));
    exports_match(&p, &v, &rel);
}
