//! Migrations, in code. Each runs once, atomically, and is tracked by `PRAGMA user_version`.
//! A shipped migration is never edited: add a new one. A database from a newer version is refused
//! rather than guessed at.

use crate::StoreError;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE connections (
        id              INTEGER PRIMARY KEY,
        provider        TEXT NOT NULL,
        name            TEXT NOT NULL,
        settings        TEXT NOT NULL DEFAULT '{}',
        requires_secret INTEGER NOT NULL,
        paused          INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        removed_at      INTEGER,
        UNIQUE (provider, name)
    );

    -- The source of truth. Rows are only ever added; the duplicate counters are the one thing
    -- updated in place.
    CREATE TABLE deliveries (
        id                INTEGER PRIMARY KEY,
        connection_id     INTEGER NOT NULL REFERENCES connections(id),
        received_at       INTEGER NOT NULL,
        dedupe_key        TEXT NOT NULL,
        headers           TEXT NOT NULL,
        body              BLOB NOT NULL,
        verification      TEXT NOT NULL,
        is_test           INTEGER NOT NULL DEFAULT 0,
        duplicates        INTEGER NOT NULL DEFAULT 0,
        last_duplicate_at INTEGER,
        UNIQUE (connection_id, dedupe_key)
    );
    CREATE INDEX deliveries_received ON deliveries(received_at);

    -- Refused requests, capped (see ingest::REJECTION_CAP).
    CREATE TABLE rejections (
        id          INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        provider    TEXT NOT NULL,
        connection  TEXT NOT NULL,
        code        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        remote_addr TEXT,
        body_bytes  INTEGER
    );

    -- Everything below is derived from deliveries and rebuilt by `reprocess`.
    CREATE TABLE delivery_outcomes (
        delivery_id INTEGER PRIMARY KEY REFERENCES deliveries(id),
        status      TEXT NOT NULL,
        error       TEXT,
        events      INTEGER NOT NULL
    );

    CREATE TABLE source_profiles (
        id             INTEGER PRIMARY KEY,
        connection_id  INTEGER NOT NULL REFERENCES connections(id),
        customer_ref   TEXT NOT NULL,
        person_id      INTEGER,
        link_reason    TEXT,
        state          TEXT NOT NULL,
        first_event_at INTEGER,
        last_event_at  INTEGER,
        deleted_at     INTEGER,
        UNIQUE (connection_id, customer_ref)
    );
    CREATE INDEX source_profiles_person ON source_profiles(person_id);

    CREATE TABLE events (
        id                INTEGER PRIMARY KEY,
        source_profile_id INTEGER NOT NULL REFERENCES source_profiles(id),
        delivery_id       INTEGER NOT NULL REFERENCES deliveries(id),
        seq               INTEGER NOT NULL,
        occurred_at       INTEGER NOT NULL,
        kind              TEXT NOT NULL,
        event_type        TEXT NOT NULL,
        input             TEXT NOT NULL,
        changes           TEXT NOT NULL,
        summary           TEXT NOT NULL,
        UNIQUE (delivery_id, seq)
    );
    CREATE INDEX events_profile_order ON events(source_profile_id, occurred_at, delivery_id, seq);

    CREATE TABLE identity_keys (
        source_profile_id INTEGER NOT NULL REFERENCES source_profiles(id),
        kind              TEXT NOT NULL,
        value             TEXT NOT NULL,
        PRIMARY KEY (source_profile_id, kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX identity_keys_value ON identity_keys(kind, value);

    CREATE TABLE people (
        id             INTEGER PRIMARY KEY,
        display_name   TEXT NOT NULL,
        emails         TEXT NOT NULL,
        phones         TEXT NOT NULL,
        profile        TEXT NOT NULL,
        first_event_at INTEGER,
        last_event_at  INTEGER,
        deleted        INTEGER NOT NULL
    );
    CREATE INDEX people_recent ON people(last_event_at DESC, id DESC);

    -- Search: lower-cased words of names, emails (whole, local part, domain), phone digits and
    -- customer ids, matched by prefix through the primary key.
    CREATE TABLE person_terms (
        term      TEXT NOT NULL,
        person_id INTEGER NOT NULL,
        PRIMARY KEY (term, person_id)
    ) WITHOUT ROWID;
    CREATE INDEX person_terms_person ON person_terms(person_id);
    "#,
    // 2: exports — profiles, the history of runs, and what incremental profiles last wrote.
    r#"
    CREATE TABLE export_profiles (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );

    -- One row per run, written when it starts ('running') and updated when it ends
    -- ('succeeded', 'failed' or 'cancelled'). Kept when the profile is deleted.
    CREATE TABLE export_runs (
        id           INTEGER PRIMARY KEY,
        profile_id   INTEGER REFERENCES export_profiles(id) ON DELETE SET NULL,
        profile_name TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        duration_ms  INTEGER,
        rows         INTEGER NOT NULL DEFAULT 0,
        file         TEXT NOT NULL,
        format       TEXT NOT NULL,
        incremental  INTEGER NOT NULL,
        outcome      TEXT NOT NULL,
        error        TEXT
    );
    CREATE INDEX export_runs_profile ON export_runs(profile_id, id);

    -- Incremental profiles: a fingerprint of each row as a run wrote it. A row's baseline is its
    -- newest fingerprint from a succeeded run; rows of failed or cancelled runs are removed.
    CREATE TABLE export_row_state (
        profile_id  INTEGER NOT NULL REFERENCES export_profiles(id) ON DELETE CASCADE,
        row_key     TEXT NOT NULL,
        run_id      INTEGER NOT NULL,
        fingerprint BLOB NOT NULL,
        PRIMARY KEY (profile_id, row_key, run_id)
    ) WITHOUT ROWID;

    -- Timeline exports stream events in time order straight from this index (no sort in memory).
    CREATE INDEX events_time ON events(occurred_at, delivery_id, seq);
    "#,
    // 3: how many people there are, kept as people come and go. The Customers screen shows it on
    // every page; counting them read the whole `people_recent` index each time (8.5 MB of pages
    // and about 5 ms with 200,000 people, on a reader connection opened for the call).
    r#"
    CREATE TABLE people_count (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        n  INTEGER NOT NULL
    );
    INSERT INTO people_count (id, n) SELECT 1, COUNT(*) FROM people;
    CREATE TRIGGER people_count_insert AFTER INSERT ON people
    BEGIN UPDATE people_count SET n = n + 1 WHERE id = 1; END;
    CREATE TRIGGER people_count_delete AFTER DELETE ON people
    BEGIN UPDATE people_count SET n = n - 1 WHERE id = 1; END;
    "#,
    // 4: the relay. On a relay: the paired devices (a hash of each token, never the token), the
    // one-time pairing codes (hashed too), and connection secrets sealed under the relay's key.
    // On a desk: the relay it pulls from, and which connections receive through it.
    r#"
    CREATE TABLE relay_devices (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        admin      INTEGER NOT NULL,
        paired_at  INTEGER NOT NULL,
        last_seen  INTEGER,
        -- The newest delivery id the device has stored (its acknowledgement).
        acked      INTEGER NOT NULL DEFAULT 0,
        revoked_at INTEGER
    );
    CREATE UNIQUE INDEX relay_devices_active_name ON relay_devices(name) WHERE revoked_at IS NULL;

    CREATE TABLE relay_pairing_codes (
        code_hash   BLOB PRIMARY KEY,
        device_name TEXT NOT NULL,
        admin       INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    );

    CREATE TABLE sealed_secrets (
        account    TEXT PRIMARY KEY,
        nonce      BLOB NOT NULL,
        ciphertext BLOB NOT NULL
    );

    CREATE TABLE relay_link (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        url         TEXT NOT NULL,
        device_name TEXT NOT NULL,
        admin       INTEGER NOT NULL,
        ca_cert     TEXT,
        public_url  TEXT NOT NULL,
        joined_at   INTEGER NOT NULL,
        cursor      TEXT NOT NULL DEFAULT '0',
        last_pull_at INTEGER,
        received    INTEGER NOT NULL DEFAULT 0,
        -- On an admin desk: the newest of the relay's refusals copied here.
        rejections_cursor INTEGER NOT NULL DEFAULT 0
    );

    ALTER TABLE connections ADD COLUMN via_relay INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: names staff give to a provider's business ids (Vagaro sends `businessIds` such as
    // `U2FsdGVkX18z…` and no names). Entered by hand, so kept by `reprocess`.
    r#"
    CREATE TABLE business_names (
        provider    TEXT NOT NULL,
        business_id TEXT NOT NULL,
        name        TEXT NOT NULL,
        PRIMARY KEY (provider, business_id)
    ) WITHOUT ROWID;
    "#,
    // 6: people corrected by hand, and forgetting them for good.
    r#"
    -- Decisions staff made about who is who, by the provider records they concern (never by
    -- local person ids, which differ between desks). Kept by `reprocess`: they are not derived.
    -- An undone decision stays, marked, so the undo can travel to other desks too.
    CREATE TABLE hand_decisions (
        id        INTEGER PRIMARY KEY,
        uid       TEXT NOT NULL UNIQUE,
        kind      TEXT NOT NULL,          -- 'merge' | 'split'
        made_at   INTEGER NOT NULL,
        made_by   TEXT NOT NULL,          -- the computer's name
        undone_at INTEGER,
        undone_by TEXT
    );
    CREATE TABLE hand_decision_records (
        decision_id  INTEGER NOT NULL REFERENCES hand_decisions(id) ON DELETE CASCADE,
        provider     TEXT NOT NULL,
        connection   TEXT NOT NULL,
        customer_ref TEXT NOT NULL,
        PRIMARY KEY (decision_id, provider, connection, customer_ref)
    ) WITHOUT ROWID;
    CREATE INDEX hand_decision_records_ref
        ON hand_decision_records(provider, connection, customer_ref);

    -- A forgotten delivery keeps its row (counts and ids hold) without its body or headers; its
    -- dedupe key is replaced by a keyed hash so a provider's retry is still recognised.
    ALTER TABLE deliveries ADD COLUMN erased_at INTEGER;

    -- The erasure log: when, why, by which computer, how much. Never who.
    CREATE TABLE erasures (
        id         INTEGER PRIMARY KEY,
        uid        TEXT NOT NULL UNIQUE,
        at         INTEGER NOT NULL,
        computer   TEXT NOT NULL,
        reason     TEXT NOT NULL,         -- 'request' | 'provider_deleted' | 'retention'
        people     INTEGER NOT NULL,
        records    INTEGER NOT NULL,
        deliveries INTEGER NOT NULL,
        rejections INTEGER NOT NULL DEFAULT 0
    );

    -- Keep forgetting: records named by salted hash only. Deliveries about them are acknowledged
    -- and not kept; each is counted in `withheld`.
    CREATE TABLE suppressions (
        id          INTEGER PRIMARY KEY,
        forget_uid  TEXT NOT NULL,
        salt        BLOB NOT NULL,
        record_hash BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        lifted_at   INTEGER,
        UNIQUE (forget_uid, record_hash)
    );
    CREATE TABLE withheld (
        id             INTEGER PRIMARY KEY,
        connection_id  INTEGER NOT NULL REFERENCES connections(id),
        received_at    INTEGER NOT NULL,
        suppression_id INTEGER
    );
    CREATE INDEX withheld_received ON withheld(received_at);

    -- On a desk joined to a relay: hand changes not yet accepted by the relay, oldest first, and
    -- how far this desk has read the relay's changes.
    CREATE TABLE relay_outbox (
        id         INTEGER PRIMARY KEY,
        uid        TEXT NOT NULL UNIQUE,
        change     TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    ALTER TABLE relay_link ADD COLUMN changes_cursor INTEGER NOT NULL DEFAULT 0;

    -- On a relay: the hand changes desks sent, in the order it accepted them.
    CREATE TABLE relay_changes (
        id          INTEGER PRIMARY KEY,
        uid         TEXT NOT NULL UNIQUE,
        change      TEXT NOT NULL,
        device      TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    );
    "#,
    // 7: the store's cost (issue 22). Blocks by part, each marked.
    r#"
    -- bodies: how each delivery's body is stored: 0 the bytes as received, 1 packed with the
    -- shipped Bodies dictionary (pack.rs; `stored::body` reads either). Rows from before stay 0
    -- until `bodies::pack_stored_bodies` packs them.
    ALTER TABLE deliveries ADD COLUMN body_codec INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    if found == 0 {
        // A new file: secure_delete has been on since its first page (see forget.rs).
        crate::forget::mark_secure_delete(conn, chrono::Utc::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::temp_store;

    #[test]
    fn migrates_once_and_refuses_newer_databases() {
        let (_dir, store) = temp_store();
        // Opening again is a no-op.
        let again = crate::Store::open(store.path());
        assert!(again.is_ok());
        let conn = Connection::open(store.path()).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT_VERSION);
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        drop(conn);
        match crate::Store::open(store.path()) {
            Err(StoreError::TooNew { found, .. }) => assert_eq!(found, CURRENT_VERSION + 1),
            other => panic!("a newer database must be refused, got {other:?}"),
        }
    }

    #[test]
    fn connections_are_wal_full_sync_with_foreign_keys() {
        let (_dir, store) = temp_store();
        let conn = store.connect().unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk), ("wal", 2, 1));
    }
}
