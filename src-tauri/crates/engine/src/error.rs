//! The one error contract of every operation: `{code, message}`. The code comes from a closed
//! list ([`ErrorCode`], exported to TypeScript as a union) that the UI picks its advice by; the
//! message is safe to show as it is. Internals (SQLite's words, paths a provider shouldn't see)
//! go to the log, never into a message.

use clientele_secrets::SecretError;
use clientele_store::StoreError;
use clientele_store::export::ExportError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What went wrong, from a closed list: the UI picks its advice by this, never by the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// The thing asked for (a connection, a person, a delivery, an export profile) isn't there.
    NotFound,
    /// What was typed or sent can't be used (a badly formed name, a port out of range…).
    InvalidInput,
    /// No provider has that id.
    UnknownProvider,
    /// The provider already has a connection by that name, or one that differs only by case or
    /// punctuation (they would share one environment variable).
    ConnectionNameTaken,
    /// A secret was asked for but none was given (or only spaces).
    SecretEmpty,
    /// The connection's secret can't be read right now, so nothing can be checked with it.
    SecretUnavailable,
    /// What the keychain holds for the connection isn't a usable secret.
    SecretUnreadable,
    /// Secrets come from environment variables, which Clientele can't change.
    SecretsReadOnly,
    /// No keychain (Secret Service) is running.
    KeychainUnavailable,
    /// The keychain is locked.
    KeychainLocked,
    /// The keychain holds several entries for one connection.
    KeychainAmbiguous,
    /// Any other keychain failure.
    KeychainError,
    /// The disk is full.
    DiskFull,
    /// The database is busy (another Clientele is writing).
    DatabaseBusy,
    /// The data folder was written by a newer Clientele.
    DatabaseTooNew,
    /// The database file can't be opened.
    DatabaseOpen,
    /// The data folder can't be created.
    DataDir,
    /// Another Clientele (the app or `clientele serve`) is receiving into the data folder.
    DataDirInUse,
    /// Any other database failure (the details are in the log).
    Database,
    /// Stored data can't be read back.
    DatabaseCorrupt,
    /// The export profile can't be used as it is.
    ExportProfileInvalid,
    /// The chosen folder doesn't exist.
    ExportFolderMissing,
    /// The chosen folder can't be written to.
    ExportFolderNotWritable,
    /// A folder was chosen where a file name was needed.
    ExportPathIsFolder,
    /// Writing the file failed; nothing was left behind.
    ExportWriteFailed,
    /// More rows than an Excel sheet holds.
    ExportTooManyRows,
    /// The export was cancelled.
    ExportCancelled,
    /// The same export is already running.
    ExportRunning,
    /// The file manager couldn't be opened on a file.
    ShowInFolder,
    /// The relay can't be reached (down, wrong address, no network).
    RelayUnreachable,
    /// The relay's certificate isn't trusted by this computer.
    RelayUntrusted,
    /// The address answered, but not as a Clientele relay.
    NotARelay,
    /// The relay refused: a wrong, used or expired pairing code, a name taken, too many tries.
    RelayRefused,
    /// The relay removed this computer's access (or never paired it).
    RelayAccessRemoved,
    /// This computer may read from the relay but not change its connections.
    RelayNotAdmin,
    /// This computer isn't joined to a relay.
    RelayNotJoined,
    /// This computer already pulls from a relay.
    RelayAlreadyJoined,
    /// Something unexpected; the details are in the log.
    Internal,
}

/// The one error shape every operation returns and the UI sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
        }
    }

    /// "There is no Tiquo connection called 'main'."
    pub fn no_connection(provider: clientele_core::Provider, name: &str) -> Self {
        AppError::new(
            ErrorCode::NotFound,
            format!(
                "There is no {} connection called '{name}'.",
                provider.display_name()
            ),
        )
    }

    /// An unexpected failure: the message says so plainly; `detail` goes to the log only.
    pub fn internal(message: impl Into<String>, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "unexpected failure");
        AppError::new(ErrorCode::Internal, message)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

pub type ApiResult<T> = Result<T, AppError>;

/// The message for a database failure whose own words are internals.
const DATABASE_TROUBLE: &str = "Clientele couldn't read or save its data. Try again; if it keeps happening, copy the details for support.";

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::DataDir { .. } => ErrorCode::DataDir,
            StoreError::Open { .. } => ErrorCode::DatabaseOpen,
            StoreError::TooNew { .. } => ErrorCode::DatabaseTooNew,
            StoreError::DiskFull => ErrorCode::DiskFull,
            StoreError::Busy => ErrorCode::DatabaseBusy,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Invalid(_) => ErrorCode::InvalidInput,
            StoreError::Sqlite(_) => ErrorCode::Database,
            StoreError::Corrupt(_) => ErrorCode::DatabaseCorrupt,
            StoreError::Unavailable(_) => ErrorCode::Database,
        };
        if matches!(e, StoreError::Sqlite(_) | StoreError::Corrupt(_)) {
            tracing::error!(error = %e, "store error");
            return AppError::new(code, DATABASE_TROUBLE);
        }
        AppError::new(code, e.to_string())
    }
}

