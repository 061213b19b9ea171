//! End-to-end flows between real nodes (libp2p over TCP on 127.0.0.1, ephemeral ports, sled
//! stores in temp dirs), in one process.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use vrm::config::Role;
use vrm::node::NodeEvent;
use vrm::proto::{SHARDS, intent_topic, shard_of};
use vrm::store::Delivery;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_of_two_persons_and_four_vendors() {
    let mut net = Net::new();
    // P1 - T1 - B1 - T2 - B2 - P2: travel vendors T*, books vendors B*, never adjacent to
    // their own kind, so every message crosses nodes that only relay it.
    let [p1, t1, b1, t2, b2, p2] = net
        .line([
            person("p1"),
            vendor("t1", "travel", "100.00"),
            vendor("b1", "books", "10.00"),
            vendor("t2", "travel", "120.00"),
            vendor("b2", "books", "12.00"),
            person("p2"),
        ])
        .await;

    let started = Instant::now();
    let trip = cast(&p1, "travel", "A room in Lisbon", "150").await;
    let book = cast(&p2, "books", "The Dispossessed", "20").await;

    offers_arrive(&p1, &trip, 2).await;
    println!(
        "cast to second offer across the line: {:?}",
        started.elapsed()
    );
    offers_arrive(&p2, &book, 2).await;

    // Each intent reached exactly the vendors of its category.
    assert_eq!(received_intents(&t1), vec![trip]);
    assert_eq!(received_intents(&t2), vec![trip]);
    assert_eq!(received_intents(&b1), vec![book]);
    assert_eq!(received_intents(&b2), vec![book]);
    // Offers reached exactly the caster, and each verifies and names the right vendor and price.
    assert_eq!(offer_count(&p2, &trip), 0);
    assert_eq!(offer_count(&p1, &book), 0);
    let mut travel_prices: Vec<u64> = offers(&p1, &trip)
        .into_iter()
        .map(|(envelope, offer)| {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_stops_at_the_first_hop_and_gets_its_sender_banned() {
    let mut net = Net::new();
    // X - B - C, and P - B: C, a travel vendor, is two hops from X.
    let [b, x, p, c] = net
        .star([
            person("b"),
            person("x"),
            person("p"),
            vendor("c", "travel", "50.00"),
        ])
        .await;

    // The path works: a valid intent from P reaches C through B. C is done with it once P
    // acknowledged C's offer; only then do C's counters stand still.
    let valid = cast(&p, "travel", "A tent pitch", "80").await;
    offers_arrive(&p, &valid, 1).await;
    eventually("c records p's acknowledgement", || async {
        matches!(deliveries(&c)[..], [Delivery::Delivered { .. }]).then_some(())
    })
    .await;
    assert_eq!(received_intents(&c), vec![valid]);
    let c_before = c.handle.stats().snapshot();

    // X publishes that intent with one signature byte flipped.
    let mut bad = intent_envelope(&p, &valid).as_bytes().to_vec();
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
    // One invalid message puts X below the graylist threshold: B bans it.
    eventually("b bans x", || async {
        (b.handle.stats().get("banned") == 1).then_some(())
    })
    .await;
    let x_id = x.handle.peer_id().to_string();
    eventually("x is cut off from b", || async {
        (!connected_peers(&b).await.contains(&x_id)).then_some(())
    })
    .await;

    // Had B forwarded the bad message, C would get it before anything B forwards later: P
    // casts in a category C does not serve, which C only relays and counts as accepted.
    cast(&p, "books", "A field guide to birds", "30").await;
    eventually("c accepts p's next intent", || async {
        (c.handle.stats().get("accepted") > c_before["accepted"]).then_some(())
    })
    .await;
    let mut expected = c_before;
    *expected.get_mut("accepted").unwrap() += 1;
    assert_eq!(
        c.handle.stats().snapshot(),
        expected,
        "c saw something after the bad message"
    );
    assert_eq!(received_intents(&c), vec![valid]);
}

/// A light node's cast that its service node cannot publish yet (no one is on the topic)
/// waits in the outbox, light-pushed again after its backoff, until a vendor is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_no_one_can_hear_yet_reaches_a_vendor_that_connects_later() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let p = net.add(person("p").light(), &[&s]).await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    assert_eq!(outbox_len(&p), 1, "the cast waits in the outbox");
    // Not a wait for anything: the vendor comes a while later, once the outbox has begun
    // backing off.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let v = net.add(vendor("v", "books", "9.90"), &[&s]).await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(received_intents(&v), vec![id]);
    // S kept the intent it could not publish yet, so V may have it by catch-up before P's
    // outbox tries again: the outbox drains at its next try.
    eventually("the cast leaves the outbox", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
}

/// Catch-up: an intent went out while no vendor of its category was online (two service
/// nodes relayed it, the person's outbox is done with it). A vendor that starts afterwards
/// and dials only the other service node gets it from that node's catch-up memory and
/// answers it (it then dials the mailbox, so it is not checked for being settled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_that_starts_after_the_cast_answers_the_open_intent() {
    let mut net = Net::new();
    let s1 = net.add(person("s1"), &[]).await;
    let s2 = net.add(person("s2"), &[&s1]).await;
    let p = net.add(person("p").light(), &[&s1]).await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    eventually("the cast is out (s1 published it to s2)", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
    let v = net
        .add_unsettled(vendor("v", "books", "9.90"), &[&s2])
        .await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(received_intents(&v), vec![id]);
    assert!(
        v.handle.stats().get("caught-up") >= 1,
        "it came by catch-up"
    );
}

/// A light node whose service node went away dials it again when it is back (it lost its
/// only link; nobody can dial a light node), and goes on casting through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_node_dials_its_service_node_again_after_a_restart() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let v = net.add(vendor("v", "books", "9.90"), &[&s]).await;
    let p = net.add(person("p").light().keeping(4), &[&s]).await;
    let s = net.restart_unsettled(s, &[&v]).await;
    let s_id = s.handle.peer_id().to_string();
    eventually("p is connected to s again", || async {
        connected_peers(&p).await.contains(&s_id).then_some(())
    })
    .await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    offers_arrive(&p, &id, 1).await;
}

/// A person's light node bootstrapped to one service node finds others through it by peer
/// exchange (no node runs Kademlia) until it keeps as many as a light node keeps; the
/// service node names service nodes only, never another light node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_node_finds_more_service_nodes_by_peer_exchange() {
    let mut net = Net::new();
    let hub = net.add(person("hub"), &[]).await;
    let mut services = BTreeSet::from([hub.handle.peer_id().to_string()]);
    for n in 0..5 {
        let s = net.add(person(&format!("s{n}")), &[&hub]).await;
        services.insert(s.handle.peer_id().to_string());
    }
    let other = net.add(person("other").light(), &[&hub]).await;
    let p = net.add(person("p").light(), &[&hub]).await;
    // By design this takes a while: a service node is named once it has been connected for
    // 5 s, and answers one request per 5 s.
    let patience = Duration::from_secs(45);
    let peers = eventually_within(patience, "p keeps four service nodes", || async {
        let peers = connected_peers(&p).await;
        (peers.len() >= 4).then_some(peers)
    })
    .await;
    assert!(
        peers.is_subset(&services),
        "service nodes only, not {}: {peers:?}",
        other.handle.peer_id()
    );
    assert!(p.handle.stats().get("exchange-dialed") >= 3);
}

/// The same for a light vendor: it subscribes for what comes, and catches up on what came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_vendor_that_starts_after_the_cast_answers_the_open_intent() {
    let mut net = Net::new();
    let s1 = net.add(person("s1"), &[]).await;
    let s2 = net.add(person("s2"), &[&s1]).await;
    let p = net.add(person("p").light(), &[&s1]).await;
    let travel = cast(&p, "travel", "Two nights in Lisbon", "300").await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    eventually("both casts are out", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
    let v = net
        .add_unsettled(vendor("v", "books", "9.90").light(), &[&s2])
        .await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(received_intents(&v), vec![id], "not {travel:?}");
    assert!(v.handle.stats().get("caught-up") >= 1);
}

/// A light node hands over more than its service node takes in one burst (120 casts, then
/// their 120 withdrawals, as fast as the handle goes): the light node paces itself, so the
/// service node refuses none for its rate limit and every withdrawal reaches the vendor
/// within the pace, none left waiting out a backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_nodes_backlog_goes_out_at_its_service_nodes_pace() {
    let mut net = Net::new();
    let v = net.add(vendor("v", "books", "9.90"), &[]).await;
    let p = net.add(person("p").light(), &[&v]).await;
    let mut ids = Vec::new();
    for n in 0..120 {
        ids.push(cast(&p, "books", &format!("book number {n}"), "30").await);
    }
    for id in &ids {
        p.handle.withdraw(id).await.unwrap();
    }
    eventually("every withdrawal handed over", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
    let open: Vec<_> = received_intents(&v)
        .into_iter()
        .filter(|id| !intent_withdrawn(&v, id))
        .collect();
    assert!(open.is_empty(), "open at the vendor: {open:?}");
    assert_eq!(v.handle.stats().get("light-push-rate-limited"), 0);
}

/// A person's node that is a service node does not publish its own intent where a vendor
/// neighbour could see it start: it hands it to a service node that is no vendor's, as a
/// light node would, and publishes itself only when none is connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_node_hands_its_own_intent_to_a_neutral_service_node() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let p = net.add(person("p"), &[&s]).await;
    // The vendor comes last: its profile, published as it connects, reaches p.
    let v = net.add(vendor("v", "books", "9.90"), &[&s, &p]).await;
    eventually("p knows v's profile", || async {
        (!profiles(&p).is_empty()).then_some(())
    })
    .await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(s.handle.stats().get("light-push-served"), 1, "through s");
    assert_eq!(
        v.handle.stats().get("light-push-served"),
        0,
        "not through v"
    );
}

