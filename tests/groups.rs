//! Collective intents end to end between real nodes in one process: twelve people on twelve
//! light nodes join one group; the vendor sees the count rise and nothing that tells who
//! joined; its group offer reaches each member privately; it binds only once the offer's
//! minimum of members accepted, and an order below it is not confirmed.

mod common;

use common::*;
use vrm::config::VendorConfig;
use vrm::node::relationships::Draft;
use vrm::proto::relationship::Stage;
use vrm::proto::{IntentId, Payload, decode_and_check};

/// Members who must accept before the vendor confirms.
const MIN: u32 = 10;

fn minibus() -> VendorConfig {
    VendorConfig {
        group_min: Some(MIN),
        ..vendor_config("v", "travel")
    }
}

/// The group `node` sees with `members` members.
async fn count(node: &TestNode, group: &str, members: usize) {
    eventually("the count reaches the node", || async {
        node.handle
            .groups()
            .unwrap()
            .into_iter()
            .find(|g| g.id == group && g.members == members)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_people_join_a_group_that_binds_only_at_its_minimum() {
    let mut net = Net::new();
    let [s, v] = net
        .line([
            person("s"),
            vendor_with("v", &catalog("travel", "Minibus seat", "18.00"), minibus()),
        ])
        .await;
    let mut members = Vec::new();
    for n in 0..12 {
        members.push(net.add(person(&format!("p{n}")).light(), &[&s]).await);
    }
    let request = cast_request("travel", "A minibus from the airport on 3 May", "20");
    let (first, group) = members[0].handle.start_group(request, 12).await.unwrap();
    let group = hex::encode(group);
    count(&v, &group, 1).await;
    let mut intents: Vec<IntentId> = vec![first];
    for (n, member) in members.iter().enumerate().skip(1) {
        count(member, &group, n).await;
        intents.push(member.handle.join_group(&group).await.unwrap());
        count(&v, &group, n + 1).await;
    }
    assert!(
        members[3].handle.join_group(&group).await.is_err(),
        "one member intent per node"
    );
    count(&members[0], &group, 12).await;

    // Each member's group offer arrives in their own mailbox queue.
    for (member, id) in members.iter().zip(&intents) {
        offers_arrive(member, id, 1).await;
        let (_, offer) = &offers(member, id)[0];
        let terms = offer.group.as_ref().expect("a group offer");
        assert_eq!(terms.min, MIN);
    }

    // The audit: twelve member intents at the vendor, each under its own persona and reply
    // queue, and nothing the vendor holds names a member's node.
    let received = received_intents(&v);
    assert_eq!(received.len(), 12);
    let mut signers = std::collections::BTreeSet::new();
    let mut queues = std::collections::BTreeSet::new();
    for id in &received {
        let (envelope, payload) =
            decode_and_check(intent_envelope(&v, id).as_bytes(), vrm::clock::unix_now()).unwrap();
        let Payload::Intent(intent) = payload else {
            panic!("an intent")
        };
        signers.insert(envelope.signer().to_bytes());
        queues.insert(intent.reply_to.queue.to_vec());
        assert_ne!(
            intent.reply_to.mailbox.to_vec(),
            members[0].handle.peer_id().to_bytes()
        );
    }
    assert_eq!(
        (signers.len(), queues.len()),
        (12, 12),
        "nothing shared between members"
    );
    for holder in [&v, &members[0]] {
        let stored = files(&holder.dir);
        for member in members.iter().filter(|m| m.dir != holder.dir) {
            for (what, needle) in identifying_bytes(member) {
                if what.starts_with("port") {
                    continue;
                }
                let found = stored.iter().find(|(_, bytes)| contains(bytes, &needle));
                assert!(
                    found.is_none(),
                    "{} holds {}'s {what}: {:?}",
                    holder.name,
                    member.name,
                    found.map(|f| &f.0)
                );
            }
        }
    }

    // The last member leaves before ordering: the count drops everywhere.
    members[11].handle.leave_group(&group).await.unwrap();
    count(&v, &group, 11).await;
    count(&members[0], &group, 11).await;

    // Nine accept: below the minimum nothing is confirmed, not even by hand.
    let mut rels = Vec::new();
    for (member, id) in members.iter().zip(&intents).take(9) {
        let offer = offers(member, id)[0].0.id();
        rels.push(member.handle.accept(&offer, false, true).await.unwrap());
    }
    for (member, rel) in members.iter().zip(&rels) {
        eventually("the accept reaches the vendor", || async {
            detail(&v, rel).map(|_| ())
        })
        .await;
        assert_eq!(
            detail(member, rel).unwrap().summary.state.stage,
            Stage::Accepted
        );
    }
    let by_hand = v
        .handle
        .relationship_write(&rels[0], Draft::Order)
        .await
        .unwrap_err();
    assert!(
        by_hand.to_string().contains("binds once 10 members"),
        "{by_hand}"
    );
    assert_eq!(
        detail(&v, &rels[0]).unwrap().summary.state.stage,
        Stage::Accepted
    );

    // The tenth: all ten are confirmed and countersigned; the eleventh at once.
    for n in 9..11 {
        let offer = offers(&members[n], &intents[n])[0].0.id();
        rels.push(members[n].handle.accept(&offer, false, true).await.unwrap());
    }
    for (member, rel) in members.iter().zip(&rels) {
        let agreed = settled(member, &v, rel, 3).await;
        assert_eq!(agreed.summary.state.stage, Stage::Agreed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_short_of_its_minimum_at_the_deadline_is_declined() {
    let mut net = Net::new();
    let three = VendorConfig {
        group_min: Some(3),
        ..vendor_config("v", "travel")
    };
    let [s, v] = net
        .line([
            person("s"),
            vendor_with("v", &catalog("travel", "Minibus seat", "18.00"), three),
        ])
        .await;
    let a = net.add(person("a").light(), &[&s]).await;
    let b = net.add(person("b").light(), &[&s]).await;
    // The group's intents, and so the vendor's offers to them, run out in 20 s.
    let request = vrm::node::CastRequest {
        lifetime_secs: 20,
        ..cast_request("travel", "A minibus from the station", "20")
    };
    let (first, group) = a.handle.start_group(request, 3).await.unwrap();
    let group = hex::encode(group);
    count(&b, &group, 1).await;
    let second = b.handle.join_group(&group).await.unwrap();
    let mut rels = Vec::new();
    for (member, id) in [(&a, first), (&b, second)] {
        offers_arrive(member, &id, 1).await;
        let offer = offers(member, &id)[0].0.id();
        rels.push(member.handle.accept(&offer, false, true).await.unwrap());
    }
    for (member, rel) in [&a, &b].into_iter().zip(&rels) {
        let declined = eventually_within(
            std::time::Duration::from_secs(60),
            "the decline at the deadline",
            || async { detail(member, rel).filter(|d| d.summary.state.stage == Stage::Declined) },
        )
        .await;
        let text = &declined.log.last().unwrap().text;
        assert!(
            text.contains("needed 3 members") && text.contains("2 accepted"),
            "{text}"
        );
        let at_vendor = detail(&v, rel).unwrap().summary.state.stage;
        assert_eq!(at_vendor, Stage::Declined, "the vendor's log says the same");
    }
}
