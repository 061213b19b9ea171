//! The test network: nodes in this process, wired by bootstrap edges, handed to the test only
//! once gossip flows across every edge, and shut down when the network is dropped (also when
//! the test panics).
//!
//! ```ignore
//! let mut net = Net::new();
//! let [p, v] = net.line([person("p"), vendor("v", "books", "9.90")]).await;
//! let x = net.add(person("x"), &[&v]).await; // x dials v
//! let v = net.restart(v, &[]).await;         // same data, same address
//! ```
//!
//! Persons here are service nodes unless their spec says [`Spec::light`], so that exact
//! topologies relay the way the tests draw them; light persons are what a laptop runs.
//!
//! Ready means: every node is connected to exactly its neighbours, and has each of them in
//! its gossip mesh (an edge to a light node: connected, and the light node knows the other
//! as a service node). The node has no accessor for subscriptions or the mesh, so the wait reads
//! the gossipsub score the node reports for each peer. With the node's scoring parameters
//! that score is positive only once the peer has spent time in the node's mesh (or first
//! delivered a valid message), and a peer joins the mesh as soon as the node processes its
//! subscriptions, which every node sends for all topics at once. So a positive score means:
//! what the node publishes reaches that peer, and what it accepts it forwards there. Scores
//! are recomputed about once a second, so a new edge takes up to a second to show.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use vrm::config::{MailboxConfig, Role, VendorConfig};
use vrm::identity::Identity;
use vrm::node::{NodeConfig, NodeHandle};

use super::{catalog, eventually, vendor_config};

/// A running node and where it lives.
#[derive(Clone)]
pub struct TestNode {
    pub name: String,
    pub handle: NodeHandle,
    pub dir: PathBuf,
    pub addr: Multiaddr,
    pub vendor: Option<VendorConfig>,
    pub role: Role,
    /// Follows AutoNAT (starts light).
    pub auto_role: bool,
    /// The shards it carries as a service node (`[network] shards`).
    pub shards: Vec<u8>,
    /// Other service nodes it keeps before pruning (`[network] target_peers`).
    pub target_peers: u32,
    /// Finds peers through Kademlia beyond the ones it dials.
    pub kademlia: bool,
}

/// A node [`Net::stop`] stopped: where it lived and how it ran.
pub struct Stopped {
    pub name: String,
    /// Its data directory: change it to start the node from a copy.
    pub dir: PathBuf,
    addr: Multiaddr,
    vendor: Option<VendorConfig>,
    settings: (Role, bool, Vec<u8>, u32, bool),
}

/// Something done to a data directory before its node starts.
type Prepare = Box<dyn FnOnce(&Path) + Send>;

/// A node to start: a person, or a vendor with its catalog and configuration.
pub struct Spec {
    name: String,
    vendor: Option<(String, VendorConfig)>,
    prepare: Option<Prepare>,
    role: Role,
    auto_role: bool,
    shards: Vec<u8>,
    target_peers: u32,
    kademlia: bool,
}

impl Spec {
    /// Finds peers through Kademlia (the DHT, shard providers), beyond the ones it dials.
    pub fn with_kademlia(mut self) -> Spec {
        self.kademlia = true;
        self
    }

    /// Keeps at most `n` other service nodes, pruning every half second.
    pub fn keeping(mut self, n: u32) -> Spec {
        self.target_peers = n;
        self
    }

    /// Carries only `shards` as a service node (a vendor's node adds its own).
    pub fn carrying(mut self, shards: &[u8]) -> Spec {
        self.shards = shards.to_vec();
        self
    }

    /// Runs `prepare` on the data directory (keys and catalog written, store closed) just
    /// before the node starts: to leave a state there that another run could have left.
    pub fn before_start(mut self, prepare: impl FnOnce(&Path) + Send + 'static) -> Spec {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// A light node: joins no mesh, publishes through service nodes.
    pub fn light(mut self) -> Spec {
        self.role = Role::Light;
        self
    }

    /// `role = "auto"`: starts light, serves while AutoNAT finds it reachable (on loopback,
    /// which every test node counts).
    pub fn auto(mut self) -> Spec {
        self.role = Role::Light;
        self.auto_role = true;
        self
    }
}

/// A person's node.
pub fn person(name: &str) -> Spec {
    Spec {
        name: name.into(),
        vendor: None,
        prepare: None,
        role: Role::Service,
        auto_role: false,
        shards: all_shards(),
        target_peers: 48,
        kademlia: false,
    }
}

/// A vendor serving `category` with one item, "<name> item", at `price` EUR.
pub fn vendor(name: &str, category: &str, price: &str) -> Spec {
    vendor_with(
        name,
        &catalog(category, &format!("{name} item"), price),
        vendor_config(name, category),
    )
}

/// A vendor with this catalog text and configuration.
pub fn vendor_with(name: &str, catalog: &str, config: VendorConfig) -> Spec {
    Spec {
        name: name.into(),
        vendor: Some((catalog.into(), config)),
        prepare: None,
        role: Role::Service,
        auto_role: false,
        shards: all_shards(),
        target_peers: 48,
        kademlia: false,
    }
}

fn all_shards() -> Vec<u8> {
    (0..vrm::proto::SHARDS).collect()
}

/// The nodes of one test, in one temporary directory.
pub struct Net {
    root: tempfile::TempDir,
    /// Every node ever started here, for the shutdown.
    started: Vec<NodeHandle>,
}

impl Net {
    /// An empty network.
    pub fn new() -> Net {
        assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread,
            "a test network needs the multi-threaded runtime: its drop blocks in place"
        );
        Net {
            root: tempfile::tempdir().unwrap(),
            started: Vec::new(),
        }
    }

