//! The vendor role at work: a task of its own that answers the intents the event loop hands
//! it, from the vendor's program or the catalog ([`crate::vendor_role`] holds the rules),
//! records each decision, and gives the loop the offers to deliver. Because it runs beside
//! the loop, relaying never waits for a vendor's matching, signing or disk writes.
//!
//! ```text
//!  EventLoop ──AnswerInput::Intent──▶ Answering ──Action::Queue(offer)──▶ EventLoop (outbox)
//!                                       │  ▲
//!                        ask (spawned)  ▼  │ ProgramAnswer
//!                                    Responder (the vendor's program)
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::SigningKey;
use libp2p::Multiaddr;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::action::Action;
use super::events::{NodeEvent, Stats};
use super::handle::NodeError;
use crate::clock::unix_now;
use crate::config::VendorConfig;
use crate::identity::Identity;
use crate::proto::{Envelope, Intent};
use crate::ratelimit::RateLimiter;
use crate::store::{IntentKey, Store, StoreError};
use crate::vendor_role::catalog::{CATALOG_FILE, Catalog};
use crate::vendor_role::responder::{Responder, ResponderError, ResponderOffer};
use crate::vendor_role::{self, NoOffer, Seller};

/// Intents per second one persona may have answered by a vendor, after a burst of
/// [`PERSONA_BURST`]. Personas are fresh per intent, so a normal person never comes near.
pub const PERSONA_INTENTS_PER_SEC: f64 = 0.2;
/// Burst allowed per persona.
pub const PERSONA_BURST: u32 = 5;
/// How often the catalog file is checked for changes.
const CATALOG_POLL: Duration = Duration::from_secs(2);
/// Intents waiting for the vendor role; beyond this they wait in the store instead.
pub const QUEUE: usize = 1024;

/// What the loop and the handle ask of the vendor role.
#[derive(Debug)]
pub enum AnswerInput {
    /// Answer this stored intent.
    Intent {
        /// Its envelope.
        envelope: Box<Envelope>,
        /// Its body.
        intent: Box<Intent>,
    },
    /// Reload `catalog.toml` now: the number of items, or why the file was refused.
    ReloadCatalog(oneshot::Sender<Result<usize, String>>),
    /// The node stops: finish (and let go of the store).
    Stop,
}

/// The vendor's program finished with one intent.
struct ProgramAnswer {
    envelope: Envelope,
    intent: Intent,
    result: Result<Option<ResponderOffer>, ResponderError>,
}

/// The vendor role's task.
pub struct Answering {
    config: VendorConfig,
    key: SigningKey,
    catalog: Catalog,
    data_dir: PathBuf,
    catalog_mtime: Option<SystemTime>,
    responder: Option<Arc<Responder>>,
    per_persona: RateLimiter<[u8; 32]>,
    store: Arc<Store>,
    stats: Arc<Stats>,
    events: broadcast::Sender<NodeEvent>,
    to_loop: mpsc::Sender<Action>,
    inbox: Option<(Arc<Identity>, watch::Receiver<Vec<Multiaddr>>)>,
    program_tx: mpsc::Sender<ProgramAnswer>,
    program_rx: mpsc::Receiver<ProgramAnswer>,
    /// Intents with the vendor's program now.
    asked: HashSet<IntentKey>,
}

/// What [`Answering`] needs from the node around it.
pub struct Surroundings {
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// The event stream.
    pub events: broadcast::Sender<NodeEvent>,
    /// The event loop's inbox.
    pub to_loop: mpsc::Sender<Action>,
    /// The node's identity and listen addresses, for the inbox offers name (`None`: the
    /// vendor takes no relationships).
    pub inbox: Option<(Arc<Identity>, watch::Receiver<Vec<Multiaddr>>)>,
}

impl Answering {
    /// The vendor role of the node in `data_dir`: its catalog is loaded from there.
    pub fn new(
        config: VendorConfig,
        key: SigningKey,
        data_dir: PathBuf,
        around: Surroundings,
    ) -> anyhow::Result<Answering> {
        let catalog = Catalog::load(&data_dir)?;
        let responder = config.responder.clone().map(|command| {
            Arc::new(Responder::new(
                command,
                Duration::from_secs(config.responder_timeout_secs),
                config.responder_max_concurrent,
            ))
        });
        let (program_tx, program_rx) = mpsc::channel(64);
        Ok(Answering {
            catalog_mtime: catalog_mtime(&data_dir),
            config,
            key,
            catalog,
            data_dir,
            responder,
            per_persona: RateLimiter::new(PERSONA_INTENTS_PER_SEC, PERSONA_BURST),
            store: around.store,
            stats: around.stats,
            events: around.events,
            to_loop: around.to_loop,
            inbox: around.inbox,
            program_tx,
            program_rx,
            asked: HashSet::new(),
        })
    }

