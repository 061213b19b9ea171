//! `vrm export` and `vrm import`: a whole node in one file, to move it to another machine
//! or keep it (`proto/README.md`, "Node export").
//!
//! The file is CBOR: `{"format": "vrm/2/node-export", "body": bstr, "sha256": bstr}`, where
//! `body` is the CBOR of [`Contents`]: the store's schema version, its trees (every key and
//! value, as the store holds them), the data granted to this node (a vendor's), the
//! configuration files, and optionally the keys, sealed with a passphrase (Argon2id, then
//! ChaCha20-Poly1305). A changed or cut file fails its digest or its decoding and is
//! refused before anything is written; an import builds the new data directory beside its
//! place and renames it there only when it is whole, so nothing is ever half imported.
//! A store of an older schema is upgraded when the node opens it; a newer one is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::identity::{NODE_KEY_FILE, SELF_KEY_FILE, VENDOR_KEY_FILE};
use crate::store::{SCHEMA_VERSION, Store};

/// The `format` of a node export.
pub const EXPORT_FORMAT: &str = "vrm/2/node-export";
/// Largest export file read, in bytes.
pub const MAX_EXPORT_BYTES: u64 = 4 << 30;

const KEY_FILES: [&str; 3] = [NODE_KEY_FILE, SELF_KEY_FILE, VENDOR_KEY_FILE];

#[derive(Serialize, Deserialize)]
struct Outer {
    format: String,
    body: ByteBuf,
    sha256: ByteBuf,
}

/// Everything a node export holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Contents {
    /// The store's schema version.
    pub schema: u32,
    /// When it was written (unix seconds).
    pub created: u64,
    /// Every tree of the store: name → (key, value) pairs.
    pub trees: BTreeMap<String, Vec<(ByteBuf, ByteBuf)>>,
    /// Data people granted this (vendor's) node: file name → bytes.
    pub granted: BTreeMap<String, ByteBuf>,
    /// Top-level `.toml` files (config.toml, a vendor's catalog): name → text.
    pub files: BTreeMap<String, String>,
    /// The key files, sealed with the passphrase, if the export carries them.
    pub keys: Option<SealedKeys>,
}

/// Key files sealed with a passphrase: Argon2id(passphrase, salt) is the ChaCha20-Poly1305
/// key; the plaintext is the CBOR map file name → file text.
#[derive(Debug, Serialize, Deserialize)]
pub struct SealedKeys {
    /// Argon2id salt (16 bytes).
    pub salt: ByteBuf,
    /// ChaCha20-Poly1305 nonce (12 bytes).
    pub nonce: ByteBuf,
    /// The sealed key files.
    pub sealed: ByteBuf,
}

fn passphrase_key(passphrase: &str, salt: &[u8]) -> anyhow::Result<Key> {
    let mut key = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| anyhow::anyhow!("deriving the key from the passphrase: {e}"))?;
    Ok(key.into())
}