/// A light vendor subscribes only at service nodes that carry its category's shard (one
/// that does not would push it nothing from gossip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_vendor_subscribes_where_its_shard_is_carried() {
    let mut net = Net::new();
    let elsewhere: Vec<u8> = (0..SHARDS).filter(|s| *s != shard_of("books")).collect();
    let other = net.add(person("other").carrying(&elsewhere), &[]).await;
    let all = net.add(person("all"), &[]).await;
    let v = net
        .add(vendor("v", "books", "9.90").light(), &[&other, &all])
        .await;
    eventually("v is subscribed at the node carrying its shard", || async {
        (all.handle.stats().get("filter-subscribed") == 1).then_some(())
    })
    .await;
    // Renewals run every half second: give one more a chance to go wrong.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(other.handle.stats().get("filter-subscribed"), 0);
    assert_eq!(
        v.handle.service_nodes().len(),
        2,
        "both are v's service nodes"
    );
}

/// A service node connected to more service nodes than its target drops the ones it needs
/// least, and says why; its light clients keep their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_node_over_its_target_drops_service_peers_but_not_light_clients() {
    let mut net = Net::new();
    let hub = net.add(person("hub").keeping(2), &[]).await;
    let light = net.add(person("light").light(), &[&hub]).await;
    for name in ["a", "b", "c", "d"] {
        net.add_unsettled(person(name), &[&hub]).await;
    }
    let kept = eventually("hub is down to its target", || async {
        let peers = hub.handle.peers().await.unwrap();
        let services = peers.iter().filter(|p| p.service).count();
        (services == 2).then_some(peers)
    })
    .await;
    let light_id = light.handle.peer_id().to_string();
    assert!(
        kept.iter().any(|p| p.peer == light_id),
        "the light client stays"
    );
    let counted: u64 = ["redundant", "random", "low-score"]
        .iter()
        .map(|r| hub.handle.stats().get(&format!("pruned:{r}")))
        .sum();
    assert!(counted >= 2, "each drop counted with its reason: {counted}");
}

