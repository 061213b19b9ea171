//! The `vrm` command line. Thin: it parses arguments and calls the library. `init`, `daemon`
//! and `demo` run here; every other verb is a client of the running daemon's API
//! ([`verbs`]).

pub mod data;
pub mod demo;
pub mod groups;
pub mod relationship;
pub mod reviews;
pub mod verbs;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{CONFIG_FILE, Config, VendorConfig};
use crate::identity::Identity;

/// vrm: your agent in the market. Cast intentions, get signed offers, keep your own records.
#[derive(Debug, Parser)]
#[command(name = "vrm", version, about)]
pub struct Cli {
    /// Data directory (keys, config, store). Default: the platform data dir
    /// (~/.local/share/vrm on Linux).
    #[arg(long, global = true, env = "VRM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables (one JSON line per event with --watch).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the keys and a commented config.toml in the data directory.
    Init {
        /// Make this a vendor node with this display name.
        #[arg(long, value_name = "NAME")]
        vendor: Option<String>,
        /// Categories the vendor serves (repeatable; vendor nodes only).
        #[arg(long = "category", value_name = "ID", requires = "vendor")]
        categories: Vec<String>,
    },
    /// Run the node in the foreground (initialises the data directory on first run).
    Daemon(DaemonArgs),
    /// Try vrm: a person, a service node and three vendors on this machine, a sample intent,
    /// live offers.
    Demo {
        /// API address of the demo person's node.
        #[arg(long, default_value = "127.0.0.1:0")]
        api: std::net::SocketAddr,
        /// Exit once the sample intent has its offers (for scripts and tests).
        #[arg(long)]
        exit_after_offers: bool,
    },
    /// The node's status.
    Status,
    /// Connected peers.
    Peers,
    /// Cast, list, show and withdraw your intents.
    #[command(subcommand)]
    Intent(verbs::IntentCommand),
    /// Offers received (all, or for one intent); --watch follows new ones.
    Offers {
        /// Only offers for this intent.
        #[arg(long, value_name = "ID")]
        intent: Option<String>,
        /// Keep printing offers as they arrive.
        #[arg(long)]
        watch: bool,
    },
    /// Accept an offer: a relationship with its vendor starts (the intent is withdrawn).
    Accept {
        /// Offer id (or a unique prefix).
        offer: String,
        /// Meet the vendor as a returning customer: the persona you always use with it,
        /// so it recognises you across relationships.
        #[arg(long, conflicts_with = "as_new")]
        as_returning: bool,
        /// Meet the vendor as new: a fresh persona it cannot link to anything (default).
        #[arg(long)]
        as_new: bool,
        /// Keep the intent open for other offers.
        #[arg(long)]
        keep_intent: bool,
    },
    /// Your relationships (both sides), with their state and unread messages.
    Relationships,
    /// One relationship: show, end, read, export, verify.
    #[command(subcommand)]
    Relationship(relationship::RelationshipCommand),
    /// Your orders (the relationships' order states).
    Orders,
    /// One order: show, cancel, received.
    #[command(subcommand)]
    Order(relationship::OrderCommand),
    /// Send a message in a relationship (end-to-end encrypted).
    Message {
        /// Relationship id (or a unique prefix).
        relationship: String,
        /// What to say.
        text: String,
    },
    /// Your own records (name, email, addresses, sizes…), shared only by a grant.
    #[command(subcommand)]
    Vault(data::VaultCommand),
    /// Grant vault fields to a relationship's vendor for a purpose and a period.
    Grant {
        /// Relationship id (or a unique prefix).
        relationship: String,
        /// A vault field to grant (repeat).
        #[arg(long = "field", required = true, value_name = "NAME")]
        fields: Vec<String>,
        /// What for: delivery, billing, support, warranty, account, marketing.
        #[arg(long)]
        purpose: String,
        /// For how many days (1 to 366).
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// A term it is shared under (repeat; default your standing terms).
        #[arg(long = "term", value_name = "ID")]
        terms: Vec<String>,
    },
    /// Revoke a grant: the vendor deletes the data and signs a deletion receipt.
    Revoke {
        /// Relationship id (or a unique prefix).
        relationship: String,
        /// Grant id (or a unique prefix).
        grant: String,
    },
    /// Who holds what: every vendor holding your data, each grant and where it stands.
    Holdings,
    /// Review the vendor of a fulfilled order: signed by the relationship's persona with the
    /// vendor's token, published for every node (a later review replaces it).
    Review {
        /// Relationship id (or a unique prefix).
        relationship: String,
        /// 1 (bad) to 5 (excellent).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        rating: u8,
        /// In your words.
        #[arg(long, default_value = "")]
        text: String,
        /// Show your fulfilled orders with other vendors, so the review counts as a proven
        /// buyer's (links those relationships to it).
        #[arg(long)]
        history: bool,
    },
    /// Vendors' reputations as this node computes them (one vendor's with its reviews).
    Reputation {
        /// Vendor key (or a unique prefix).
        vendor: Option<String>,
    },
    /// Collective intents: start, list, join, leave.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Write the whole node to one file (stop the daemon first).
    Export {
        /// The file to write.
        file: PathBuf,
        /// Include the keys, sealed with a passphrase.
        #[arg(long)]
        with_keys: bool,
        /// The keys' passphrase.
        #[command(flatten)]
        passphrase: data::Passphrase,
    },
    /// Restore an export into a new data directory (--data-dir).
    Import {
        /// The export file.
        file: PathBuf,
        /// The keys' passphrase.
        #[command(flatten)]
        passphrase: data::Passphrase,
    },
    /// Vendor views: intents seen, offers sent, catalog reload, orders.
    #[command(subcommand)]
    Vendor(verbs::VendorCommand),
    /// Print the login link of the web page (it carries the API token).
    Open,
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Flags of `vrm daemon`; each overrides config.toml.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Listen address (repeatable). Default: TCP and QUIC on all interfaces at the config port.
    #[arg(
        long,
        value_name = "MULTIADDR",
        env = "VRM_LISTEN",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,
    /// Peer to connect to at start, with /p2p/<peer id> (repeatable).
    #[arg(
        long,
        value_name = "MULTIADDR",
        env = "VRM_BOOTSTRAP",
        value_delimiter = ','
    )]
    pub bootstrap: Vec<String>,
    /// Do not discover peers on the local network.
    #[arg(long, env = "VRM_NO_MDNS")]
    pub no_mdns: bool,
    /// Service node (reachable, carries the network) or light node (a laptop). Default:
    /// [network] role in config.toml (`auto`: service on vendor nodes, light otherwise).
    #[arg(long, value_enum, env = "VRM_ROLE")]
    pub role: Option<crate::config::RoleChoice>,
    /// Do not count connections from loopback against [network] max_inbound_per_ip (a test
    /// network of many nodes on one machine).
    #[arg(long, env = "VRM_LOOPBACK_EXEMPT")]
    pub loopback_exempt: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "VRM_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Address of the local HTTP API (loopback only). Default: [api] listen in config.toml.
    #[arg(long, value_name = "ADDR", env = "VRM_API")]
    pub api: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9470).
    #[arg(long, value_name = "ADDR", env = "VRM_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// How logs are printed.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The data directory from the flag, the environment or the platform default.
pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let dirs = directories::ProjectDirs::from("", "", "vrm")
        .context("no home directory: pass --data-dir or set VRM_DATA_DIR")?;
    Ok(dirs.data_dir().to_owned())
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    crate::data_dir::owner_only();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = data_dir(cli.data_dir)?;
    let json = cli.json;
    match cli.command {
        Command::Init { vendor, categories } => init(&dir, vendor, categories),
        Command::Daemon(args) => daemon(&dir, args),
        Command::Demo {
            api,
            exit_after_offers,
        } => demo::run(api, exit_after_offers),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "vrm", &mut std::io::stdout());
            Ok(())
        }
        Command::Status => verbs::status(&dir, json),
        Command::Peers => verbs::peers(&dir, json),
        Command::Intent(command) => verbs::intent(&dir, json, command),
        Command::Offers { intent, watch } => verbs::offers(&dir, json, intent, watch),
        Command::Vendor(command) => verbs::vendor(&dir, json, command),
        Command::Accept {
            offer,
            as_returning,
            as_new: _,
            keep_intent,
        } => relationship::accept(&dir, json, &offer, as_returning, keep_intent),
        Command::Relationships | Command::Orders => relationship::relationships(&dir, json),
        Command::Relationship(command) => relationship::relationship(&dir, json, command),
        Command::Order(command) => relationship::order(&dir, json, command),
        Command::Message { relationship, text } => {
            relationship::message(&dir, json, &relationship, &text)
        }
        Command::Open => verbs::open(&dir),
        Command::Vault(command) => data::vault(&dir, json, command),
        Command::Grant {
            relationship,
            fields,
            purpose,
            days,
            terms,
        } => data::grant(&dir, json, &relationship, fields, &purpose, days, terms),
        Command::Revoke {
            relationship,
            grant,
        } => data::revoke(&dir, json, &relationship, &grant),
        Command::Holdings => data::holdings(&dir, json),
        Command::Review {
            relationship,
            rating,
            text,
            history,
        } => reviews::review(&dir, json, &relationship, rating, &text, history),
        Command::Reputation { vendor } => reviews::reputation(&dir, json, vendor.as_deref()),
        Command::Group(command) => groups::group(&dir, json, command),
        Command::Export {
            file,
            with_keys,
            passphrase,
        } => data::export(&dir, &file, with_keys, &passphrase),
        Command::Import { file, passphrase } => data::import(&dir, &file, &passphrase),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_gossipsub=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `vrm daemon`: run the node until SIGINT or SIGTERM, then shut down cleanly.
