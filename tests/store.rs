//! The store on a real disk: records survive reopening, a second opener is refused with a
//! clear error, concurrent writers share flushes, a newer schema is refused, and every write
//! a killed (SIGKILL) process had acknowledged is there afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use vrm::proto::*;
use vrm::store::*;

const CACHE: u64 = 8 * 1024 * 1024;

fn intent(id: [u8; 16]) -> Intent {
    let mut seed = [5u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .unwrap()
        .public()
        .to_peer_id();
    Intent {
        id: id.into(),
        category: "books".into(),
        subcategory: None,
        text: "Any book by Ursula K. Le Guin".into(),
        constraints: Constraints::default(),
        terms: vec![],
        created: 1_800_000_000,
        expires: 1_800_086_400,
        reply_to: ReplyTo {
            peer: peer.to_bytes().into(),
            addrs: vec![],
        },
    }
}

fn record(id: [u8; 16]) -> IntentRecord {
    let key = SigningKey::from_bytes(&[3; 32]);
    IntentRecord {
        envelope: Envelope::seal(&intent(id), &key).as_bytes().to_vec().into(),
        origin: Origin::Own,
        stored_at: 1_800_000_000,
        withdrawn_at: None,
        decision: None,
    }
}

fn id_of(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

#[test]
fn records_survive_reopen_and_ids_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), CACHE).unwrap();
        assert!(store.insert_intent(&id_of(1), &record(id_of(1))).unwrap());
        assert!(
            !store.insert_intent(&id_of(1), &record(id_of(1))).unwrap(),
            "same id twice"
        );
        assert!(store.withdraw_intent(&id_of(1), 1_800_000_100).unwrap());
        assert!(!store.withdraw_intent(&id_of(2), 1_800_000_100).unwrap());
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    let all = store.intents().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.withdrawn_at, Some(1_800_000_100));
    let (_, opened) = open_stored::<Intent>(&all[0].1.envelope).unwrap();
    assert_eq!(opened, intent(id_of(1)));
    assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
}

#[test]
fn second_open_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), CACHE).unwrap();
    let err = Store::open(dir.path(), CACHE)
        .err()
        .expect("second open fails");
    assert!(matches!(err, StoreError::Locked(_)));
    assert!(
        err.to_string().contains("in use by another vrm process"),
        "{err}"
    );
}

#[test]
fn offers_scan_by_intent_and_profiles_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let vendor = SigningKey::from_bytes(&[4; 32]);
    for (intent_id, n) in [(id_of(1), 3), (id_of(2), 2)] {
        for i in 0..n {
            let offer = Offer {
                intent: intent_id.into(),
                persona: [3; 32].into(),
                vendor: vendor.verifying_key().to_bytes().into(),
                items: vec![OfferItem {
                    title: format!("item {i}"),
                    price: Price {
                        amount: 100,
                        currency: "EUR".into(),
                    },
                    quantity: 1,
                    sku: None,
                }],
                text: String::new(),
                created: 1_800_000_000,
                valid_until: 1_800_000_600,
                accepted_terms: vec![],
            };
            let env = Envelope::seal(&offer, &vendor);
            let rec = OfferRecord {
                envelope: env.as_bytes().to_vec().into(),
                origin: Origin::Received,
                stored_at: 0,
                delivery: Delivery::default(),
            };
            assert!(store.insert_offer(&intent_id, &env.id(), &rec).unwrap());
            assert!(!store.insert_offer(&intent_id, &env.id(), &rec).unwrap());
        }
    }
    assert_eq!(store.offers_for(&id_of(1)).unwrap().len(), 3);
    assert_eq!(store.offers_for(&id_of(2)).unwrap().len(), 2);
    assert_eq!(store.offers().unwrap().len(), 5);

    let profile = |created| VendorProfile {
        name: format!("v{created}"),
        categories: vec!["books".into()],
        contact: String::new(),
        accepted_terms: vec![],
        created,
        reply_to: None,
    };
    let key = vendor.verifying_key().to_bytes();
    for (created, kept) in [(10, true), (5, false), (20, true), (20, false)] {
        let p = profile(created);
        let rec = ProfileRecord {
            envelope: Envelope::seal(&p, &vendor).as_bytes().to_vec().into(),
            stored_at: 0,
        };
        assert_eq!(
            store.upsert_profile(&key, &p, &rec).unwrap(),
            kept,
            "created {created}"
        );
    }
    let profiles = store.profiles().unwrap();
    assert_eq!(profiles.len(), 1);
    assert_eq!(
        open_stored::<VendorProfile>(&profiles[0].envelope)
            .unwrap()
            .1
            .name,
        "v20"
    );
}

#[test]
fn seen_ids_detect_replay_until_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    let id = MessageId([8; 32]);
    assert!(store.mark_seen(&id, 100).unwrap());
    assert!(!store.mark_seen(&id, 100).unwrap());
    assert_eq!(store.purge_seen(99).unwrap(), 0);
    assert_eq!(store.purge_seen(100).unwrap(), 1);
    assert!(store.mark_seen(&id, 200).unwrap());
}

#[test]
fn outbox_entries_persist_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let id = MessageId([9; 32]);
    {
        let store = Store::open(dir.path(), CACHE).unwrap();
        let entry = OutboxEntry {
            envelope: vec![1, 2, 3].into(),
            route: Route::Gossip {
                topic: intent_topic("books"),
            },
            expires: 10,
            attempts: 0,
            next_attempt: 0,
        };
        store.outbox_put(&id, &entry).unwrap();
    }
    let store = Store::open(dir.path(), CACHE).unwrap();
    let entries = store.outbox().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, id);
    assert_eq!(
        entries[0].1.route,
        Route::Gossip {
            topic: "/vrm/1/intent/books".into()
        }
    );
    store.outbox_remove(&id).unwrap();
    assert_eq!(store.outbox_len(), 0);
}

#[test]
fn concurrent_writers_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), CACHE).unwrap());
    let before = store.flush_count();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let id = id_of(t * 1000 + i);
                    store.insert_intent(&id, &record(id)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = store.flush_count() - before;
    assert_eq!(store.intents().unwrap().len(), 400);
    assert!(
        flushes < 400,
        "400 writes took {flushes} flushes: nothing was grouped"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), CACHE).unwrap());
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), CACHE).err().expect("refused");
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

/// Child half of the crash test: writes intents as fast as it can and prints "ack N" after
/// each write returns. Runs only when the parent sets VRM_CRASH_CHILD_DIR.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var("VRM_CRASH_CHILD_DIR") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir), CACHE).unwrap();
    let mut out = std::io::stdout();
    for n in 0.. {
        let id = id_of(n);
        store.insert_intent(&id, &record(id)).unwrap();
        use std::io::Write;
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VRM_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 300 {
        let line = lines.next().expect("child still writing").unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            acked.push(n.parse::<u64>().unwrap());
        }
    }
    // SIGKILL mid-stream: the child is writing its next record right now.
    child.kill().unwrap();
    child.wait().unwrap();
    let store = Store::open(dir.path(), CACHE).unwrap();
    for n in &acked {
        assert!(
            store.intent(&id_of(*n)).unwrap().is_some(),
            "acknowledged record {n} lost"
        );
    }
}
