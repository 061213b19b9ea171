//! The person's vault: their own records (name, email, addresses, sizes, …), field name →
//! text, in the tree `vault`. Only the person's node reads it; a grant sends chosen fields
//! to a vendor.

use std::collections::BTreeMap;

use super::{Store, StoreError};

/// Most fields a vault holds.
pub const MAX_VAULT_FIELDS: usize = 64;

/// What a change of the vault did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultWrite {
    /// Stored, on disk.
    Stored,
    /// The vault holds [`MAX_VAULT_FIELDS`] fields already; nothing stored.
    Full,
}

impl Store {
    /// Every field of the vault, by name.
    pub fn vault(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let t = self.trees()?;
        let mut fields = BTreeMap::new();
        for kv in t.vault.iter() {
            let (k, v) = kv?;
            let corrupt = |what: &str| StoreError::Corrupt {
                tree: "vault",
                reason: format!("a {what} that is not UTF-8"),
            };
            let name = String::from_utf8(k.to_vec()).map_err(|_| corrupt("name"))?;
            let value = String::from_utf8(v.to_vec()).map_err(|_| corrupt("value"))?;
            fields.insert(name, value);
        }
        Ok(fields)
    }

    /// Sets field `name` to `value` (the caller checked both), durably.
    pub fn vault_set(&self, name: &str, value: &str) -> Result<VaultWrite, StoreError> {
        let t = self.trees()?;
        if !t.vault.contains_key(name)? && t.vault.len() >= MAX_VAULT_FIELDS {
            return Ok(VaultWrite::Full);
        }
        t.vault.insert(name, value)?;
        t.durable()?;
        Ok(VaultWrite::Stored)
    }

    /// Removes field `name`, durably; whether it was there.
    pub fn vault_remove(&self, name: &str) -> Result<bool, StoreError> {
        let t = self.trees()?;
        let removed = t.vault.remove(name)?.is_some();
        t.durable()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vault_keeps_fields_across_a_restart_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(
                store.vault_set("email", "a@b.c").unwrap(),
                VaultWrite::Stored
            );
            assert_eq!(
                store.vault_set("email", "x@y.z").unwrap(),
                VaultWrite::Stored
            );
            for n in 1..MAX_VAULT_FIELDS {
                assert_eq!(
                    store.vault_set(&format!("f{n}"), "v").unwrap(),
                    VaultWrite::Stored
                );
            }
            assert_eq!(store.vault_set("one-more", "v").unwrap(), VaultWrite::Full);
            assert_eq!(store.vault_set("email", "new").unwrap(), VaultWrite::Stored);
            assert!(store.vault_remove("f1").unwrap());
            assert!(!store.vault_remove("f1").unwrap());
        }
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let vault = store.vault().unwrap();
        assert_eq!(vault.len(), MAX_VAULT_FIELDS - 1);
        assert_eq!(vault["email"], "new");
        assert!(!vault.contains_key("one-more"));
    }
}
