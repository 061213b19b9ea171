//! The node's own store: one sled database per data directory, one tree per record type,
//! values in CBOR, keys laid out for the scans the node needs.
//!
//! | tree           | key                                    | value                   |
//! |----------------|----------------------------------------|-------------------------|
//! | `intents`      | intent id (16)                         | intent record           |
//! | `offers`       | intent id (16) ‖ offer message id (32) | offer record            |
//! | `profiles`     | vendor key (32)                        | profile record          |
//! | `outbox`       | message id (32)                        | outbox record           |
//! | `seen`         | message id (32)                        | forget-after time, u64 BE |
//! | `seen_by_time` | forget-after time (8, BE) ‖ message id | empty                   |
//! | `intents_by_expiry` | intent expiry (8, BE) ‖ intent id (16) | empty              |
//! | `mailbox_queues` | queue id (16)                        | expiry, u64 BE          |
//! | `mailbox_items` | queue id (16) ‖ item id (32)          | item record             |
//! | `mailbox_by_expiry` | queue expiry (8, BE) ‖ queue id (16) | empty              |
//! | `early_withdrawals` | intent id (16)                    | signer, forget-after    |
//! | `carried`      | message id (32)                        | shard, arrival, envelope |
//! | `carried_by_arrival` | shard (1) ‖ arrival (8, BE) ‖ message id | forget-after, u64 BE |
//! | `relationships`, `rel_entries`, `rel_acks`, `rel_by_offer` | see `relationships` | |
//! | `vault`        | field name                             | the person's value, UTF-8 |
//! | `reviews`      | vendor key (32) ‖ order id (32)        | review record           |
//! | `group_members` | group id (16) ‖ signer (32) ‖ intent id (16) | member intent envelope |
//! | `group_by_member` | signer (32) ‖ intent id (16)        | group id (16)           |
//! | `meta`         | name                                   | e.g. schema version     |
//!
//! The rest of the node never sees a tree or a record: it calls typed operations named after
//! what happens (`cast`, `withdraw_own`, `receive_intent`, `record_offer_made`, …) and
//! reads [`models`] (decoded, verified envelopes with their state). An operation that
//! touches several trees writes them in order and makes them durable with one flush; no
//! sled transaction is used, because sled 0.34's first transaction makes every later write
//! of the whole process take one global lock (the 20-node in-process throughput bench
//! delivered half as many intents with them; README, "Design notes"). One file per concern: `intents`, `offers`,
//! `profiles`, [`outbox`], `seen` (the replay memory), `carried` (the catch-up memory).
//!
//! Every write method returns only once the write is on disk, except the few that say why
//! they need not. sled flushes on its own only every 500 ms, so each write is followed by a
//! grouped flush (`FlushGroup`): a writer whose write was covered by a flush that started
//! after it returns at once, so N concurrent writers cost about one flush, not N. A second
//! process on the same directory gets [`StoreError::Locked`]. The schema version lives in
//! `meta`; opening a store written by an older schema upgrades it, one written by a newer
//! one is refused.
//!
//! Opening also refuses a store that lost records since its last clean stop (a digest in
//! `clean-stop`) and finishes or undoes what a crash left half written (`repair`). After a
//! disk error (a full disk) the store closes and reopens itself once writes work again.

mod carried;
mod early;
pub mod granted;
pub mod groups;
mod intents;
pub mod mailbox;
pub mod models;
mod offers;
pub mod outbox;
mod profiles;
mod protocol_v1;
mod records;
pub mod relationships;
mod repair;
pub mod reviews;
mod seen;
pub mod vault;

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::proto::{Body, DecodeError, Envelope, Kind};

pub use carried::MAX_CARRIED;
pub use intents::{MAX_STORED_INTENTS, ReceivedIntent, WithdrawOwn};
pub use models::{
    Counts, Decision, Delivery, IntentKey, Origin, Route, StoredIntent, StoredOffer, StoredProfile,
    Subject,
};
pub use outbox::Outgoing;
pub use seen::MAX_SEEN;

