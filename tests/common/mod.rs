//! Helpers for tests that run real nodes on 127.0.0.1 with ephemeral ports and temp dirs.
//!
//! - [`net`]: the test network, the one way tests start nodes and wire them together.
//! - [`state`]: the one way tests read what a node holds.
//! - [`audit`]: what identifies a node, and what a data directory holds, for privacy audits.
//! - here: requests, waiting, and a node's HTTP API.
#![allow(dead_code)] // each test file uses its own subset

pub mod audit;
pub mod net;
pub mod process;
pub mod state;

#[allow(unused_imports)] // files that only run daemons use neither
pub use {audit::*, net::*, state::*};

use std::time::Duration;

use tokio::sync::broadcast;
use vrm::config::VendorConfig;
use vrm::node::{CastRequest, NodeEvent};
use vrm::proto::{Constraints, IntentId, Price};

/// How long a test waits for the network to get somewhere before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A catalog with one item in `category` at `price` EUR.
pub fn catalog(category: &str, title: &str, price: &str) -> String {
    format!(
        "[[item]]\ncategory = {category:?}\ntitle = {title:?}\nprice = {price:?}\ncurrency = \"EUR\"\n"
    )
}

pub fn vendor_config(name: &str, category: &str) -> VendorConfig {
    VendorConfig {
        name: name.into(),
        categories: vec![category.into()],
        contact: String::new(),
        accepted_terms: vec!["no-tracking".into()],
        ..VendorConfig::default()
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after 20 s naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(PATIENCE, what, check).await
}

/// [`eventually`], for something that takes longer by design: panics after `patience`.
pub async fn eventually_within<T, F, Fut>(patience: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first event from `events` that `pick` turns into a value; panics after 20 s naming
/// `what`. Subscribe before doing what causes the event.
pub async fn next_event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(value) = pick(event) {
                        return value;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("node stopped before: {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
}

/// A cast in `category` with a ceiling of `max` EUR, living an hour.
pub fn cast_request(category: &str, text: &str, max: &str) -> CastRequest {
    CastRequest {
        category: category.into(),
        subcategory: None,
        text: text.into(),
        constraints: Constraints {
            max_price: Some(Price::parse(max, "EUR").unwrap()),
            ..Constraints::default()
        },
        terms: vec![],
        lifetime_secs: 3600,
        group: None,
    }
}

/// Casts from `node` in `category` with a ceiling of `max` EUR, living an hour.
pub async fn cast(node: &TestNode, category: &str, text: &str, max: &str) -> IntentId {
    node.handle
        .cast(cast_request(category, text, max))
        .await
        .unwrap()
}

/// An intent `n` (id `[n; 16]`) in "garden", open ten minutes, not yet signed, whose
/// offers go to queue `[n; 16]` in `mailbox`'s mailbox, a queue no one opened (so offers to
/// it are made, not delivered): for tests that sign and publish intents themselves.
pub fn garden_intent(n: u8, text: &str, mailbox: &TestNode) -> vrm::proto::Intent {
    let now = vrm::clock::unix_now();
    vrm::proto::Intent {
        id: [n; 16].into(),
        category: "garden".into(),
        subcategory: None,
        text: text.into(),
        constraints: Default::default(),
        terms: vec![],
        created: now,
        expires: now + 600,
        reply_to: vrm::proto::ReplyTo::new(
            &mailbox.handle.peer_id(),
            &mailbox.handle.listen_addrs()[0],
            [n; 16],
            [9; 32],
        ),
        group: None,
    }
}

/// Waits until `node` holds `n` offers for intent `id`.
pub async fn offers_arrive(node: &TestNode, id: &IntentId, n: usize) {
    let what = format!("{n} offers for {} at {}", hex::encode(**id), node.name);
    eventually(&what, || async {
        (offer_count(node, id) == n).then_some(())
    })
    .await
}

/// A light person's node `name` on service node `s` buys from `v`, a vendor of electronics:
/// it casts "A used ThinkPad" for at most 400 EUR, accepts the one offer as a new customer,
/// and both sides hold the agreed order (accept, order, agreed). Returns the node and the
/// relationship.
pub async fn agreed_buyer(
    net: &mut Net,
    name: &str,
    s: &TestNode,
    v: &TestNode,
) -> (TestNode, String) {
    let p = net.add(person(name).light(), &[s]).await;
    let id = cast(&p, "electronics", "A used ThinkPad", "400").await;
    offers_arrive(&p, &id, 1).await;
    let offer = offers(&p, &id)[0].0.id();
    let rel = p.handle.accept(&offer, false, true).await.unwrap();
    settled(&p, v, &rel, 3).await;
    (p, rel)
}

/// A node's HTTP API, served on an ephemeral loopback port.
pub struct TestApi {
    pub base: String,
    pub token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApi {
    /// Serves `node`'s API; the address and token come from the files it writes.
    pub async fn serve(node: &TestNode) -> TestApi {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(vrm::api::serve(
            node.handle.clone(),
            node.dir.clone(),
            "127.0.0.1:0".parse().unwrap(),
            bound_tx,
            async move {
                let _ = stopped.await;
            },
        ));
        let addr = bound_rx.await.unwrap();
        let token = std::fs::read_to_string(node.dir.join(vrm::api::COOKIE_FILE)).unwrap();
        let written = std::fs::read_to_string(node.dir.join(vrm::api::API_FILE)).unwrap();
        assert_eq!(written.trim(), format!("http://{addr}"));
        TestApi {
            base: format!("http://{addr}"),
            token: token.trim().to_owned(),
            stop: Some(stop),
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
