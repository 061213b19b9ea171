//! Resident memory of real `vrm daemon` processes, printed as JSON lines:
//!
//! - `rss_idle_node`: a fresh node 5 s after start, against the peak resident memory of the
//!   same binary printing its version (what the executable costs before any node runs);
//! - `rss_node_100k`: a vendor node whose store holds 100,000 received intents and the
//!   100,000 offers it made to them, against the idle node of the same run.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench footprint`). `VRM_BENCH_RECORDS` sets
//! the record count.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::json;
use vrm::identity::Identity;
use vrm::proto::*;
use vrm::store::Store;

const VRM: &str = env!("CARGO_BIN_EXE_vrm");

/// A daemon that is killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> Daemon {
    let log = std::fs::File::create(dir.join("log")).expect("log");
    let child = Command::new(VRM)
        .arg("--data-dir")
        .arg(dir)
        .args(["daemon", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--api", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("vrm daemon starts");
    let daemon = Daemon(child);
    let started = Instant::now();
    while !dir.join("api").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "daemon in {} did not come up",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

/// `VmRSS` of a process in KiB, after it has settled for 5 s.
fn settled_rss_kib(daemon: &Daemon) -> u64 {
    std::thread::sleep(Duration::from_secs(5));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.0.id())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Peak resident memory in KiB of `vrm --version`, from `wait4`.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's wait cannot replace here
fn bare_binary_rss_kib() -> u64 {
    let child = Command::new(VRM)
        .arg("--version")
        .stdout(Stdio::null())
        .spawn()
        .expect("vrm runs");
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; the pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    usage.ru_maxrss as u64
}

fn init(dir: &Path, vendor: Option<&str>) {
    let mut cmd = Command::new(VRM);
    cmd.arg("--data-dir").arg(dir).arg("init");
    if let Some(name) = vendor {
        cmd.args(["--vendor", name, "--category", "books"]);
    }
    let status = cmd.stdout(Stdio::null()).status().expect("vrm init");
    assert!(status.success(), "vrm init");
}

/// Fills `dir`'s store with `n` received intents and an offer from this vendor to each.
fn fill(dir: &Path, n: usize) -> u64 {
    let identity = Identity::load(dir).expect("keys");
    let vendor_key = identity.vendor_key().expect("vendor key").clone();
    let store = Store::open(&dir.join("store"), 64 << 20).expect("store");
    let now = vrm::clock::unix_now();
    let peer = libp2p::PeerId::random();
    for i in 0..n {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let mut seed = [3u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let intent = Intent {
            id: id.into(),
            category: "books".into(),
            subcategory: Some("fiction".into()),
            text: format!("A used paperback in good condition, request {i}"),
            constraints: Constraints {
                max_price: Some(Price {
                    amount: 2_000,
                    currency: "EUR".into(),
                }),
                ..Constraints::default()
            },
            terms: vec![],
            created: now,
            expires: now + 30 * 86_400,
            reply_to: ReplyTo::new(
                &peer,
                &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
                [7; 16],
                [9; 32],
            ),
            group: None,
        };
        let intent_env = Envelope::seal(&intent, &SigningKey::from_bytes(&seed));
        let offer = Offer {
            intent: id.into(),
            persona: intent_env.signer().to_bytes().into(),
            vendor: vendor_key.verifying_key().to_bytes().into(),
            items: vec![OfferItem {
                title: format!("Paperback {i}"),
                price: Price {
                    amount: 900,
                    currency: "EUR".into(),
                },
                quantity: 1,
                sku: None,
            }],
            text: "Good condition, ships in two days".into(),
            created: now,
            valid_until: now + 7 * 86_400,
            accepted_terms: vec![],
            inbox: None,
            group: None,
        };
        let offer_env = Envelope::seal(&offer, &vendor_key);
        store
            .receive_intent(&intent_env, &intent, now)
            .expect("intent");
        store
            .record_offer_received(&offer_env, &offer, now)
            .expect("offer");
    }
    store.flush().expect("flush");
    drop(store);
    dir_bytes(&dir.join("store"))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn line(bench: &str, value: u64, baseline: &str, baseline_value: u64, extra: serde_json::Value) {
    let mut out = json!({
        "bench": bench,
        "value": (value as f64 / 102.4).round() / 10.0,
        "unit": "MiB",
        "baseline": baseline,
        "baseline_value": (baseline_value as f64 / 102.4).round() / 10.0,
        "ratio": ((value as f64 / baseline_value as f64) * 100.0).round() / 100.0,
    });
    if let (Some(o), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
        o.extend(extra.clone());
    }
    println!("{out}");
}

fn main() {
    let records: usize = std::env::var("VRM_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = tempfile::tempdir().expect("tempdir");
    let bare = bare_binary_rss_kib();

    let idle_dir: PathBuf = root.path().join("idle");
    init(&idle_dir, None);
    let idle = settled_rss_kib(&start(&idle_dir));
    line("rss_idle_node", idle, "rss_vrm_version", bare, json!({}));

    let full_dir = root.path().join("full");
    init(&full_dir, Some("Bench books"));
    let store_bytes = fill(&full_dir, records);
    let full = settled_rss_kib(&start(&full_dir));
    line(
        "rss_node_100k",
        full,
        "rss_idle_node",
        idle,
        json!({
            "intents": records,
            "offers": records,
            "store_mib": (store_bytes as f64 / 1_048_576.0).round(),
        }),
    );
}
