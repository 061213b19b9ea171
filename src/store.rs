//! The node's own store: one sled database per data directory, one tree per record type,
//! values in CBOR, keys laid out for the scans the node needs.
//!
//! | tree       | key                                  | value          |
//! |------------|--------------------------------------|----------------|
//! | `intents`  | intent id (16)                       | [`IntentRecord`] |
//! | `offers`   | intent id (16) ‖ offer message id (32) | [`OfferRecord`]  |
//! | `profiles` | vendor key (32)                      | [`ProfileRecord`] |
//! | `outbox`   | message id (32)                      | [`OutboxEntry`]  |
//! | `seen`     | message id (32)                      | forget-after time, u64 BE |
//! | `meta`     | name                                 | e.g. schema version |
//!
//! Every write method returns only once the write is on disk, except the few that say why
//! they need not. sled flushes on its own only every 500 ms, so each write is followed by a
//! grouped flush ([`FlushGroup`]): a writer whose write was covered by a flush that started
//! after it returns at once, so N concurrent writers cost about one fsync, not N. A second
//! process on the same directory gets
//! [`StoreError::Locked`]. The schema version lives in `meta`; opening a store written by an
//! older schema upgrades it, one written by a newer one is refused (`vrm export`/`import`
//! are the way across sled format changes).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;
use thiserror::Error;

use crate::proto::{Body, DecodeError, Envelope, Kind, MessageId, VendorProfile};

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = 1;
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
        "the store has schema version {found}, newer than this vrm understands ({supported}); use a newer vrm or `vrm export` from it"
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

/// Who an intent belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Cast by this node's person.
    Own,
    /// Received from the network (vendor side).
    Received,
}

/// A stored intent: the envelope as signed, and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The intent envelope bytes.
    pub envelope: ByteBuf,
    /// Own or received.
    pub origin: Origin,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<u64>,
    /// Vendor side: whether and how this node answered it.
    #[serde(default)]
    pub decision: Option<Decision>,
}

/// A vendor node's answer to an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum Decision {
    /// An offer was made.
    Offered {
        /// Its message id (hex).
        offer: String,
    },
    /// No offer, and why.
    Declined {
        /// The reason, for the vendor to read.
        reason: String,
    },
}

/// Where an offer this vendor sent stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Delivery {
    /// In the outbox.
    #[default]
    Pending,
    /// Acknowledged by the person's node (received offers are stored in this state).
    Delivered {
        /// When (unix seconds).
        at: u64,
    },
    /// Refused by the person's node.
    Refused {
        /// The rejection code it gave.
        code: String,
    },
    /// Gave up: the intent or the offer expired first.
    Expired,
}

/// A stored offer, sent (vendor side) or received (person side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferRecord {
    /// The offer envelope bytes.
    pub envelope: ByteBuf,
    /// Own (sent by this vendor node) or received.
    pub origin: Origin,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
    /// Delivery state (offers this vendor sent).
    #[serde(default)]
    pub delivery: Delivery,
}

/// The newest profile seen from one vendor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// The profile envelope bytes.
    pub envelope: ByteBuf,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
}

/// How an outgoing message travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Published on a gossipsub topic.
    Gossip {
        /// The topic.
        topic: String,
    },
    /// Sent by request-response to one peer.
    Direct {
        /// The peer id bytes.
        peer: ByteBuf,
        /// Addresses to dial it at.
        addrs: Vec<ByteBuf>,
    },
}

