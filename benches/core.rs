//! Core throughput benchmarks, printed as JSON lines (one per figure) so runs can be compared:
//!
//! - `ingest`: gossip intents validated and stored per second on one core (decode, limits,
//!   signature, checks, replay memory, durable store write) in the node's batches, against
//!   the raw ed25519-dalek one-by-one `verify_strict` rate and the raw batch verification
//!   rate, both measured in the same run; `ingest_one_forgery_per_batch` is the same with
//!   one forged signature in every batch; `ingest_one_by_one` is the same without batching
//!   (a quiet topic);
//! - `store_ack`: acknowledged (flushed) intent writes per second through the store, against
//!   raw sled writing the same keys and values (read back from the store) with a flush after
//!   each intent, in the same run.
//!
//! Lines that write to disk name the file system they wrote on (`data_dir_fs`).
//! - `mailbox_deposit`: offers sealed (HPKE) and deposited in a service node's mailbox, each
//!   on disk before it is acknowledged, one queue per intent, against the same raw sled
//!   insert + flush; then the resident memory of the process holding them
//!   (`VRM_BENCH_MAILBOX_N`, default 100,000).
//!
//! - `review_ingest`: reviews from the directory taken per second (decode, the review's and
//!   its token's signatures, the rules, replay memory, the review store), one at a time,
//!   against the raw one-by-one `verify_strict` rate (a review carries two signatures, so
//!   0.5 is the crypto ceiling); `reputation`: the reviews a node weighs per second when it
//!   computes every vendor's reputation (200 vendors, a quarter of the buyers showing a
//!   history), against reading those same reviews from the store.
//!
//! Run: `scripts/bench.sh` (or `cargo bench --bench core`). `VRM_BENCH_N` sets the count (20,000).

#[path = "support/file_system.rs"]
mod file_system;

use std::time::Instant;

use ed25519_dalek::SigningKey;
use serde_json::json;
use vrm::node::ingest;
use vrm::proto::envelope::signing_input;
use vrm::proto::*;
use vrm::store::Store;

fn intents(n: usize, now: u64) -> Vec<Envelope> {
    let mut seed = [1u8; 32];
    let peer = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .expect("seed")
        .public()
        .to_peer_id();
    (0..n)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mut key = [7u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let intent = Intent {
                id: id.into(),
                category: "books".into(),
                subcategory: Some("fiction".into()),
                text: format!("A used paperback, number {i}"),
                constraints: Constraints {
                    max_price: Some(Price {
                        amount: 2_000,
                        currency: "EUR".into(),
                    }),
                    ..Constraints::default()
                },
                terms: vec![Term {
                    id: "no-tracking".into(),
                    required: true,
                }],
                created: now,
                expires: now + 3600,
                reply_to: ReplyTo::new(
                    &peer,
                    &"/ip4/127.0.0.1/tcp/9".parse().expect("addr"),
                    [7; 16],
                    [9; 32],
                ),
                group: None,
            };
            Envelope::seal(&intent, &SigningKey::from_bytes(&key))
        })
        .collect()
}

fn line(
    bench: &str,
    value: f64,
    unit: &str,
    baseline: &str,
    baseline_value: f64,
    context: serde_json::Value,
) {
    let mut out = json!({
        "bench": bench,
        "value": (value * 10.0).round() / 10.0,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": (baseline_value * 10.0).round() / 10.0,
        "ratio": ((value / baseline_value) * 1000.0).round() / 1000.0,
    });
    if let (Some(o), Some(extra)) = (out.as_object_mut(), context.as_object()) {
        o.extend(extra.clone());
    }
    println!("{out}");
}