    /// Starts `specs` as a line, each dialing the one before, and waits until it is ready.
    pub async fn line<const N: usize>(&mut self, specs: [Spec; N]) -> [TestNode; N] {
        self.wire(specs, |i| i.checked_sub(1)).await
    }

    /// Starts `specs` as a star around the first, which all others dial, and waits until it
    /// is ready.
    pub async fn star<const N: usize>(&mut self, specs: [Spec; N]) -> [TestNode; N] {
        self.wire(specs, |i| (i > 0).then_some(0)).await
    }

    /// Starts one more node, dialing `dial`, and waits until those edges are ready.
    pub async fn add(&mut self, spec: Spec, dial: &[&TestNode]) -> TestNode {
        let node = self.start(spec, addrs(dial)).await;
        joined(&node, dial).await;
        node
    }

    /// Starts one more node dialing `addr`, a node outside this net (a daemon), without
    /// waiting for the edge.
    pub async fn add_dialing(&mut self, spec: Spec, addr: Multiaddr) -> TestNode {
        self.start(spec, vec![addr]).await
    }

    /// Starts one more node, dialing `dial`, without waiting for those edges (a node that
    /// may refuse or drop them).
    pub async fn add_unsettled(&mut self, spec: Spec, dial: &[&TestNode]) -> TestNode {
        self.start(spec, addrs(dial)).await
    }

    /// Stops `node` (if it still runs) and starts it again from its data directory on its
    /// address, dialing `dial`; waits until those edges are ready. It takes the test's
    /// `TestNode`: the store opens again only once no handle to the old node is left.
    pub async fn restart(&mut self, node: TestNode, dial: &[&TestNode]) -> TestNode {
        let again = self.restart_unsettled(node, dial).await;
        joined(&again, dial).await;
        again
    }

    /// [`Net::restart`] without waiting for the edges (others may dial it as well).
    pub async fn restart_unsettled(&mut self, node: TestNode, dial: &[&TestNode]) -> TestNode {
        let stopped = self.stop(node).await;
        self.resume(stopped, dial).await
    }

    /// Stops `node` and lets go of it, so its store can be opened by others.
    pub async fn stop(&mut self, node: TestNode) -> Stopped {
        let TestNode {
            name,
            handle,
            dir,
            mut addr,
            vendor,
            role,
            auto_role,
            shards,
            target_peers,
            kademlia,
        } = node;
        handle.shutdown().await;
        self.started.retain(|h| h.peer_id() != handle.peer_id());
        drop(handle);
        addr.pop(); // the /p2p/ part
        Stopped {
            name,
            dir,
            addr,
            vendor,
            settings: (role, auto_role, shards, target_peers, kademlia),
        }
    }

    /// Starts a stopped node again from its data directory (which may have moved) on its
    /// address, dialing `dial`, without waiting for the edges.
    pub async fn resume(&mut self, node: Stopped, dial: &[&TestNode]) -> TestNode {
        self.launch(
            &node.name,
            &node.dir,
            node.vendor,
            node.settings,
            node.addr,
            addrs(dial),
        )
        .await
    }

    /// Starts `specs` in order, node `i` dialing node `dials(i)`, then waits until every
    /// node is ready with exactly its neighbours.
    async fn wire<const N: usize>(
        &mut self,
        specs: [Spec; N],
        dials: impl Fn(usize) -> Option<usize>,
    ) -> [TestNode; N] {
        let mut nodes: Vec<TestNode> = Vec::with_capacity(N);
        for (i, spec) in specs.into_iter().enumerate() {
            let bootstrap = dials(i)
                .map(|j| nodes[j].addr.clone())
                .into_iter()
                .collect();
            nodes.push(self.start(spec, bootstrap).await);
        }
        for (i, node) in nodes.iter().enumerate() {
            let neighbours: Vec<&TestNode> = (0..N)
                .filter(|&j| dials(i) == Some(j) || dials(j) == Some(i))
                .map(|j| &nodes[j])
                .collect();
            settled(node, &neighbours).await;
        }
        nodes.try_into().ok().expect("one node per spec")
    }

