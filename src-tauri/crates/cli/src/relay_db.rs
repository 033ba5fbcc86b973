//! Opening the relay's store for `clientele relay …`: the data folder's SQLite, or the
//! PostgreSQL database named by `--database` / `CLIENTELE_DATABASE_URL`, over TLS as its
//! `sslmode` says, trusting `--database-ca-cert` / `CLIENTELE_DATABASE_CA_CERT` besides the
//! platform's roots.

use crate::args::RelayDatabase;
use anyhow::{Context, Result};
use clientele_relay::store::{RelayStore, SqliteRelayStore};
use clientele_relay_pg::{DatabaseUrl, PgStore};
use std::path::Path;
use std::sync::Arc;

/// The database URL, if one was given (blank counts as none).
pub fn url(db: &RelayDatabase) -> Option<&str> {
    db.url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

/// Connects to the relay's PostgreSQL database (migrating it when it is new), trusting the CA
/// certificate in `ca_cert` if given, with a plain error naming what to check — never the
/// password.
pub fn connect(url: &str, ca_cert: Option<&Path>) -> Result<Arc<dyn RelayStore>> {
    let mut url = DatabaseUrl::parse(url)?;
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| {
            format!(
                "couldn't read the database's CA certificate {}",
                path.display()
            )
        })?;
        url = url
            .with_ca_cert(&pem)
            .with_context(|| path.display().to_string())?;
    }
    let store = PgStore::connect(&url)?;
    Ok(Arc::new(store))
}

/// The relay's store for a command run beside it.
pub fn open(dir: &Path, db: &RelayDatabase) -> Result<Arc<dyn RelayStore>> {
    match url(db) {
        Some(url) => connect(url, db.ca_cert.as_deref()),
        None => {
            let store = crate::upgrade::open_store(dir)
                .with_context(|| format!("couldn't open the relay's data in {}", dir.display()))?;
            Ok(Arc::new(SqliteRelayStore::new(store)))
        }
    }
}
