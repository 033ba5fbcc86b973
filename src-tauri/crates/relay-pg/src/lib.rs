//! The relay's PostgreSQL store: what a relay keeps — deliveries, refusals, connections and their
//! sealed secrets, devices, pairing codes, acknowledgements, hand changes, suppressions — in
//! PostgreSQL instead of the data folder's SQLite, so several `relay serve` instances can share
//! one database that someone else backs up and replicates.
//!
//! [`PgStore`] implements [`RelayStore`](clientele_relay::store::RelayStore) with the same
//! behaviour as the SQLite store (`tests/tests/relay_store.rs` runs one suite on both). What is
//! different is what sharing a database needs:
//! - **The feed never skips.** Every transaction that hands out delivery or refusal ids holds
//!   [`FEED_LOCK`] until it commits, so ids become visible in the order they were handed out
//!   (see [`PgStore`]'s `ingest`); hand changes do the same under their own lock.
//! - **Atomic across instances**: a delivery arriving at two instances is stored once (the
//!   unique dedupe key, under the feed's lock), a pairing code pairs at most one device (its row
//!   is locked while it is claimed), a connection name is taken once (one upsert).
//! - **Live**: commits notify `clientele_relay`; [`subscribe`](clientele_relay::store::RelayStore::subscribe)
//!   hears every instance's, over a connection that reconnects by itself.
//! - **Faults**: a database that is down makes every call a `StoreError::Unavailable` naming it
//!   (never with its password); the pool replaces dropped connections, so the same `PgStore`
//!   works again once PostgreSQL is back.
//!
//! Blocking: `PgStore` owns a small tokio runtime and blocks on it, so call it from plain threads
//! or `spawn_blocking`, never from an async task (as every `RelayStore` method).

mod error;
mod listen;
mod schema;
mod store;

pub use error::PgError;
pub use schema::SCHEMA_VERSION;

use clientele_relay::store::StoreEvent;
use clientele_store::StoreError;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::Config;

/// A database URL, read once: what to connect with, and how to name it in messages (never with
/// its password).
#[derive(Clone)]
pub struct DatabaseUrl {
    config: Config,
    shown: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl DatabaseUrl {
    /// Reads `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    pub fn parse(url: &str) -> Result<DatabaseUrl, PgError> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PgError::NotAUrl);
        }
        let config: Config = url.parse().map_err(|_| PgError::NotAUrl)?;
        if config.get_dbname().is_none() || config.get_user().is_none() {
            return Err(PgError::NotAUrl);
        }
        let shown = shown(&config);
        Ok(DatabaseUrl { config, shown })
    }

    /// `postgres://USER@HOST:PORT/DATABASE`: fit for logs and messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    /// `HOST:PORT` (the first host, as connecting tries it first).
    pub fn address(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// `text` without the password, should anything have quoted it.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match self.config.get_password() {
            Some(p) if !p.is_empty() => {
                text.replace(String::from_utf8_lossy(p).as_ref(), "********")
            }
            _ => text.to_string(),
        }
    }

    /// What this store connects with: the URL's settings, plus a connect timeout (a host that
    /// drops packets must not hang a request) and keepalives (a connection the network cut is
    /// noticed).
    fn connect_config(&self) -> Config {
        let mut config = self.config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("clientele-relay");
        config
    }
}

fn shown(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// The lock every transaction that hands out delivery (or refusal) ids holds until it commits,
/// and that erasing and forgetting take so an arriving delivery is screened against everything
/// committed before it (see `store.rs`).
pub const FEED_LOCK: i64 = 0x636c_6965_6e74_6601;
/// The lock a transaction adding a hand change holds until it commits: change ids become
/// visible in order too.
pub const CHANGES_LOCK: i64 = 0x636c_6965_6e74_6602;
/// The channel commits are announced on (`NOTIFY`), with payload `deliveries` or `changes`.
pub const CHANNEL: &str = "clientele_relay";

/// How long connecting may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a pooled connection to come free.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Connections kept to the database, at most, per instance.
const POOL_SIZE: usize = 16;

/// The relay's store in PostgreSQL. See the crate docs.
pub struct PgStore {
    /// Taken (and shut down in the background) on drop.
    runtime: Option<tokio::runtime::Runtime>,
    pool: deadpool_postgres::Pool,
    url: DatabaseUrl,
    events: broadcast::Sender<StoreEvent>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

impl PgStore {
    /// Blocking. Connects, checks the schema (one written by a newer Clientele is refused), runs
    /// the migrations once under an advisory lock (however many instances start together), and
    /// starts listening for other instances' commits. Call from a plain thread or inside
    /// `tokio::task::spawn_blocking` — never from an async task.
    pub fn connect(url: &DatabaseUrl) -> Result<PgStore, PgError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clientele-pg")
            .enable_all()
            .build()
            .map_err(|e| PgError::Threads(e.to_string()))?;
        let config = url.connect_config();
        let (events, _) = broadcast::channel(64);
        let listening = runtime.block_on(async {
            let mut first = listen::Listening::connect(&config)
                .await
                .map_err(|e| PgError::connecting(url, &e))?;
            schema::migrate(&first.client, url).await?;
            first.listen().await.map_err(|e| PgError::query(url, &e))?;
            Ok::<_, PgError>(first)
        })?;
        runtime.spawn(listen::run(config.clone(), events.clone(), listening));
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT * 2))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Threads(e.to_string()))?;
        Ok(PgStore {
            runtime: Some(runtime),
            pool,
            url: url.clone(),
            events,
        })
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_one(
                "SELECT COALESCE(MAX(version), 0) FROM clientele_schema",
                &[],
            )
            .await?
            .get(0))
        })
    }

    /// The database, as messages name it (no password).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Runs `work` on this store's runtime, turning database failures into
    /// [`StoreError::Unavailable`] sentences.
    fn block<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Fail>>,
    ) -> Result<T, StoreError> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        runtime.block_on(work).map_err(|fail| match fail {
            Fail::Db(e) => error::unavailable(&self.url, &e),
            Fail::Store(e) => e,
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, Fail> {
        self.pool
            .get()
            .await
            .map_err(|e| Fail::Store(error::pool_unavailable(&self.url, &e)))
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks for its tasks, and panics inside another runtime: let it go
        // in the background instead (the listener and the pool's connections just end).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a store call can fail with: a database error (made a sentence by `block`) or a store
/// error already in words.
#[derive(Debug)]
enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Fail {
        Fail::Store(e.into())
    }
}
