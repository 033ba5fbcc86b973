//! Migrations, in code. Each runs once, atomically, and is tracked by `PRAGMA user_version`.
//! A shipped migration is never edited: add a new one. A database from a newer version is refused
//! rather than guessed at.
//!
//! A migration is SQL ([`MIGRATIONS`]) and, where SQL can't say it, a Rust code step
//! ([`CODE_STEPS`]) that runs after the SQL in the *same* transaction: a crash or an error halfway
//! leaves the file exactly as the older version wrote it, and the next start tries again. A code
//! step reports how far it got; [`migrate_with_progress`] passes that on, with what is happening
//! in staff's words, so the window and the command line can show it. A migration that frees
//! space (it rewrote tables more compactly) is followed by a `VACUUM` outside its transaction,
//! to give the space back to the disk; a failed `VACUUM` is logged, not fatal: the data is already
//! converted.

use crate::StoreError;
use rusqlite::{Connection, Transaction};
use std::time::Instant;

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
    // 7: the store's cost (issue 22): the database was five times the raw bodies it holds.
    r#"
    -- How each delivery's body is stored: 0 the bytes as received, 1 packed with the shipped
    -- Bodies dictionary (pack.rs; `stored::body` reads either). The code step packs the rows
    -- from before.
    ALTER TABLE deliveries ADD COLUMN body_codec INTEGER NOT NULL DEFAULT 0;
    -- A timeline event no longer keeps a copy of its parsed input (the delivery holds it, and
    -- a re-fold parses it again); its changes are kept as [field, old, new] rows; profile states
    -- and people's merged profiles are packed (pack.rs). The code step (CODE_STEPS) rewrites
    -- the rows, and the migration frees space, so a VACUUM follows it.
    ALTER TABLE events DROP COLUMN input;
    "#,
    // 8: exports read people's email and name without unpacking their merged profile (issue 22).
    r#"
    -- A JSON object of the merged profile's email and full_name values, unpacked
    -- (stored::plain_fields: `{"email": …, "full_name": …}`, `{}` when the profile holds
    -- neither), written with every profile. NULL only in a row written before schema 8: the code
    -- step fills every person's, and an export reads the profile of a person whose is NULL.
    ALTER TABLE people ADD COLUMN plain_fields TEXT;
    "#,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// How far a migration's code step got: `done` of `total` units (messages, rows); `total` 0
/// when it can't tell yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// A migration's Rust part: runs after its SQL, inside its transaction, reporting progress.
pub type CodeStep = fn(&Transaction, &mut dyn FnMut(Progress)) -> Result<(), StoreError>;

/// One migration: SQL and/or a code step, run atomically.
#[derive(Clone, Copy)]
pub struct Migration {
    pub sql: &'static str,
    pub code: Option<CodeStep>,
    /// What the code step does, in staff's words ("Converting your stored messages"); shown with
    /// its progress.
    pub what: &'static str,
    /// What the code step counts, plural ("messages"), for "38,000 of 95,000 messages".
    pub unit: &'static str,
    /// It rewrites enough to leave free pages worth a `VACUUM` afterwards.
    pub frees_space: bool,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("code", &self.code.is_some())
            .field("what", &self.what)
            .field("frees_space", &self.frees_space)
            .finish()
    }
}

/// The Rust parts of migrations, by version (see [`Migration`]). Each entry also names what it
/// does for the progress shown, and whether a `VACUUM` follows.
const CODE_STEPS: &[(i64, CodeStep, &str, &str, bool)] = &[
    // 7: the lead's conversion of bodies and derived rows plugs in here (convert.rs).
    (
        7,
        convert_v7,
        "Converting your stored messages",
        "messages",
        true,
    ),
    // 8: fills people.plain_fields from each merged profile.
    (
        8,
        fill_plain_fields_v8,
        "Preparing your customers for faster exports",
        "customers",
        false,
    ),
];

