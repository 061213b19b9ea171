//! Faults of the machine, on real file systems: a full disk, a damaged store, a read-only
//! data directory. Mounting needs root; without it these tests say so and pass only when
//! `VRM_REQUIRE_ROOT` is unset (`.ci/run` sets it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{AWAY_SERVICE_NODE, Daemon, cast_book, vrm};

use ed25519_dalek::SigningKey;
use vrm::proto::*;
use vrm::store::*;

const CACHE: u64 = 8 * 1024 * 1024;

fn intent(n: u64) -> (Envelope, Intent) {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let mut seed = [5u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .unwrap()
        .public()
        .to_peer_id();
    let body = Intent {
        id: id.into(),
        category: "books".into(),
        subcategory: None,
        text: "x".repeat(2000),
        constraints: Constraints::default(),
        terms: vec![],
        created: 1_800_000_000,
        expires: 1_800_086_400,
        reply_to: ReplyTo::new(
            &peer,
            &"/ip4/127.0.0.1/tcp/9".parse().unwrap(),
            [7; 16],
            [9; 32],
        ),
        group: None,
    };
    (
        Envelope::seal(&body, &SigningKey::from_bytes(&[3; 32])),
        body,
    )
}

/// A tmpfs of `size` mounted on a fresh folder; unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(dir));
        }
        assert!(
            std::env::var_os("VRM_REQUIRE_ROOT").is_none(),
            "VRM_REQUIRE_ROOT is set but tmpfs cannot be mounted"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        None
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn cast(store: &Store, n: u64) -> Result<Outgoing, StoreError> {
    let (envelope, body) = intent(n);
    store.cast(&envelope, &body, 1_800_000_000)
}

fn ids(store: &Store) -> Vec<IntentId> {
    store
        .intents()
        .unwrap()
        .into_iter()
        .map(|s| s.intent.id)
        .collect()
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_what_was_acknowledged_and_heals() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let dir = fs.path().join("store");
    let store = Store::open(&dir, CACHE).unwrap();
    let mut acked = Vec::new();
    for n in 0..50 {
        acked.push(cast(&store, n).unwrap().id);
    }
    // Another program fills the disk.
    let filler = fs.path().join("filler");
    assert!(
        std::fs::write(&filler, vec![0u8; 32 << 20]).is_err(),
        "the disk is full"
    );
    let mut refused = 0;
    for n in 50..60 {
        match cast(&store, n) {
            Ok(queued) => acked.push(queued.id),
            Err(e) => {
                refused += 1;
                assert!(
                    matches!(e, StoreError::DiskFull | StoreError::Closed(_)),
                    "a full disk is said as such: {e}"
                );
            }
        }
    }
    assert!(refused > 0, "a full disk refuses casts");
    let message = cast(&store, 60).unwrap_err().to_string();
    assert!(
        message.contains("disk") && !message.contains("corrupt"),
        "clear message: {message}"
    );

    // Space comes back: the same store takes writes again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let healed = (70..80).find_map(|n| cast(&store, n).ok());
    acked.push(healed.expect("casts work again once space is freed").id);
    acked.push(cast(&store, 90).unwrap().id);

    // Whatever was acknowledged, before and after, is there when the store is opened again.
    drop(store);
    let store = Store::open(&dir, CACHE).unwrap();
    let stored: Vec<MessageId> = store
        .intents()
        .unwrap()
        .into_iter()
        .map(|s| s.envelope.id())
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged intent {id} lost");
    }
    assert!(ids(&store).len() >= acked.len());
}

