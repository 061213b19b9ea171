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
//! | `meta`         | name                                   | e.g. schema version     |
//!
//! The rest of the node never sees a tree or a record: it calls typed operations named after
//! what happens (`cast`, `withdraw_own`, `receive_intent`, `record_offer_made`, …) and
//! reads [`models`] (decoded, verified envelopes with their state). An operation that
//! touches several trees writes them in order and makes them durable with one flush; no
//! sled transaction is used, because sled 0.34's first transaction makes every later write
//! of the whole process take one global lock (the 20-node in-process throughput bench
//! delivered half as many intents with them; README, "Design notes"). One file per concern: `intents`, `offers`,
//! `profiles`, [`outbox`], `seen` (the replay memory).
//!
//! Every write method returns only once the write is on disk, except the few that say why
//! they need not. sled flushes on its own only every 500 ms, so each write is followed by a
//! grouped flush (`FlushGroup`): a writer whose write was covered by a flush that started
//! after it returns at once, so N concurrent writers cost about one flush, not N. A second
//! process on the same directory gets [`StoreError::Locked`]. The schema version lives in
//! `meta`; opening a store written by an older schema upgrades it, one written by a newer
//! one is refused.

mod intents;
pub mod models;
mod offers;
pub mod outbox;
mod profiles;
mod records;
mod seen;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

use crate::proto::{Body, DecodeError, Envelope, Kind};

pub use intents::{ReceivedIntent, WithdrawOwn};
pub use models::{
    Counts, Decision, Delivery, Origin, Route, StoredIntent, StoredOffer, StoredProfile, Subject,
};
pub use outbox::Outgoing;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = 3;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process has the store open.
    #[error(
        "the store in {0} is in use by another vrm process (stop it first, or use another --data-dir)"
    )]
    Locked(PathBuf),
    /// The store was written by a newer vrm.
    #[error(
        "the store has schema version {found}, newer than this vrm understands ({supported}); use the newer vrm"
    )]
    TooNew {
        /// Version on disk.
        found: u32,
        /// Version of this code.
        supported: u32,
    },
    /// sled failed.
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
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
    Unflushed(String),
    /// A stored value does not decode (disk damage or a bug).
    #[error("corrupt record in {tree}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
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

/// The node's store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
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
    meta: sled::Tree,
    flush: FlushGroup,
    /// sled's log file, for `fdatasync` after its flush.
    log: File,
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
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let lock_path = dir.join("store.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                path: lock_path.clone(),
                source,
            })?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(dir.to_owned()));
        }
        let db = open_sled(&dir.join("db"), cache_bytes)?;
        let store = Store {
            intents: db.open_tree("intents")?,
            offers: db.open_tree("offers")?,
            profiles: db.open_tree("profiles")?,
            outbox: db.open_tree("outbox")?,
            seen: db.open_tree("seen")?,
            seen_by_time: db.open_tree("seen_by_time")?,
            intents_by_expiry: db.open_tree("intents_by_expiry")?,
            meta: db.open_tree("meta")?,
            db,
            flush: FlushGroup::default(),
            log: open_log(dir)?,
            _lock: lock,
        };
        store.upgrade()?;
        Ok(store)
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], or refuses a newer one.
    fn upgrade(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) if v == SCHEMA_VERSION => return Ok(()),
            // Version 1 stored attempts in outbox entries and kept no time index of the
            // replay memory.
            Some(1) => {
                self.migrate_outbox_v1()?;
                self.index_seen_v1()?;
                self.index_intents_v2()?;
            }
            // Version 2 kept intents and offers for ever: no expiry index.
            Some(2) => self.index_intents_v2()?,
            _ => {}
        }
        self.meta
            .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        self.durable()
    }

    /// The schema version on disk, if any.
    pub fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        Ok(match self.meta.get(SCHEMA_KEY)? {
            Some(v) => Some(u32::from_be_bytes(fixed_key("meta", &v)?)),
            None => None,
        })
    }

    /// Waits until every write made so far is on disk.
    fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.flush.wrote();
        self.flush
            .flush(&self.db, &self.log, ticket)
            .map_err(|e| StoreError::Unflushed(e.to_string()))
    }

    /// Number of flushes actually made (grouped writers share one).
    pub fn flush_count(&self) -> u64 {
        self.flush.flushes.load(Ordering::Relaxed)
    }

    /// Returns once every write made so far is on disk: the one flush that acknowledges a
    /// batch of staged writes ([`Store::receive_intent`]).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.durable()
    }

    /// How many records of each kind the store holds.
    pub fn counts(&self) -> Counts {
        Counts {
            intents: self.intents.len(),
            offers: self.offers.len(),
            profiles: self.profiles.len(),
            outbox: self.outbox.len(),
            seen: self.seen.len(),
        }
    }
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
        _ => "outbox",
    };
    let envelope = Envelope::decode(envelope_bytes).map_err(|e| (tree, e))?;
    let body = envelope.open().map_err(|e| (tree, e))?;
    Ok((envelope, body))
}
