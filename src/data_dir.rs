//! The data directory belongs to its owner alone: it holds the person's keys, vault,
//! intents and relationships (and on a vendor's node, the data people granted it). It is
//! created 0700 and everything in it 0600 (the process's umask is 077 from the start), and
//! a node refuses to start on a directory other users can enter, or on any of its own files
//! they can read, saying how to fix it.
//!
//! Files vrm does not write there (a log a script keeps beside the store) are only warned
//! about: in a 0700 directory nobody else reaches them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What vrm writes in a data directory (the store folder with everything in it).
const OWN: &[&str] = &[
    "node.key",
    "self.key",
    "vendor.key",
    "config.toml",
    "api",
    "api.cookie",
    "catalog.toml",
    "store",
];

/// A path in the data directory others can reach.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} can be read by other users (mode {mode:04o}): it holds your keys and data. Fix: chmod -R go-rwx '{dir}' (or run vrm as the folder's owner with umask 077)"
)]
pub struct TooOpen {
    /// The path.
    pub path: PathBuf,
    /// Its mode.
    pub mode: u32,
    /// The data directory.
    pub dir: PathBuf,
}

/// Files and folders this process creates are its owner's alone.
pub fn owner_only() {
    // SAFETY: umask only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Makes a data directory its owner's alone (when vrm creates it).
pub fn restrict(dir: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Refuses `dir` if other users can enter it or read anything vrm keeps in it. Returns
/// the files in it others could read that vrm did not write, to warn about.
pub fn check(dir: &Path) -> Result<Vec<PathBuf>, TooOpen> {
    let too_open = |path: &Path, mode: u32| TooOpen {
        path: path.to_owned(),
        mode,
        dir: dir.to_owned(),
    };
    if let Some(m) = mode(dir).filter(|m| m & 0o077 != 0) {
        return Err(too_open(dir, m));
    }
    let mut strays = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(strays);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let own = OWN.contains(&name.as_str());
        for path in walk(&path) {
            match mode(&path) {
                Some(m) if m & 0o077 != 0 && own => return Err(too_open(&path, m)),
                Some(m) if m & 0o077 != 0 => strays.push(path),
                _ => {}
            }
        }
    }
    Ok(strays)
}

/// `path` and, for a folder, everything under it (symbolic links are not followed).
fn walk(path: &Path) -> Vec<PathBuf> {
    let mut all = vec![path.to_owned()];
    let mut next = 0;
    while next < all.len() {
        let current = all[next].clone();
        next += 1;
        let is_dir = std::fs::symlink_metadata(&current).is_ok_and(|m| m.is_dir());
        if let (true, Ok(entries)) = (is_dir, std::fs::read_dir(&current)) {
            all.extend(entries.flatten().map(|e| e.path()));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_directory_or_an_own_file_others_can_read_is_refused_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node");
        std::fs::create_dir_all(dir.join("store/db")).unwrap();
        for file in ["config.toml", "store/db/db"] {
            std::fs::write(dir.join(file), "x").unwrap();
            chmod(&dir.join(file), 0o600);
        }
        chmod(&dir, 0o700);
        chmod(&dir.join("store"), 0o700);
        chmod(&dir.join("store/db"), 0o700);
        check(&dir).expect("owner only");

        assert_eq!(check(&dir).unwrap(), Vec::<PathBuf>::new());
        std::fs::write(dir.join("log"), "x").unwrap();
        chmod(&dir.join("log"), 0o644);
        assert_eq!(
            check(&dir).expect("a file vrm did not write is only warned about"),
            [dir.join("log")]
        );
        chmod(&dir.join("log"), 0o600);
        assert!(check(&dir).unwrap().is_empty());
        chmod(&dir.join("log"), 0o640);
        assert_eq!(check(&dir).unwrap().len(), 1, "readable by the group");

        chmod(&dir.join("store/db/db"), 0o644);
        let refused = check(&dir).unwrap_err();
        assert_eq!(refused.path, dir.join("store/db/db"));
        assert!(refused.to_string().contains("chmod -R go-rwx"), "{refused}");
        chmod(&dir.join("store/db/db"), 0o600);

        chmod(&dir, 0o755);
        assert_eq!(check(&dir).unwrap_err().path, dir);
        restrict(&dir).unwrap();
        check(&dir).expect("restricted");
    }
}