pub fn daemon(dir: &std::path::Path, args: DaemonArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    if !Identity::exists(dir) {
        init(dir, None, Vec::new())?;
    }
    let config = Config::load(dir)?;
    let mut node_config = crate::node::NodeConfig::from_config(dir.to_owned(), &config)?;
    if !args.listen.is_empty() {
        node_config.listen = crate::node::parse_addrs(&args.listen).context("--listen")?;
    }
    if !args.bootstrap.is_empty() {
        node_config.bootstrap = crate::node::parse_addrs(&args.bootstrap).context("--bootstrap")?;
    }
    if args.no_mdns {
        node_config.mdns = false;
    }
    if args.loopback_exempt {
        node_config.loopback_exempt = true;
    }
    if let Some(role) = args.role {
        node_config.role = role.resolve(config.vendor.is_some());
        node_config.auto_role = role.follows_autonat(config.vendor.is_some());
    }
    node_config.metrics = args.metrics;
    let api_addr =
        match args.api {
            Some(addr) => addr,
            None => config.api.listen.parse().with_context(|| {
                format!("[api] listen = {:?} is not an address", config.api.listen)
            })?,
        };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let node = crate::node::start(node_config).await?;
        println!(
            "vrm node {} running; data in {}",
            node.peer_id(),
            dir.display()
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let mut api = tokio::spawn(crate::api::serve(
            node.clone(),
            dir.to_owned(),
            api_addr,
            bound_tx,
            async move {
                let _ = stop_rx.await;
            },
        ));
        if let Ok(addr) = bound_rx.await {
            println!("API on http://{addr} (`vrm open` prints the web page's login link)");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let api_failed = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            result = &mut api => Some(result),
        };
        tracing::info!("shutting down");
        let _ = stop_tx.send(());
        if api_failed.is_none() {
            let _ = api.await;
        }
        node.shutdown().await;
        match api_failed {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(e.into()),
            _ => Ok(()),
        }
    })
}

/// `vrm init`: keys and config in `dir`.
pub fn init(
    dir: &std::path::Path,
    vendor: Option<String>,
    categories: Vec<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let vendor = vendor.map(|name| VendorConfig {
        name,
        categories,
        contact: String::new(),
        accepted_terms: vec!["no-tracking".into(), "no-resale".into()],
        ..VendorConfig::default()
    });
    if let Some(v) = &vendor {
        anyhow::ensure!(
            !v.categories.is_empty(),
            "a vendor serves at least one category: add --category ID (ids in proto/categories.json)"
        );
        for c in &v.categories {
            anyhow::ensure!(
                crate::proto::taxonomy::category(c).is_some(),
                "unknown category {c:?} (see proto/categories.json)"
            );
        }
    }
    let identity = Identity::create(dir, vendor.is_some())?;
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.exists() {
        let text = Config::template(vendor.as_ref());
        crate::atomic_file::write(&config_path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    let catalog_path = dir.join(crate::vendor_role::catalog::CATALOG_FILE);
    if vendor.is_some() && !catalog_path.exists() {
        let first = vendor
            .as_ref()
            .map(|v| v.categories[0].as_str())
            .unwrap_or_default();
        let text = crate::vendor_role::catalog::example_catalog(first);
        crate::atomic_file::write(&catalog_path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", catalog_path.display()))?;
    }
    println!("initialised {}", dir.display());
    println!("peer id: {}", identity.peer_id());
    if let Some(key) = identity.vendor_key() {
        println!(
            "vendor key: {}",
            hex::encode(key.verifying_key().as_bytes())
        );
    }
    Ok(())
}
