//! What a vendor learns about a person, checked as an auditor would: one person casts two
//! intents from a light node; the vendor answers both; nothing the vendor received, stored,
//! handed its responder program or connected to ties the two intents to each other or to
//! the person's node.

mod common;

use std::collections::BTreeSet;

use common::*;
use libp2p::Multiaddr;
use vrm::proto::{Intent, Payload, decode_and_check};
use vrm::vendor_role::responder::Responder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_cannot_tie_two_intents_to_each_other_or_to_the_persons_node() {
    let mut net = Net::new();
    // Two service nodes with the vendor between them; the person's light node uses both.
    let [s1, v, s2] = net
        .line([person("s1"), vendor("v", "books", "9.90"), person("s2")])
        .await;
    let p = net.add(person("p").light(), &[&s1, &s2]).await;

    let first = cast(&p, "books", "A first edition of Kindred", "200").await;
    let second = cast(&p, "books", "Any Ursula K. Le Guin", "30").await;
    offers_arrive(&p, &first, 1).await;
    offers_arrive(&p, &second, 1).await;

    // The intents as the vendor holds them, and as its responder program would read them.
    let now = vrm::clock::unix_now();
    let seen: Vec<(Intent, serde_json::Value)> = [first, second]
        .iter()
        .map(|id| {
            let envelope = intent_envelope(&v, id);
            let (_, Payload::Intent(intent)) = decode_and_check(envelope.as_bytes(), now).unwrap()
            else {
                panic!("an intent")
            };
            let input = Responder::input(&envelope, &intent, now);
            (intent, input)
        })
        .collect();
    let [(a, a_input), (b, b_input)] = &seen[..] else {
        unreachable!()
    };

    // Field by field: nothing the person's node controls is the same in both.
    assert_ne!(a_input["persona"], b_input["persona"], "persona keys");
    assert_ne!(a.reply_to.queue, b.reply_to.queue, "queue ids");
    assert_ne!(a.reply_to.key, b.reply_to.key, "reply keys");
    assert_ne!(a.id, b.id);
    // The mailbox is a service node (it may be the same one for both: many people's
    // queues are there), never the person's node.
    let services: BTreeSet<Vec<u8>> = [&s1, &s2]
        .iter()
        .map(|s| s.handle.peer_id().to_bytes())
        .collect();
    for intent in [a, b] {
        assert!(services.contains(intent.reply_to.mailbox.as_slice()));
        let addr = Multiaddr::try_from(intent.reply_to.addr.to_vec()).unwrap();
        assert!(!p.handle.listen_addrs().contains(&addr));
    }
    let json = serde_json::to_vec(&seen.iter().map(|(_, i)| i).collect::<Vec<_>>()).unwrap();
    let stored = files(&v.dir);
    for (what, bytes) in identifying_bytes(&p) {
        for intent in [a, b] {
            let body = vrm::proto::envelope::encode_body(intent);
            assert!(
                !contains(&body, &bytes),
                "the intent holds the person's {what}"
            );
        }
        assert!(
            !contains(&json, &bytes),
            "the responder input holds the person's {what}"
        );
        for (path, content) in &stored {
            assert!(
                !contains(content, &bytes),
                "{} holds the person's {what}",
                path.display()
            );
        }
    }

    // The vendor was never connected to the person's node, nor dialed it.
    let peers = v.handle.peers().await.unwrap();
    assert!(
        peers
            .iter()
            .all(|peer| peer.peer != p.handle.peer_id().to_string()),
        "the vendor is connected to the person: {peers:?}"
    );
}
