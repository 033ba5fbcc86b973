//! What can go wrong with the relay's database, in sentences an operator can act on — naming the
//! user, host and database to check, never the password.

use crate::tls::{self, TlsFailure};
use crate::{DatabaseUrl, TlsMode};
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
    #[error(
        "The database URL's sslmode={0} isn't one the relay knows: write disable, prefer, require, verify-ca or verify-full."
    )]
    SslMode(String),
    #[error(
        "The database's CA certificate can't be used (--database-ca-cert or CLIENTELE_DATABASE_CA_CERT): {0}."
    )]
    CaCert(String),
    #[error(
        "A CA certificate for the database was given (--database-ca-cert or CLIENTELE_DATABASE_CA_CERT), but the database URL says sslmode=disable: remove one of the two."
    )]
    CaWithoutTls,
    #[error(
        "The relay can't check the database's certificate: this machine has no trusted certificate authorities ({0}). Give the relay the database's CA certificate with --database-ca-cert (or CLIENTELE_DATABASE_CA_CERT)."
    )]
    NoRoots(String),
    #[error(
        "The database server at {address} presented a certificate the relay doesn't trust: {why}. If the database uses its own certificate authority (managed databases usually do; they offer its certificate for download), give the relay that certificate with --database-ca-cert (or CLIENTELE_DATABASE_CA_CERT); if the URL names the server differently than its certificate does, use the name on the certificate."
    )]
    Untrusted { address: String, why: String },
    #[error(
        "The database server at {address} doesn't offer TLS, and the database URL requires it (sslmode=require, or a CA certificate was given): turn ssl on in the server's postgresql.conf, or, only on a network you trust, write sslmode=disable."
    )]
    TlsNotOffered { address: String },
    #[error("TLS with the database server at {address} failed: {reason}.")]
    Tls { address: String, reason: String },
    #[error(
        "PostgreSQL turned away user '{user}' on an unencrypted connection ({url}): the database URL says sslmode=disable, and a server that accepts only TLS (hostssl in pg_hba.conf, as managed databases do) refuses that. Remove sslmode=disable (or write sslmode=require); otherwise check that pg_hba.conf lets this user in from this machine."
    )]
    RefusedUnencrypted { user: String, url: String },
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
        if let Some(tls) = PgError::tls(url, e) {
            return tls;
        }
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

    /// What went wrong with TLS, or with not using it, if that is what went wrong.
    pub(crate) fn tls(url: &DatabaseUrl, e: &tokio_postgres::Error) -> Option<PgError> {
        let address = url.address();
        if let Some(failure) = tls::failure(e) {
            return Some(match failure {
                TlsFailure::Untrusted(why) => PgError::Untrusted {
                    why: tls::untrusted_because(&why, &url.host()),
                    address,
                },
                TlsFailure::NotOffered => PgError::TlsNotOffered { address },
                TlsFailure::Other(reason) => PgError::Tls {
                    address,
                    reason: url.scrub(&reason),
                },
            });
        }
        // No pg_hba.conf line lets this connection in: with TLS turned off, likely hostssl.
        if url.tls_mode() == TlsMode::Disable
            && e.code() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        {
            return Some(PgError::RefusedUnencrypted {
                user: url.user().to_string(),
                url: url.shown().to_string(),
            });
        }
        None
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
    if let Some(tls) = PgError::tls(url, e) {
        return tls.into();
    }
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
