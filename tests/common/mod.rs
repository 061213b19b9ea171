//! Helpers for tests that run real nodes on 127.0.0.1 with ephemeral ports and temp dirs.
#![allow(dead_code)] // each test file uses its own subset

pub mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use vrm::config::VendorConfig;
use vrm::identity::Identity;
use vrm::node::{CastRequest, NodeConfig, NodeHandle};
use vrm::proto::{Constraints, Price};

/// A running node and where it lives.
pub struct TestNode {
    pub handle: NodeHandle,
    pub dir: PathBuf,
    pub addr: Multiaddr,
    pub vendor: Option<VendorConfig>,
}

/// A catalog with one item in `category` at `price` EUR.
pub fn catalog(category: &str, title: &str, price: &str) -> String {
    format!(
        "[[item]]\ncategory = {category:?}\ntitle = {title:?}\nprice = {price:?}\ncurrency = \"EUR\"\n"
    )
}

/// Creates a data directory (a vendor one if `vendor` is set, with `catalog` text).
pub fn make_dir(root: &Path, name: &str, vendor: Option<(&str, &str)>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    Identity::create(&dir, vendor.is_some()).unwrap();
    if let Some((_, catalog)) = vendor {
        std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    }
    dir
}

/// Starts the node of `dir` listening on `listen` (port 0 for a fresh one).
pub async fn start(
    dir: &Path,
    vendor: Option<VendorConfig>,
    listen: &str,
    bootstrap: Vec<Multiaddr>,
) -> TestNode {
    let config = NodeConfig {
        data_dir: dir.to_owned(),
        listen: vec![listen.parse().unwrap()],
        bootstrap,
        mdns: false,
        // The tests build exact topologies: no peers beyond the ones dialed.
        kademlia: false,
        max_connections: 64,
        cache_bytes: 8 << 20,
        vendor: vendor.clone(),
        heartbeat: Duration::from_millis(200),
        profile_interval: Duration::from_secs(60),
        metrics: None,
    };
    let handle = vrm::node::start(config).await.unwrap();
    let addr = eventually("listening", || {
        let handle = handle.clone();
        async move { handle.listen_addrs().await.unwrap().into_iter().next() }
    })
    .await;
    let addr = addr.with(libp2p::multiaddr::Protocol::P2p(handle.peer_id()));
    TestNode {
        handle,
        dir: dir.to_owned(),
        addr,
        vendor,
    }
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

/// Starts a fresh person node.
pub async fn person(root: &Path, name: &str, bootstrap: Vec<Multiaddr>) -> TestNode {
    let dir = make_dir(root, name, None);
    start(&dir, None, "/ip4/127.0.0.1/tcp/0", bootstrap).await
}

/// Starts a fresh vendor node serving `category` with one item at `price` EUR.
pub async fn vendor(
    root: &Path,
    name: &str,
    category: &str,
    price: &str,
    bootstrap: Vec<Multiaddr>,
) -> TestNode {
    let dir = make_dir(
        root,
        name,
        Some((name, &catalog(category, &format!("{name} item"), price))),
    );
    start(
        &dir,
        Some(vendor_config(name, category)),
        "/ip4/127.0.0.1/tcp/0",
        bootstrap,
    )
    .await
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after 20 s naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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

/// Waits until `node` has `n` connected peers.
pub async fn connected(node: &TestNode, n: usize) {
    eventually(&format!("{n} peers"), || {
        let handle = node.handle.clone();
        async move { (handle.peers().await.unwrap().len() >= n).then_some(()) }
    })
    .await
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
    }
}

/// Number of offers `node` holds for intent `id`.
pub fn offer_count(node: &TestNode, id: &vrm::proto::IntentId) -> usize {
    node.handle.offers_for(id).unwrap().len()
}

/// Ids of the intents a node holds that it did not cast.
pub fn received_intents(node: &TestNode) -> Vec<vrm::proto::IntentId> {
    node.handle
        .intents()
        .unwrap()
        .into_iter()
        .filter(|(r, _, _)| r.origin == vrm::store::Origin::Received)
        .map(|(_, _, i)| i.id)
        .collect()
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