/// A light node keeps the service node holding its mailbox and a few others; the rest,
/// which gossip would keep connected for good, it drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_node_keeps_its_mailbox_and_a_few_service_nodes() {
    let mut net = Net::new();
    let mut services = Vec::new();
    for name in ["s1", "s2", "s3", "s4", "s5", "s6"] {
        services.push(net.add(person(name), &[]).await);
    }
    let dial: Vec<&TestNode> = services.iter().collect();
    let l = net.add_unsettled(person("l").light(), &dial).await;
    let id = cast(&l, "books", "Any Le Guin novel", "30").await;
    let stored = l.handle.intent(&id).unwrap().unwrap();
    let mailbox = libp2p::PeerId::from_bytes(&stored.intent.reply_to.mailbox).unwrap();
    eventually("l is down to its mailbox and four others", || async {
        let peers = connected_peers(&l).await;
        let pruned =
            l.handle.stats().get("pruned:random") + l.handle.stats().get("pruned:redundant");
        (pruned >= 1 && peers.len() == vrm::node::pruning::LIGHT_TARGET_PEERS + 1).then_some(())
    })
    .await;
    assert!(
        connected_peers(&l).await.contains(&mailbox.to_string()),
        "the mailbox stays"
    );
}

/// Intents travel on shard topics. A vendor's node that carries no shard beyond its own
/// joins only its category's shard: it gets its intents, and never sees (nor relays) those
/// of other shards, which reach their vendors through a service node carrying every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_that_carry_only_their_own_shard_get_their_intents_and_no_others() {
    assert_ne!(shard_of("travel"), shard_of("books"));
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let t = net
        .add(vendor("t", "travel", "90").carrying(&[]), &[&s])
        .await;
    let b = net
        .add(vendor("b", "books", "9.90").carrying(&[]), &[&s])
        .await;
    assert_eq!(t.handle.shards(), vec![shard_of("travel")]);
    assert_eq!(s.handle.shards().len(), usize::from(SHARDS));
    let p = net.add(person("p").light(), &[&s]).await;
    assert!(p.handle.shards().is_empty());
    let trip = cast(&p, "travel", "Two nights in Lisbon", "300").await;
    let mut books = Vec::new();
    for n in 0..5 {
        books.push(cast(&p, "books", &format!("Le Guin novel number {n}"), "30").await);
    }
    offers_arrive(&p, &trip, 1).await;
    for book in &books {
        offers_arrive(&p, book, 1).await;
    }
    assert_eq!(received_intents(&t), vec![trip]);
    assert_eq!(received_intents(&b).len(), 5);
    // Had t joined the books shard, it would have accepted the 5 book intents as a relay
    // (as well as its own intent and the vendor profiles on the directory).
    let accepted = t.handle.stats().get("accepted");
    assert!(accepted < 5, "t accepted {accepted} messages");
    // `vrm peers`: who dialed whom, and which shards each peer joined.
    let id = |n: &TestNode| n.handle.peer_id().to_string();
    let at_s = s.handle.peers().await.unwrap();
    let t_at_s = at_s.iter().find(|p| p.peer == id(&t)).unwrap();
    assert!(t_at_s.inbound && t_at_s.service);
    assert_eq!(t_at_s.shards, vec![shard_of("travel")]);
    let at_t = t.handle.peers().await.unwrap();
    let s_at_t = at_t.iter().find(|p| p.peer == id(&s)).unwrap();
    assert!(!s_at_t.inbound && s_at_t.service);
    assert_eq!(s_at_t.shards, (0..SHARDS).collect::<Vec<u8>>());
}