/// An outgoing message waiting to be delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The envelope bytes.
    pub envelope: ByteBuf,
    /// Where it goes.
    pub route: Route,
    /// Give up after this time (unix seconds).
    pub expires: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Earliest time of the next attempt (unix seconds).
    pub next_attempt: u64,
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

    /// Returns once every write up to `ticket` is on disk.
    fn flush(&self, db: &sled::Db, ticket: u64) -> Result<(), sled::Error> {
        if self.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.flushed.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let target = self.written.load(Ordering::SeqCst);
        db.flush()?;
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
    meta: sled::Tree,
    flush: FlushGroup,
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
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(cache_bytes)
            .open()?;
        let store = Store {
            intents: db.open_tree("intents")?,
            offers: db.open_tree("offers")?,
            profiles: db.open_tree("profiles")?,
            outbox: db.open_tree("outbox")?,
            seen: db.open_tree("seen")?,
            meta: db.open_tree("meta")?,
            db,
            flush: FlushGroup::default(),
            _lock: lock,
        };
        store.upgrade()?;
        Ok(store)
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], or refuses a newer one.
    fn upgrade(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        match found {
            None => {
                self.meta
                    .insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                self.durable()
            }
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::TooNew {
                found: v,
                supported: SCHEMA_VERSION,
            }),
            // Version 1 is the first schema: nothing to migrate yet. A later version adds
            // one step per older version here, each in its own sled transaction.
            Some(_) => Ok(()),
        }
    }

    /// The schema version on disk, if any.
    pub fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        Ok(match self.meta.get(SCHEMA_KEY)? {
            Some(v) => Some(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::Corrupt {
                    tree: "meta",
                    reason: "schema version is not 4 bytes".into(),
                }
            })?)),
            None => None,
        })
    }

    /// Waits until every write made so far is on disk.
    fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.flush.wrote();
        self.flush.flush(&self.db, ticket)?;
        Ok(())
    }

    /// Number of flushes actually made (grouped writers share one).
    pub fn flush_count(&self) -> u64 {
        self.flush.flushes.load(Ordering::Relaxed)
    }

    // ---- intents -------------------------------------------------------------------------

    /// Stores an intent. Returns false (and changes nothing) if one with this id exists.
    pub fn insert_intent(&self, id: &[u8; 16], record: &IntentRecord) -> Result<bool, StoreError> {
        let inserted = self.stage_intent(id, record)?;
        self.durable()?;
        Ok(inserted)
    }

    /// [`Store::insert_intent`] without waiting for the disk: for a batch of writes that
    /// one [`Store::flush`] makes durable before any of them is acknowledged.
    pub fn stage_intent(&self, id: &[u8; 16], record: &IntentRecord) -> Result<bool, StoreError> {
        Ok(self
            .intents
            .compare_and_swap(id, None as Option<&[u8]>, Some(encode(record)))?
            .is_ok())
    }

    /// Number of intents stored.
    pub fn intent_count(&self) -> usize {
        self.intents.len()
    }

    /// The intent with this id.
    pub fn intent(&self, id: &[u8; 16]) -> Result<Option<IntentRecord>, StoreError> {
        self.intents
            .get(id)?
            .map(|v| decode("intents", &v))
            .transpose()
    }

    /// Marks an intent withdrawn at `at`. Returns false if there is no such intent.
    pub fn withdraw_intent(&self, id: &[u8; 16], at: u64) -> Result<bool, StoreError> {
        self.update_intent(id, |record| {
            record.withdrawn_at.get_or_insert(at);
        })
    }

    /// Records a vendor's decision on an intent. Returns false if there is no such intent.
    /// It does not wait for the disk: a decision is the vendor's own note, nothing outside
    /// the node relies on it, and an offer's own durable writes cover the one made with it.
    pub fn set_decision(&self, id: &[u8; 16], decision: Decision) -> Result<bool, StoreError> {
        update_record(&self.intents, "intents", id, |record: &mut IntentRecord| {
            record.decision = Some(decision.clone())
        })
    }

    fn update_intent(
        &self,
        id: &[u8; 16],
        change: impl Fn(&mut IntentRecord),
    ) -> Result<bool, StoreError> {
        let found = update_record(&self.intents, "intents", id, change)?;
        self.durable()?;
        Ok(found)
    }

    /// All intents, in id order.
    pub fn intents(&self) -> Result<Vec<([u8; 16], IntentRecord)>, StoreError> {
        self.intents
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "intents",
                    reason: "key is not 16 bytes".into(),
                })?;
                Ok((id, decode("intents", &v)?))
            })
            .collect()
    }

    // ---- offers --------------------------------------------------------------------------

    /// Stores an offer under its intent. Returns false if it was already stored.
    pub fn insert_offer(
        &self,
        intent: &[u8; 16],
        offer_id: &MessageId,
        record: &OfferRecord,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .offers
            .compare_and_swap(
                offer_key(intent, offer_id),
                None as Option<&[u8]>,
                Some(encode(record)),
            )?
            .is_ok();
        self.durable()?;
        Ok(inserted)
    }

    /// Sets the delivery state of a stored offer. Returns false if there is no such offer.
    pub fn set_delivery(
        &self,
        intent: &[u8; 16],
        offer_id: &MessageId,
        delivery: Delivery,
    ) -> Result<bool, StoreError> {
        let found = update_record(
            &self.offers,
            "offers",
            &offer_key(intent, offer_id),
            |r: &mut OfferRecord| r.delivery = delivery.clone(),
        )?;
        self.durable()?;
        Ok(found)
    }

    /// The offers stored for one intent.
    pub fn offers_for(&self, intent: &[u8; 16]) -> Result<Vec<OfferRecord>, StoreError> {
        self.offers
            .scan_prefix(intent)
            .values()
            .map(|v| decode("offers", &v?))
            .collect()
    }

    /// All offers, grouped by intent.
    pub fn offers(&self) -> Result<Vec<OfferRecord>, StoreError> {
        self.offers
            .iter()
            .values()
            .map(|v| decode("offers", &v?))
            .collect()
    }

    // ---- vendor profiles -----------------------------------------------------------------

    /// Keeps `profile` if it is newer than the one stored for its vendor. Returns whether
    /// it was kept.
    pub fn upsert_profile(
        &self,
        vendor: &[u8; 32],
        profile: &VendorProfile,
        record: &ProfileRecord,
    ) -> Result<bool, StoreError> {
        let mut kept = false;
        let mut failure = None;
        self.profiles.fetch_and_update(vendor, |old| {
            let newer = match old.map(stored_profile_created) {
                None => true,
                Some(Ok(created)) => profile.created > created,
                Some(Err(e)) => {
                    failure = Some(e);
                    false
                }
            };
            kept = newer;
            if newer {
                Some(encode(record))
            } else {
                old.map(<[u8]>::to_vec)
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        self.durable()?;
        Ok(kept)
    }

    /// All vendor profiles.
    pub fn profiles(&self) -> Result<Vec<ProfileRecord>, StoreError> {
        self.profiles
            .iter()
            .values()
            .map(|v| decode("profiles", &v?))
            .collect()
    }

    // ---- outbox --------------------------------------------------------------------------

    /// Puts (or replaces) an outgoing message.
    pub fn outbox_put(&self, id: &MessageId, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.outbox.insert(id.0, encode(entry))?;
        self.durable()
    }

    /// Removes a delivered or expired message. It does not wait for the disk: if a crash
    /// undoes the removal, the message is sent once more, and receivers recognise it by id.
    pub fn outbox_remove(&self, id: &MessageId) -> Result<(), StoreError> {
        self.outbox.remove(id.0)?;
        Ok(())
    }

    /// Every outgoing message.
    pub fn outbox(&self) -> Result<Vec<(MessageId, OutboxEntry)>, StoreError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id = MessageId(k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "outbox",
                    reason: "key is not 32 bytes".into(),
                })?);
                Ok((id, decode("outbox", &v)?))
            })
            .collect()
    }

    /// Number of outgoing messages waiting.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    // ---- replay protection ---------------------------------------------------------------

    /// Remembers a message id until `forget_after`. Returns false if it was already seen.
    pub fn mark_seen(&self, id: &MessageId, forget_after: u64) -> Result<bool, StoreError> {
        let fresh = self
            .seen
            .compare_and_swap(
                id.0,
                None as Option<&[u8]>,
                Some(&forget_after.to_be_bytes()),
            )?
            .is_ok();
        Ok(fresh)
    }

    /// Forgets seen ids whose time has passed. Returns how many were forgotten.
    pub fn purge_seen(&self, now: u64) -> Result<usize, StoreError> {
        let mut purged = 0;
        for kv in self.seen.iter() {
            let (k, v) = kv?;
            let until = v.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            if until <= now {
                self.seen.remove(k)?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Returns once every write made so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.durable()
    }
}

fn offer_key(intent: &[u8; 16], offer_id: &MessageId) -> Vec<u8> {
    let mut key = Vec::with_capacity(48);
    key.extend_from_slice(intent);
    key.extend_from_slice(&offer_id.0);
    key
}

/// Reads, changes and writes back one CBOR record atomically. Returns false if absent.
fn update_record<T: Serialize + DeserializeOwned>(
    tree: &sled::Tree,
    name: &'static str,
    key: &[u8],
    change: impl Fn(&mut T),
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

fn stored_profile_created(bytes: &[u8]) -> Result<u64, StoreError> {
    let record: ProfileRecord = decode("profiles", bytes)?;
    let (_, profile) = open_stored::<VendorProfile>(&record.envelope)?;
    Ok(profile.created)
}

/// Decodes and verifies the envelope bytes of a stored record and opens its body.
pub fn open_stored<B: Body>(envelope_bytes: &[u8]) -> Result<(Envelope, B), StoreError> {
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