fn per_sec(n: usize, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("VRM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let now = vrm::clock::unix_now();
    let envelopes = intents(n, now);

    // Baseline: raw strict verification of the same signatures, one by one.
    let parts: Vec<(
        ed25519_dalek::VerifyingKey,
        Vec<u8>,
        ed25519_dalek::Signature,
    )> = envelopes
        .iter()
        .map(|e| {
            let input = signing_input("intent", e.body_bytes());
            let key = *e.signer();
            let wire: ciborium::Value = ciborium::from_reader(e.as_bytes()).expect("cbor");
            let sig = wire
                .as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("sig")))
                .and_then(|(_, v)| v.as_bytes())
                .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
                .map(|b| ed25519_dalek::Signature::from_bytes(&b))
                .expect("sig");
            (key, input, sig)
        })
        .collect();
    let started = Instant::now();
    for (key, input, sig) in &parts {
        key.verify_strict(input, sig).expect("valid");
    }
    let verify_rate = per_sec(n, started);

    // Raw ed25519-dalek batch verification in the node's batch size: the crypto ceiling.
    let started = Instant::now();
    for chunk in parts.chunks(ingest::MAX_GOSSIP_BATCH) {
        let messages: Vec<&[u8]> = chunk.iter().map(|(_, m, _)| m.as_slice()).collect();
        let sigs: Vec<_> = chunk.iter().map(|(_, _, s)| *s).collect();
        let keys: Vec<_> = chunk.iter().map(|(k, _, _)| *k).collect();
        ed25519_dalek::verify_batch(&messages, &sigs, &keys).expect("valid");
    }
    let batch_rate = per_sec(n, started);
    line(
        "ed25519_verify_batch",
        batch_rate,
        "signatures/s",
        "ed25519_verify_strict",
        verify_rate,
        json!({"n": n, "batch": ingest::MAX_GOSSIP_BATCH}),
    );

    // Ingest: what a vendor node does with each intent from gossip, into a real store; all
    // valid, then with one forgery (a changed signature byte) in every batch, which costs
    // the batch its shortcut.
    let served = ingest::Scope::serving(vec!["books".to_owned()]);
    let topic = intent_topic("books");
    let forged: Vec<Vec<u8>> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut bytes = e.as_bytes().to_vec();
            if i % ingest::MAX_GOSSIP_BATCH == ingest::MAX_GOSSIP_BATCH / 2 {
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
            }
            bytes
        })
        .collect();
    let valid: Vec<Vec<u8>> = envelopes.iter().map(|e| e.as_bytes().to_vec()).collect();
    for (bench, messages) in [
        ("ingest", &valid),
        ("ingest_one_forgery_per_batch", &forged),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 64 << 20).expect("store");
        let started = Instant::now();
        let mut rejected = 0;
        for chunk in messages.chunks(ingest::MAX_GOSSIP_BATCH) {
            let batch: Vec<(&str, &[u8])> = chunk
                .iter()
                .map(|m| (topic.as_str(), m.as_slice()))
                .collect();
            for outcome in ingest::gossip_batch(&store, &served, &batch, now) {
                match outcome.expect("store").verdict {
                    ingest::Verdict::Accept => {}
                    _ => rejected += 1,
                }
            }
        }
        let rate = per_sec(n, started);
        let forgeries = (0..n)
            .filter(|i| i % ingest::MAX_GOSSIP_BATCH == ingest::MAX_GOSSIP_BATCH / 2)
            .count();
        assert_eq!(rejected, if bench == "ingest" { 0 } else { forgeries });
        line(
            bench,
            rate,
            "messages/s",
            "ed25519_verify_strict",
            verify_rate,
            json!({
                "n": n,
                "rejected": rejected,
                "cores": 1,
                "batch": ingest::MAX_GOSSIP_BATCH,
                "baseline_batch": "ed25519_verify_batch",
                "baseline_batch_value": batch_rate.round(),
                "ratio_to_batch": ((rate / batch_rate) * 1000.0).round() / 1000.0,
                "data_dir_fs": file_system::of(dir.path()),
            }),
        );
    }

    // The same one message at a time (a quiet topic): one verification and one flush each.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 64 << 20).expect("store");
    let started = Instant::now();
    for env in &envelopes {
        let outcome = ingest::gossip(&store, &served, &topic, env.as_bytes(), now).expect("store");
        assert!(matches!(outcome.verdict, ingest::Verdict::Accept));
    }
    line(
        "ingest_one_by_one",
        per_sec(n, started),
        "intents/s",
        "ed25519_verify_strict",
        verify_rate,
        json!({"n": n, "cores": 1, "batch": 1}),
    );

    // Decode + verify + checks only (no store), to show what the store costs.
    let started = Instant::now();
    for env in &envelopes {
        decode_and_check(env.as_bytes(), now).expect("valid");
    }
    line(
        "decode_check",
        per_sec(n, started),
        "intents/s",
        "ed25519_verify_strict",
        verify_rate,
        json!({"n": n}),
    );

    // Store: acknowledged writes through the store (an intent and its expiry index, then
    // the flush that acknowledges them), against raw sled writing the very same keys and
    // values into the same two trees, each intent's pair followed by sled's flush.
    let store_dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(store_dir.path(), 64 << 20).expect("store");
    let started = Instant::now();
    for env in &envelopes {
        let intent: Intent = env.open().expect("intent");
        store.receive_intent(env, &intent, now).expect("insert");
        store.flush().expect("flush");
    }
    let store_rate = per_sec(n, started);
    drop(store);
    let written = sled::open(store_dir.path().join("db")).expect("the store's sled");
    let pairs = |tree: &str| -> Vec<(sled::IVec, sled::IVec)> {
        let tree = written.open_tree(tree).expect("tree");
        tree.iter().map(|kv| kv.expect("read")).collect()
    };
    let (records, index) = (pairs("intents"), pairs("intents_by_expiry"));
    drop(written);
    assert_eq!((records.len(), index.len()), (n, n));
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = sled::Config::new()
        .path(raw_dir.path())
        .cache_capacity(64 << 20)
        .open()
        .expect("sled");
    let (raw_records, raw_index) = (
        raw.open_tree("intents").expect("tree"),
        raw.open_tree("intents_by_expiry").expect("tree"),
    );
    let started = Instant::now();
    for ((key, record), (index_key, empty)) in records.into_iter().zip(index) {
        raw_index.insert(index_key, empty).expect("insert");
        raw_records.insert(key, record).expect("insert");
        raw.flush().expect("flush");
    }
    let raw_rate = per_sec(n, started);
    line(
        "store_ack",
        store_rate,
        "writes/s",
        "sled_insert_flush_same_keys",
        raw_rate,
        json!({"n": n, "data_dir_fs": file_system::of(store_dir.path())}),
    );
    mailbox(&envelopes, now, raw_rate);
    reviews(n, now, verify_rate);
}