/// Service nodes announce the shards they carry as Kademlia provider records; a vendor
/// bootstrapped to a hub that carries none of its shard looks up that shard's providers
/// (it has fewer than three peers on it) and connects to them, and the intents cast at
/// one of them reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_finds_the_carriers_of_its_shard_through_provider_records() {
    let books = shard_of("books");
    let elsewhere = (books + 1) % SHARDS;
    let mut net = Net::new();
    let carrier = |name: &str| person(name).carrying(&[books]).with_kademlia();
    let hub = net
        .add_unsettled(person("hub").carrying(&[elsewhere]).with_kademlia(), &[])
        .await;
    let c1 = net.add_unsettled(carrier("c1"), &[&hub]).await;
    let c2 = net.add_unsettled(carrier("c2"), &[&hub]).await;
    let v = net
        .add_unsettled(
            vendor("v", "books", "9.90").carrying(&[]).with_kademlia(),
            &[&hub],
        )
        .await;
    let id = |n: &TestNode| n.handle.peer_id().to_string();
    eventually("v found both carriers of its shard", || async {
        let peers = connected_peers(&v).await;
        let found = v.handle.stats().get("shard-providers-found");
        (peers.contains(&id(&c1)) && peers.contains(&id(&c2)) && found >= 2).then_some(())
    })
    .await;
    // Two carriers are fewer than it wants: it keeps looking, and what it finds are the
    // carriers (the hub announced another shard, and v itself is not counted).
    assert!(v.handle.stats().get("shard-lookups") >= 1);
    let p = net.add(person("p").light(), &[&c2]).await;
    let book = cast(&p, "books", "Any Le Guin novel", "30").await;
    offers_arrive(&p, &book, 1).await;
    assert_eq!(received_intents(&v), vec![book]);
}