/// A tree's keys and values, in order.
pub type TreePairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = 10;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the store in {0} is in use by another vrm process (stop it first, or use another --data-dir)"
    )]
    Locked(PathBuf),
    /// The data directory cannot be written.
    #[error(
        "{path} cannot be written ({source}): make the data directory writable (remount its disk read-write, or `chmod -R u+w` it as its owner), or choose another with --data-dir"
    )]
    NotWritable {
        /// What could not be written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store on disk is damaged.
    #[error(
        "the store in {dir} is damaged: {reason}. Stop here and keep the folder: restore it from a backup, or move it away to start with an empty store (keys and config.toml stay)"
    )]
    Damaged {
        /// The store folder.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store was written by a newer vrm.
    #[error(
        "the store has schema version {found}, newer than this vrm understands ({supported}): run the vrm that wrote it (or a newer one) on this data directory; nothing was changed. To move the node to this machine's vrm, it must understand schema {found} too (`vrm export` with the newer vrm, `vrm import` with one that reads it)"
    )]
    TooNew {
        /// Version on disk.
        found: u32,
        /// Version of this code.
        supported: u32,
    },
    /// sled failed.
    #[error("store error: {0}")]
    Sled(sled::Error),
    /// Filesystem error outside sled.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writes were made but could not be flushed to disk, so none of them is acknowledged.
    #[error("writes could not be made durable: {0}")]
    Unflushed(std::io::Error),
    /// The disk that holds the store is full: nothing was stored.
    #[error(
        "the disk is full: nothing more can be stored until space is freed on the disk that holds the store; the node goes on by itself then"
    )]
    DiskFull,
    /// The store hit a disk error and is closed until it reopens cleanly.
    #[error(
        "the store hit a disk error and is closed until it reopens cleanly (tried again every second): {0}"
    )]
    Closed(String),
    /// A stored value does not decode (disk damage or a bug).
    #[error("corrupt record in {tree}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Disk errors seen by any store of this process; each store compares it with the count it
/// last checked itself against, so only a store that may have failed probes itself.
static IO_FAILURES: AtomicU64 = AtomicU64::new(0);

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(e) => StoreError::from_disk(sled::Error::Io(e)),
            other => StoreError::Sled(other),
        }
    }
}

impl StoreError {
    /// A disk error: counted, so the store that failed heals, and told apart if the disk
    /// is full.
    fn from_disk(e: sled::Error) -> Self {
        IO_FAILURES.fetch_add(1, Ordering::SeqCst);
        match &e {
            sled::Error::Io(io) if is_full(io) => StoreError::DiskFull,
            _ => StoreError::Sled(e),
        }
    }

    fn unflushed(e: std::io::Error) -> Self {
        IO_FAILURES.fetch_add(1, Ordering::SeqCst);
        match is_full(&e) {
            true => StoreError::DiskFull,
            false => StoreError::Unflushed(e),
        }
    }
}

/// ENOSPC (sled wraps it, keeping its kind).
fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
}