fn seal_keys(dir: &Path, passphrase: &str) -> anyhow::Result<SealedKeys> {
    ensure!(
        passphrase.chars().count() >= 8,
        "the passphrase must have at least 8 characters"
    );
    let mut files = BTreeMap::new();
    for name in KEY_FILES {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => {
                files.insert(name.to_owned(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {name}")),
        }
    }
    let mut plain = Vec::new();
    ciborium::into_writer(&files, &mut plain).expect("writing to a Vec cannot fail");
    let salt: [u8; 16] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let cipher = ChaCha20Poly1305::new(&passphrase_key(passphrase, &salt)?);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .map_err(|_| anyhow::anyhow!("sealing the keys failed"))?;
    Ok(SealedKeys {
        salt: salt.to_vec().into(),
        nonce: nonce.to_vec().into(),
        sealed: sealed.into(),
    })
}

fn open_keys(keys: &SealedKeys, passphrase: &str) -> anyhow::Result<BTreeMap<String, String>> {
    ensure!(
        keys.nonce.len() == 12 && keys.salt.len() == 16,
        "the sealed keys are malformed"
    );
    let cipher = ChaCha20Poly1305::new(&passphrase_key(passphrase, &keys.salt)?);
    let plain = cipher
        .decrypt(Nonce::from_slice(&keys.nonce), keys.sealed.as_slice())
        .map_err(|_| anyhow::anyhow!("the passphrase does not open the keys"))?;
    let files: BTreeMap<String, String> =
        ciborium::from_reader(plain.as_slice()).context("the sealed keys do not decode")?;
    ensure!(
        files.keys().all(|k| KEY_FILES.contains(&k.as_str())),
        "the sealed keys name a file that is not a key file"
    );
    Ok(files)
}

/// Writes the node in `dir` (stopped: its store must not be in use) to `file`; with its
/// keys, sealed with `passphrase`, if one is given. Returns what it holds.
pub fn export(dir: &Path, file: &Path, passphrase: Option<&str>) -> anyhow::Result<Contents> {
    crate::data_dir::owner_only();
    anyhow::ensure!(
        crate::identity::Identity::exists(dir),
        "{} holds no vrm node",
        dir.display()
    );
    let store = Store::open(&dir.join("store"), 16 << 20).map_err(|e| match e {
        crate::store::StoreError::Locked(_) => anyhow::anyhow!(
            "the node in {} is running: stop its daemon first (an export reads the store as it stands)",
            dir.display()
        ),
        other => other.into(),
    })?;
    let schema = store.schema_version()?.unwrap_or(SCHEMA_VERSION);
    let trees = store
        .export_trees()?
        .into_iter()
        .map(|(name, pairs)| {
            let pairs = pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            (name.to_owned(), pairs)
        })
        .collect();
    let granted = store
        .granted_files()?
        .into_iter()
        .map(|(name, bytes)| (name, bytes.into()))
        .collect();
    drop(store);
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") && entry.path().is_file() {
            files.insert(name, std::fs::read_to_string(entry.path())?);
        }
    }
    let contents = Contents {
        schema,
        created: crate::clock::unix_now(),
        trees,
        granted,
        files,
        keys: passphrase.map(|p| seal_keys(dir, p)).transpose()?,
    };
    let mut body = Vec::new();
    ciborium::into_writer(&contents, &mut body).expect("writing to a Vec cannot fail");
    let outer = Outer {
        format: EXPORT_FORMAT.into(),
        sha256: Sha256::digest(&body).to_vec().into(),
        body: body.into(),
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&outer, &mut bytes).expect("writing to a Vec cannot fail");
    crate::atomic_file::write(file, &bytes, 0o600)
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(contents)
}

/// Reads and checks an export file: its format, its digest, its schema.
pub fn read(file: &Path) -> anyhow::Result<Contents> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    ensure!(
        size <= MAX_EXPORT_BYTES,
        "{} is {size} bytes, more than an export may hold",
        file.display()
    );
    decode(&std::fs::read(file)?)
}

/// Checks the bytes of an export file: its format, its digest, its schema.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Contents> {
    let outer: Outer = ciborium::from_reader(bytes)
        .map_err(|e| anyhow::anyhow!("not a whole vrm export (truncated or another file): {e}"))?;
    ensure!(
        outer.format == EXPORT_FORMAT,
        "not a vrm node export: format {:?}",
        outer.format
    );
    ensure!(
        Sha256::digest(&outer.body).as_slice() == outer.sha256.as_slice(),
        "the export was changed or damaged: its digest does not match its contents"
    );
    let contents: Contents = ciborium::from_reader(outer.body.as_slice())
        .map_err(|e| anyhow::anyhow!("the export's contents do not decode: {e}"))?;
    if contents.schema > SCHEMA_VERSION {
        bail!(
            "the export holds a store of schema {}, newer than this vrm understands ({SCHEMA_VERSION}): import it with the vrm that wrote it, or a newer one",
            contents.schema
        );
    }
    Ok(contents)
}

/// Restores an export into `dir`, which must not exist or be empty. With `passphrase`, the
/// keys too (an export without keys gives a node with new keys, which cannot go on with the
/// old one's relationships). All or nothing.
pub fn import(file: &Path, dir: &Path, passphrase: Option<&str>) -> anyhow::Result<Contents> {
    crate::data_dir::owner_only();
    let contents = read(file)?;
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        ensure!(
            empty,
            "{} is not empty: import into a new data directory",
            dir.display()
        );
    }
    let keys = match (&contents.keys, passphrase) {
        (Some(keys), Some(passphrase)) => Some(open_keys(keys, passphrase)?),
        (Some(_), None) => bail!("the export holds keys: give the passphrase"),
        (None, Some(_)) => bail!("the export holds no keys: leave out the passphrase"),
        (None, None) => None,
    };
    let parent = dir.parent().unwrap_or(Path::new("."));
    let staging = parent.join(format!(
        ".{}.import-{:016x}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        rand::random::<u64>()
    ));
    let built = build(&staging, &contents, keys.as_ref());
    let placed = built.and_then(|()| {
        if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&staging, dir)?;
        std::fs::File::open(parent)?.sync_all()?;
        Ok(())
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    Ok(contents)
}