/// A vendor behind a NAT runs as a light node: it joins no intent mesh, subscribes to its
/// category at its service node, which pushes it what a light person hands over there; the
/// vendor answers into the person's mailbox on that service node. The two light nodes never
/// connect, and what the vendor does not serve never reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_vendor_gets_its_categories_intents_by_filter_subscription() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let v = net.add(vendor("v", "books", "9.90").light(), &[&s]).await;
    eventually("v is subscribed at s", || async {
        (s.handle.stats().get("filter-subscribed") == 1).then_some(())
    })
    .await;
    let p = net.add(person("p").light(), &[&s]).await;
    let travel = cast(&p, "travel", "Two nights in Lisbon", "300").await;
    let id = cast(&p, "books", "Any Le Guin novel", "30").await;
    offers_arrive(&p, &id, 1).await;
    eventually("s took both intents", || async {
        (s.handle.stats().get("light-push-served") >= 2).then_some(())
    })
    .await;
    assert_eq!(received_intents(&v), vec![id], "not {travel:?}");
    assert_eq!(s.handle.stats().get("filter-pushed"), 1);
    assert_eq!(
        connected_peers(&v).await,
        [s.handle.peer_id().to_string()].into(),
        "v knows only s"
    );
    eventually(
        "s knows v's profile, which v gossiped as a light node",
        || async { (!profiles(&s).is_empty()).then_some(()) },
    )
    .await;
}

/// `role = "auto"`: a node starts light; once AutoNAT (its service node dialing it back)
/// finds it reachable, it becomes a service node on the same address and serves others: a
/// light node publishes through it and keeps its mailbox there, and gets its offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_node_that_autonat_finds_reachable_serves_others() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let a = net.add(person("a").auto(), &[&s]).await;
    assert_eq!(a.handle.role(), Role::Light);
    let before = a.handle.listen_addrs();
    // AutoNAT's first probe comes 15 s after the node starts.
    eventually_within(Duration::from_secs(45), "a is a service node", || async {
        (a.handle.role() == Role::Service).then_some(())
    })
    .await;
    eventually("a listens again, on the same address", || async {
        (a.handle.listen_addrs() == before).then_some(())
    })
    .await;
    let v = net.add(vendor("v", "books", "9.90"), &[&a]).await;
    let l = net.add(person("l").light(), &[&a]).await;
    assert_eq!(l.handle.service_nodes(), vec![a.handle.peer_id()]);
    let id = cast(&l, "books", "Any Le Guin novel", "30").await;
    offers_arrive(&l, &id, 1).await;
    assert_eq!(received_intents(&v), vec![id]);
    assert!(a.handle.mailbox_counts().queues > 0, "l's mailbox is on a");
}