    /// Runs until told to stop. It first answers what the previous run stored but did not
    /// answer: a node killed between storing an intent and answering it finds the intent
    /// here, undecided.
    pub async fn run(mut self, mut inbox: InboxReceiver) {
        let mut catalog_tick = tokio::time::interval(CATALOG_POLL);
        self.catch_up().await;
        loop {
            if inbox.rx.is_empty() && inbox.backlog.swap(false, Ordering::SeqCst) {
                self.catch_up().await;
            }
            tokio::select! {
                input = inbox.rx.recv() => match input {
                    Some(AnswerInput::Intent { envelope, intent }) => {
                        self.intent(*envelope, *intent, Instant::now()).await;
                    }
                    Some(AnswerInput::ReloadCatalog(reply)) => {
                        let _ = reply.send(self.reload_catalog());
                    }
                    Some(AnswerInput::Stop) | None => break,
                },
                Some(done) = self.program_rx.recv() => self.program_answered(done).await,
                _ = catalog_tick.tick() => {
                    if catalog_mtime(&self.data_dir) != self.catalog_mtime {
                        let _ = self.reload_catalog();
                    }
                }
            }
        }
    }

    /// Answers the stored intents that were handed over while the queue was full: every
    /// received, open, undecided one not already with the vendor's program.
    async fn catch_up(&mut self) {
        let waiting = match self.store.undecided_received(unix_now()) {
            Ok(waiting) => waiting,
            Err(e) => {
                warn!("reading the intents left to answer: {e}");
                return;
            }
        };
        for stored in waiting {
            if !self.asked.contains(&stored.key()) {
                self.intent(stored.envelope, stored.intent, Instant::now())
                    .await;
            }
        }
    }