/// Migration 7's code step: packs the bodies stored as received (bodies.rs), then rewrites
/// events' changes, profile states and merged profiles in their new form (convert.rs). Its
/// progress is told in messages: the share of rows done, of the messages stored.
fn convert_v7(tx: &Transaction, progress: &mut dyn FnMut(Progress)) -> Result<(), StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        Ok(
            tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
        )
    };
    let messages = count("deliveries")?;
    let rows = messages + count("events")? + count("source_profiles")? + count("people")?;
    let mut told = |done: u64| {
        let share = if rows == 0 {
            1.0
        } else {
            done as f64 / rows as f64
        };
        progress(Progress {
            done: (share.min(1.0) * messages as f64).round() as u64,
            total: messages,
        })
    };
    crate::bodies::pack_stored_bodies(tx, &mut |done, _| told(done))?;
    crate::convert::derived_rows_v7(tx, &mut |done, _| told(messages + done))?;
    Ok(())
}

/// Migration 8's code step: each person's plain fields (`people.plain_fields`), read from their
/// merged profile. Progress in customers.
fn fill_plain_fields_v8(
    tx: &Transaction,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), StoreError> {
    let total: i64 = tx.query_row("SELECT count(*) FROM people", [], |r| r.get(0))?;
    let total = total.max(0) as u64;
    progress(Progress { done: 0, total });
    let mut read = tx.prepare("SELECT id, profile FROM people ORDER BY id")?;
    let mut write = tx.prepare("UPDATE people SET plain_fields = ?2 WHERE id = ?1")?;
    let mut rows = read.query([])?;
    let mut done = 0u64;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let profile = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let profile: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&crate::stored::profile_json(profile)?)?;
        write.execute(rusqlite::params![
            id,
            crate::stored::plain_fields(&profile)?
        ])?;
        done += 1;
        if done.is_multiple_of(5_000) {
            progress(Progress { done, total });
        }
    }
    progress(Progress { done, total });
    Ok(())
}

/// Every migration of this build, in order.
pub fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, sql)| {
            let version = i as i64 + 1;
            let code = CODE_STEPS.iter().find(|c| c.0 == version);
            Migration {
                sql,
                code: code.map(|c| c.1),
                what: code.map_or("Updating your data", |c| c.2),
                unit: code.map_or("", |c| c.3),
                frees_space: code.is_some_and(|c| c.4),
            }
        })
        .collect()
}

/// What an upgrade is doing, for the window and the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum UpgradeProgress {
    /// A step is under way: what, in staff's words, and `done` of `total` `unit`s (`total` 0:
    /// no count, e.g. giving space back).
    Step {
        what: String,
        unit: String,
        done: u64,
        total: u64,
        /// The version this step brings the file to.
        version: i64,
    },
    /// Finished: how long it took and how much smaller the file got.
    Finished(UpgradeReport),
}

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpgradeReport {
    pub from_version: i64,
    pub to_version: i64,
    pub seconds: f64,
    /// Bytes the database file (with its WAL) shrank by; 0 when it grew.
    pub freed_bytes: u64,
    /// Why giving the space back failed, if it did (the data is converted anyway).
    pub vacuum_failed: Option<String>,
}

/// The words of the step that gives space back.
pub const GIVING_SPACE_BACK: &str = "Giving disk space back";

/// The schema version of the database file at `path`, without creating or changing it: `None`
/// when there is no file yet.
pub fn file_version(path: &std::path::Path) -> Result<Option<i64>, StoreError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(conn.pragma_query_value(
        None,
        "user_version",
        |r| r.get(0),
    )?))
}

/// Brings the database up to this build's schema, without telling anyone how it goes.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_with_progress(conn, &mut |_| {}).map(|_| ())
}

/// Brings the database up to this build's schema, reporting progress; returns what it did when
/// there was anything to do.
pub fn migrate_with_progress(
    conn: &mut Connection,
    progress: &mut dyn FnMut(&UpgradeProgress),
) -> Result<Option<UpgradeReport>, StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let report = migrate_with(conn, &migrations(), progress)?;
    if found == 0 {
        // A new file: secure_delete has been on since its first page (see forget.rs).
        crate::forget::mark_secure_delete(conn, chrono::Utc::now())?;
    }
    Ok(report)
}

