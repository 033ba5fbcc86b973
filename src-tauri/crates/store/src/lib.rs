//! Clientele's SQLite store.
//!
//! `deliveries` is the source of truth: every genuine delivery's raw body, byte for byte, written
//! before the listener answers `200`. Everything else — timeline events, source profiles, people,
//! search terms — is *derived* from it by [`derive`] and can be rebuilt at any time
//! ([`Writer::reprocess`]) with the same result.
//!
//! Durability: every connection runs in WAL mode with `synchronous=FULL`, so a commit returns only
//! after the WAL is fsync'd. That would cost one fsync per delivery if each were its own
//! transaction; instead the listener's single writer thread commits *groups* — every delivery that
//! queued while the previous fsync ran goes into the next transaction — so the fsync cost is
//! shared and durability is never traded away for throughput (see `clientele-server`'s ingest
//! module).
//!
//! There is one writer (a [`Writer`], owned by one thread) and any number of [`Reader`]s; WAL lets
//! readers run while the writer writes.

mod activity;
mod bodies;
mod businesses;
mod checkpoint;
mod connections;
mod convert;
mod derive;
mod error;
pub mod export;
mod forget;
mod hand;
mod ingest;
pub mod pack;
mod people;
mod pipelined;
mod queries;
mod relay;
mod relay_changes;
mod relay_link;
mod retention;
mod schema;
mod stored;
mod time;

pub use activity::{ActivityFilter, ActivityRow, ConnectionStats};
pub use businesses::Business;
pub use checkpoint::{Checkpointer, WAL_RESTART_FRAMES, WalProgress};
pub use connections::{Connection, NewConnection, validate_name as validate_connection_name};
pub use derive::{DeriveReport, RekeyStep};
pub use error::StoreError;
pub use forget::{
    ERASURE_KEY, Erasure, ExportWritten, ForgetHashes, ForgetReport, ForgetRequest, ForgetScope,
    Suppression, SuppressionScreen, Wipe, erased_dedupe_key, new_erasure_key, parse_erasure_key,
};
pub use hand::StoredDecision;
pub use ingest::{
    DeliveryStatus, IngestOutcome, NewDelivery, NewRejection, REJECTION_CAP, StoredBody,
};
pub use people::MAX_PROFILES_PER_KEY;
pub use queries::{
    DeliveryDetail, DeliveryRow, PeoplePage, PersonDetail, PersonSummary, ProfileValue,
    RejectionRow, SEARCH_COUNT_LIMIT, SharedKey, SourceRef, TimelineEntry,
};
pub use relay::{ClaimRefused, Device, FeedConnection, FeedItem, SealedRow};
pub use relay_changes::{AcceptedChange, DeliveryToCheck};
pub use relay_link::{PulledUpTo, RelayLink};
pub use retention::{
    RETENTION_HELD_BY_RELAY, RETENTION_INACTIVE_MONTHS, RETENTION_REJECTIONS_DAYS, Retention,
};
pub use schema::{
    CURRENT_VERSION as SCHEMA_VERSION, GIVING_SPACE_BACK, UpgradeProgress, UpgradeReport,
};
pub use time::{from_millis, to_millis};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "clientele.db";

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on the database file. Cheap to clone; opens connections on demand.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open_dir(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Store::open(&data_dir.join(DATABASE_FILE))
    }

    /// [`Store::open_dir`], telling `progress` how an upgrade of an older file goes (nothing is
    /// reported for a file already up to date; a new one is made quietly). Callers that show
    /// progress ask [`Store::needs_upgrade`] first.
    pub fn open_dir_with_progress(
        data_dir: &Path,
        mut progress: impl FnMut(&UpgradeProgress),
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let store = Store {
            path: data_dir.join(DATABASE_FILE),
        };
        let mut conn = store.connect()?;
        schema::migrate_with_progress(&mut conn, &mut progress)?;
        Ok(store)
    }

    /// Whether the data folder holds a database from an older version that opening will
    /// convert (which can take a while on a big one). Reads one number; creates nothing. A
    /// folder without a database, or one from a newer version (refused when opened), needs none.
    pub fn needs_upgrade(data_dir: &Path) -> Result<bool, StoreError> {
        Ok(schema::file_version(&data_dir.join(DATABASE_FILE))?
            .is_some_and(|v| v > 0 && v < schema::CURRENT_VERSION))
    }

    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let store = Store {
            path: path.to_path_buf(),
        };
        let mut conn = store.connect()?;
        schema::migrate(&mut conn)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer. Only one should exist per database at a time (the data-directory lock
    /// held by the app or `clientele serve` guarantees it across processes; short CLI writes such
    /// as `connection add` rely on SQLite's lock and `busy_timeout`).
    pub fn writer(&self) -> Result<Writer, StoreError> {
        Ok(Writer {
            conn: self.connect()?,
        })
    }

    /// A read-only view for queries.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Ok(Reader {
            conn: self.connect()?,
        })
    }

    fn connect(&self) -> Result<rusqlite::Connection, StoreError> {
        let conn = rusqlite::Connection::open(&self.path).map_err(|e| StoreError::Open {
            path: self.path.clone(),
            source: e,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer. synchronous=FULL: a commit is on disk when it
        // returns (the promise behind every 200). foreign_keys: the schema's references hold.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // What is deleted is overwritten, so a forgotten customer can't be read back (forget.rs).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -16_000)?; // 16 MB page cache per connection
        // Query planner stability: plans don't depend on bound values. Without it SQLite marks
        // statements with `col = ?` filters or `LIMIT ?` for re-planning when a binding changes,
        // and rusqlite clears the bindings of every statement it returns to its cache — so each
        // cached statement was parsed and planned again on every use (about a tenth of the ingest
        // thread's time, found by profiling `make bench`). The plans come from the indexes
        // anyway: there are no statistics for values to refine them.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        // Room for every statement derivation uses (rusqlite keeps 16 by default: derivation
        // cycled through more, so they were parsed again on every delivery).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// The one connection that writes: deliveries, rejections, derived data, connections.
#[derive(Debug)]
pub struct Writer {
    conn: rusqlite::Connection,
}

/// A connection for queries.
#[derive(Debug)]
pub struct Reader {
    conn: rusqlite::Connection,
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A store in a fresh temporary directory (a real SQLite file, not `:memory:`).
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_dir(dir.path()).expect("open store");
        (dir, store)
    }

    /// Adds a connection named `name` for `provider` (no secret needed) and returns its id.
    pub fn connect(w: &mut Writer, provider: clientele_core::Provider, name: &str) -> i64 {
        w.add_connection(
            &NewConnection {
                provider,
                name: name.into(),
                settings: clientele_core::ConnectionSettings::default(),
                requires_secret: false,
            },
            chrono::Utc::now(),
        )
        .expect("add a connection")
        .id
    }

    /// A genuine delivery of `body` to `connection_id`, received now.
    pub fn delivery(connection_id: i64, key: &str, body: &[u8]) -> NewDelivery {
        NewDelivery {
            connection_id,
            received_at: chrono::Utc::now(),
            dedupe_key: key.into(),
            headers: vec![],
            body: body.to_vec(),
            verification: "test".into(),
            is_test: false,
        }
    }
}

#[cfg(test)]
mod derive_tests;
#[cfg(test)]
mod hand_tests;
#[cfg(test)]
mod people_tests;
