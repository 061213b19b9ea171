//! The outbox planner against a real store, without a network: entries planned from what
//! the store queued, tried with backoff, given up at their own expiry with what that means
//! for their subject, and never brought back once a withdrawal removed them.

use ed25519_dalek::SigningKey;
use vrm::node::action::{Action, Publisher, Trigger};
use vrm::node::events::{NodeEvent, Stats};
use vrm::node::outbox::{MAILBOX_UNREACHABLE, MAX_MAILBOX_FAILURES, Outbox, backoff_secs};
use vrm::proto::sealed::{OFFER_INFO, ReplyKey};
use vrm::proto::service::{MailboxRequest, UNAVAILABLE};
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
        reply_to: ReplyTo::new(
            &peer,
            &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
            [n; 16],
            reply_key(n).public(),
        ),
        group: None,
    }
}

/// The reply key of intent `n`.
fn reply_key(n: u8) -> ReplyKey {
    ReplyKey::derive(&[n; 32])
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

/// The key `wanted` is held under once received from its persona (`persona(id[0])`).
fn held(wanted: &Intent) -> vrm::store::IntentKey {
    let signer = persona(wanted.id[0]).verifying_key().to_bytes();
    vrm::store::IntentKey::received(&signer, &wanted.id)
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
        inbox: None,
        group: None,
    };
    let envelope = Envelope::seal(&body, &vendor);
    assert!(matches!(
        store.receive_intent(from, wanted, NOW).unwrap(),
        vrm::store::ReceivedIntent::Stored | vrm::store::ReceivedIntent::Replay
    ));
    let key = vrm::store::IntentKey::of_received(from, wanted);
    outbox.add(
        store
            .record_offer_made(&key, wanted, &envelope, NOW)
            .unwrap(),
    );
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
            Action::Deposit { outgoing, .. } => Some(*outgoing),
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

/// Also: an attempt held back for pace (a light node's service nodes are all at their
/// limit) is no failure: the entry is due again at the next poll, its backoff not grown.
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
    outbox.postpone(&id, NOW);
    assert_eq!(
        outbox.plan(&id).unwrap().attempts,
        0,
        "postponed, not counted"
    );
    assert_eq!(
        published(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![id],
        "due again at once"
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
    outbox.add(*queued);
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
    outbox.failed(&offer_id, NOW + 100);

    let second = outbox.poll(&store, NOW + 1000, &Trigger::Timer);
    let mut gone = expired(&second);
    gone.sort();
    let mut want = vec![long_env.id().to_hex(), offer_id.to_hex()];
    want.sort();
    assert_eq!(gone, want);
    assert_eq!(store.outbox_len(), 0);
    let offers = store.offers_for(&held(&long)).unwrap();
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
    assert!(store.record_withdrawal(&held(&wanted), NOW).unwrap());
    assert!(sent(&outbox.poll(&store, NOW, &Trigger::Timer)).is_empty());
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(
        store.offers_for(&held(&wanted)).unwrap()[0].delivery,
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
    let events = outbox.answered(&store, &stats, &good.id(), Ok(()), NOW + 1);
    assert!(matches!(
        &events[..],
        [Action::Emit(NodeEvent::OfferDelivered { .. })]
    ));
    assert_eq!(
        store.offers_for(&held(&other)).unwrap()[0].delivery,
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
    let refused = Err("too-large".to_string());
    let events = outbox.answered(&store, &stats, &made.id(), refused, NOW + 1);
    assert!(matches!(
        &events[..],
        [Action::Emit(NodeEvent::OfferRefused { .. })]
    ));
    assert_eq!(
        store.offers_for(&held(&wanted)).unwrap()[0].delivery,
        Delivery::Refused {
            code: "too-large".into()
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
    let busy = Err(UNAVAILABLE.to_string());
    assert!(
        outbox
            .answered(&store, &stats, &made.id(), busy, NOW)
            .is_empty()
    );
    assert_eq!(store.outbox_len(), 1, "kept");
    assert_eq!(
        store.offers_for(&held(&wanted)).unwrap()[0].delivery,
        Delivery::Pending
    );
    assert!(sent(&outbox.poll(&store, NOW, &Trigger::Timer)).is_empty());
    assert_eq!(
        sent(&outbox.poll(&store, NOW + backoff_secs(1), &Trigger::Timer)),
        vec![made.id()],
        "tried again"
    );
}

/// The deposit is the offer sealed to the intent's reply key, bound to its queue, and goes
/// to the mailbox the intent names at the one address it gives.
#[test]
fn an_offer_is_deposited_sealed_to_the_intents_reply_key_in_its_queue() {
    let (_dir, store) = store();
    let mut outbox = Outbox::default();
    let wanted = intent(9, 3600);
    let from = Envelope::seal(&wanted, &persona(9));
    let made = offer(&store, &mut outbox, &wanted, &from);
    let actions = outbox.poll(&store, NOW, &Trigger::Timer);
    let [
        Action::Deposit {
            peer,
            addr,
            request: MailboxRequest::Deposit { queue, sealed },
            outgoing,
        },
    ] = &actions[..]
    else {
        panic!("one deposit: {actions:?}");
    };
    assert_eq!(*outgoing, made.id());
    assert_eq!(peer.to_bytes(), wanted.reply_to.mailbox.to_vec());
    assert_eq!(addr.to_vec(), wanted.reply_to.addr.to_vec());
    assert_eq!(queue, &wanted.reply_to.queue);
    let opened = reply_key(9).open(OFFER_INFO, queue, sealed).unwrap();
    assert_eq!(opened, made.as_bytes());
    assert!(
        reply_key(8).open(OFFER_INFO, queue, sealed).is_err(),
        "only the intent's key opens it"
    );
}

/// A mailbox that does not answer holds back every entry for it together, and after
/// `MAX_MAILBOX_FAILURES` rounds they are all given up: however many intents name it, it
/// costs one attempt per entry per round, and a bounded number of rounds.
#[test]
fn a_mailbox_that_never_answers_costs_a_bounded_number_of_rounds() {
    let (_dir, store) = store();
    let stats = Stats::default();
    let mut outbox = Outbox::default();
    // Intents 20..23 all name the same mailbox (the peer of seed 1).
    let mut offers = Vec::new();
    for n in 20..23u8 {
        let mut wanted = intent(n, 86_400);
        wanted.reply_to = intent(1, 86_400).reply_to;
        let from = Envelope::seal(&wanted, &persona(n));
        offers.push((
            held(&wanted),
            offer(&store, &mut outbox, &wanted, &from).id(),
        ));
    }
    let mut now = NOW;
    let mut attempts = 0;
    for round in 1..=MAX_MAILBOX_FAILURES {
        let tried = sent(&outbox.poll(&store, now, &Trigger::Timer));
        assert_eq!(tried.len(), 3, "round {round}: every entry once");
        attempts += tried.len();
        for id in &tried {
            outbox.failed(id, now);
        }
        assert!(
            sent(&outbox.poll(&store, now + backoff_secs(round) - 1, &Trigger::Timer)).is_empty(),
            "round {round}: all wait for the mailbox's backoff"
        );
        now += backoff_secs(round);
    }
    let last = outbox.poll(&store, now, &Trigger::Timer);
    assert!(sent(&last).is_empty(), "given up: {last:?}");
    assert_eq!(attempts, 3 * MAX_MAILBOX_FAILURES as usize);
    assert_eq!(store.outbox_len(), 0);
    for (intent, _) in &offers {
        assert_eq!(
            store.offers_for(intent).unwrap()[0].delivery,
            Delivery::Refused {
                code: MAILBOX_UNREACHABLE.into()
            }
        );
    }
    assert!(
        outbox
            .answered(&store, &stats, &offers[0].1, Ok(()), now)
            .is_empty()
    );

    // The mailbox stays given up: a later offer to it is refused at once, never tried.
    let mut late = intent(23, 86_400);
    late.reply_to = intent(1, 86_400).reply_to;
    let from = Envelope::seal(&late, &persona(23));
    offer(&store, &mut outbox, &late, &from);
    assert!(sent(&outbox.poll(&store, now, &Trigger::Timer)).is_empty());
    assert_eq!(
        store.offers_for(&held(&late)).unwrap()[0].delivery,
        Delivery::Refused {
            code: MAILBOX_UNREACHABLE.into()
        }
    );
}

/// A new offer for a mailbox that just failed waits for that mailbox's backoff, not its own
/// (it would otherwise be due at once), unless the mailbox connects.
#[test]
fn a_new_offer_waits_for_its_mailboxs_backoff_unless_the_mailbox_connects() {
    let (_dir, store) = store();
    let mut outbox = Outbox::default();
    let shared = intent(1, 86_400).reply_to;
    let mut first = intent(30, 86_400);
    first.reply_to = shared.clone();
    let from = Envelope::seal(&first, &persona(30));
    let failed = offer(&store, &mut outbox, &first, &from).id();
    assert_eq!(
        sent(&outbox.poll(&store, NOW, &Trigger::Timer)),
        vec![failed]
    );
    outbox.failed(&failed, NOW);

    let mut second = intent(31, 86_400);
    second.reply_to = shared.clone();
    let from = Envelope::seal(&second, &persona(31));
    let fresh = offer(&store, &mut outbox, &second, &from).id();
    assert!(
        sent(&outbox.poll(&store, NOW, &Trigger::Timer)).is_empty(),
        "the mailbox is backing off"
    );
    let mailbox = libp2p::PeerId::from_bytes(&shared.mailbox).unwrap();
    let other = libp2p::PeerId::random();
    assert!(sent(&outbox.poll(&store, NOW, &Trigger::Peer(other))).is_empty());
    let mut hurried = sent(&outbox.poll(&store, NOW, &Trigger::Peer(mailbox)));
    hurried.sort();
    let mut both = vec![failed, fresh];
    both.sort();
    assert_eq!(hurried, both, "the mailbox connected");
}
