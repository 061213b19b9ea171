//! The outbox planner against a real store, without a network: entries planned from what
//! the store queued, tried with backoff, given up at their own expiry with what that means
//! for their subject, and never brought back once a withdrawal removed them.

use ed25519_dalek::SigningKey;
use vrm::node::action::{Action, Publisher, Trigger};
use vrm::node::events::{NodeEvent, Stats};
use vrm::node::network::DirectResponse;
use vrm::node::outbox::{Outbox, backoff_secs};
use vrm::proto::*;
use vrm::store::{Delivery, Store, WithdrawOwn};

const NOW: u64 = 1_800_000_000;

fn intent(n: u8, lifetime: u64) -> Intent {
    let peer = libp2p::identity::Keypair::ed25519_from_bytes([n; 32])
        .unwrap()
        .public()
        .to_peer_id();
    Intent {
        id: [n; 16].into(),
        category: "books".into(),
        subcategory: None,
        text: format!("book {n}"),
        constraints: Constraints::default(),
        terms: vec![],
        created: NOW,
        expires: NOW + lifetime,
        reply_to: ReplyTo {
            peer: peer.to_bytes().into(),
            addrs: vec![],
        },
    }
}

fn persona(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 8 << 20).unwrap();
    (dir, store)
}

/// Casts intent `n` and plans its publication.
fn cast(store: &Store, outbox: &mut Outbox, n: u8, lifetime: u64) -> (Envelope, Intent) {
    let body = intent(n, lifetime);
    let envelope = Envelope::seal(&body, &persona(n));
    outbox.add(store.cast(&envelope, &body, NOW).unwrap());
    (envelope, body)
}

/// A vendor's offer to `wanted`, recorded and planned.
fn offer(store: &Store, outbox: &mut Outbox, wanted: &Intent, from: &Envelope) -> Envelope {
    let vendor = SigningKey::from_bytes(&[200; 32]);
    let body = Offer {
        intent: wanted.id,
        persona: from.signer().to_bytes().into(),
        vendor: vendor.verifying_key().to_bytes().into(),
        items: vec![],
        text: String::new(),
        created: NOW,
        valid_until: wanted.expires,
        accepted_terms: vec![],
    };
    let envelope = Envelope::seal(&body, &vendor);
    assert!(matches!(
        store.receive_intent(from, wanted, NOW).unwrap(),
        vrm::store::ReceivedIntent::Stored | vrm::store::ReceivedIntent::Replay
    ));
    outbox.add(store.record_offer_made(wanted, &envelope, NOW).unwrap());
    envelope
}

fn published(actions: &[Action]) -> Vec<MessageId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish {
                by: Publisher::Outbox(id),
                ..
            } => Some(*id),
            _ => None,
        })
        .collect()
}

fn sent(actions: &[Action]) -> Vec<MessageId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { outgoing, .. } => Some(*outgoing),
            _ => None,
        })
        .collect()
}

