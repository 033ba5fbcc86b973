//! What can go wrong with the relay's database, in sentences an operator can act on — naming the
//! user, host and database to check, never the password.

use crate::DatabaseUrl;
use clientele_store::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "The database address isn't a PostgreSQL URL. Write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (--database or CLIENTELE_DATABASE_URL)."
    )]
    NotAUrl,
    #[error(
        "Nothing answered at {address} ({url}): check that PostgreSQL runs there, listens on that address and port, and that a firewall lets this machine through."
    )]
    Unreachable { address: String, url: String },
    #[error(
        "PostgreSQL refused user '{user}' ({url}): check the user name and password in the database URL, and that pg_hba.conf lets this user in from this machine."
    )]
    Refused { user: String, url: String },
    #[error(
        "There is no database '{database}' at {address}: create it (createdb {database}, as a PostgreSQL superuser) or correct the URL."
    )]
    NoDatabase { database: String, address: String },
    #[error(
        "This database was set up by a newer Clientele (schema {found}; this one knows up to {supported}). Update this relay."
    )]
    TooNew { found: i64, supported: i64 },
    #[error("PostgreSQL at {url} failed: {reason}")]
    Query { url: String, reason: String },
    #[error("The relay couldn't start the threads that talk to its database: {0}")]
    Threads(String),
}

/// A start-up failure, as the relay's other errors: the database can't be used.
impl From<PgError> for StoreError {
    fn from(e: PgError) -> StoreError {
        StoreError::Unavailable(e.to_string())
    }
}

impl PgError {
    /// Why connecting to `url` failed.
    pub(crate) fn connecting(url: &DatabaseUrl, e: &tokio_postgres::Error) -> PgError {
        match e.code() {
            Some(code)
                if *code == SqlState::INVALID_PASSWORD
                    || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                PgError::Refused {
                    user: url.user().to_string(),
                    url: url.shown().to_string(),
                }
            }
            Some(code) if *code == SqlState::INVALID_CATALOG_NAME => PgError::NoDatabase {
                database: url.database().to_string(),
                address: url.address(),
            },
            Some(_) => PgError::query(url, e),
            // No answer from a server at all: refused, unreachable, timed out, or not PostgreSQL.
            None => PgError::Unreachable {
                address: url.address(),
                url: url.shown().to_string(),
            },
        }
    }

    /// A statement failed. PostgreSQL's own words (they never carry the password).
    pub(crate) fn query(url: &DatabaseUrl, e: &tokio_postgres::Error) -> PgError {
        let reason = e
            .as_db_error()
            .map(|db| db.message().to_string())
            .unwrap_or_else(|| e.to_string());
        PgError::Query {
            url: url.shown().to_string(),
            reason,
        }
    }
}

/// A statement or connection failure while running, as the relay's routes take it:
/// [`StoreError::Unavailable`] with a sentence naming the database (never its password).
pub(crate) fn unavailable(url: &DatabaseUrl, e: &tokio_postgres::Error) -> StoreError {
    let shown = url.shown();
    let said = match e.as_db_error() {
        Some(db) => {
            let code = db.code();
            if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            {
                format!(
                    "PostgreSQL refused user '{}' ({shown}): check the user name and password in the database URL, and that pg_hba.conf lets this user in from this machine.",
                    url.user()
                )
            } else if code.code().starts_with("08")
                || code.code().starts_with("57P")
                || code.code().starts_with("53")
            {
                // Connection exceptions, the server shutting down or starting, out of
                // connections or memory: it will likely pass.
                format!(
                    "The relay's database at {shown} can't be used right now ({}). Check that PostgreSQL is running and accepting connections.",
                    db.message()
                )
            } else {
                format!("The relay's database at {shown} failed: {}.", db.message())
            }
        }
        None => format!(
            "The relay's database at {shown} can't be reached ({}). Check that PostgreSQL is running.",
            reason(e)
        ),
    };
    StoreError::Unavailable(url.scrub(&said))
}

/// Getting a pooled connection failed.
pub(crate) fn pool_unavailable(url: &DatabaseUrl, e: &PoolError) -> StoreError {
    let shown = url.shown();
    match e {
        PoolError::Backend(e) => unavailable(url, e),
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            StoreError::Unavailable(format!(
                "The relay's database at {shown} is busy: no connection to it came free in time. Try again in a moment."
            ))
        }
        PoolError::Timeout(_) => StoreError::Unavailable(format!(
            "The relay's database at {shown} can't be reached (no answer in time). Check that PostgreSQL is running and that a firewall lets this machine through."
        )),
        other => StoreError::Unavailable(url.scrub(&format!(
            "The relay's database at {shown} can't be used: {other}."
        ))),
    }
}

/// Why a connection failed without an answer from the server, in a few words.
fn reason(e: &tokio_postgres::Error) -> String {
    if e.is_closed() {
        return "the connection was closed".into();
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => "the connection was reset".into(),
                std::io::ErrorKind::ConnectionAborted => "the connection was aborted".into(),
                std::io::ErrorKind::TimedOut => "it didn't answer in time".into(),
                std::io::ErrorKind::UnexpectedEof => "the connection was closed".into(),
                _ => io.to_string(),
            };
        }
        source = s.source();
    }
    e.to_string()
}
