//! Store errors. Messages are safe to show; callers tell the variants apart for their own codes.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Clientele couldn't create its data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Clientele couldn't open its database at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "This data folder was written by a newer version of Clientele (database version {found}, this version understands up to {supported}). Update Clientele to open it."
    )]
    TooNew { found: i64, supported: i64 },
    #[error(
        "The disk is full, so Clientele couldn't save. Free some space; messages will be accepted again automatically."
    )]
    DiskFull,
    #[error("The database is busy (another Clientele may be writing). Try again in a moment.")]
    Busy,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// A database server (the relay's PostgreSQL) can't be reached or failed: the words name
    /// what to check, never a password. Callers answer "try again later" (`503`).
    #[error("{0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => match e {
                // A stored value that doesn't read as its type (see `stored`).
                rusqlite::Error::FromSqlConversionFailure(_, _, source) => {
                    StoreError::Corrupt(source.to_string())
                }
                e => StoreError::Sqlite(e),
            },
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