fn expired(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit(NodeEvent::OutboxExpired { message }) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_failed_publication_is_retried_after_its_backoff_and_removed_once_published() {
    let (_dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    let (envelope, _) = cast(&store, &mut outbox, 1, 3600);
    let id = envelope.id();

    assert_eq!(
        published(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![id]
    );
    outbox.published(&store, &stats, &id, Err("no peers".into()));
    assert_eq!(
        outbox.plan(&id).unwrap().next_attempt,
        NOW + backoff_secs(1)
    );
    let retry = NOW + backoff_secs(1);
    assert!(published(&outbox.poll(&store, retry - 1, &Trigger::Timer)).is_empty());
    assert_eq!(
        published(&outbox.poll(&store, retry, &Trigger::Timer)),
        vec![id]
    );
    outbox.published(&store, &stats, &id, Err("no peers".into()));
    assert_eq!(
        outbox.plan(&id).unwrap().next_attempt,
        retry + backoff_secs(2),
        "the wait doubles"
    );
    let topic = Trigger::Topic(intent_topic("books"));
    assert_eq!(
        published(&outbox.poll(&store, retry + 1, &topic)),
        vec![id],
        "a subscriber on its topic hurries it"
    );
    let done = outbox.published(&store, &stats, &id, Ok(()));
    assert!(matches!(
        &done[..],
        [Action::Emit(NodeEvent::Published { .. })]
    ));
    assert_eq!(store.outbox_len(), 0);
    assert!(outbox.is_empty());
    assert_eq!(stats.get("published"), 1);
}

#[test]
fn a_withdrawal_that_races_a_retry_never_resurrects_the_publication() {
    let (dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    let (envelope, body) = cast(&store, &mut outbox, 2, 3600);
    let publication = envelope.id();
    // The planner takes the publication out for an attempt...
    assert_eq!(
        published(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![publication]
    );
    // ...the person withdraws meanwhile (the handle's transaction, beside the loop)...
    let withdraw = IntentWithdraw {
        intent: body.id,
        created: NOW + 1,
    };
    let withdrawal = Envelope::seal(&withdraw, &persona(2));
    let WithdrawOwn::Withdrawn { queued, .. } =
        store.withdraw_own(&body.id, &withdrawal, NOW + 1).unwrap()
    else {
        panic!("not withdrawn");
    };
    // ...and only then does the attempt fail and ask for a retry.
    outbox.published(&store, &stats, &publication, Err("no peers".into()));
    outbox.add(queued);
    let later = outbox.poll(&store, NOW + 60, &Trigger::Timer);
    assert_eq!(
        published(&later),
        vec![withdrawal.id()],
        "only the withdrawal goes out"
    );
    assert!(outbox.plan(&publication).is_none(), "the planner let it go");
    let ids: Vec<MessageId> = store.outgoing().unwrap().iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![withdrawal.id()]);
    drop(store);
    let reopened = Store::open(dir.path(), 8 << 20).unwrap();
    let planned = Outbox::load(&reopened).unwrap();
    assert!(
        planned.plan(&publication).is_none(),
        "not after a restart either"
    );
    assert!(
        planned.plan(&withdrawal.id()).is_some(),
        "the withdrawal is planned"
    );
}

#[test]
fn each_subject_expires_at_its_own_time_with_its_own_consequence() {
    let (_dir, store) = store();
    let mut outbox = Outbox::default();
    let (short_env, _) = cast(&store, &mut outbox, 3, 100);
    let (long_env, long) = cast(&store, &mut outbox, 4, 1000);
    let offer_env = offer(&store, &mut outbox, &long, &long_env);
    let offer_id = offer_env.id();

    let first = outbox.poll(&store, NOW + 100, &Trigger::Timer);
    assert_eq!(expired(&first), vec![short_env.id().to_hex()]);
    assert_eq!(sent(&first), vec![offer_id], "the offer is still tried");
    outbox.failed(&offer_id);

    let second = outbox.poll(&store, NOW + 1000, &Trigger::Timer);
    let mut gone = expired(&second);
    gone.sort();
    let mut want = vec![long_env.id().to_hex(), offer_id.to_hex()];
    want.sort();
    assert_eq!(gone, want);
    assert_eq!(store.outbox_len(), 0);
    let offers = store.offers_for(&long.id).unwrap();
    assert_eq!(
        offers[0].delivery,
        Delivery::Expired,
        "an offer given up is marked expired"
    );
}

#[test]
fn an_offer_to_a_withdrawn_intent_is_dropped_as_refused_and_an_answer_settles_the_other() {
    let (_dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    let wanted = intent(5, 3600);
    let from = Envelope::seal(&wanted, &persona(5));
    let doomed = offer(&store, &mut outbox, &wanted, &from);
    assert!(store.record_withdrawal(&wanted.id, NOW).unwrap());
    assert!(sent(&outbox.poll(&store, NOW, &Trigger::Timer)).is_empty());
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(
        store.offers_for(&wanted.id).unwrap()[0].delivery,
        Delivery::Refused {
            code: "intent-withdrawn".into()
        }
    );
    assert!(outbox.plan(&doomed.id()).is_none());

    let other = intent(6, 3600);
    let other_from = Envelope::seal(&other, &persona(6));
    let good = offer(&store, &mut outbox, &other, &other_from);
    assert_eq!(
        sent(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![good.id()]
    );
    assert!(
        sent(&outbox.poll(&store, NOW + 100, &Trigger::Timer)).is_empty(),
        "not again while in flight"
    );
    let ok = DirectResponse {
        ok: true,
        error: None,
    };
    let events = outbox.answered(&store, &stats, &good.id(), ok, NOW + 1);
    assert!(matches!(
        &events[..],
        [Action::Emit(NodeEvent::OfferDelivered { .. })]
    ));
    assert_eq!(
        store.offers_for(&other.id).unwrap()[0].delivery,
        Delivery::Delivered { at: NOW + 1 }
    );
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(stats.get("offers-delivered"), 1);
}

#[test]
fn a_refusal_settles_the_offer_as_refused_and_it_is_not_sent_again() {
    let (_dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    let wanted = intent(8, 3600);
    let from = Envelope::seal(&wanted, &persona(8));
    let made = offer(&store, &mut outbox, &wanted, &from);
    assert_eq!(
        sent(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![made.id()]
    );
    assert!(!outbox.is_empty(), "planned while in flight");
    let refused = DirectResponse {
        ok: false,
        error: Some("wrong-persona".into()),
    };
    let events = outbox.answered(&store, &stats, &made.id(), refused, NOW + 1);
    assert!(matches!(
        &events[..],
        [Action::Emit(NodeEvent::OfferRefused { .. })]
    ));
    assert_eq!(
        store.offers_for(&wanted.id).unwrap()[0].delivery,
        Delivery::Refused {
            code: "wrong-persona".into()
        }
    );
    assert_eq!(store.outbox_len(), 0);
    assert!(outbox.is_empty(), "nothing left to plan");
    assert!(sent(&outbox.poll(&store, NOW + 3600, &Trigger::Timer)).is_empty());
}

#[test]
fn a_receiver_that_cannot_store_now_gets_the_offer_again_after_the_backoff() {
    let (_dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    let wanted = intent(7, 3600);
    let from = Envelope::seal(&wanted, &persona(7));
    let made = offer(&store, &mut outbox, &wanted, &from);
    assert_eq!(
        sent(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![made.id()]
    );
    let busy = DirectResponse {
        ok: false,
        error: Some(vrm::node::network::UNAVAILABLE.into()),
    };
    assert!(
        outbox
            .answered(&store, &stats, &made.id(), busy, NOW)
            .is_empty()
    );
    assert_eq!(store.outbox_len(), 1, "kept");
    assert_eq!(
        store.offers_for(&wanted.id).unwrap()[0].delivery,
        Delivery::Pending
    );
    assert!(sent(&outbox.poll(&store, NOW, &Trigger::Timer)).is_empty());
    assert_eq!(
        sent(&outbox.poll(&store, NOW + backoff_secs(1), &Trigger::Timer)),
        vec![made.id()],
        "tried again"
    );
}