/// [`migrate_with_progress`] over `list` (tests bring their own).
pub fn migrate_with(
    conn: &mut Connection,
    list: &[Migration],
    progress: &mut dyn FnMut(&UpgradeProgress),
) -> Result<Option<UpgradeReport>, StoreError> {
    migrate_vacuuming_with(conn, list, progress, give_space_back)
}

/// [`migrate_with`], giving space back with `vacuum` (tests make it fail).
fn migrate_vacuuming_with(
    conn: &mut Connection,
    list: &[Migration],
    progress: &mut dyn FnMut(&UpgradeProgress),
    vacuum_with: fn(&Connection) -> Result<(), StoreError>,
) -> Result<Option<UpgradeReport>, StoreError> {
    let current = list.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > current {
        return Err(StoreError::TooNew {
            found,
            supported: current,
        });
    }
    if found == current {
        return Ok(None);
    }
    let started = Instant::now();
    let size_before = file_bytes(conn)?;
    let mut vacuum = false;
    for (index, m) in list.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now >= version {
            continue;
        }
        tx.execute_batch(m.sql)?;
        if let Some(code) = m.code {
            let mut step = |p: Progress| {
                progress(&UpgradeProgress::Step {
                    what: m.what.to_string(),
                    unit: m.unit.to_string(),
                    done: p.done,
                    total: p.total,
                    version,
                })
            };
            test_slowdown(&tx, &mut step)?;
            code(&tx, &mut step)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        vacuum |= m.frees_space;
    }
    let mut vacuum_failed = None;
    if vacuum && found > 0 {
        let mut giving = || {
            progress(&UpgradeProgress::Step {
                what: GIVING_SPACE_BACK.to_string(),
                unit: String::new(),
                done: 0,
                total: 0,
                version: current,
            })
        };
        giving();
        if let Err(e) = while_reporting(conn, vacuum_with, &mut giving) {
            tracing::warn!("the upgrade couldn't give disk space back (VACUUM): {e}");
            vacuum_failed = Some(e.to_string());
        }
    }
    if found == 0 {
        return Ok(None);
    }
    let report = UpgradeReport {
        from_version: found,
        to_version: current,
        seconds: started.elapsed().as_secs_f64(),
        freed_bytes: size_before.saturating_sub(file_bytes(conn)?),
        vacuum_failed,
    };
    progress(&UpgradeProgress::Finished(report.clone()));
    Ok(Some(report))
}

/// Runs `work` on a connection of its own, saying every quarter of a second that it still runs:
/// a `VACUUM` of a big file takes a minute and reports nothing itself, and the window and the
/// command line should not look stuck meanwhile. (On the caller's connection when the database
/// has no file.)
fn while_reporting(
    conn: &Connection,
    work: fn(&Connection) -> Result<(), StoreError>,
    still: &mut dyn FnMut(),
) -> Result<(), StoreError> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()).map(str::to_string) else {
        return work(conn);
    };
    let worker = std::thread::spawn(move || {
        let own = Connection::open(&path)?;
        own.busy_timeout(std::time::Duration::from_secs(5))?;
        work(&own)
    });
    while !worker.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if !worker.is_finished() {
            still();
        }
    }
    worker
        .join()
        .unwrap_or_else(|_| Err(StoreError::Invalid("giving disk space back stopped".into())))
}

/// Rewrites the file without its free pages, then folds the WAL (which the VACUUM filled with
/// the whole file) back in and truncates it.
fn give_space_back(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("VACUUM")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// The bytes the database holds on disk: its file and its WAL.
fn file_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return Ok(0);
    };
    let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
    Ok(size(path.to_string()) + size(format!("{path}-wal")))
}