impl From<SecretError> for AppError {
    fn from(e: SecretError) -> Self {
        let code = match &e {
            SecretError::Unavailable => ErrorCode::KeychainUnavailable,
            SecretError::Locked => ErrorCode::KeychainLocked,
            SecretError::Ambiguous { .. } => ErrorCode::KeychainAmbiguous,
            SecretError::Keychain => ErrorCode::KeychainError,
            SecretError::ReadOnly { .. } => ErrorCode::SecretsReadOnly,
            SecretError::Empty { .. }
            | SecretError::EmptyVariable { .. }
            | SecretError::EmptyToken => ErrorCode::SecretEmpty,
            SecretError::Unreadable { .. } => ErrorCode::SecretUnreadable,
            // A relay's own failures, reported to an admin desk: the secret can't be used until
            // the key is put back or the secret set again; the database is the database.
            SecretError::RelayKeyMismatch { .. } => ErrorCode::SecretUnavailable,
            SecretError::RelayDatabase => ErrorCode::Database,
            SecretError::RelayKeepsNoToken => ErrorCode::InvalidInput,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ExportError> for AppError {
    fn from(e: ExportError) -> Self {
        let code = match &e {
            ExportError::InvalidProfile { .. } => ErrorCode::ExportProfileInvalid,
            ExportError::FolderMissing(_) => ErrorCode::ExportFolderMissing,
            ExportError::FolderNotWritable { .. } => ErrorCode::ExportFolderNotWritable,
            ExportError::IsAFolder(_) => ErrorCode::ExportPathIsFolder,
            ExportError::Write { .. } => ErrorCode::ExportWriteFailed,
            ExportError::TooManyRows => ErrorCode::ExportTooManyRows,
            ExportError::Cancelled => ErrorCode::ExportCancelled,
            ExportError::Store(_) => {
                let ExportError::Store(inner) = e else {
                    unreachable!()
                };
                return inner.into();
            }
        };
        AppError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_strings_the_ui_matches() {
        let json = |c: ErrorCode| serde_json::to_string(&c).unwrap();
        assert_eq!(json(ErrorCode::NotFound), "\"not_found\"");
        assert_eq!(json(ErrorCode::InvalidInput), "\"invalid_input\"");
        assert_eq!(
            json(ErrorCode::ConnectionNameTaken),
            "\"connection_name_taken\""
        );
        assert_eq!(json(ErrorCode::KeychainLocked), "\"keychain_locked\"");
        assert_eq!(
            json(ErrorCode::ExportTooManyRows),
            "\"export_too_many_rows\""
        );
        let error = AppError::new(ErrorCode::DiskFull, "full");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({"code": "disk_full", "message": "full"})
        );
    }

    #[test]
    fn database_internals_never_reach_the_message() {
        let sqlite = rusqlite_error();
        let error = AppError::from(StoreError::Sqlite(sqlite));
        assert_eq!(error.code, ErrorCode::Database);
        assert!(
            !error.message.contains("no such table"),
            "{}",
            error.message
        );
        let corrupt = AppError::from(StoreError::Corrupt("bad json at /x/y".into()));
        assert_eq!(corrupt.code, ErrorCode::DatabaseCorrupt);
        assert!(!corrupt.message.contains("/x/y"), "{}", corrupt.message);
    }

    fn rusqlite_error() -> rusqlite::Error {
        rusqlite::Connection::open_in_memory()
            .unwrap()
            .execute("SELECT * FROM no_such_table", [])
            .unwrap_err()
    }

    #[test]
    fn every_secret_error_has_its_own_code() {
        let errors = [
            (SecretError::Unavailable, ErrorCode::KeychainUnavailable),
            (SecretError::Locked, ErrorCode::KeychainLocked),
            (SecretError::Keychain, ErrorCode::KeychainError),
            (
                SecretError::ReadOnly {
                    variable: "X".into(),
                },
                ErrorCode::SecretsReadOnly,
            ),
            (SecretError::EmptyToken, ErrorCode::SecretEmpty),
            (
                SecretError::RelayKeyMismatch { what: "x".into() },
                ErrorCode::SecretUnavailable,
            ),
            (SecretError::RelayDatabase, ErrorCode::Database),
            (SecretError::RelayKeepsNoToken, ErrorCode::InvalidInput),
        ];
        for (error, code) in errors {
            assert_eq!(AppError::from(error).code, code);
        }
    }
}
