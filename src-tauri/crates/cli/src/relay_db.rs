//! Opening the relay's store for `clientele relay …`: the data folder's SQLite, or the
//! PostgreSQL database named by `--database` / `CLIENTELE_DATABASE_URL`.

use crate::args::RelayDatabase;
use anyhow::{Context, Result};
use clientele_relay::store::{RelayStore, SqliteRelayStore};
use clientele_relay_pg::{DatabaseUrl, PgStore};
use clientele_store::Store;
use std::path::Path;
use std::sync::Arc;

/// The database URL, if one was given (blank counts as none).
pub fn url(db: &RelayDatabase) -> Option<&str> {
    db.url.as_deref().map(str::trim).filter(|u| !u.is_empty())
}

/// Connects to the relay's PostgreSQL database (migrating it when it is new), with a plain
/// error naming what to check — never the password.
pub fn connect(url: &str) -> Result<Arc<dyn RelayStore>> {
    let url = DatabaseUrl::parse(url)?;
    let store = PgStore::connect(&url)?;
    Ok(Arc::new(store))
}

/// The relay's store for a command run beside it.
pub fn open(dir: &Path, db: &RelayDatabase) -> Result<Arc<dyn RelayStore>> {
    match url(db) {
        Some(url) => connect(url),
        None => {
            let store = Store::open_dir(dir)
                .with_context(|| format!("couldn't open the relay's data in {}", dir.display()))?;
            Ok(Arc::new(SqliteRelayStore::new(store)))
        }
    }
}
