//! The node's keys and the personas derived from them (`DESIGN.md` §2).
//!
//! - `node.key`: the libp2p transport identity (PeerId). Transport only.
//! - `self.key`: the person's root secret. Never leaves the node; personas come from it.
//! - `vendor.key`: only on vendor nodes; the stable public identity offers are signed with.
//!
//! Key files hold a 32-byte Ed25519 seed as hex, are created with mode 0600, and a key file
//! that group or others can read is refused. Personas are derived with HKDF-SHA256 from the
//! root secret, so they need no storage and cannot be linked without it: a fresh one per
//! intent (keyed by the intent id) and a stable pairwise one per vendor (keyed by the
//! vendor's public key).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;

use crate::proto::sealed::ReplyKey;
use crate::proto::service::queue_of;
use sha2::Sha256;
use thiserror::Error;

/// File name of the transport key.
pub const NODE_KEY_FILE: &str = "node.key";
/// File name of the person's root secret.
pub const SELF_KEY_FILE: &str = "self.key";
/// File name of the vendor key.
pub const VENDOR_KEY_FILE: &str = "vendor.key";

/// Why keys could not be created or loaded.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// `init` found keys already there.
    #[error(
        "{0} already exists: this data directory already has an identity (refusing to overwrite it)"
    )]
    AlreadyExists(PathBuf),
    /// A key file is missing.
    #[error("{0} is missing: run `vrm init` first")]
    Missing(PathBuf),
    /// A key file is readable by group or others.
    #[error(
        "{path} is readable by others (mode {mode:o}); fix it with `chmod 600 {path}`",
        path = .path.display()
    )]
    InsecureKeyFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold 32 hex-encoded bytes.
    #[error("{0} is not a key file (expected 64 hex digits)")]
    Malformed(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The keys of one node.
pub struct Identity {
    node: libp2p::identity::Keypair,
    root: SigningKey,
    vendor: Option<SigningKey>,
}

impl Identity {
    /// Creates fresh keys in `dir` (a vendor key too if `vendor`). Refuses to overwrite.
    pub fn create(dir: &Path, vendor: bool) -> Result<Identity, IdentityError> {
        for name in [NODE_KEY_FILE, SELF_KEY_FILE, VENDOR_KEY_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(IdentityError::AlreadyExists(path));
            }
        }
        crate::data_dir::restrict(dir).map_err(|source| IdentityError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let node = write_new_key(&dir.join(NODE_KEY_FILE))?;
        let root = write_new_key(&dir.join(SELF_KEY_FILE))?;
        let vendor = vendor
            .then(|| write_new_key(&dir.join(VENDOR_KEY_FILE)))
            .transpose()?;
        Ok(Identity::from_keys(&node, root, vendor))
    }

    fn from_keys(node: &SigningKey, root: SigningKey, vendor: Option<SigningKey>) -> Identity {
        Identity {
            node: transport_keypair(node),
            root,
            vendor,
        }
    }

    /// Loads the keys of `dir`, refusing key files others can read.
    pub fn load(dir: &Path) -> Result<Identity, IdentityError> {
        let node = read_key(&dir.join(NODE_KEY_FILE))?;
        let root = read_key(&dir.join(SELF_KEY_FILE))?;
        let vendor_path = dir.join(VENDOR_KEY_FILE);
        let vendor = vendor_path
            .exists()
            .then(|| read_key(&vendor_path))
            .transpose()?;
        Ok(Identity::from_keys(&node, root, vendor))
    }

    /// True if `dir` holds an identity.
    pub fn exists(dir: &Path) -> bool {
        dir.join(SELF_KEY_FILE).exists()
    }

    /// The libp2p keypair.
    pub fn node_keypair(&self) -> &libp2p::identity::Keypair {
        &self.node
    }

    /// The node's PeerId.
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.node.public().to_peer_id()
    }

    /// The vendor key, on vendor nodes.
    pub fn vendor_key(&self) -> Option<&SigningKey> {
        self.vendor.as_ref()
    }

    /// The fresh persona that signs the intent with this id (and its withdrawal).
    pub fn intent_persona(&self, intent_id: &[u8; 16]) -> SigningKey {
        self.derive(b"vrm/1/persona/intent", intent_id)
    }

    /// The stable persona the person uses with one vendor.
    pub fn pairwise_persona(&self, vendor: &VerifyingKey) -> SigningKey {
        self.derive(b"vrm/1/persona/pairwise", vendor.as_bytes())
    }

    /// The reply path of the intent with this id: the one-time key its offers are sealed
    /// to, and the token that opens its mailbox queue. Derived, so nothing is stored.
    pub fn reply(&self, intent_id: &[u8; 16]) -> Reply {
        Reply {
            key: ReplyKey::derive(&self.secret(b"vrm/2/reply/key", intent_id)),
            token: self.secret(b"vrm/2/reply/token", intent_id),
        }
    }

    /// The fresh persona of a relationship the person entered as new, from its nonce.
    pub fn relationship_persona(&self, nonce: &[u8; 16]) -> SigningKey {
        self.derive(b"vrm/2/persona/relationship", nonce)
    }

    /// The person's queue and key for the vendor's entries of the relationship with this
    /// nonce.
    pub fn relationship_reply(&self, nonce: &[u8; 16]) -> Reply {
        Reply {
            key: ReplyKey::derive(&self.secret(b"vrm/2/relationship/key", nonce)),
            token: self.secret(b"vrm/2/relationship/token", nonce),
        }
    }

    /// A vendor node's inbox: the queue persons' relationship entries are deposited in,
    /// and the key they are sealed to. One per vendor node, named in its offers.
    pub fn vendor_inbox(&self) -> Reply {
        Reply {
            key: ReplyKey::derive(&self.secret(b"vrm/2/vendor-inbox/key", b"")),
            token: self.secret(b"vrm/2/vendor-inbox/token", b""),
        }
    }

    fn derive(&self, purpose: &[u8], context: &[u8]) -> SigningKey {
        SigningKey::from_bytes(&self.secret(purpose, context))
    }

    fn secret(&self, purpose: &[u8], context: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(purpose), self.root.as_bytes());
        let mut secret = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        hk.expand(context, &mut secret)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        secret
    }
}

