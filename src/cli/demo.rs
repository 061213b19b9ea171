//! `vrm demo`: a person, a service node and three vendors as real nodes on loopback, in a
//! temporary directory; a sample intent; offers printed as they arrive; the person's web page open
//! until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, VendorConfig};
use crate::identity::Identity;
use crate::node::{CastRequest, NodeConfig, NodeEvent, NodeHandle};
use crate::proto::{Constraints, DateRange, Price, Term};

const VENDORS: [(&str, &str, &str, &str); 3] = [
    (
        "Casa do Pátio",
        "Double room, courtyard side",
        "95.00",
        "85.00",
    ),
    (
        "Hotel Miradouro",
        "Double room with river view",
        "140.00",
        "130.00",
    ),
    (
        "Alfama Hostel",
        "Private double, shared bathroom",
        "60.00",
        "55.00",
    ),
];

fn catalog(title: &str, price: &str, min_price: &str) -> String {
    format!(
        "[[item]]\ncategory = \"travel\"\nsubcategory = \"lodging\"\ntitle = {title:?}\nkeywords = [\"double\", \"quiet\"]\nprice = {price:?}\nmin_price = {min_price:?}\ncurrency = \"EUR\"\nplaces = [\"Lisbon\"]\n"
    )
}

async fn start_node(
    dir: &Path,
    vendor: Option<VendorConfig>,
    bootstrap: Vec<libp2p::Multiaddr>,
) -> anyhow::Result<NodeHandle> {
    let mut config = NodeConfig::from_config(dir.to_owned(), &Config::default())?;
    config.role = crate::config::RoleChoice::Auto.resolve(vendor.is_some());
    config.vendor = vendor;
    start_configured(config, bootstrap).await
}

/// Starts a node on loopback, without mDNS, dialing `bootstrap`.
async fn start_configured(
    mut config: NodeConfig,
    bootstrap: Vec<libp2p::Multiaddr>,
) -> anyhow::Result<NodeHandle> {
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
    config.bootstrap = bootstrap;
    config.mdns = false;
    crate::node::start(config).await
}

