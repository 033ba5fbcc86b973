//! The relay's PostgreSQL store (issue 21, in progress): what a relay keeps — deliveries,
//! refusals, connections and their sealed secrets, devices, pairing codes, acknowledgements, hand
//! changes — in PostgreSQL instead of the data folder's SQLite, so several `relay serve`
//! instances can share one database that someone else backs up and replicates.
//!
//! Built so far: reading the database URL (`--database`, `CLIENTELE_DATABASE_URL`) without ever
//! showing its password, connecting, turning every way that fails into a sentence naming what to
//! check, and running migrations once, under an advisory lock, however many instances start at
//! the same moment.

mod error;

pub use error::PgError;

use tokio_postgres::{Client, Config, NoTls};

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

/// Migrations, in order; each runs once, in a transaction, and is recorded in
/// `clientele_schema`. Never edited once shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the settings every instance shares (the retention policy it holds for its desks).
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // 2: connections and deliveries, as the SQLite store keeps them (times in milliseconds since
    // 1970, like it). A delivery's id is its place in the feed: see `ingest` for why ids become
    // visible in order even with several instances writing.
    "CREATE TABLE connections (
        id              BIGSERIAL PRIMARY KEY,
        provider        TEXT NOT NULL,
        name            TEXT NOT NULL,
        settings        TEXT NOT NULL DEFAULT '{}',
        requires_secret BOOLEAN NOT NULL,
        paused          BOOLEAN NOT NULL DEFAULT false,
        created_at      BIGINT NOT NULL,
        removed_at      BIGINT,
        UNIQUE (provider, name)
    );
    CREATE TABLE deliveries (
        id                BIGSERIAL PRIMARY KEY,
        connection_id     BIGINT NOT NULL REFERENCES connections(id),
        received_at       BIGINT NOT NULL,
        dedupe_key        TEXT NOT NULL,
        headers           TEXT NOT NULL,
        body              BYTEA NOT NULL,
        verification      TEXT NOT NULL,
        is_test           BOOLEAN NOT NULL DEFAULT false,
        duplicates        BIGINT NOT NULL DEFAULT 0,
        last_duplicate_at BIGINT,
        erased_at         BIGINT,
        UNIQUE (connection_id, dedupe_key)
    )",
];