fn cast_id(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "cast failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_daemon_on_a_full_disk_says_so_and_casts_again_once_space_is_freed() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let dir = fs.path().join("person");
    let mut daemon = Daemon::start(&dir, &["--no-mdns", "--bootstrap", AWAY_SERVICE_NODE]);
    daemon
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    let mut acked = vec![cast_id(&cast_book(&dir, "A paperback"))];

    let filler = fs.path().join("filler");
    assert!(
        std::fs::write(&filler, vec![0u8; 64 << 20]).is_err(),
        "the disk is full"
    );
    // A write that fits in a page the store already holds still succeeds; soon one does not.
    let refused = (0..200)
        .map(|_| cast_book(&dir, "A paperback"))
        .find(|out| match out.status.success() {
            true => {
                acked.push(cast_id(out));
                false
            }
            false => true,
        })
        .expect("a full disk refuses casts");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("disk is full"), "the CLI says why: {said}");
    assert!(
        daemon
            .wait_for("disk is full", Duration::from_secs(5))
            .is_some(),
        "the log says why"
    );

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = cast_book(&dir, "A paperback");
        if out.status.success() {
            acked.push(cast_id(&out));
            break;
        }
        assert!(Instant::now() < deadline, "casts never worked again");
        std::thread::sleep(Duration::from_millis(200));
    }
    acked.push(cast_id(&cast_book(&dir, "A paperback")));

    // Killed, restarted: every acknowledged intent is there.
    drop(daemon);
    let mut daemon = Daemon::start(&dir, &["--no-mdns", "--bootstrap", AWAY_SERVICE_NODE]);
    daemon
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    let listed = vrm(&dir, &["intent", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    for id in &acked {
        assert!(
            listed.as_array().unwrap().iter().any(|i| i["id"] == *id),
            "acknowledged intent {id} lost"
        );
    }
}

/// Starts a daemon on `dir`, casts `n` intents, stops it cleanly; returns the ids.
fn run_and_stop(dir: &Path, n: usize) -> Vec<String> {
    let mut daemon = Daemon::start(dir, &["--no-mdns", "--bootstrap", AWAY_SERVICE_NODE]);
    daemon
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    let ids = (0..n)
        .map(|_| cast_id(&cast_book(dir, "A paperback")))
        .collect();
    daemon.terminate();
    ids
}

/// Runs `vrm daemon` on `dir` expecting it to refuse to start; returns what it printed.
fn refused_start(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vrm"))
        .arg("--data-dir")
        .arg(dir)
        .args([
            "daemon",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
        ])
        .arg("--no-mdns")
        .env_remove("VRM_DATA_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the daemon started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_damaged_store_is_refused_at_start_with_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("person");
    run_and_stop(&dir, 20);
    // Bytes in the middle of sled's log go bad while the node is stopped.
    let log = dir.join("store/db/db");
    let mut bytes = std::fs::read(&log).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 256].fill(0xA5);
    std::fs::write(&log, bytes).unwrap();

    let said = refused_start(&dir);
    assert!(
        said.contains("is damaged"),
        "says the store is damaged: {said}"
    );
    assert!(
        said.contains("restore it from a backup"),
        "says what to do: {said}"
    );
    assert!(
        refused_start(&dir).contains("is damaged"),
        "refused again: a refusal does not make the damage look healed"
    );
}

#[test]
fn a_store_that_was_not_damaged_opens_after_clean_stops_and_after_a_kill() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("person");
    let mut ids = run_and_stop(&dir, 3);
    ids.extend(run_and_stop(&dir, 3));
    // Killed: no clean stop is recorded, and the next start does not mistake it for damage.
    let mut daemon = Daemon::start(&dir, &["--no-mdns", "--bootstrap", AWAY_SERVICE_NODE]);
    daemon
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    ids.push(cast_id(&cast_book(&dir, "A paperback")));
    drop(daemon);
    ids.extend(run_and_stop(&dir, 1));
    assert_eq!(ids.len(), 8);
}

#[test]
fn a_read_only_data_dir_is_refused_with_the_fix() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let dir = fs.path().join("person");
    run_and_stop(&dir, 1);
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(fs.path())
        .status()
        .unwrap();
    assert!(remounted.success());
    let said = refused_start(&dir);
    assert!(said.contains("cannot be written"), "says why: {said}");
    assert!(said.contains("--data-dir"), "says the fix: {said}");
}

