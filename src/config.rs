//! `config.toml` in the data directory. Every key has a default, so a missing file or a
//! missing key is fine; an unknown key is an error (a typo should not be silently ignored).
//! Command-line flags and `VRM_*` environment variables override the file (see `cli`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// File name of the configuration in the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Why the configuration could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid for this schema.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Peer-to-peer networking.
    pub network: NetworkConfig,
    /// The local HTTP API.
    pub api: ApiConfig,
    /// The embedded store.
    pub store: StoreConfig,
    /// The mailbox a service node keeps for others.
    pub mailbox: MailboxConfig,
    /// The person's standing terms.
    pub person: PersonConfig,
    /// Present on vendor nodes.
    pub vendor: Option<VendorConfig>,
}

/// `[network]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// `service`, `light`, or `auto` (service on vendor nodes; otherwise light, and service
    /// while AutoNAT finds the node reachable from outside).
    pub role: RoleChoice,
    /// Multiaddrs to listen on; empty means TCP and QUIC on all interfaces at `port` on a
    /// service node or an `auto` one (AutoNAT must be able to dial it), and nowhere on a
    /// light node.
    pub listen: Vec<String>,
    /// Port used by the default listen addresses (0 picks a free one).
    pub port: u16,
    /// Multiaddrs (with `/p2p/<peer id>`) of peers to connect to at start.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Find more peers through the Kademlia DHT (off: only bootstrap and mDNS peers).
    pub kademlia: bool,
    /// Most established connections.
    pub max_connections: u32,
    /// AutoNAT also counts private and loopback addresses as reachable, and answers probes
    /// from them: for a network on one LAN or one machine. Off on the internet, where a
    /// private address says nothing about reachability.
    pub autonat_private_addresses: bool,
    /// The shards (0 to 7) whose intent topics a service node carries: every one by default.
    /// A vendor's node carries the shards of its categories as well.
    pub shards: Vec<u8>,
    /// Most inbound connections from one IP address (several peers behind one address are
    /// the cheapest way to pose as many nodes).
    pub max_inbound_per_ip: u32,
    /// Connections from loopback do not count against `max_inbound_per_ip`: for a test
    /// network of many nodes on one machine.
    pub loopback_exempt: bool,
    /// How many other service nodes a service node keeps connections to; past it, it drops
    /// the ones it needs least every 30 s (light clients do not count and are not dropped).
    pub target_peers: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            role: RoleChoice::Auto,
            listen: Vec::new(),
            port: 4470,
            bootstrap: Vec::new(),
            mdns: true,
            kademlia: true,
            max_connections: 128,
            autonat_private_addresses: false,
            shards: (0..crate::proto::SHARDS).collect(),
            max_inbound_per_ip: crate::node::ip_limit::DEFAULT_MAX_PER_IP,
            loopback_exempt: false,
            target_peers: 48,
        }
    }
}

/// What a node does for the network (`DESIGN.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reachable; carries the gossip meshes and serves light push and mailboxes.
    Service,
    /// A person's laptop: joins no mesh, publishes through service nodes, receives offers
    /// from mailboxes on them, and tells no one where it listens.
    Light,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Service => "service",
            Role::Light => "light",
        })
    }
}

/// The `role` key: a role, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RoleChoice {
    /// Service on vendor nodes; otherwise light, and service while AutoNAT finds the node
    /// reachable from outside.
    Auto,
    /// Always a service node.
    Service,
    /// Always a light node (a vendor's node behind a NAT: it subscribes to its categories'
    /// intents at service nodes instead of joining their meshes).
    Light,
}

impl RoleChoice {
    /// Whether a node with (`vendor`) or without a vendor section follows AutoNAT: a vendor
    /// needs the meshes of its categories, so it stays a service node.
    pub fn follows_autonat(self, vendor: bool) -> bool {
        self == RoleChoice::Auto && !vendor
    }

    /// The role a node with (`vendor`) or without a vendor section starts in.
    pub fn resolve(self, vendor: bool) -> Role {
        match self {
            RoleChoice::Service => Role::Service,
            RoleChoice::Light => Role::Light,
            RoleChoice::Auto if vendor => Role::Service,
            RoleChoice::Auto => Role::Light,
        }
    }
}

/// `[mailbox]`: the bounds of the mailbox a service node keeps for others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailboxConfig {
    /// Most open queues.
    pub max_queues: u64,
    /// Most items waiting in one queue.
    pub max_items_per_queue: usize,
    /// Most bytes of waiting items, in MiB.
    pub max_mb: u64,
    /// Deposits per second one depositor may make (bursts of `deposit_burst`).
    pub deposits_per_sec: f64,
    /// Burst of deposits one depositor may make.
    pub deposit_burst: u32,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        let limits = crate::store::mailbox::MailboxLimits::default();
        MailboxConfig {
            max_queues: limits.max_queues,
            max_items_per_queue: limits.max_items_per_queue,
            max_mb: limits.max_bytes >> 20,
            deposits_per_sec: 20.0,
            deposit_burst: 100,
        }
    }
}

impl MailboxConfig {
    /// The store's bounds.
    pub fn limits(&self) -> crate::store::mailbox::MailboxLimits {
        crate::store::mailbox::MailboxLimits {
            max_queues: self.max_queues,
            max_items_per_queue: self.max_items_per_queue,
            max_bytes: self.max_mb << 20,
        }
    }
}

/// `[person]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonConfig {
    /// Standing terms (ids from `proto/terms.json`) proffered with every intent and every
    /// grant.
    pub terms: Vec<String>,
}