/// Reviews taken from gossip per second, and reputations computed over them.
fn reviews(n: usize, now: u64, verify_rate: f64) {
    use ed25519_dalek::Signer;
    let vendors: Vec<SigningKey> = (0..200u32)
        .map(|v| {
            let mut seed = [0x77; 32];
            seed[..4].copy_from_slice(&v.to_be_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let token = |vendor: &SigningKey, persona: &SigningKey, order: u32| {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&order.to_be_bytes());
        let body = ReviewToken {
            rel: id.into(),
            seq: 4,
            prev: id.into(),
            persona: persona.verifying_key().to_bytes().into(),
            order: id.into(),
            created: now - 60,
        };
        Envelope::seal(&body, vendor).as_bytes().to_vec()
    };
    let reviews: Vec<Vec<u8>> = (0..n as u32)
        .map(|i| {
            let mut seed = [0x55; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let persona = SigningKey::from_bytes(&seed);
            let vendor = &vendors[i as usize % vendors.len()];
            let history = if i % 4 == 0 {
                let other = &vendors[(i as usize + 1) % vendors.len()];
                let link = history_input(
                    &persona.verifying_key().to_bytes(),
                    &vendor.verifying_key().to_bytes(),
                );
                vec![HistoryItem {
                    token: token(other, &persona, i).into(),
                    sig: persona.sign(&link).to_bytes().into(),
                }]
            } else {
                Vec::new()
            };
            let review = Review {
                token: token(vendor, &persona, i).into(),
                rating: (i % 5) as u8 + 1,
                text: "As described.".into(),
                history,
                created: now - 30,
            };
            Envelope::seal(&review, &persona).as_bytes().to_vec()
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 64 << 20).expect("store");
    let scope = ingest::Scope::default();
    let started = Instant::now();
    for review in &reviews {
        let outcome = ingest::gossip(&store, &scope, DIRECTORY_TOPIC, review, now).expect("store");
        assert_eq!(outcome.verdict, ingest::Verdict::Accept);
    }
    line(
        "review_ingest",
        per_sec(n, started),
        "reviews/s",
        "ed25519_verify_strict",
        verify_rate,
        json!({"n": n, "cores": 1, "signatures_per_review": "2 (4 with a history item, 1 in 4)"}),
    );
    let started = Instant::now();
    let held = store.reviews(None).expect("reviews");
    let read_rate = per_sec(held.len(), started);
    let trusted = [vendors[0].verifying_key().to_bytes()].into();
    let started = Instant::now();
    let reps = vrm::node::reviews::reputations(&held, &trusted, now);
    let rate = per_sec(held.len(), started);
    assert_eq!(reps.len(), vendors.len());
    line(
        "reputation",
        rate,
        "reviews weighed/s",
        "store_read_reviews",
        read_rate,
        json!({"n": held.len(), "vendors": vendors.len()}),
    );
}

/// Deposits per second into a mailbox (sealing included), and the memory it then takes.
fn mailbox(envelopes: &[Envelope], now: u64, raw_rate: f64) {
    use vrm::proto::sealed::{OFFER_INFO, ReplyKey, seal};
    use vrm::store::mailbox::{MailboxLimits, QueueClaim};

    let n: usize = std::env::var("VRM_BENCH_MAILBOX_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 64 << 20).expect("store");
    let limits = MailboxLimits {
        max_queues: n as u64,
        max_items_per_queue: 32,
        max_bytes: 4 << 30,
    };
    let key = ReplyKey::derive(&[7; 32]);
    let queue = |i: usize| {
        let mut q = [0u8; 16];
        q[..8].copy_from_slice(&(i as u64).to_be_bytes());
        q
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let claims: Vec<QueueClaim> = chunk
            .iter()
            .map(|&i| QueueClaim {
                queue: queue(i),
                expires: now + 86_400,
                ack: vec![],
            })
            .collect();
        store
            .mailbox_fetch(&claims, now, &limits, 0)
            .expect("store")
            .expect("opens");
    }
    let rss_before = rss_kib();
    let started = Instant::now();
    for i in 0..n {
        let plaintext = envelopes[i % envelopes.len()].as_bytes();
        let sealed = seal(&key.public(), OFFER_INFO, &queue(i), plaintext).expect("seals");
        store
            .mailbox_deposit(&queue(i), &sealed, now, &limits)
            .expect("store")
            .expect("deposited");
        // A deposit is acknowledged once flushed, as the node does.
        store.flush().expect("flush");
    }
    line(
        "mailbox_deposit",
        per_sec(n, started),
        "deposits/s",
        // The same baseline as `store_ack`: raw sled writing an intent's two entries with a
        // flush after each (a deposit writes about as much).
        "sled_insert_flush_same_keys",
        raw_rate,
        json!({"n": n, "sealed_bytes_total": store.mailbox_counts().bytes}),
    );
    line(
        "mailbox_rss",
        rss_kib() as f64 / 1024.0,
        "MiB",
        "rss_before_deposits",
        rss_before as f64 / 1024.0,
        json!({"n": n, "items": store.mailbox_counts().items, "cache_mib": 64}),
    );
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