    /// Answers one intent: from the catalog, or, when the vendor has a program, screened
    /// here and asked of the program off this task. An intent already decided, or with the
    /// program now, is left alone: the store's catch-up and the loop's hand-over can both
    /// bring one intent (stored and queued while the catch-up read the store), and it is
    /// answered once. One withdrawn since it was handed over (the hand-over waits for its
    /// batch's flush; the withdrawal may be stored first) is not answered.
    async fn intent(&mut self, envelope: Envelope, intent: Intent, at: Instant) {
        let key = IntentKey::of_received(&envelope, &intent);
        if self.asked.contains(&key) {
            return;
        }
        let settled = self
            .store
            .is_decided(&key)
            .and_then(|decided| Ok(decided || self.store.is_withdrawn(&key)?));
        match settled {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                // Left undecided in the store: the next start answers it.
                warn!("reading the decision on {}: {e}", hex::encode(*intent.id));
                return;
            }
        }
        let now = unix_now();
        if !self.per_persona.allow(&envelope.signer().to_bytes(), at) {
            return self
                .conclude(&key, &intent, Err(NoOffer::RateLimited))
                .await;
        }
        let Some(responder) = self.responder.clone() else {
            let result = self.catalog_answer(&envelope, &intent, now);
            return self.conclude(&key, &intent, result).await;
        };
        if let Err(no) = vendor_role::screen(&self.config, &intent) {
            return self.conclude(&key, &intent, Err(no)).await;
        }
        let input = Responder::input(&envelope, &intent, now);
        self.asked.insert(key);
        let done = self.program_tx.clone();
        tokio::spawn(async move {
            let result = responder.ask(&input).await;
            let _ = done
                .send(ProgramAnswer {
                    envelope,
                    intent,
                    result,
                })
                .await;
        });
    }

    fn catalog_answer(
        &self,
        envelope: &Envelope,
        intent: &Intent,
        now: u64,
    ) -> Result<Envelope, NoOffer> {
        vendor_role::answer(
            &self.config,
            &self.catalog,
            &self.seller(),
            envelope,
            intent,
            now,
        )
    }

    async fn program_answered(&mut self, done: ProgramAnswer) {
        let key = IntentKey::of_received(&done.envelope, &done.intent);
        self.asked.remove(&key);
        let now = unix_now();
        let (envelope, intent) = (&done.envelope, &done.intent);
        let result = match done.result {
            Ok(Some(proposed)) => vendor_role::answer_from_program(
                &self.config,
                &self.seller(),
                envelope,
                intent,
                proposed,
                now,
            ),
            Ok(None) => Err(NoOffer::Declined),
            Err(e) => {
                warn!(
                    "responder failed on intent {}: {e}; answering from the catalog",
                    hex::encode(*intent.id)
                );
                self.stats.bump("responder-failed");
                self.catalog_answer(envelope, intent, now)
            }
        };
        self.conclude(&key, intent, result).await;
    }

    /// Records the decision on an intent; an offer is stored and handed to the loop's
    /// outbox.
    async fn conclude(
        &mut self,
        key: &IntentKey,
        intent: &Intent,
        result: Result<Envelope, NoOffer>,
    ) {
        let intent_hex = hex::encode(*intent.id);
        if let Err(e) = self.record(key, intent, result).await {
            warn!("could not store the answer to {intent_hex}: {e}");
        }
    }

    async fn record(
        &mut self,
        key: &IntentKey,
        intent: &Intent,
        result: Result<Envelope, NoOffer>,
    ) -> Result<(), StoreError> {
        let intent_hex = hex::encode(*intent.id);
        let offer = match result {
            Ok(offer) => offer,
            Err(reason) => {
                debug!("no offer for {intent_hex}: {reason}");
                self.store.record_declined(key, &reason.to_string())?;
                self.emit(NodeEvent::OfferNotMade {
                    intent: intent_hex,
                    reason: reason.to_string(),
                });
                return Ok(());
            }
        };
        let (key, intent, made) = (*key, intent.clone(), offer.clone());
        let queued = super::durably(&self.store, move |store| {
            store.record_offer_made(&key, &intent, &made, unix_now())
        })
        .await?;
        self.stats.bump("offers-sent");
        self.emit(NodeEvent::OfferSent {
            intent: intent_hex,
            offer: offer.id().to_hex(),
        });
        let _ = self.to_loop.send(Action::Queue(queued)).await;
        Ok(())
    }

    /// The vendor key, with the inbox at one of the node's listen addresses.
    fn seller(&self) -> Seller {
        let inbox = self.inbox.as_ref().and_then(|(identity, listen)| {
            super::relationships::vendor_inbox(identity, &listen.borrow())
        });
        Seller {
            key: self.key.clone(),
            inbox,
        }
    }

    fn emit(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    /// Reloads `catalog.toml`; a bad file is refused and the catalog in force stays.
    fn reload_catalog(&mut self) -> Result<usize, String> {
        self.catalog_mtime = catalog_mtime(&self.data_dir);
        match Catalog::load(&self.data_dir) {
            Ok(catalog) => {
                let items = catalog.len();
                self.catalog = catalog;
                info!("catalog reloaded: {items} items");
                self.emit(NodeEvent::CatalogReloaded { items });
                Ok(items)
            }
            Err(e) => {
                warn!("catalog refused, the previous one stays in force: {e}");
                self.emit(NodeEvent::CatalogRejected {
                    error: e.to_string(),
                });
                Err(e.to_string())
            }
        }
    }
}

/// The vendor role's inbox, as the event loop holds it.
#[derive(Clone)]
pub struct VendorInbox {
    tx: mpsc::Sender<AnswerInput>,
    backlog: Arc<AtomicBool>,
}

/// The vendor role's end of its inbox.
pub struct InboxReceiver {
    rx: mpsc::Receiver<AnswerInput>,
    backlog: Arc<AtomicBool>,
}

/// A bounded inbox of [`QUEUE`] inputs for the vendor role.
pub fn inbox() -> (VendorInbox, InboxReceiver) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let backlog = Arc::new(AtomicBool::new(false));
    (
        VendorInbox {
            tx,
            backlog: backlog.clone(),
        },
        InboxReceiver { rx, backlog },
    )
}