/// An intent's reply path secrets ([`Identity::reply`]).
pub struct Reply {
    /// The key offers are sealed to; its public half goes into the intent.
    pub key: ReplyKey,
    /// Opens the mailbox queue; the queue id in the intent is [`queue_of`] it.
    pub token: [u8; 32],
}

impl Reply {
    /// The queue id at the mailbox.
    pub fn queue(&self) -> [u8; 16] {
        queue_of(&self.token)
    }
}

fn transport_keypair(key: &SigningKey) -> libp2p::identity::Keypair {
    let mut seed = key.to_bytes();
    libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .expect("any 32 bytes are an ed25519 secret key")
}

fn write_new_key(path: &Path) -> Result<SigningKey, IdentityError> {
    let seed: [u8; 32] = rand::random();
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    let text = format!("{}\n", hex::encode(seed));
    crate::atomic_file::create_new(path, text.as_bytes(), 0o600).map_err(io)?;
    Ok(SigningKey::from_bytes(&seed))
}

fn read_key(path: &Path) -> Result<SigningKey, IdentityError> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => IdentityError::Missing(path.to_owned()),
        _ => IdentityError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecureKeyFile {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Io {
        path: path.to_owned(),
        source,
    })?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| IdentityError::Malformed(path.to_owned()))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuses_overwrite_and_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let created = Identity::create(dir.path(), true).unwrap();
        assert!(matches!(
            Identity::create(dir.path(), false),
            Err(IdentityError::AlreadyExists(_))
        ));
        let loaded = Identity::load(dir.path()).unwrap();
        assert_eq!(created.peer_id(), loaded.peer_id());
        assert!(loaded.vendor_key().is_some());
        let mode = std::fs::metadata(dir.path().join(SELF_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn readable_key_file_is_refused_with_fix() {
        let dir = tempfile::tempdir().unwrap();
        Identity::create(dir.path(), false).unwrap();
        let path = dir.path().join(SELF_KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(dir.path()).err().unwrap();
        assert!(matches!(err, IdentityError::InsecureKeyFile { .. }));
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn personas_are_fresh_per_intent_and_stable_per_vendor() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::create(dir.path(), false).unwrap();
        let a = id.intent_persona(&[1; 16]).verifying_key();
        let b = id.intent_persona(&[2; 16]).verifying_key();
        assert_ne!(a, b);
        assert_eq!(a, id.intent_persona(&[1; 16]).verifying_key());
        let v1 = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let v2 = SigningKey::from_bytes(&[10; 32]).verifying_key();
        let p1 = id.pairwise_persona(&v1).verifying_key();
        assert_eq!(p1, id.pairwise_persona(&v1).verifying_key());
        assert_ne!(p1, id.pairwise_persona(&v2).verifying_key());
        assert_ne!(p1, a);
        // Another person's node derives unrelated personas for the same vendor.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Identity::create(other_dir.path(), false).unwrap();
        assert_ne!(p1, other.pairwise_persona(&v1).verifying_key());
    }
}