/// Polls `vrm ... --json` on `dir` until `done` holds for its output, for 30 s at most.
fn poll_json(dir: &Path, args: &[&str], what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = vrm(dir, args);
        if out.status.success() && serde_json::from_slice(&out.stdout).is_ok_and(|json| done(&json))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 30 s; last: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The person's store fails (a full disk) when an offer comes from its mailbox: the person's
/// node does not acknowledge it, so the mailbox keeps it, and it arrives at a later fetch
/// once the person's disk has room again.
#[test]
fn an_offer_that_meets_a_full_disk_stays_in_the_mailbox_and_arrives_later() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let person_dir = fs.path().join("person");
    let vendor_root = tempfile::tempdir().unwrap();
    let vendor_dir = vendor_root.path().join("vendor");
    let mut person = Daemon::start(&person_dir, &["--no-mdns"]);
    let person_addr = person.listen_addr();
    person
        .wait_for("API on", Duration::from_secs(20))
        .expect("API up");
    // The vendor answers from its catalog, 6 s after an intent arrives (its program sleeps
    // and fails): time for the person's disk to fill.
    let init = vrm(
        &vendor_dir,
        &["init", "--vendor", "Bookshop", "--category", "books"],
    );
    assert!(init.status.success());
    let config = vendor_dir.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[vendor]\n",
        "[vendor]\nresponder = [\"sh\", \"-c\", \"sleep 6; exit 1\"]\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut vendor = Daemon::start(&vendor_dir, &["--no-mdns", "--bootstrap", &person_addr]);
    person.connected_to(&vendor.peer_id());
    let id = cast_id(&cast_book(&person_dir, "A paperback"));
    poll_json(
        &vendor_dir,
        &["vendor", "intents", "--json"],
        "intent arrives",
        |json| json.as_array().is_some_and(|intents| !intents.is_empty()),
    );

    let filler = fs.path().join("filler");
    assert!(
        std::fs::write(&filler, vec![0u8; 64 << 20]).is_err(),
        "the disk is full"
    );
    // Once a write has failed, the store stays closed until the disk has room. (A cast or
    // two may still fit in what sled's files hold already; they are acknowledged, durable,
    // and answered like the first.)
    let casts = (0..200)
        .take_while(|_| cast_book(&person_dir, "A paperback").status.success())
        .count() as u64;
    assert!(casts < 200, "the disk is full");
    let offers = 1 + casts;
    let mailbox_items = |n: u64| move |json: &serde_json::Value| json["mailbox"]["items"] == n;
    // The vendor is the person's service node: the offers wait in the mailbox it keeps.
    poll_json(
        &vendor_dir,
        &["status", "--json"],
        "the offers wait in the mailbox",
        mailbox_items(offers),
    );
    let all_offers = |state: &'static str| {
        move |json: &serde_json::Value| {
            json.as_array().is_some_and(|offers| {
                !offers.is_empty() && offers.iter().all(|o| o["delivery"] == state)
            })
        }
    };
    let vendor_offers = ["vendor", "offers", "--json"];
    poll_json(
        &vendor_dir,
        &vendor_offers,
        "offers delivered to the mailbox",
        all_offers("delivered"),
    );
    // Still there after the mailbox pushed it and the person fetched again: not acknowledged.
    std::thread::sleep(Duration::from_secs(16));
    poll_json(
        &vendor_dir,
        &["status", "--json"],
        "the offers still wait",
        mailbox_items(offers),
    );

    std::fs::remove_file(&filler).unwrap();
    poll_json(
        &person_dir,
        &["offers", "--intent", &id, "--json"],
        "offer arrives",
        |json| json.as_array().is_some_and(|offers| offers.len() == 1),
    );
    poll_json(
        &vendor_dir,
        &["status", "--json"],
        "the mailbox is emptied",
        mailbox_items(0),
    );
}