/// The lock every instance's delivery transaction holds until it commits (see
/// [`PgStore::ingest`]).
pub const FEED_LOCK: i64 = 0x636c_6965_6e74_6601;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Any number fixed for the lock instances take while migrating (so two starting at once
/// migrate one after the other).
const MIGRATION_LOCK: i64 = 0x636c_6965_6e74_656c; // "clientel"

/// A connection to the relay's database.
pub struct PgStore {
    client: Client,
    url: DatabaseUrl,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

/// A delivery to store: what the SQLite store's `NewDelivery` holds, by connection id.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub connection_id: i64,
    pub received_at_ms: i64,
    pub dedupe_key: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub verification: String,
    pub is_test: bool,
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New {
        id: i64,
    },
    /// The same dedupe key on the same connection was stored already (by any instance).
    Duplicate {
        id: i64,
    },
}

impl PgStore {
    /// Adds a connection (no secret here: sealed secrets come with the store) and returns its id.
    pub async fn add_connection(
        &self,
        provider: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<i64, PgError> {
        let row = self
            .client
            .query_one(
                "INSERT INTO connections (provider, name, requires_secret, created_at)
                 VALUES ($1, $2, true, $3) RETURNING id",
                &[&provider, &name, &now_ms],
            )
            .await
            .map_err(|e| PgError::query(&self.url, &e))?;
        Ok(row.get(0))
    }

    /// Stores `deliveries` in one transaction: committed — durable — when this returns.
    ///
    /// **The feed never skips.** Desks pull "deliveries after id N". With several instances
    /// writing, ids are handed out before commit, so an instance that took id 7 and commits after
    /// another's id 8 would let a desk read 8, move past 7, and never see it. So every delivery
    /// transaction first takes one advisory lock and holds it until it commits: ids are handed
    /// out and made visible one transaction at a time, in order. The cost is that instances'
    /// commits don't overlap — each is one group of deliveries, so the lock is taken once per
    /// group, not per delivery.
    pub async fn ingest(&mut self, deliveries: &[NewDelivery]) -> Result<Vec<Stored>, PgError> {
        let url = self.url.clone();
        let fail = |e: tokio_postgres::Error| PgError::query(&url, &e);
        let tx = self.client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
            .await
            .map_err(fail)?;
        let insert = tx
            .prepare(
                "INSERT INTO deliveries (connection_id, received_at, dedupe_key, headers, body,
                                         verification, is_test)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING id",
            )
            .await
            .map_err(fail)?;
        let duplicate = tx
            .prepare(
                "UPDATE deliveries SET duplicates = duplicates + 1, last_duplicate_at = $3
                 WHERE connection_id = $1 AND dedupe_key = $2 RETURNING id",
            )
            .await
            .map_err(fail)?;
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let stored = tx
                .query_opt(
                    &insert,
                    &[
                        &d.connection_id,
                        &d.received_at_ms,
                        &d.dedupe_key,
                        &d.headers,
                        &d.body,
                        &d.verification,
                        &d.is_test,
                    ],
                )
                .await
                .map_err(fail)?;
            outcomes.push(match stored {
                Some(row) => Stored::New { id: row.get(0) },
                None => {
                    let row = tx
                        .query_one(
                            &duplicate,
                            &[&d.connection_id, &d.dedupe_key, &d.received_at_ms],
                        )
                        .await
                        .map_err(fail)?;
                    Stored::Duplicate { id: row.get(0) }
                }
            });
        }
        tx.commit().await.map_err(fail)?;
        Ok(outcomes)
    }

    /// The ids of up to `limit` deliveries after `after`, oldest first (what a desk's pull reads).
    pub async fn feed_ids(&self, after: i64, limit: i64) -> Result<Vec<i64>, PgError> {
        Ok(self
            .client
            .query(
                "SELECT id FROM deliveries WHERE id > $1 AND erased_at IS NULL
                 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await
            .map_err(|e| PgError::query(&self.url, &e))?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// Connects (unencrypted: for a database on this machine or a private network; TLS to a
    /// managed database comes with the store) and brings the schema up to date.
    pub async fn open(url: &DatabaseUrl) -> Result<PgStore, PgError> {
        let (client, connection) = url
            .config
            .connect(NoTls)
            .await
            .map_err(|e| PgError::connecting(url, &e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the connection to PostgreSQL ended");
            }
        });
        let store = PgStore {
            client,
            url: url.clone(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version this database is at after migrating.
    pub async fn schema_version(&self) -> Result<i64, PgError> {
        let row = self
            .client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM clientele_schema",
                &[],
            )
            .await
            .map_err(|e| PgError::query(&self.url, &e))?;
        Ok(row.get(0))
    }

    async fn migrate(&self) -> Result<(), PgError> {
        let fail = |e: tokio_postgres::Error| PgError::query(&self.url, &e);
        self.client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS clientele_schema (
                    version    BIGINT PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .await
            .or_else(|e| {
                // Two instances creating it at the same moment: one wins, the other sees it.
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(fail)?;
        self.client
            .query("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(fail)?;
        let result = async {
            let found = self.schema_version().await?;
            if found > MIGRATIONS.len() as i64 {
                return Err(PgError::TooNew {
                    found,
                    supported: MIGRATIONS.len() as i64,
                });
            }
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                let version = index as i64 + 1;
                let statements = format!(
                    "BEGIN; {sql}; INSERT INTO clientele_schema (version) VALUES ({version}); COMMIT;"
                );
                self.client
                    .batch_execute(&statements)
                    .await
                    .map_err(fail)?;
            }
            Ok(())
        }
        .await;
        let unlocked = self
            .client
            .query("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        result?;
        unlocked.map_err(fail)?;
        Ok(())
    }
}
