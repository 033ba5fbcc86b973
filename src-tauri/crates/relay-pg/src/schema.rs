//! The relay's tables in PostgreSQL, and bringing a database up to date once, however many
//! instances start at the same moment.
//!
//! The tables mirror the SQLite store's relay tables (`clientele_store`'s schema): times are
//! BIGINT milliseconds since 1970, bodies BYTEA, headers and settings JSON text, ids BIGINT
//! identities. Identities come from sequences, so an id is never handed out twice even after
//! the newest row is deleted (the SQLite store must keep its newest row for that; this one keeps
//! it too, to behave the same).

use crate::{DatabaseUrl, PgError};
use tokio_postgres::Client;

/// Migrations, in order; each runs once, in a transaction, and is recorded in
/// `clientele_schema`. Never edited once shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: everything a relay keeps.
    r#"
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE connections (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        provider        TEXT NOT NULL,
        name            TEXT NOT NULL,
        settings        TEXT NOT NULL DEFAULT '{}',
        requires_secret BOOLEAN NOT NULL,
        paused          BOOLEAN NOT NULL DEFAULT false,
        created_at      BIGINT NOT NULL,
        removed_at      BIGINT,
        UNIQUE (provider, name)
    );

    -- A delivery's id is its place in the feed: ids become visible in order because every
    -- transaction adding deliveries holds the feed's advisory lock until it commits.
    CREATE TABLE deliveries (
        id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    );
    CREATE INDEX deliveries_received ON deliveries (received_at);
    CREATE INDEX deliveries_connection ON deliveries (connection_id, id);

    -- Refused requests, capped as the SQLite store caps them.
    CREATE TABLE rejections (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        received_at BIGINT NOT NULL,
        provider    TEXT NOT NULL,
        connection  TEXT NOT NULL,
        code        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        remote_addr TEXT,
        body_bytes  BIGINT
    );
    CREATE INDEX rejections_connection ON rejections (provider, connection, received_at);

    -- Paired devices (a hash of each token, never the token) and one-time pairing codes (hashed).
    CREATE TABLE relay_devices (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name       TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        admin      BOOLEAN NOT NULL,
        paired_at  BIGINT NOT NULL,
        last_seen  BIGINT,
        acked      BIGINT NOT NULL DEFAULT 0,
        revoked_at BIGINT
    );
    CREATE UNIQUE INDEX relay_devices_active_name ON relay_devices (name)
        WHERE revoked_at IS NULL;

    CREATE TABLE relay_pairing_codes (
        code_hash   BYTEA PRIMARY KEY,
        device_name TEXT NOT NULL,
        admin       BOOLEAN NOT NULL,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        used_at     BIGINT
    );

    -- Connection secrets, sealed under the relay's key (which is not in the database).
    CREATE TABLE sealed_secrets (
        account    TEXT PRIMARY KEY,
        nonce      BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL
    );

    -- Keep forgetting: records named by salted hash only; what was withheld because of them.
    CREATE TABLE suppressions (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        forget_uid  TEXT NOT NULL,
        salt        BYTEA NOT NULL,
        record_hash BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        lifted_at   BIGINT,
        UNIQUE (forget_uid, record_hash)
    );
    CREATE TABLE withheld (
        id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        connection_id  BIGINT NOT NULL REFERENCES connections(id),
        received_at    BIGINT NOT NULL,
        suppression_id BIGINT
    );
    CREATE INDEX withheld_received ON withheld (received_at);

    -- The hand changes desks sent, in the order the relay accepted them.
    CREATE TABLE relay_changes (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        uid         TEXT NOT NULL UNIQUE,
        change      TEXT NOT NULL,
        device      TEXT NOT NULL,
        accepted_at BIGINT NOT NULL
    );
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Any number fixed for the lock instances take while migrating (so two starting at once
/// migrate one after the other).
const MIGRATION_LOCK: i64 = 0x636c_6965_6e74_656c; // "clientel"

/// Brings the database up to date, or refuses one written by a newer Clientele.
pub(crate) async fn migrate(client: &Client, url: &DatabaseUrl) -> Result<(), PgError> {
    let fail = |e: tokio_postgres::Error| PgError::query(url, &e);
    client
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
    client
        .query("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(fail)?;
    let result = async {
        let found: i64 = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM clientele_schema",
                &[],
            )
            .await
            .map_err(fail)?
            .get(0);
        if found > SCHEMA_VERSION {
            return Err(PgError::TooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = index as i64 + 1;
            let statements = format!(
                "BEGIN; {sql}; INSERT INTO clientele_schema (version) VALUES ({version}); COMMIT;"
            );
            if let Err(e) = client.batch_execute(&statements).await {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(fail(e));
            }
        }
        Ok(())
    }
    .await;
    let unlocked = client
        .query("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result?;
    unlocked.map_err(fail)?;
    Ok(())
}
