//! The data directory is its owner's alone (DESIGN.md §4): the directory 0700 and every
//! file in it 0600, for it holds every event, every captured response and the sealed
//! keys. New SQLite files are made 0600 by the build (`SQLITE_DEFAULT_FILE_PERMISSIONS`
//! in `.cargo/config.toml`; the WAL and shared-memory files take the database's mode);
//! what an older version left more open is closed here when the store opens.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The files a store keeps in its data directory besides the lock.
const STORE_FILES: [&str; 3] = ["hookline.db", "hookline.db-wal", "hookline.db-shm"];

/// Creates `dir` (and its parents) if need be, and makes it its owner's alone.
pub fn create_private(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// Opens (creating if need be) the lock file, readable and writable by its owner only.
pub fn lock_file(dir: &Path) -> io::Result<File> {
    let path = dir.join("hookline.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::set_permissions(&path, Permissions::from_mode(0o600))?;
    Ok(lock)
}

/// Makes the store's files that exist their owner's alone.
pub fn restrict_store_files(dir: &Path) -> io::Result<()> {
    for name in STORE_FILES {
        match std::fs::set_permissions(dir.join(name), Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            done => done?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_store_makes_its_directory_and_files_private_even_when_they_were_open() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let old = dir.join("hookline.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();

        create_private(&dir).unwrap();
        lock_file(&dir).unwrap();
        restrict_store_files(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&dir.join("hookline.lock")), 0o600);
    }
}