/// The person and the vendor are never online together: the person casts through its
/// service node and stops; a vendor that comes later answers into the person's mailbox on
/// that service node and stops too; the person starts again and finds the offer there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_waits_in_the_mailbox_while_neither_side_is_online() {
    let mut net = Net::new();
    // S serves P's light push and mailbox; R is the one peer that hears the intent then.
    let [s, _r] = net.line([person("s"), person("r")]).await;
    let p = net.add(person("p").light(), &[&s]).await;
    let id = cast(&p, "electronics", "A used ThinkPad", "400").await;
    eventually("intent published", || async {
        (outbox_len(&p) == 0).then_some(())
    })
    .await;
    p.handle.shutdown().await;

    // A vendor joins later and catches up on the open intent from S's catch-up memory.
    let v = net
        .add_unsettled(vendor("v", "electronics", "350.00"), &[&s])
        .await;
    eventually("the offer is in the mailbox", || async {
        (s.handle.mailbox_counts().items == 1).then_some(())
    })
    .await;
    v.handle.shutdown().await;

    // The person comes back, connects to its service node only, and gets the offer.
    let p = net.restart(p, &[&s]).await;
    offers_arrive(&p, &id, 1).await;
    assert_eq!(intent_ids(&p), vec![id], "the person kept the intent");
    eventually(
        "the mailbox is emptied once the offer is stored",
        || async { (s.handle.mailbox_counts().items == 0).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_intent_gets_no_further_offers() {
    let mut net = Net::new();
    let [p, v1] = net.line([person("p"), vendor("v1", "food", "5.00")]).await;
    let id = cast(&p, "food", "Sourdough bread", "8").await;
    offers_arrive(&p, &id, 1).await;
    let intent_envelope = intent_envelope(&p, &id);

    p.handle.withdraw(&id).await.unwrap();
    eventually("the vendor marks it withdrawn", || async {
        intent_withdrawn(&v1, &id).then_some(())
    })
    .await;

    // A vendor that never saw the withdrawal gets the intent late and answers into the
    // mailbox (which cannot tell); the person's node refuses the offer when it arrives.
    let v2 = net.add(vendor("v2", "food", "4.00"), &[&p]).await;
    let x = net.add(person("x"), &[&v2]).await;
    let mut p_events = p.handle.subscribe();
    x.handle
        .publish_raw(&intent_topic("food"), intent_envelope.as_bytes().to_vec())
        .await
        .unwrap();
    let refused = next_event(&mut p_events, "v2's late offer is refused", |e| match e {
        NodeEvent::Rejected { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(refused, "intent-withdrawn");
    assert_eq!(
        offer_count(&p, &id),
        1,
        "no offer stored after the withdrawal"
    );
    // Withdrawing twice is a clear error.
    assert!(p.handle.withdraw(&id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_profiles_spread_and_the_newest_is_kept() {
    let mut net = Net::new();
    let [p, v] = net.line([person("p"), vendor("v", "books", "3.00")]).await;
    let vendor_key = v.handle.vendor_key().unwrap();
    eventually("p stores the profile", || async {
        profiles(&p)
            .into_iter()
            .find(|(key, profile)| *key == vendor_key && profile.name == "v")
    })
    .await;
    assert_eq!(profiles(&p).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_that_runs_out_is_announced_as_expired() {
    let mut net = Net::new();
    let s = net.add(person("s"), &[]).await;
    let p = net.add(person("p"), &[&s]).await;
    let mut events = p.handle.subscribe();
    let mut request = cast_request("books", "Anything by Borges", "20");
    request.lifetime_secs = 1;
    let id = p.handle.cast(request).await.unwrap();
    let expired = next_event(&mut events, "an intent-expired event", |e| match e {
        NodeEvent::IntentExpired { intent } => Some(intent),
        _ => None,
    })
    .await;
    assert_eq!(expired, hex::encode(*id));
}

/// gossipsub forgets the messages it saw when a node restarts; vrm's own replay memory does
/// not. An intent replayed to a restarted vendor reaches vrm's check and is not answered
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_to_a_restarted_vendor_is_not_answered_twice() {
    let mut net = Net::new();
    let [p, v] = net.line([person("p"), vendor("v", "food", "5.00")]).await;
    let id = cast(&p, "food", "Sourdough bread", "8").await;
    offers_arrive(&p, &id, 1).await;
    let replayed = intent_envelope(&p, &id);

    let v = net.restart(v, &[]).await;
    let x = net.add(person("x"), &[&v]).await;
    x.handle
        .publish_raw(&intent_topic("food"), replayed.as_bytes().to_vec())
        .await
        .unwrap();
    // x's own intent comes after the replay on the same path: once v has answered it, the
    // replay had its chance.
    let own = cast(&x, "food", "Rye bread", "8").await;
    offers_arrive(&x, &own, 1).await;
    assert_eq!(
        deliveries(&v).len(),
        2,
        "one offer for p's intent, one for x's"
    );
    assert_eq!(offer_count(&p, &id), 1);
}

/// What `publish_handed_over` publishes (the throughput bench's intents) is taken as a light
/// client's push: a forgery is refused with its code and kept nowhere; a valid intent is
/// kept in the publisher's replay memory (so its catch-up never fetches it back) and reaches
/// the vendor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_handed_over_is_checked_kept_and_relayed() {
    let mut net = Net::new();
    let [s, v] = net.line([person("s"), vendor("v", "garden", "5.00")]).await;
    let intent = garden_intent(7, "Tomato seedlings", &s);
    let persona = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let envelope = vrm::proto::Envelope::seal(&intent, &persona);
    let topic = intent_topic("garden");
    let seen_before = s.handle.counts().seen;

    let mut forged = envelope.as_bytes().to_vec();
    *forged.last_mut().unwrap() ^= 1;
    let refused = s
        .handle
        .publish_handed_over(&topic, forged)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("bad-signature"), "{refused}");
    assert_eq!(s.handle.counts().seen, seen_before, "a forgery is not kept");

    eventually("the intent is relayed", || async {
        let bytes = envelope.as_bytes().to_vec();
        s.handle.publish_handed_over(&topic, bytes).await.ok()
    })
    .await;
    assert_eq!(s.handle.counts().seen, seen_before + 1, "kept once");
    eventually("the vendor receives it", || async {
        received_intents(&v).contains(&intent.id).then_some(())
    })
    .await;
}
