//! Data a person granted to this vendor node: one file per held grant in `granted/` beside
//! the database, never in sled, whose log keeps old values until it reuses the space. So
//! deleting granted data deletes it from the disk's files: the file is overwritten with
//! zeros, synced, and unlinked. A file's name says when the grant expires, its
//! relationship and its id (`{expires:016x}-{rel}-{grant}`), so the expiry sweep reads
//! names only.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use super::{Store, StoreError};

/// Most grants a vendor node holds data of; a grant beyond it is refused.
pub const MAX_HELD_GRANTS: usize = 100_000;

/// A held grant, as its file's name gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldGrant {
    /// When it expires.
    pub expires: u64,
    /// Its relationship.
    pub rel: [u8; 32],
    /// Its id.
    pub grant: [u8; 32],
}

impl HeldGrant {
    fn file_name(&self) -> String {
        format!(
            "{:016x}-{}-{}",
            self.expires,
            hex::encode(self.rel),
            hex::encode(self.grant)
        )
    }

    fn parse(name: &str) -> Option<HeldGrant> {
        let mut parts = name.split('-');
        let expires = u64::from_str_radix(parts.next()?, 16).ok()?;
        let mut id = || -> Option<[u8; 32]> { hex::decode(parts.next()?).ok()?.try_into().ok() };
        let (rel, grant) = (id()?, id()?);
        Some(HeldGrant {
            expires,
            rel,
            grant,
        })
    }
}

impl Store {
    fn granted_dir(&self) -> PathBuf {
        self.dir.join("granted")
    }

    fn io(&self, path: PathBuf) -> impl FnOnce(std::io::Error) -> StoreError {
        move |source| StoreError::Io { path, source }
    }

    /// Keeps the values of a grant, durably. `Ok(false)`: this node holds
    /// [`MAX_HELD_GRANTS`] grants already.
    pub fn hold_granted(
        &self,
        held: &HeldGrant,
        values: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let dir = self.granted_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(self.io(dir.clone()))?;
        let path = dir.join(held.file_name());
        if !path.exists() && self.held_grants()?.len() >= MAX_HELD_GRANTS {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(values, &mut bytes).expect("writing to a Vec cannot fail");
        crate::atomic_file::write(&path, &bytes, 0o600).map_err(self.io(path))?;
        Ok(true)
    }

    /// The values of a held grant, if this node holds them.
    pub fn granted_values(
        &self,
        held: &HeldGrant,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let path = self.granted_dir().join(held.file_name());
        match std::fs::read(&path) {
            Ok(bytes) => {
                ciborium::from_reader(&bytes[..])
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        tree: "granted",
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(path)(e)),
        }
    }

    /// Deletes a held grant's values from the disk: overwritten with zeros, synced,
    /// unlinked, the folder synced. Whether there was a file.
    pub fn delete_granted(&self, held: &HeldGrant) -> Result<bool, StoreError> {
        let path = self.granted_dir().join(held.file_name());
        let io = |e| self.io(path.clone())(e);
        let mut file = match OpenOptions::new().write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        file.write_all(&vec![0; len as usize]).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::remove_file(&path).map_err(io)?;
        File::open(self.granted_dir())
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(true)
    }

    /// Every held grant's file: name → bytes (for a node export).
    pub fn granted_files(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let dir = self.granted_dir();
        let mut files = Vec::new();
        for held in self.held_grants()? {
            let path = dir.join(held.file_name());
            files.push((
                held.file_name(),
                std::fs::read(&path).map_err(self.io(path))?,
            ));
        }
        Ok(files)
    }

    /// Puts back a held grant's file from a node export (its name must be a held grant's).
    pub(super) fn restore_granted(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let Some(held) = HeldGrant::parse(name) else {
            return Err(StoreError::Corrupt {
                tree: "granted",
                reason: format!("{name:?} is not a held grant's file"),
            });
        };
        let values = ciborium::from_reader(bytes).map_err(|e| StoreError::Corrupt {
            tree: "granted",
            reason: e.to_string(),
        })?;
        self.hold_granted(&held, &values).map(|_| ())
    }

    /// Every held grant, soonest expiry first. Files that are not a held grant's (a
    /// temporary file a crash left) are removed.
    pub fn held_grants(&self) -> Result<Vec<HeldGrant>, StoreError> {
        let dir = self.granted_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(dir)(e)),
        };
        let mut held = Vec::new();
        for entry in entries {
            let entry = entry.map_err(self.io(dir.clone()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match HeldGrant::parse(&name) {
                Some(grant) => held.push(grant),
                None => {
                    tracing::warn!("removing {name} from {}: not a held grant", dir.display());
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        held.sort();
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(dir: &std::path::Path, needle: &[u8]) -> bool {
        walk(dir).iter().any(|path| {
            std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn a_node_holds_at_most_so_many_grants_and_a_read_error_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let first = HeldGrant {
            expires: 1,
            rel: [0; 32],
            grant: [0; 32],
        };
        assert!(store.hold_granted(&first, &BTreeMap::new()).unwrap());
        // The bound itself: files named as held grants, made directly (no sync each).
        let granted = store.granted_dir();
        for n in 2..=MAX_HELD_GRANTS as u64 {
            let held = HeldGrant {
                expires: n,
                ..first
            };
            std::fs::write(granted.join(held.file_name()), b"\xa0").unwrap();
        }
        let one_more = HeldGrant {
            expires: u64::MAX,
            ..first
        };
        assert!(!store.hold_granted(&one_more, &BTreeMap::new()).unwrap());
        assert_eq!(store.held_grants().unwrap().len(), MAX_HELD_GRANTS);
        assert!(
            store.hold_granted(&first, &BTreeMap::new()).unwrap(),
            "a held grant's file may be written again"
        );
        std::fs::remove_file(granted.join(one_more.file_name())).ok();
        std::fs::create_dir(granted.join(one_more.file_name())).unwrap();
        assert!(
            store.granted_values(&one_more).is_err(),
            "a folder is not data"
        );
        assert!(
            store.delete_granted(&one_more).is_err(),
            "nor is it deleted as data"
        );
    }

    #[test]
    fn a_granted_folder_that_cannot_be_listed_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.held_grants().unwrap(), Vec::new(), "none yet");
        std::fs::write(dir.path().join("granted"), "not a folder").unwrap();
        assert!(store.held_grants().is_err());
    }

    #[test]
    fn held_data_is_read_back_listed_by_expiry_and_deleted_from_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let late = HeldGrant {
            expires: 2_000_000_000,
            rel: [1; 32],
            grant: [2; 32],
        };
        let soon = HeldGrant {
            expires: 1_900_000_000,
            rel: [3; 32],
            grant: [4; 32],
        };
        let values = BTreeMap::from([("email".to_owned(), "grant-me@example.org".to_owned())]);
        assert!(store.hold_granted(&late, &values).unwrap());
        assert!(store.hold_granted(&soon, &BTreeMap::new()).unwrap());
        assert_eq!(store.held_grants().unwrap(), vec![soon, late]);
        assert_eq!(store.granted_values(&late).unwrap(), Some(values));
        assert!(contains(dir.path(), b"grant-me@example.org"));
        assert!(store.delete_granted(&late).unwrap());
        assert!(!store.delete_granted(&late).unwrap());
        assert_eq!(store.granted_values(&late).unwrap(), None);
        assert_eq!(store.held_grants().unwrap(), vec![soon]);
        assert!(!contains(dir.path(), b"grant-me@example.org"));
    }
}