fn build(
    staging: &PathBuf,
    contents: &Contents,
    keys: Option<&BTreeMap<String, String>>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(staging)?;
    crate::data_dir::restrict(staging)?;
    match keys {
        Some(keys) => {
            for (name, text) in keys {
                crate::atomic_file::write(&staging.join(name), text.as_bytes(), 0o600)?;
            }
        }
        None => {
            let vendor = contents.files.contains_key("catalog.toml")
                || contents
                    .files
                    .get("config.toml")
                    .is_some_and(|c| c.lines().any(|l| l.trim() == "[vendor]"));
            crate::identity::Identity::create(staging, vendor)?;
        }
    }
    for (name, text) in &contents.files {
        ensure!(
            name.ends_with(".toml") && !name.contains('/') && !name.starts_with('.'),
            "the export names a file {name:?}"
        );
        crate::atomic_file::write(&staging.join(name), text.as_bytes(), 0o600)?;
    }
    let store = Store::create_from(&staging.join("store"), contents)?;
    drop(store);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stopped node with keys, a config, a vault field and a held grant's data.
    fn node(root: &Path) -> PathBuf {
        let dir = root.join("old");
        std::fs::create_dir_all(&dir).unwrap();
        crate::identity::Identity::create(&dir, true).unwrap();
        std::fs::write(dir.join("config.toml"), "[vendor]\nname = \"Shop\"\n").unwrap();
        let store = Store::open(&dir.join("store"), 1 << 20).unwrap();
        store.vault_set("email", "old@example.org").unwrap();
        let held = crate::store::granted::HeldGrant {
            expires: 2_000_000_000,
            rel: [1; 32],
            grant: [2; 32],
        };
        let values = BTreeMap::from([("email".to_owned(), "kept@example.org".to_owned())]);
        assert!(store.hold_granted(&held, &values).unwrap());
        dir
    }

    #[test]
    fn an_export_restores_store_keys_files_and_granted_data_whole() {
        let root = tempfile::tempdir().unwrap();
        let old = node(root.path());
        let file = root.path().join("node.vrmx");
        let written = export(&old, &file, Some("a good passphrase")).unwrap();
        assert_eq!(written.schema, SCHEMA_VERSION);
        assert_eq!(written.granted.len(), 1);
        let new = root.path().join("new");
        let read = import(&file, &new, Some("a good passphrase")).unwrap();
        assert_eq!(read.trees, written.trees);
        for key in [NODE_KEY_FILE, SELF_KEY_FILE, VENDOR_KEY_FILE] {
            assert_eq!(
                std::fs::read(old.join(key)).unwrap(),
                std::fs::read(new.join(key)).unwrap(),
                "{key}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(new.join("config.toml")).unwrap(),
            "[vendor]\nname = \"Shop\"\n"
        );
        crate::data_dir::check(&new).expect("the new directory is its owner's alone");
        let store = Store::open(&new.join("store"), 1 << 20).unwrap();
        assert_eq!(store.vault().unwrap()["email"], "old@example.org");
        let held = store.held_grants().unwrap();
        assert_eq!(held.len(), 1);
        let values = store.granted_values(&held[0]).unwrap().unwrap();
        assert_eq!(values["email"], "kept@example.org");
    }

    #[test]
    fn a_changed_cut_or_foreign_file_and_a_wrong_passphrase_are_refused_before_any_write() {
        let root = tempfile::tempdir().unwrap();
        let old = node(root.path());
        let file = root.path().join("node.vrmx");
        export(&old, &file, Some("a good passphrase")).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let new = root.path().join("new");
        let mut changed = bytes.clone();
        let middle = changed.len() / 2;
        changed[middle] ^= 1;
        let cases: [(Vec<u8>, &str); 3] = [
            (changed, "digest"),
            (bytes[..bytes.len() - 1].to_vec(), "truncated"),
            (b"not an export".to_vec(), "not a whole vrm export"),
        ];
        for (bad, why) in cases {
            let path = root.path().join("bad");
            std::fs::write(&path, bad).unwrap();
            let refused = import(&path, &new, Some("a good passphrase")).unwrap_err();
            assert!(refused.to_string().contains(why), "{refused:#}");
            assert!(!new.exists());
        }
        let wrong = import(&file, &new, Some("another passphrase")).unwrap_err();
        assert!(wrong.to_string().contains("passphrase"), "{wrong:#}");
        let none = import(&file, &new, None).unwrap_err();
        assert!(none.to_string().contains("give the passphrase"), "{none:#}");
        assert!(!new.exists(), "nothing half imported");
        let leftovers = std::fs::read_dir(root.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("import")
            })
            .count();
        assert_eq!(leftovers, 0, "no staging directory is left behind");
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("something"), "x").unwrap();
        let occupied = import(&file, &new, Some("a good passphrase")).unwrap_err();
        assert!(occupied.to_string().contains("not empty"), "{occupied:#}");
        let short = export(&old, &root.path().join("x"), Some("short")).unwrap_err();
        assert!(short.to_string().contains("8 characters"), "{short:#}");
    }

    #[test]
    fn a_key_file_that_cannot_be_read_stops_an_export_with_keys() {
        let root = tempfile::tempdir().unwrap();
        let old = node(root.path());
        std::fs::remove_file(old.join(VENDOR_KEY_FILE)).unwrap();
        std::fs::create_dir(old.join(VENDOR_KEY_FILE)).unwrap();
        let file = root.path().join("node.vrmx");
        let refused = export(&old, &file, Some("a good passphrase")).unwrap_err();
        assert!(
            format!("{refused:#}").contains(VENDOR_KEY_FILE),
            "{refused:#}"
        );
        assert!(!file.exists());
    }

    #[test]
    fn a_persons_node_moves_without_a_vendor_key_with_or_without_its_keys() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("person");
        std::fs::create_dir_all(&old).unwrap();
        crate::identity::Identity::create(&old, false).unwrap();
        std::fs::write(old.join("config.toml"), "[person]\nterms = []\n").unwrap();
        let file = root.path().join("node.vrmx");
        for (passphrase, name) in [(Some("a good passphrase"), "with"), (None, "without")] {
            export(&old, &file, passphrase).unwrap();
            let new = root.path().join(name);
            import(&file, &new, passphrase).unwrap();
            assert!(new.join(SELF_KEY_FILE).exists() && new.join(NODE_KEY_FILE).exists());
            assert!(!new.join(VENDOR_KEY_FILE).exists(), "{name} keys");
            let same = std::fs::read(old.join(SELF_KEY_FILE)).unwrap()
                == std::fs::read(new.join(SELF_KEY_FILE)).unwrap();
            assert_eq!(same, passphrase.is_some(), "{name} keys");
        }
    }

    #[test]
    fn an_export_of_a_newer_schema_is_refused_and_one_without_keys_gets_new_keys() {
        let root = tempfile::tempdir().unwrap();
        let old = node(root.path());
        let file = root.path().join("node.vrmx");
        let mut contents = export(&old, &file, None).unwrap();
        assert!(contents.keys.is_none());
        let new = root.path().join("new");
        import(&file, &new, None).unwrap();
        assert_ne!(
            std::fs::read(old.join(SELF_KEY_FILE)).unwrap(),
            std::fs::read(new.join(SELF_KEY_FILE)).unwrap()
        );
        assert!(
            new.join(VENDOR_KEY_FILE).exists(),
            "a vendor's node stays a vendor's"
        );
        contents.schema = SCHEMA_VERSION + 1;
        let mut body = Vec::new();
        ciborium::into_writer(&contents, &mut body).unwrap();
        let outer = Outer {
            format: EXPORT_FORMAT.into(),
            sha256: Sha256::digest(&body).to_vec().into(),
            body: body.into(),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&outer, &mut bytes).unwrap();
        let refused = decode(&bytes).unwrap_err();
        assert!(refused.to_string().contains("newer"), "{refused:#}");
    }
}