async fn first_addr(node: &NodeHandle) -> anyhow::Result<libp2p::Multiaddr> {
    for _ in 0..100 {
        if let Some(addr) = node.listen_addrs().into_iter().next() {
            return Ok(addr.with(libp2p::multiaddr::Protocol::P2p(node.peer_id())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("a demo node did not start listening")
}

/// Runs the demo; with `exit_after_offers` it ends once the sample intent has its offers.
pub fn run(api: SocketAddr, exit_after_offers: bool) -> anyhow::Result<()> {
    let root: PathBuf = std::env::temp_dir().join(format!("vrm-demo-{}", std::process::id()));
    let result = tokio::runtime::Runtime::new()?.block_on(demo(&root, api, exit_after_offers));
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn demo(root: &Path, api: SocketAddr, exit_after_offers: bool) -> anyhow::Result<()> {
    println!(
        "Starting a service node, three vendors and a person on this machine (data in {}) …",
        root.display()
    );
    // A service node that is no vendor's: the person's light node connects to it alone,
    // publishes through it and keeps its mailbox there, so no vendor learns who it is. The
    // vendors, service nodes too, connect to it.
    let hub_dir = root.join("service");
    std::fs::create_dir_all(&hub_dir)?;
    Identity::create(&hub_dir, false)?;
    let mut hub_config = NodeConfig::from_config(hub_dir.clone(), &Config::default())?;
    hub_config.role = crate::config::Role::Service;
    let hub_node = start_configured(hub_config, vec![]).await?;
    let hub = vec![first_addr(&hub_node).await?];
    // The person first, so the vendors' profiles, published as they start, reach it.
    let person_dir = root.join("person");
    std::fs::create_dir_all(&person_dir)?;
    Identity::create(&person_dir, false)?;
    let person = start_node(&person_dir, None, hub.clone()).await?;
    let mut vendors: Vec<NodeHandle> = Vec::new();
    for (i, (name, title, price, min_price)) in VENDORS.iter().enumerate() {
        let dir = root.join(format!("vendor-{i}"));
        std::fs::create_dir_all(&dir)?;
        Identity::create(&dir, true)?;
        let text = catalog(title, price, min_price);
        crate::atomic_file::write(&dir.join("catalog.toml"), text.as_bytes(), 0o644)?;
        let config = VendorConfig {
            name: name.to_string(),
            categories: vec!["travel".into()],
            accepted_terms: vec!["no-tracking".into(), "no-resale".into()],
            ..VendorConfig::default()
        };
        vendors.push(start_node(&dir, Some(config), hub.clone()).await?);
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(crate::api::serve(
        person.clone(),
        person_dir.clone(),
        api,
        bound_tx,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let bound = bound_rx.await.context("the demo API did not start")?;
    let token = std::fs::read_to_string(person_dir.join(crate::api::COOKIE_FILE))?;

    // Ready when the person knows its service node and the vendors' profiles, each vendor
    // has the service node in its gossip mesh (a positive score), and the service node
    // knows each vendor joined the travel shard (an intent published before that would
    // miss the vendor: nothing gives a late subscriber what it missed).
    let travel = crate::proto::shard_of("travel");
    for _ in 0..200 {
        let mut meshed = 0;
        for vendor in &vendors {
            let peers = vendor.peers().await?;
            if peers.iter().any(|p| p.score.is_some_and(|s| s > 0.0)) {
                meshed += 1;
            }
        }
        let at_hub = hub_node.peers().await?;
        let on_shard = vendors
            .iter()
            .filter(|v| {
                let id = v.peer_id().to_string();
                at_hub
                    .iter()
                    .any(|p| p.peer == id && p.shards.contains(&travel))
            })
            .count();
        let profiles = person.profiles()?.len();
        if !person.service_nodes().is_empty()
            && meshed == VENDORS.len()
            && on_shard == VENDORS.len()
            && profiles == VENDORS.len()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut events = person.subscribe();
    let today = crate::clock::unix_now();
    let day = |offset: u64| {
        crate::clock::date_of_day(crate::clock::day_of(today + offset * 86_400))
            .context("the demo's dates lie past the year 9999")
    };
    let id = person
        .cast(CastRequest {
            category: "travel".into(),
            subcategory: Some("lodging".into()),
            text: "2 nights in Lisbon, a quiet double room".into(),
            constraints: Constraints {
                max_price: Some(Price {
                    amount: 30_000,
                    currency: "EUR".into(),
                }),
                place: Some("Lisbon".into()),
                dates: Some(DateRange {
                    from: day(14)?,
                    to: day(16)?,
                }),
                quantity: Some(2),
            },
            terms: vec![Term {
                id: "no-tracking".into(),
                required: true,
            }],
            lifetime_secs: 3600,
            group: None,
        })
        .await?;
    println!(
        "Cast: \"2 nights in Lisbon, a quiet double room\", at most 300.00 EUR, no tracking (intent {})",
        hex::encode(*id)
    );

    let mut received = 0;
    let wait = async {
        while received < VENDORS.len() {
            match events.recv().await {
                Ok(NodeEvent::OfferReceived { offer, .. }) => {
                    received += 1;
                    if let Some(stored) = person
                        .offers_for(&crate::store::IntentKey::own(&id))?
                        .into_iter()
                        .find(|stored| stored.envelope.id().to_hex() == offer)
                    {
                        let body = &stored.offer;
                        let vendor = vendor_name(&person, stored.envelope.signer().as_bytes())
                            .unwrap_or_else(|| "a vendor".into());
                        let item = &body.items[0];
                        let total = body.total().map(|t| t.to_string()).unwrap_or_default();
                        println!(
                            "Offer from {vendor}: {} × {} at {} = {total}",
                            item.quantity, item.title, item.price
                        );
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow::anyhow!(e)),
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .context("the demo offers did not arrive within 30 s")??;

    println!("\nYour page: http://{bound}/#token={}", token.trim());
    if !exit_after_offers {
        println!(
            "Cast more intents there or with `vrm --data-dir {} intent cast …`. Ctrl-C stops the demo.",
            person_dir.display()
        );
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    for node in vendors.iter().chain([&person, &hub_node]) {
        node.shutdown().await;
    }
    Ok(())
}

fn vendor_name(node: &NodeHandle, key: &[u8; 32]) -> Option<String> {
    node.profiles().ok()?.into_iter().find_map(|stored| {
        (stored.envelope.signer().as_bytes() == key).then_some(stored.profile.name)
    })
}