impl From<(&'static str, DecodeError)> for StoreError {
    fn from((tree, e): (&'static str, DecodeError)) -> Self {
        StoreError::Corrupt {
            tree,
            reason: e.to_string(),
        }
    }
}

/// Coalesces flushes of concurrent writers (group commit).
#[derive(Default)]
struct FlushGroup {
    written: AtomicU64,
    flushed: AtomicU64,
    lock: Mutex<()>,
    flushes: AtomicU64,
}

impl FlushGroup {
    /// Records that a write finished; returns its ticket.
    fn wrote(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once every write up to `ticket` is on stable storage: sled's flush, then
    /// `fdatasync` of its log file. sled 0.34 flushes with `sync_file_range`, which writes
    /// no metadata and no disk cache, so a power cut could still lose what it flushed; any
    /// descriptor of the file syncs the whole file.
    fn flush(&self, db: &sled::Db, log: &File, ticket: u64) -> std::io::Result<()> {
        if self.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        db.flush()?;
        log.sync_data()?;
        self.flushed.fetch_max(target, Ordering::SeqCst);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The open sled database: its trees and its log file.
struct Trees {
    db: sled::Db,
    intents: sled::Tree,
    offers: sled::Tree,
    profiles: sled::Tree,
    outbox: sled::Tree,
    seen: sled::Tree,
    seen_by_time: sled::Tree,
    /// Intents (and with them their offers) by expiry, so expired ones are purged
    /// without a scan.
    intents_by_expiry: sled::Tree,
    /// Withdrawals that came before their intents.
    early_withdrawals: sled::Tree,
    /// Service nodes: intents and withdrawals kept for catch-up, and their arrival index.
    carried: sled::Tree,
    carried_by_arrival: sled::Tree,
    /// Entries in `carried`.
    carried_count: AtomicU64,
    /// Entries in `seen` and in `intents` (own and received).
    seen_count: AtomicU64,
    intents_count: AtomicU64,
    /// Entries in `early_withdrawals` (sled counts a tree by walking it; read at open, kept
    /// up to date, as the two counts below).
    early_count: AtomicU64,
    /// Service nodes: open mailbox queues, their items, and queues by expiry.
    mailbox_queues: sled::Tree,
    mailbox_items: sled::Tree,
    mailbox_by_expiry: sled::Tree,
    /// Bytes of sealed items in `mailbox_items` (read at open, kept up to date).
    mailbox_bytes: AtomicU64,
    /// Entries in `mailbox_items` and in `mailbox_queues`.
    mailbox_items_count: AtomicU64,
    mailbox_queues_count: AtomicU64,
    /// Mailbox operations check bounds and then write: one at a time.
    mailbox_lock: Mutex<()>,
    /// Relationships, their logs' entries and acknowledgements, and which offer started
    /// which (`relationships`).
    relationships: sled::Tree,
    rel_entries: sled::Tree,
    rel_acks: sled::Tree,
    rel_by_offer: sled::Tree,
    /// The person's own records.
    vault: sled::Tree,
    /// Reviews from the directory topic, and their count.
    reviews: sled::Tree,
    reviews_count: AtomicU64,
    /// Members of collective intents, by group and by member, and their count.
    group_members: sled::Tree,
    group_by_member: sled::Tree,
    grouped_count: AtomicU64,
    meta: sled::Tree,
    /// sled's log file, for `fdatasync` after its flush.
    log: File,
    /// Flushes of this database only: a write made before a reopen is never covered by a
    /// flush of the database opened after it.
    flush: FlushGroup,
}

impl Trees {
    fn open(dir: &Path, cache_bytes: u64) -> Result<Trees, StoreError> {
        let db = open_sled(&dir.join("db"), cache_bytes)?;
        let mailbox_items = db.open_tree("mailbox_items")?;
        let (items, bytes) = mailbox::stored_items(&mailbox_items)?;
        let early_withdrawals = db.open_tree("early_withdrawals")?;
        let mailbox_queues = db.open_tree("mailbox_queues")?;
        let carried = db.open_tree("carried")?;
        let (intents, seen) = (db.open_tree("intents")?, db.open_tree("seen")?);
        let (reviews, group_members) = (db.open_tree("reviews")?, db.open_tree("group_members")?);
        Ok(Trees {
            reviews_count: AtomicU64::new(reviews.len() as u64),
            reviews,
            grouped_count: AtomicU64::new(group_members.len() as u64),
            group_members,
            group_by_member: db.open_tree("group_by_member")?,
            seen_count: AtomicU64::new(seen.len() as u64),
            carried_count: AtomicU64::new(carried.len() as u64),
            carried,
            carried_by_arrival: db.open_tree("carried_by_arrival")?,
            early_count: AtomicU64::new(early_withdrawals.len() as u64),
            early_withdrawals,
            mailbox_queues_count: AtomicU64::new(mailbox_queues.len() as u64),
            mailbox_queues,
            mailbox_bytes: AtomicU64::new(bytes),
            mailbox_items_count: AtomicU64::new(items),
            mailbox_items,
            mailbox_by_expiry: db.open_tree("mailbox_by_expiry")?,
            mailbox_lock: Mutex::new(()),
            intents_count: AtomicU64::new(intents.len() as u64),
            intents,
            offers: db.open_tree("offers")?,
            profiles: db.open_tree("profiles")?,
            outbox: db.open_tree("outbox")?,
            seen,
            seen_by_time: db.open_tree("seen_by_time")?,
            intents_by_expiry: db.open_tree("intents_by_expiry")?,
            relationships: db.open_tree("relationships")?,
            rel_entries: db.open_tree("rel_entries")?,
            rel_acks: db.open_tree("rel_acks")?,
            rel_by_offer: db.open_tree("rel_by_offer")?,
            vault: db.open_tree("vault")?,
            meta: db.open_tree("meta")?,
            db,
            log: open_log(dir)?,
            flush: FlushGroup::default(),
        })
    }

    /// Whether the database still takes writes: after a disk error (a full disk, EIO) sled
    /// 0.34 refuses every later write, and only a reopen reads the disk's state afresh.
    fn takes_writes(&self) -> bool {
        self.meta.insert(PROBE_KEY, &[]).is_ok() && self.db.flush().is_ok()
    }

    /// SHA-256 of the name, keys and values of every tree of schema `schema`, in a fixed
    /// order. (sled's own `checksum` would switch the whole process to its global write
    /// lock.)
    fn digest(&self, schema: u32) -> Result<[u8; 32], StoreError> {
        let mut hasher = Sha256::new();
        for (name, tree, since) in self.named() {
            if since > schema {
                continue;
            }
            hasher.update(name.as_bytes());
            for kv in tree.iter() {
                let (k, v) = kv?;
                hasher.update((k.len() as u64).to_be_bytes());
                hasher.update(&k);
                hasher.update((v.len() as u64).to_be_bytes());
                hasher.update(&v);
            }
        }
        Ok(hasher.finalize().into())
    }

    /// Every tree, with the schema version it first appeared in.
    fn named(&self) -> [(&'static str, &sled::Tree, u32); 22] {
        [
            ("intents", &self.intents, 1),
            ("offers", &self.offers, 1),
            ("profiles", &self.profiles, 1),
            ("outbox", &self.outbox, 1),
            ("seen", &self.seen, 1),
            ("seen_by_time", &self.seen_by_time, 1),
            ("intents_by_expiry", &self.intents_by_expiry, 1),
            ("early_withdrawals", &self.early_withdrawals, 1),
            ("mailbox_queues", &self.mailbox_queues, 1),
            ("mailbox_items", &self.mailbox_items, 1),
            ("mailbox_by_expiry", &self.mailbox_by_expiry, 1),
            ("meta", &self.meta, 1),
            ("carried", &self.carried, 6),
            ("carried_by_arrival", &self.carried_by_arrival, 6),
            ("relationships", &self.relationships, 8),
            ("rel_entries", &self.rel_entries, 8),
            ("rel_acks", &self.rel_acks, 8),
            ("rel_by_offer", &self.rel_by_offer, 8),
            ("vault", &self.vault, 9),
            ("reviews", &self.reviews, 10),
            ("group_members", &self.group_members, 10),
            ("group_by_member", &self.group_by_member, 10),
        ]
    }

    /// At a clean stop, the digest of everything stored (under the store's schema) goes to
    /// [`CLEAN_STOP`]: sled reads a damaged log as if it ended there, silently, so the next
    /// open compares.
    fn record_clean_stop(&self, dir: &Path) -> Result<(), StoreError> {
        self.durable()?;
        let schema = schema_version(&self.meta)?.unwrap_or(SCHEMA_VERSION);
        let digest = hex::encode(self.digest(schema)?);
        let path = dir.join(CLEAN_STOP);
        crate::atomic_file::write(&path, digest.as_bytes(), 0o600)
            .map_err(|source| StoreError::Io { path, source })
    }

    /// Refuses a store that does not hold what it held at its last clean stop (under
    /// `schema`, the version it was written with), then forgets that stop (durably, before
    /// any write: after a crash there is nothing to compare).
    fn check_clean_stop(&self, dir: &Path, schema: u32) -> Result<(), StoreError> {
        let path = dir.join(CLEAN_STOP);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let recorded = match std::fs::read_to_string(&path) {
            Ok(recorded) => recorded,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        if recorded.trim() != hex::encode(self.digest(schema)?) {
            return Err(StoreError::Damaged {
                dir: dir.to_owned(),
                reason: "it does not hold what it held when the node last stopped (part of its log is unreadable)".into(),
            });
        }
        std::fs::remove_file(&path).map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Waits until every write made so far on this database is on disk.
    fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.flush.wrote();
        self.flush
            .flush(&self.db, &self.log, ticket)
            .map_err(StoreError::unflushed)
    }
}

const PROBE_KEY: &[u8] = b"probe";

/// The file in the store folder that holds the digest of the store at its last clean stop.
const CLEAN_STOP: &str = "clean-stop";

/// How a store that hit a disk error gets back: closed, then reopened at most once a second
/// until the disk works again (space was freed). What was acknowledged is on disk; what
/// failed was never acknowledged.
struct Healing {
    last_attempt: Option<Instant>,
    cause: String,
}

/// The node's store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    dir: PathBuf,
    cache_bytes: u64,
    /// The database; `None` while closed after a disk error.
    open: RwLock<Option<Arc<Trees>>>,
    /// [`IO_FAILURES`] when this store last knew itself healthy.
    failures_checked: AtomicU64,
    healing: Mutex<Healing>,
    /// Relationship changes read a record and write it back: one at a time (the API's
    /// writes run on blocking threads, what arrives runs on the event loop).
    relationships_lock: Mutex<()>,
    _lock: File,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    crate::proto::envelope::encode_body(value)
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    ciborium::from_reader(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

/// A key of fixed length read back from a tree.
fn fixed_key<const N: usize>(tree: &'static str, key: &[u8]) -> Result<[u8; N], StoreError> {
    key.try_into().map_err(|_| StoreError::Corrupt {
        tree,
        reason: format!("key is not {N} bytes"),
    })
}

impl Store {
    /// Opens (or creates) the store under `dir`, with a cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let not_writable = |path: &Path| {
            let path = path.to_owned();
            move |source: std::io::Error| match source.kind() {
                ErrorKind::ReadOnlyFilesystem | ErrorKind::PermissionDenied => {
                    StoreError::NotWritable { path, source }
                }
                _ => StoreError::Io { path, source },
            }
        };
        std::fs::create_dir_all(dir).map_err(not_writable(dir))?;
        let lock_path = dir.join("store.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(not_writable(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir.to_owned()));
        }
        let trees = Trees::open(dir, cache_bytes).map_err(|e| match e {
            StoreError::Sled(sled::Error::Corruption { .. }) => StoreError::Damaged {
                dir: dir.to_owned(),
                reason: "sled found corrupted data".into(),
            },
            other => other,
        })?;
        let found = schema_version(&trees.meta)?;
        if let Some(v) = found.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StoreError::TooNew {
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        trees.check_clean_stop(dir, found.unwrap_or(SCHEMA_VERSION))?;
        let store = Store {
            open: RwLock::new(Some(Arc::new(trees))),
            dir: dir.to_owned(),
            cache_bytes,
            failures_checked: AtomicU64::new(IO_FAILURES.load(Ordering::SeqCst)),
            healing: Mutex::new(Healing {
                last_attempt: None,
                cause: String::new(),
            }),
            relationships_lock: Mutex::new(()),
            _lock: lock,
        };
        store.upgrade(found)?;
        store.repair()?;
        Ok(store)
    }

    /// The open database. After a disk error anywhere in the process, this store first
    /// checks that it still takes writes, and if not, closes and reopens itself.
    fn trees(&self) -> Result<Arc<Trees>, StoreError> {
        if IO_FAILURES.load(Ordering::SeqCst) == self.failures_checked.load(Ordering::SeqCst)
            && let Some(trees) = self.open.read().unwrap_or_else(|e| e.into_inner()).as_ref()
        {
            return Ok(trees.clone());
        }
        self.heal()
    }

    fn heal(&self) -> Result<Arc<Trees>, StoreError> {
        let mut healing = self.healing.lock().unwrap_or_else(|e| e.into_inner());
        let failures = IO_FAILURES.load(Ordering::SeqCst);
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        if let Some(trees) = open.as_ref() {
            if failures == self.failures_checked.load(Ordering::SeqCst) || trees.takes_writes() {
                self.failures_checked.store(failures, Ordering::SeqCst);
                return Ok(trees.clone());
            }
            healing.cause = "writes fail".into();
            tracing::error!(
                "the store in {} hit a disk error; closed, reopening once the disk takes writes",
                self.dir.display()
            );
        }
        // Reopen only when no operation holds the failed database (sled locks its files),
        // and at most once a second.
        let in_use = open.as_ref().is_some_and(|t| Arc::strong_count(t) > 1);
        let recent = healing
            .last_attempt
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if in_use || recent {
            return Err(StoreError::Closed(healing.cause.clone()));
        }
        healing.last_attempt = Some(Instant::now());
        *open = None;
        match Trees::open(&self.dir, self.cache_bytes) {
            Ok(trees) if trees.takes_writes() => {
                let trees = Arc::new(trees);
                *open = Some(trees.clone());
                self.failures_checked
                    .store(IO_FAILURES.load(Ordering::SeqCst), Ordering::SeqCst);
                tracing::info!("the store in {} is open again", self.dir.display());
                Ok(trees)
            }
            Ok(_) => {
                healing.cause = "writes still fail".into();
                Err(StoreError::Closed(healing.cause.clone()))
            }
            Err(e) => {
                healing.cause = e.to_string();
                Err(e)
            }
        }
    }

    /// Brings the schema from `found` (not newer) up to [`SCHEMA_VERSION`].
    fn upgrade(&self, found: Option<u32>) -> Result<(), StoreError> {
        if found == Some(SCHEMA_VERSION) {
            return Ok(());
        }
        // Versions up to 3 hold records of protocol 1, which nothing here reads any more.
        if found.is_some_and(|v| v <= 3) {
            self.move_protocol_v1_aside()?;
        }
        // Version 1 kept no time index of the replay memory.
        if found == Some(1) {
            self.index_seen_v1()?;
        }
        // Up to version 4, intents went out on one topic per category.
        if found.is_some_and(|v| v <= 4) {
            self.route_to_shards_v4()?;
        }
        // Version 6 added the catch-up memory: new trees, nothing to convert.
        // Up to version 6, received intents were keyed by their id alone.
        if found.is_some_and(|v| v <= 6) {
            self.key_received_by_signer_v6()?;
        }
        // Version 8 added relationships, version 9 the vault, version 10 reviews and groups:
        // new trees (granted data lives in files beside the database). Up to version 9, a
        // log's chain did not name its order entry, which a review token needs.
        if found.is_some_and(|v| v <= 9) {
            self.index_orders_v9()?;
        }
        let t = self.trees()?;
        t.meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        t.durable()
    }

    /// The schema version on disk, if any.
    pub fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        schema_version(&self.trees()?.meta)
    }

    /// Every tree, with all its keys and values (for a node export).
    pub fn export_trees(&self) -> Result<Vec<(&'static str, TreePairs)>, StoreError> {
        let t = self.trees()?;
        let mut all = Vec::new();
        for (name, tree, _) in t.named() {
            let pairs = tree
                .iter()
                .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()?;
            all.push((name, pairs));
        }
        Ok(all)
    }

    /// A new store in `dir` holding what a node export holds (its trees as they were, its
    /// schema version with them: the next open upgrades an older one), durably.
    pub fn create_from(
        dir: &Path,
        contents: &crate::export::Contents,
    ) -> Result<Store, StoreError> {
        let store = Store::open(dir, 16 << 20)?;
        {
            let t = store.trees()?;
            for (name, pairs) in &contents.trees {
                let Some((_, tree, _)) = t.named().into_iter().find(|(n, _, _)| n == name) else {
                    return Err(StoreError::Corrupt {
                        tree: "export",
                        reason: format!("the export names a tree {name:?} this vrm does not know"),
                    });
                };
                tree.clear()?;
                for (k, v) in pairs {
                    tree.insert(k.as_slice(), v.as_slice())?;
                }
            }
            for (name, bytes) in &contents.granted {
                store.restore_granted(name, bytes)?;
            }
            t.durable()?;
        }
        Ok(store)
    }

    /// Number of flushes actually made (grouped writers share one) since the store opened.
    pub fn flush_count(&self) -> u64 {
        self.trees()
            .map_or(0, |t| t.flush.flushes.load(Ordering::Relaxed))
    }

    /// Returns once every write made so far is on disk: the one flush that acknowledges a
    /// batch of staged writes ([`Store::receive_intent`]).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.trees()?.durable()
    }

    /// How many records of each kind the store holds.
    pub fn counts(&self) -> Counts {
        let Ok(t) = self.trees() else {
            return Counts::default();
        };
        Counts {
            intents: t.intents.len(),
            offers: t.offers.len(),
            profiles: t.profiles.len(),
            outbox: t.outbox.len(),
            seen: t.seen.len(),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let open = self
            .open
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(trees) = open
            && let Err(e) = trees.record_clean_stop(&self.dir)
        {
            tracing::warn!("the store's clean stop was not recorded: {e}");
        }
    }
}

fn schema_version(meta: &sled::Tree) -> Result<Option<u32>, StoreError> {
    Ok(match meta.get(SCHEMA_KEY)? {
        Some(v) => Some(u32::from_be_bytes(fixed_key("meta", &v)?)),
        None => None,
    })
}

/// sled's log file (`db/db`), and the folders that name it made durable: a file created
/// since the last power cut must be found in its folder after the next one.
fn open_log(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("db").join("db");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { path, source }
    };
    let log = File::open(&path).map_err(io(&path))?;
    for folder in [dir.join("db"), dir.to_owned()] {
        File::open(&folder)
            .and_then(|f| f.sync_all())
            .map_err(io(&folder))?;
    }
    Ok(log)
}

/// Opens sled. Our own lock file is held, so no other process has the database; if sled's
/// lock is still taken, it is by this process's previous [`Store`] on the same directory,
/// whose background flusher lets go of it a moment after the drop (a node restarted in
/// the same process): wait for it, for a second at most.
/// Logs a bound of the store reached, at most once a minute per bound (`last`: when it was
/// last logged).
fn warn_full(last: &AtomicU64, message: impl FnOnce() -> String) {
    let now = crate::clock::unix_now();
    if now >= last.load(Ordering::Relaxed) + 60 {
        last.store(now, Ordering::Relaxed);
        tracing::warn!("{}", message());
    }
}

fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
    let mut waited = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if waited >= 50 {
                    return Err(sled::Error::Io(e).into());
                }
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

/// Reads, changes and writes back one CBOR record atomically. Returns false if absent.
/// `change` may run more than once (a concurrent writer makes sled retry); what it
/// records in its last run is what was written.
fn update_record<T: Serialize + DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
    mut change: impl FnMut(&mut T),
) -> Result<bool, StoreError> {
    let mut found = false;
    let mut failure = None;
    tree.fetch_and_update(key, |old| {
        let old = old?;
        match decode::<T>(name, old) {
            Ok(mut record) => {
                found = true;
                change(&mut record);
                Some(encode(&record))
            }
            Err(e) => {
                failure = Some(e);
                Some(old.to_vec())
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// Decodes and verifies the envelope bytes of a stored record and opens its body.
fn open_stored<B: Body>(envelope_bytes: &[u8]) -> Result<(Envelope, B), StoreError> {
    let tree = match B::KIND {
        Kind::Intent => "intents",
        Kind::Offer => "offers",
        Kind::VendorProfile => "profiles",
        Kind::Review => "reviews",
        _ => "outbox",
    };
    let envelope = Envelope::decode(envelope_bytes).map_err(|e| (tree, e))?;
    let body = envelope.open().map_err(|e| (tree, e))?;
    Ok((envelope, body))
}

/// What the store's unit tests write.
#[cfg(test)]
pub(crate) mod fixtures {
    use ed25519_dalek::SigningKey;

    use crate::proto::{Constraints, Envelope, Intent, ReplyTo};

    /// The tests' clock.
    pub const NOW: u64 = 1_800_000_000;

    /// Makes the store count `seen` ids in its replay memory and `intents` stored intents,
    /// as if it held them: to reach the bounds without writing millions of records.
    pub fn pretend_held(store: &super::Store, seen: u64, intents: u64) {
        use std::sync::atomic::Ordering;
        let t = store.trees().unwrap();
        t.seen_count.store(seen, Ordering::SeqCst);
        t.intents_count.store(intents, Ordering::SeqCst);
    }

    /// An intent in "books" with id `[n; 16]`, signed by the key of seed `[n; 32]`, open for
    /// an hour from [`NOW`].
    pub fn intent(n: u8) -> (Envelope, Intent) {
        let body = Intent {
            id: [n; 16].into(),
            category: "books".into(),
            subcategory: None,
            text: "A paperback".into(),
            constraints: Constraints::default(),
            terms: vec![],
            created: NOW,
            expires: NOW + 3600,
            reply_to: ReplyTo::nowhere(),
            group: None,
        };
        (
            Envelope::seal(&body, &SigningKey::from_bytes(&[n; 32])),
            body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only ENOSPC is reported as a full disk ("free some space"); any other disk error
    /// keeps its own message.
    #[test]
    fn only_a_full_disk_is_called_full() {
        let full = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let other = || std::io::Error::other("input/output error");
        assert!(matches!(
            StoreError::from_disk(sled::Error::Io(full())),
            StoreError::DiskFull
        ));
        assert!(matches!(
            StoreError::from_disk(sled::Error::Io(other())),
            StoreError::Sled(_)
        ));
        assert!(matches!(
            StoreError::unflushed(full()),
            StoreError::DiskFull
        ));
        assert!(matches!(
            StoreError::unflushed(other()),
            StoreError::Unflushed(_)
        ));
    }

    /// The digest of a schema-5 store leaves out the trees schema 6 added (a store stopped
    /// cleanly by a schema-5 node opens), and schema 6's covers them.
    #[test]
    fn the_clean_stop_digest_covers_the_trees_of_the_stores_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (envelope, _) = fixtures::intent(1);
        store.mark_seen(&envelope.id(), fixtures::NOW).unwrap();
        let t = store.trees().unwrap();
        let (v5, v6) = (t.digest(5).unwrap(), t.digest(6).unwrap());
        let id = envelope.id();
        store
            .carry(3, &id, envelope.as_bytes(), fixtures::NOW, fixtures::NOW)
            .unwrap();
        assert_eq!(
            t.digest(5).unwrap(),
            v5,
            "schema 5 knows no catch-up memory"
        );
        assert_ne!(t.digest(6).unwrap(), v6);
        t.meta.insert(SCHEMA_KEY, &5u32.to_be_bytes()).unwrap();
        drop(t);
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).expect("a clean schema-5 stop opens");
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
    }

    /// Schema 6 → 7: a vendor's received intent, held under its id with its offer, the
    /// offer's outbox entry and an early withdrawal, moves to its signer's and id's key with
    /// all of them.
    #[test]
    fn received_intents_move_to_their_signers_key_at_the_upgrade() {
        use super::models::{Delivery, Origin, Route, Subject};
        use super::records::{IntentRecord, OfferRecord};
        use crate::proto::IntentId;

        let dir = tempfile::tempdir().unwrap();
        let (envelope, intent) = fixtures::intent(1);
        let old = IntentKey::own(&intent.id);
        let new = IntentKey::of_received(&envelope, &intent);
        let vendor = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let offer = crate::proto::Offer {
            intent: intent.id,
            persona: envelope.signer().to_bytes().into(),
            vendor: vendor.verifying_key().to_bytes().into(),
            items: vec![],
            text: "ours".into(),
            created: fixtures::NOW,
            valid_until: fixtures::NOW + 600,
            accepted_terms: vec![],
            inbox: None,
            group: None,
        };
        let offer = Envelope::seal(&offer, &vendor);
        let offer_id = offer.id();
        let early = IntentId::from([6; 16]);
        let early_signer = [7u8; 32];
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            let t = store.trees().unwrap();
            let record = IntentRecord {
                envelope: envelope.as_bytes().to_vec().into(),
                origin: Origin::Received,
                stored_at: fixtures::NOW,
                withdrawn_at: None,
                decision: None,
            };
            t.intents.insert(old.bytes(), encode(&record)).unwrap();
            let index = intents::expiry_key(intent.expires, &old);
            t.intents_by_expiry.insert(index, &[]).unwrap();
            let record = OfferRecord {
                envelope: offer.as_bytes().to_vec().into(),
                origin: Origin::Own,
                stored_at: fixtures::NOW,
                delivery: Delivery::Pending,
            };
            let key = offers::offer_key(&old, &offer_id);
            t.offers.insert(key, encode(&record)).unwrap();
            let queued = Outgoing {
                id: offer_id,
                subject: Subject::Offer { intent: old },
                route: Route::Gossip { topic: "t".into() },
                expires: intent.expires,
            };
            t.outbox
                .insert(offer_id.0, encode(&queued.record(&offer)))
                .unwrap();
            #[derive(serde::Serialize)]
            struct OldEarly {
                signer: [u8; 32],
                forget_after: u64,
            }
            let value = encode(&OldEarly {
                signer: early_signer,
                forget_after: u64::MAX,
            });
            t.early_withdrawals.insert(*early, value).unwrap();
            t.meta.insert(SCHEMA_KEY, &6u32.to_be_bytes()).unwrap();
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(store.intent(&old).unwrap().is_none(), "moved away");
        let held = store.intent(&new).unwrap().expect("under the new key");
        assert_eq!(held.key(), new);
        assert_eq!(store.offers_for(&new).unwrap().len(), 1);
        assert!(store.offers_for(&old).unwrap().is_empty());
        let entries = store.outgoing().unwrap();
        assert_eq!(entries[0].subject, Subject::Offer { intent: new });
        assert!(store.withdrawn_early(&early, &early_signer).unwrap());
        assert_eq!(
            store.purge_expired(intent.expires).unwrap(),
            1,
            "indexed anew"
        );
    }

    /// A clean-stop record that cannot be read (here: not text) is not taken for a missing
    /// one: the store is refused rather than opened without its damage check.
    #[test]
    fn an_unreadable_clean_stop_record_refuses_the_store() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 1 << 20).unwrap());
        std::fs::write(dir.path().join(CLEAN_STOP), [0xff, 0xfe, 0x00]).unwrap();
        match Store::open(dir.path(), 1 << 20) {
            Err(StoreError::Io { path, .. }) => assert!(path.ends_with(CLEAN_STOP)),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("opened without comparing"),
        }
    }
}