impl Default for PersonConfig {
    fn default() -> Self {
        PersonConfig {
            terms: ["no-tracking", "no-resale", "delete-on-revoke"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address of the HTTP API (always loopback).
    pub listen: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:4471".into(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// sled page cache, in MiB (sled's own default is 1 GiB, too much for a laptop node).
    pub cache_mb: u64,
    /// Seconds an intent (own or received) and its offers are kept after the intent
    /// expired; then they are removed, so the store is bounded by expiry.
    pub keep_expired_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mb: 64,
            keep_expired_secs: 7 * 86_400,
        }
    }
}

/// `[vendor]`: this node answers intents as a vendor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// Display name in the vendor profile.
    pub name: String,
    /// Top-level categories served (their intent topics are followed).
    #[serde(default)]
    pub categories: Vec<String>,
    /// How to reach the vendor outside vrm.
    #[serde(default)]
    pub contact: String,
    /// Term ids the vendor accepts.
    #[serde(default)]
    pub accepted_terms: Vec<String>,
    /// The vendor's own program that answers intents (program, then arguments); the
    /// catalog answers when it is absent or fails.
    #[serde(default)]
    pub responder: Option<Vec<String>>,
    /// Seconds a responder run may take before it is killed.
    #[serde(default = "default_responder_timeout")]
    pub responder_timeout_secs: u64,
    /// Most responder runs at once.
    #[serde(default = "default_responder_concurrency")]
    pub responder_max_concurrent: usize,
    /// Accepted offers wait for `vrm vendor confirm` (or decline) instead of being
    /// confirmed with an order at once.
    #[serde(default)]
    pub confirm_by_hand: bool,
    /// The vendor's own CRM program (program, then arguments): it gets every relationship
    /// event as JSON lines and answers with commands (`proto/responder.md`).
    #[serde(default)]
    pub crm: Option<Vec<String>>,
    /// Members of a collective intent who must accept the vendor's group offer before it
    /// confirms their orders; default the size the group looks for.
    #[serde(default)]
    pub group_min: Option<u32>,
}

fn default_responder_timeout() -> u64 {
    5
}

fn default_responder_concurrency() -> usize {
    4
}

impl Config {
    /// Reads `config.toml` from `dir`; a missing file gives the defaults.
    pub fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path,
                source: Box::new(source),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io { path, source }),
        }
    }

    /// The commented file `vrm init` writes.
    pub fn template(vendor: Option<&VendorConfig>) -> String {
        let mut text = String::from(
            r#"# vrm node configuration. Every key is optional; flags and VRM_* environment
# variables override what is here.

[network]
# Multiaddrs to listen on. Empty: TCP and QUIC on all interfaces at `port`.
# listen = ["/ip4/0.0.0.0/tcp/4470", "/ip4/0.0.0.0/udp/4470/quic-v1"]
port = 4470
# Peers to connect to at start, with their /p2p/<peer id>.
bootstrap = []
# Find peers on the local network.
mdns = true
# Find more peers through the Kademlia DHT (false: only bootstrap and mDNS peers).
kademlia = true
# A service node keeps a quarter of these for connections it opens itself.
max_connections = 128
# Most inbound connections from one IP address.
max_inbound_per_ip = 8
# Other service nodes a service node stays connected to; past it, every 30 s it drops
# those it needs least (light clients do not count).
target_peers = 48
# The shards (0 to 7) of intent topics a service node carries; a vendor's node carries
# its own categories' shards as well.
# shards = [0, 1, 2, 3, 4, 5, 6, 7]

[api]
# The local HTTP API; only loopback addresses are accepted.
listen = "127.0.0.1:4471"

[store]
# sled page cache in MiB.
cache_mb = 64
# Seconds an intent and its offers are kept after the intent expired (7 days); then
# they are removed, so the store stays bounded.
keep_expired_secs = 604800

[person]
# Your standing terms (ids from proto/terms.json), proffered with every intent you cast and
# every grant of your data: what a vendor may do with it.
terms = ["no-tracking", "no-resale", "delete-on-revoke"]
"#,
        );
        if let Some(v) = vendor {
            let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
            let list = |items: &[String]| {
                items
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            text.push_str(&format!(
                r#"
[vendor]
# Shown to people in your signed vendor profile.
name = {name}
# Top-level categories you serve (ids from proto/categories.json).
categories = [{cats}]
# How people reach you outside vrm.
contact = {contact}
# The person's terms you accept (ids from proto/terms.json).
accepted_terms = [{terms}]
# Your own program answering intents (intent JSON on stdin, offer JSON on stdout; see
# proto/responder.md). Without it, or when it fails, catalog.toml answers.
# responder = ["/path/to/program", "--flag"]
# responder_timeout_secs = 5
# responder_max_concurrent = 4
"#,
                name = quote(&v.name),
                cats = list(&v.categories),
                contact = quote(&v.contact),
                terms = list(&v.accepted_terms),
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_back() {
        let vendor = VendorConfig {
            name: "Casa \"Lisboa\"".into(),
            categories: vec!["travel".into()],
            contact: "hello@example.org".into(),
            accepted_terms: vec!["no-tracking".into()],
            ..VendorConfig::default()
        };
        let config: Config = toml::from_str(&Config::template(Some(&vendor))).unwrap();
        let parsed = config.vendor.unwrap();
        assert_eq!(parsed.name, vendor.name);
        assert_eq!(parsed.categories, vendor.categories);
        let plain: Config = toml::from_str(&Config::template(None)).unwrap();
        assert!(plain.vendor.is_none());
        assert_eq!(plain.network.port, 4470);
        assert_eq!(
            plain.store.keep_expired_secs,
            StoreConfig::default().keep_expired_secs
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_location() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "[network]\nmnds = false\n").unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("mnds"), "{err}");
    }
}
