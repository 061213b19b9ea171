//! Files that survive a power cut whole or not at all: the bytes go to a temporary file in
//! the same folder, which is synced, then renamed (or linked) to its name, and the folder
//! is synced so the new name itself is durable. A cut at any moment leaves the old file or
//! the new one, never an empty or half-written one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` (replacing it), with permission `mode` for a new file.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let staged = stage(path, bytes, mode)?;
    std::fs::rename(&staged, path)?;
    sync_folder(path)
}

/// Writes `bytes` to `path`, which must not exist yet (`AlreadyExists` otherwise).
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let staged = stage(path, bytes, mode)?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    linked?;
    sync_folder(path)
}

/// The bytes in a synced temporary file beside `path`.
fn stage(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staged = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&staged)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    written.map(|()| staged)
}

fn sync_folder(path: &Path) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_whole_files_creates_new_ones_once_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write(&path, b"first", 0o600).unwrap();
        write(&path, b"second, longer", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let key = dir.path().join("self.key");
        create_new(&key, b"secret", 0o600).unwrap();
        let again = create_new(&key, b"other", 0o600).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&key).unwrap(), b"secret", "never overwritten");

        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
