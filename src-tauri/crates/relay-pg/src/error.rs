//! What can go wrong with the relay's database, in sentences an operator can act on — naming the
//! user, host and database to check, never the password.

use crate::DatabaseUrl;
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
