//! Schema 3 → 4: protocol version 2 replaced the reply path, so records signed under
//! protocol 1 can no longer be read, answered or delivered. They are moved aside, not
//! dropped: every such record goes, as stored, into `protocol-1-records.cbor` in the store
//! folder (a CBOR map from tree name to the list of raw records), durably, before it leaves
//! its tree.

use serde::Deserialize;
use serde_bytes::ByteBuf;

use super::{Store, StoreError};
use crate::proto::{DecodeError, Envelope};

/// The file the records of protocol 1 are moved to.
pub const ASIDE_FILE: &str = "protocol-1-records.cbor";

/// What every stored record has in common.
#[derive(Deserialize)]
struct Enveloped {
    envelope: ByteBuf,
}

fn is_protocol_1(value: &[u8]) -> bool {
    let Ok(record) = ciborium::from_reader::<Enveloped, _>(value) else {
        // Only protocol 1's outbox entries (their route no longer exists) fail to decode.
        return true;
    };
    matches!(
        Envelope::parse(&record.envelope),
        Err(DecodeError::UnsupportedVersion(1))
    )
}

impl Store {
    /// Moves every record of protocol 1 to [`ASIDE_FILE`]. Returns how many moved.
    pub(super) fn move_protocol_v1_aside(&self) -> Result<usize, StoreError> {
        let t = self.trees()?;
        let trees = [
            ("intents", &t.intents),
            ("offers", &t.offers),
            ("profiles", &t.profiles),
            ("outbox", &t.outbox),
        ];
        let mut aside: Vec<(&str, Vec<ByteBuf>)> = Vec::new();
        let mut keys = Vec::new();
        for (name, tree) in trees {
            let mut records = Vec::new();
            for kv in tree.iter() {
                let (key, value) = kv?;
                if is_protocol_1(&value) {
                    records.push(ByteBuf::from(value.to_vec()));
                    keys.push((tree, key));
                }
            }
            aside.push((name, records));
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let path = self.dir.join(ASIDE_FILE);
        let bytes = super::encode(
            &aside
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        crate::atomic_file::write(&path, &bytes, 0o600).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        for (tree, key) in &keys {
            tree.remove(key)?;
        }
        t.durable()?;
        tracing::warn!(
            "{} records of protocol 1 cannot be used by this version; they were moved to {}",
            keys.len(),
            path.display()
        );
        Ok(keys.len())
    }
}
