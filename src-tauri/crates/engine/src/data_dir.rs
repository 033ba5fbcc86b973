//! Where Clientele keeps its data, and the lock that lets only one receiver use it at a time.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Environment variable that overrides the default data directory.
pub const DATA_DIR_ENV: &str = "CLIENTELE_DATA_DIR";

/// The platform's app-data directory (`~/.local/share/clientele` on Linux).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "clientele").map(|d| d.data_dir().to_path_buf())
}

/// `--data-dir`, else `CLIENTELE_DATA_DIR`, else the platform default.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, LockError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    default_data_dir().ok_or(LockError::NoHome)
}

/// Held while a process receives into (or rebuilds) a data directory. Released on drop, and by
/// the operating system if the process dies, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the data folder can't be found, or its lock can't be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (the app or a `clientele serve`) holds it.
    #[error(
        "Clientele is already running with the data folder {} (the app or another `clientele serve`). Stop it first, or use another --data-dir.",
        .0.display()
    )]
    HeldElsewhere(PathBuf),
    #[error("{0}")]
    Io(String),
    /// No home folder to keep the data in, and no folder given.
    #[error("couldn't find a home folder for Clientele's data; pass --data-dir DIR")]
    NoHome,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            LockError::Io(format!(
                "couldn't create the data folder {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("clientele.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::Io(format!("couldn't open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::HeldElsewhere(data_dir.to_path_buf())),
            Err(TryLockError::Error(e)) => Err(LockError::Io(format!(
                "couldn't lock {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::HeldElsewhere(ref d) if d == dir.path()));
        assert!(err.to_string().contains("already running"), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