impl VendorInbox {
    /// Hands a stored intent to the vendor role without waiting (the event loop never
    /// blocks on it). When the role is behind by a full queue, the intent stays in the
    /// store undecided, and the role answers it from there once its queue is empty.
    pub fn hand_over(&self, envelope: Box<Envelope>, intent: Box<Intent>, stats: &Stats) {
        let id = intent.id;
        if self
            .tx
            .try_send(AnswerInput::Intent { envelope, intent })
            .is_err()
        {
            debug!(
                "vendor role behind: intent {} waits in the store",
                hex::encode(*id)
            );
            stats.bump("vendor-backlog");
            self.backlog.store(true, Ordering::SeqCst);
        }
    }

    /// Sends an input, waiting for room.
    pub async fn send(&self, input: AnswerInput) -> Result<(), NodeError> {
        self.tx.send(input).await.map_err(|_| NodeError::Stopped)
    }

    /// The sender, for the handle's catalog reloads.
    pub fn sender(&self) -> mpsc::Sender<AnswerInput> {
        self.tx.clone()
    }
}

/// Modification time of the catalog file, if it exists.
fn catalog_mtime(dir: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(CATALOG_FILE))
        .and_then(|m| m.modified())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Constraints, Offer, Price, ReplyTo, Term};
    use crate::store::Decision;

    const CATALOG: &str = "[[item]]\ncategory = \"books\"\ntitle = \"Paperback\"\nprice = \"9.90\"\ncurrency = \"EUR\"\n";

    struct Rig {
        _dir: tempfile::TempDir,
        answering: Answering,
        store: Arc<Store>,
        to_loop: mpsc::Receiver<Action>,
        events: broadcast::Receiver<NodeEvent>,
    }

    fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CATALOG_FILE), CATALOG).unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store"), 1 << 20).unwrap());
        let (events_tx, events) = broadcast::channel(64);
        let (to_loop_tx, to_loop) = mpsc::channel(64);
        let config = VendorConfig {
            name: "Shop".into(),
            categories: vec!["books".into()],
            accepted_terms: vec!["no-tracking".into()],
            ..VendorConfig::default()
        };
        let answering = Answering::new(
            config,
            SigningKey::from_bytes(&[9; 32]),
            dir.path().to_owned(),
            Surroundings {
                store: store.clone(),
                stats: Arc::new(Stats::default()),
                events: events_tx,
                to_loop: to_loop_tx,
                inbox: None,
            },
        )
        .unwrap();
        Rig {
            _dir: dir,
            answering,
            store,
            to_loop,
            events,
        }
    }

    /// The key of intent `id` received from persona `n`.
    fn held(n: u8, id: &crate::proto::IntentId) -> IntentKey {
        IntentKey::received(
            &SigningKey::from_bytes(&[n; 32]).verifying_key().to_bytes(),
            id,
        )
    }

    /// An intent from persona `n`, stored as received, as the gossip intake leaves it.
    fn received(store: &Store, n: u8, terms: Vec<Term>) -> (Envelope, Intent) {
        let now = unix_now();
        let intent = Intent {
            id: [n; 16].into(),
            category: "books".into(),
            subcategory: None,
            text: "any paperback".into(),
            constraints: Constraints {
                max_price: Price::parse("20", "EUR"),
                ..Constraints::default()
            },
            terms,
            created: now,
            expires: now + 600,
            reply_to: ReplyTo::nowhere(),
            group: None,
        };
        let envelope = Envelope::seal(&intent, &SigningKey::from_bytes(&[n; 32]));
        store.receive_intent(&envelope, &intent, now).unwrap();
        (envelope, intent)
    }

    #[tokio::test]
    async fn a_matching_intent_gets_a_stored_offer_handed_to_the_outbox() {
        let mut rig = rig();
        let (envelope, intent) = received(&rig.store, 1, vec![]);
        rig.answering
            .intent(envelope, intent.clone(), Instant::now())
            .await;
        let Ok(Action::Queue(queued)) = rig.to_loop.try_recv() else {
            panic!("no offer queued");
        };
        let offers = rig.store.offers_for(&held(1, &intent.id)).unwrap();
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].envelope.id(), queued.id);
        let offer: &Offer = &offers[0].offer;
        assert_eq!(offer.items[0].price.amount, 990);
        assert_eq!(
            rig.store
                .intent(&held(1, &intent.id))
                .unwrap()
                .unwrap()
                .decision,
            Some(Decision::Offered {
                offer: queued.id.to_hex()
            })
        );
        assert!(matches!(
            rig.events.try_recv(),
            Ok(NodeEvent::OfferSent { .. })
        ));
    }

    #[tokio::test]
    async fn an_intent_brought_twice_is_answered_once() {
        // The start's catch-up read it from the store while the loop also queued it.
        let mut rig = rig();
        let (envelope, intent) = received(&rig.store, 4, vec![]);
        rig.answering.catch_up().await;
        rig.answering
            .intent(envelope, intent.clone(), Instant::now())
            .await;
        assert!(matches!(rig.to_loop.try_recv(), Ok(Action::Queue(_))));
        assert!(rig.to_loop.try_recv().is_err(), "one offer to deliver");
        assert_eq!(rig.store.offers_for(&held(4, &intent.id)).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_intent_withdrawn_before_its_hand_over_is_not_answered() {
        let mut rig = rig();
        let (envelope, intent) = received(&rig.store, 5, vec![]);
        rig.store
            .record_withdrawal(&held(5, &intent.id), unix_now())
            .unwrap();
        rig.answering
            .intent(envelope, intent.clone(), Instant::now())
            .await;
        assert!(rig.to_loop.try_recv().is_err(), "no offer");
        assert!(
            rig.store
                .offers_for(&held(5, &intent.id))
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_refused_term_and_a_flooding_persona_are_declined_with_the_reason() {
        let mut rig = rig();
        let required = vec![Term {
            id: "free-cancellation".into(),
            required: true,
        }];
        let (envelope, intent) = received(&rig.store, 2, required);
        rig.answering
            .intent(envelope, intent.clone(), Instant::now())
            .await;
        assert!(rig.to_loop.try_recv().is_err(), "nothing to deliver");
        let decision = rig
            .store
            .intent(&held(2, &intent.id))
            .unwrap()
            .unwrap()
            .decision;
        assert_eq!(
            decision,
            Some(Decision::Declined {
                reason: NoOffer::RequiredTermRefused("free-cancellation".into()).to_string()
            })
        );

        // One persona casting many intents at once: after the burst, declined.
        let at = Instant::now();
        let persona = SigningKey::from_bytes(&[3; 32]);
        let (_, template) = received(&rig.store, 3, vec![]);
        for n in 0..=PERSONA_BURST as u8 {
            let mut intent = template.clone();
            intent.id = [100 + n; 16].into();
            let envelope = Envelope::seal(&intent, &persona);
            rig.store
                .receive_intent(&envelope, &intent, unix_now())
                .unwrap();
            rig.answering.intent(envelope, intent, at).await;
        }
        let last: crate::proto::IntentId = [100 + PERSONA_BURST as u8; 16].into();
        assert_eq!(
            rig.store.intent(&held(3, &last)).unwrap().unwrap().decision,
            Some(Decision::Declined {
                reason: NoOffer::RateLimited.to_string()
            })
        );
        let first: crate::proto::IntentId = [100; 16].into();
        assert!(matches!(
            rig.store
                .intent(&held(3, &first))
                .unwrap()
                .unwrap()
                .decision,
            Some(Decision::Offered { .. })
        ));
    }

    #[tokio::test]
    async fn intents_left_in_the_store_by_a_full_queue_are_answered_once_it_empties() {
        let mut rig = rig();
        let (inbox, mut receiver) = inbox();
        let stats = Stats::default();
        let (envelope, filler) = received(&rig.store, 1, vec![]);
        for _ in 0..QUEUE {
            let (envelope, filler) = (Box::new(envelope.clone()), Box::new(filler.clone()));
            inbox.hand_over(envelope, filler, &stats);
        }
        assert_eq!(stats.get("vendor-backlog"), 0, "the queue had room");
        let (envelope, late) = received(&rig.store, 7, vec![]);
        inbox.hand_over(Box::new(envelope), Box::new(late.clone()), &stats);
        assert_eq!(stats.get("vendor-backlog"), 1);
        assert!(receiver.backlog.load(Ordering::SeqCst), "the role is told");
        receiver.rx.close();
        while receiver.rx.try_recv().is_ok() {}
        assert_eq!(
            rig.store
                .intent(&held(7, &late.id))
                .unwrap()
                .unwrap()
                .decision,
            None
        );
        rig.answering.catch_up().await;
        assert!(matches!(
            rig.store
                .intent(&held(7, &late.id))
                .unwrap()
                .unwrap()
                .decision,
            Some(Decision::Offered { .. })
        ));
        assert!(matches!(rig.to_loop.try_recv(), Ok(Action::Queue(_))));
    }
}