/// Debug builds only: `CLIENTELE_TEST_SLOW_UPGRADE_MS=N` makes every code step take N ms more,
/// reporting progress over the file's messages as it goes, so the window tests can see (and
/// photograph) the updating screen, and the crash test can kill a process halfway.
#[cfg(debug_assertions)]
fn test_slowdown(tx: &Transaction, progress: &mut dyn FnMut(Progress)) -> Result<(), StoreError> {
    let Some(ms) = std::env::var("CLIENTELE_TEST_SLOW_UPGRADE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    let total: i64 = tx.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))?;
    let total = total as u64;
    const TICKS: u64 = 50;
    for i in 0..TICKS {
        progress(Progress {
            done: total * i / TICKS,
            total,
        });
        std::thread::sleep(std::time::Duration::from_millis(ms / TICKS));
    }
    Ok(())
}

#[cfg(not(debug_assertions))]
fn test_slowdown(_: &Transaction, _: &mut dyn FnMut(Progress)) -> Result<(), StoreError> {
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

    /// A test's own schema: a table, then a code step that fills it (reporting each hundred
    /// rows) and frees space, after which a third migration changes something else.
    fn test_list(second: CodeStep) -> Vec<Migration> {
        let plain = |sql| Migration {
            sql,
            code: None,
            what: "Updating your data",
            unit: "",
            frees_space: false,
        };
        vec![
            plain(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
                 CREATE TABLE deliveries (id INTEGER PRIMARY KEY);",
            ),
            Migration {
                sql: "ALTER TABLE items ADD COLUMN packed BLOB;",
                code: Some(second),
                what: "Converting your stored messages",
                unit: "messages",
                frees_space: true,
            },
            plain("CREATE TABLE later (x INTEGER);"),
        ]
    }

    /// Packs every row's body into `packed` (a tenth of the size), reporting as it goes.
    fn pack_rows(tx: &Transaction, progress: &mut dyn FnMut(Progress)) -> Result<(), StoreError> {
        let total: i64 = tx.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?;
        let total = total as u64;
        for done in (0..total).step_by(100) {
            tx.execute(
                "UPDATE items SET packed = substr(body, 1, 100), body = x'' WHERE id > ?1 AND id <= ?1 + 100",
                [done as i64],
            )?;
            progress(Progress {
                done: done + 100,
                total,
            });
        }
        Ok(())
    }

    /// Packs half the rows, then fails.
    fn fail_halfway(
        tx: &Transaction,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE items SET packed = x'00', body = x'' WHERE id <= 500",
            [],
        )?;
        progress(Progress {
            done: 500,
            total: 1000,
        });
        Err(StoreError::Corrupt(
            "a body that couldn't be read (test)".into(),
        ))
    }

    /// Packs half the rows, then the process "crashes" (a panic unwinds through the step).
    fn panic_halfway(tx: &Transaction, _: &mut dyn FnMut(Progress)) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE items SET packed = x'00', body = x'' WHERE id <= 500",
            [],
        )?;
        panic!("crash halfway (test)");
    }

    /// A file at version 1 of [`test_list`] with 1,000 rows of 1 KB, checkpointed: the state an
    /// older build leaves.
    fn old_file(dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        let list = test_list(pack_rows);
        migrate_with(&mut conn, &list[..1], &mut |_| {}).unwrap();
        conn.execute(
            "INSERT INTO items (body) SELECT randomblob(1000) FROM generate_series(1, 1000)",
            [],
        )
        .or_else(|_| {
            conn.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                 INSERT INTO items (body) SELECT randomblob(1000) FROM n;",
            )
            .map(|_| 0)
        })
        .unwrap();
        drop(conn);
        path
    }

    fn open_wal(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn an_upgrade_reports_its_steps_converts_in_one_go_and_gives_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = old_file(dir.path());
        let before = std::fs::metadata(&path).unwrap().len();
        let mut conn = open_wal(&path);
        let mut seen = Vec::new();
        let report = migrate_with(&mut conn, &test_list(pack_rows), &mut |p| {
            seen.push(p.clone())
        })
        .unwrap()
        .expect("an older file is upgraded");
        assert_eq!((report.from_version, report.to_version), (1, 3));
        assert_eq!(version(&conn), 3);
        let steps: Vec<(String, u64, u64)> = seen
            .iter()
            .filter_map(|p| match p {
                UpgradeProgress::Step {
                    what, done, total, ..
                } => Some((what.clone(), *done, *total)),
                UpgradeProgress::Finished(_) => None,
            })
            .collect();
        // Ten counted steps, then giving space back (said again while it lasts).
        assert!(steps.len() >= 11, "{steps:?}");
        assert_eq!(
            steps[0],
            ("Converting your stored messages".to_string(), 100, 1000)
        );
        assert_eq!(steps[9].1, 1000);
        assert!(
            steps[10..]
                .iter()
                .all(|s| *s == (GIVING_SPACE_BACK.to_string(), 0, 0)),
            "{steps:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&UpgradeProgress::Finished(report.clone()))
        );
        let free: i64 = conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))
            .unwrap();
        assert_eq!(free, 0, "vacuumed");
        assert_eq!(report.vacuum_failed, None);
        let after = std::fs::metadata(&path).unwrap().len();
        assert!(
            after < before / 2 && report.freed_bytes >= before - after,
            "{before} → {after} bytes, report {report:?}"
        );
        let wal = std::fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len());
        assert_eq!(wal, 0, "the WAL the VACUUM filled is truncated");
        // Opening again: nothing to do, nothing reported.
        let mut again = Vec::new();
        assert_eq!(
            migrate_with(&mut conn, &test_list(pack_rows), &mut |p| again
                .push(p.clone()))
            .unwrap(),
            None
        );
        assert!(again.is_empty());
    }

    /// Whatever happens halfway through a migration, the file is byte for byte what the older
    /// version left, and the next open converts it.
    #[test]
    fn a_failure_or_crash_halfway_leaves_the_old_file_exactly_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = old_file(dir.path());
        let original = std::fs::read(&path).unwrap();
        for step in [fail_halfway as CodeStep, panic_halfway] {
            let outcome = std::panic::catch_unwind(|| {
                let mut conn = open_wal(&path);
                migrate_with(&mut conn, &test_list(step), &mut |_| {})
            });
            match outcome {
                Ok(Err(StoreError::Corrupt(_))) | Err(_) => {}
                other => panic!("the step's failure must come back, got {other:?}"),
            }
            let conn = open_wal(&path);
            assert_eq!(version(&conn), 1);
            let packed: i64 = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'packed'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                packed, 0,
                "the migration's SQL is rolled back with its step"
            );
            drop(conn);
            assert!(
                std::fs::read(&path).unwrap() == original,
                "the database file changed"
            );
        }
        let mut conn = open_wal(&path);
        migrate_with(&mut conn, &test_list(pack_rows), &mut |_| {}).unwrap();
        assert_eq!(version(&conn), 3);
        let empty: i64 = conn
            .query_row(
                "SELECT count(*) FROM items WHERE length(packed) = 100 AND body = x''",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(empty, 1000);
    }

    #[test]
    fn a_failed_vacuum_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = old_file(dir.path());
        let mut conn = open_wal(&path);
        let report = migrate_vacuuming_with(&mut conn, &test_list(pack_rows), &mut |_| {}, |_| {
            Err(StoreError::DiskFull)
        })
        .unwrap()
        .unwrap();
        assert_eq!(version(&conn), 3, "converted anyway");
        assert!(report.vacuum_failed.unwrap().contains("disk is full"));
    }

    #[test]
    fn needs_upgrade_reads_the_version_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!crate::Store::needs_upgrade(dir.path()).unwrap());
        assert!(
            !dir.path().join(crate::DATABASE_FILE).exists(),
            "created nothing"
        );
        let store = crate::Store::open_dir(dir.path()).unwrap();
        assert!(!crate::Store::needs_upgrade(dir.path()).unwrap());
        drop(store);
        // A file the previous version wrote.
        std::fs::remove_file(dir.path().join(crate::DATABASE_FILE)).unwrap();
        let mut conn = Connection::open(dir.path().join(crate::DATABASE_FILE)).unwrap();
        let older = &migrations()[..CURRENT_VERSION as usize - 1];
        migrate_with(&mut conn, older, &mut |_| {}).unwrap();
        drop(conn);
        assert!(crate::Store::needs_upgrade(dir.path()).unwrap());
        let mut seen = Vec::new();
        crate::Store::open_dir_with_progress(dir.path(), |p| seen.push(p.clone())).unwrap();
        assert!(
            matches!(seen.last(), Some(UpgradeProgress::Finished(r)) if r.to_version == CURRENT_VERSION)
        );
        assert!(!crate::Store::needs_upgrade(dir.path()).unwrap());
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