    /// Creates the data directory of `spec` and starts its node on a fresh port.
    async fn start(&mut self, spec: Spec, bootstrap: Vec<Multiaddr>) -> TestNode {
        let dir = self.root.path().join(&spec.name);
        std::fs::create_dir_all(&dir).unwrap();
        Identity::create(&dir, spec.vendor.is_some()).unwrap();
        let config = spec.vendor.map(|(catalog, config)| {
            std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
            config
        });
        if let Some(prepare) = spec.prepare {
            prepare(&dir);
        }
        let listen = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        let roles = (
            spec.role,
            spec.auto_role,
            spec.shards,
            spec.target_peers,
            spec.kademlia,
        );
        self.launch(&spec.name, &dir, config, roles, listen, bootstrap)
            .await
    }

    async fn launch(
        &mut self,
        name: &str,
        dir: &Path,
        vendor: Option<VendorConfig>,
        (role, auto_role, shards, target_peers, kademlia): (Role, bool, Vec<u8>, u32, bool),
        listen: Multiaddr,
        bootstrap: Vec<Multiaddr>,
    ) -> TestNode {
        let config = NodeConfig {
            data_dir: dir.to_owned(),
            role,
            auto_role,
            // Every test node is on loopback.
            autonat_private_addresses: true,
            mailbox: MailboxConfig::default(),
            listen: vec![listen],
            bootstrap,
            mdns: false,
            // The tests build exact topologies: no peers beyond the ones dialed, unless a
            // test asks for Kademlia.
            kademlia,
            max_connections: 64,
            shards: shards.clone(),
            max_inbound_per_ip: vrm::node::ip_limit::DEFAULT_MAX_PER_IP,
            // Every test node is on loopback.
            loopback_exempt: true,
            cache_bytes: 8 << 20,
            keep_expired: Duration::from_secs(7 * 86_400),
            vendor: vendor.clone(),
            standing_terms: Vec::new(),
            heartbeat: Duration::from_millis(200),
            profile_interval: Duration::from_secs(60),
            target_peers,
            prune_every: Duration::from_millis(500),
            metrics: None,
        };
        let handle = vrm::node::start(config).await.unwrap();
        self.started.push(handle.clone());
        let addr = eventually(&format!("{name} listening"), || async {
            handle.listen_addrs().into_iter().next()
        })
        .await;
        TestNode {
            name: name.into(),
            addr: addr.with(Protocol::P2p(handle.peer_id())),
            handle,
            dir: dir.to_owned(),
            vendor,
            role,
            auto_role,
            shards,
            target_peers,
            kademlia,
        }
    }
}

impl Drop for Net {
    /// Stops every node and waits for their stores to be flushed, before the directory goes.
    fn drop(&mut self) {
        let started = std::mem::take(&mut self.started);
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let all = futures::future::join_all(started.iter().map(|h| h.shutdown()));
                let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
            })
        });
    }
}

fn addrs(nodes: &[&TestNode]) -> Vec<Multiaddr> {
    nodes.iter().map(|n| n.addr.clone()).collect()
}

/// Waits until `node` and each node it dialed have each other in their gossip meshes, and
/// checks that `node` has no other peer.
async fn joined(node: &TestNode, dialed: &[&TestNode]) {
    settled(node, dialed).await;
    for other in dialed {
        in_mesh(other, node).await;
    }
}

/// Waits until `node` has each of `neighbours` in its gossip mesh, then checks that it is
/// connected to them and to no one else.
async fn settled(node: &TestNode, neighbours: &[&TestNode]) {
    for other in neighbours {
        in_mesh(node, other).await;
    }
    let peers = connected_peers(node).await;
    let expected: BTreeSet<String> = neighbours
        .iter()
        .map(|n| n.handle.peer_id().to_string())
        .collect();
    assert_eq!(peers, expected, "{}'s peers", node.name);
}

/// The PeerIds `node` is connected to.
pub async fn connected_peers(node: &TestNode) -> BTreeSet<String> {
    node.handle
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer)
        .collect()
}

/// Waits until `node` has `peer` in its gossip mesh (see the module comment); on an edge
/// to a light node, until they are connected and the light one knows the other as a
/// service node.
async fn in_mesh(node: &TestNode, peer: &TestNode) {
    let id = peer.handle.peer_id().to_string();
    if node.handle.role() == Role::Light || peer.handle.role() == Role::Light {
        return light_edge(node, peer).await;
    }
    eventually(
        &format!("{} has {} in its gossip mesh", node.name, peer.name),
        || async {
            let peers = node.handle.peers().await.unwrap();
            peers
                .iter()
                .any(|p| p.peer == id && p.score.is_some_and(|s| s > 0.0))
                .then_some(())
        },
    )
    .await
}

async fn light_edge(node: &TestNode, peer: &TestNode) {
    let id = peer.handle.peer_id();
    eventually(
        &format!("{} is connected to {}", node.name, peer.name),
        || async {
            let peers = node.handle.peers().await.unwrap();
            let connected = peers.iter().any(|p| p.peer == id.to_string());
            let known =
                node.handle.role() != Role::Light || node.handle.service_nodes().contains(&id);
            (connected && known).then_some(())
        },
    )
    .await
}
