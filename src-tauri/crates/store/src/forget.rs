//! Forgetting customers for good, and going on forgetting them.
//!
//! [`Writer::forget`] is given records by salted hash (see `clientele_core::hand`): it hashes
//! every source profile's `provider/connection/customer_ref` with the forget's salt to find them.
//! In one transaction it then
//! - erases every delivery with an event about them: the body, headers and verification go, the
//!   row stays (ids and counts hold) with `erased_at` and its dedupe key replaced by a keyed hash
//!   (HMAC-SHA256 under the *erasure key*, 32 random bytes kept in `settings` and never shown), so
//!   a provider's retry of it is still recognised and not stored again;
//! - deletes their events, identity keys and source profiles, and the people rows and search
//!   terms they made; whoever else a shared key linked differently because of them is relinked;
//! - deletes the incremental-export baseline rows of those people and events, the hand decisions
//!   naming the records, and the outbox entries carrying those decisions to the relay;
//! - logs the erasure (`erasures`: when, why, which computer, how many — never who), and with
//!   "keep forgetting" keeps the record hashes in `suppressions`.
//!
//! Bytes really gone: every connection has `secure_delete` on, so SQLite overwrites what it
//! deletes; [`Writer::wipe_forgotten`] then truncates the WAL (which still holds the pages as they
//! were) and, the first time on a database written before `secure_delete` was on, `VACUUM`s it
//! so its free pages hold no stale copies.
//!
//! While suppressions are active, [`screen`] looks at each arriving delivery (the listener's, the
//! relay's, and pulled ones all go through `ingest::insert_deliveries`) and withholds one about a
//! suppressed record: it is acknowledged, counted in `withheld`, and not kept.

use crate::ingest::NewDelivery;
use crate::people;
use crate::relay_changes::DeliveryToCheck;
use crate::stored;
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::hand::{ErasureReason, HandChange, HandChangeKind, RecordRef, record_hash};
use clientele_core::profile::ProfileState;
use clientele_core::{ConnectionSettings, Provider, providers};
use hmac::{Hmac, Mac};
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// The `settings` key of the erasure key (hex). Public for the relay's PostgreSQL store, which
/// keeps it in its own `settings` table and erases the same way.
pub const ERASURE_KEY: &str = "erasure_key";
/// The `settings` key saying since when every connection to this database had `secure_delete`
/// on. Written when the database is created; absent on older files, whose free pages may hold
/// stale copies of deleted rows until they are vacuumed once.
pub(crate) const SECURE_DELETE_SINCE: &str = "secure_delete_since";
/// What an erased delivery's dedupe key starts with.
const ERASED_KEY_PREFIX: &str = "#";

/// A forget to carry out (from this desk, or pulled from the relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetRequest {
    /// The hand change's uid: a forget already carried out is not carried out (or logged) twice.
    pub uid: String,
    pub at: DateTime<Utc>,
    /// The computer it was made on, for the erasure log.
    pub computer: String,
    pub reason: ErasureReason,
    pub salt: Vec<u8>,
    pub record_hashes: Vec<[u8; 32]>,
    /// Withhold later deliveries about these records.
    pub keep_forgetting: bool,
}

/// What a forget did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgetReport {
    /// Its row in the erasure log.
    pub erasure_id: i64,
    /// It had been carried out before (same uid): nothing was done this time.
    pub repeated: bool,
    /// People whose every record was forgotten.
    pub people: i64,
    /// Records (source profiles) forgotten.
    pub records: i64,
    /// Deliveries erased.
    pub deliveries: i64,
    /// Refused requests removed (always 0 today: a refusal never keeps the request's body).
    pub rejections: i64,
    /// Person ids whose row changed or disappeared, for live updates.
    pub people_changed: BTreeSet<i64>,
}

/// What [`Writer::wipe_forgotten`] managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wipe {
    /// The database predated `secure_delete` and was vacuumed now.
    pub vacuumed: bool,
    /// The WAL was copied into the database and truncated to nothing.
    pub checkpointed: bool,
}

/// One line of the erasure log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub id: i64,
    pub uid: String,
    pub at: DateTime<Utc>,
    pub computer: String,
    pub reason: ErasureReason,
    pub people: i64,
    pub records: i64,
    pub deliveries: i64,
    pub rejections: i64,
}

/// One forget's "keep forgetting".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub forget_uid: String,
    pub since: DateTime<Utc>,
    /// Records it names.
    pub records: i64,
    /// Deliveries withheld because of it.
    pub withheld: i64,
    pub lifted_at: Option<DateTime<Utc>>,
}

/// Where an export may have written a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportWritten {
    pub profile_name: String,
    pub file: String,
    pub finished_at: DateTime<Utc>,
    /// An incremental run's baseline names the person or one of their events; otherwise a run
    /// that finished after their first delivery arrived, which may have included them.
    pub certain: bool,
}

/// What forgetting a person would reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetScope {
    pub records: Vec<RecordRef>,
    pub deliveries: i64,
    pub exports: Vec<ExportWritten>,
}

impl Writer {
    /// Forgets the records `req` names, in one transaction (see the module documentation).
    /// Callers then call [`Writer::wipe_forgotten`] so the bytes are gone from disk too.
    pub fn forget(&mut self, req: &ForgetRequest) -> Result<ForgetReport, StoreError> {
        let country = self.default_country()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(id) = tx
            .query_row("SELECT id FROM erasures WHERE uid = ?1", [&req.uid], |r| {
                r.get(0)
            })
            .optional()?
        {
            return Ok(ForgetReport {
                erasure_id: id,
                repeated: true,
                ..Default::default()
            });
        }
        let matcher = ForgetHashes {
            salt: req.salt.clone(),
            records: req.record_hashes.iter().copied().collect(),
        };

        // The records' source profiles, with the people they belong to.
        let mut profiles: Vec<i64> = Vec::new();
        let mut persons: BTreeSet<i64> = BTreeSet::new();
        // Connection by connection through the (connection_id, customer_ref) index, which holds
        // every column this needs: reading the table itself would read every profile's state
        // (most of the table's pages) to hash a few bytes of each row.
        let connections: Vec<(i64, String, String)> = tx
            .prepare_cached("SELECT id, provider, name FROM connections ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (connection_id, provider, connection) in &connections {
            let hasher = matcher.prefix(provider, connection);
            let mut stmt = tx.prepare_cached(
                "SELECT id, customer_ref FROM source_profiles WHERE connection_id = ?1",
            )?;
            let mut rows = stmt.query([connection_id])?;
            while let Some(row) = rows.next()? {
                if matcher.matches(&hasher, row.get_ref(1)?.as_bytes().map_err(corrupt)?) {
                    profiles.push(row.get(0)?);
                }
            }
        }
        for profile in &profiles {
            let person: Option<i64> = tx
                .prepare_cached("SELECT person_id FROM source_profiles WHERE id = ?1")?
                .query_row([profile], |r| r.get(0))?;
            persons.extend(person);
        }

        // Every delivery with an event about them, and any other record such a delivery also
        // spoke of (no adapter makes one today: each delivery is about one customer).
        let forgotten: HashSet<i64> = profiles.iter().copied().collect();
        let mut deliveries: BTreeSet<i64> = BTreeSet::new();
        for profile in &profiles {
            let mut stmt = tx.prepare_cached(
                "SELECT DISTINCT delivery_id FROM events WHERE source_profile_id = ?1",
            )?;
            for d in stmt.query_map([profile], |r| r.get(0))? {
                deliveries.insert(d?);
            }
        }
        let mut bystanders: BTreeSet<i64> = BTreeSet::new();
        for d in &deliveries {
            let mut stmt = tx.prepare_cached(
                "SELECT DISTINCT source_profile_id FROM events WHERE delivery_id = ?1",
            )?;
            for p in stmt.query_map([d], |r| r.get::<_, i64>(0))? {
                let p = p?;
                if !forgotten.contains(&p) {
                    bystanders.insert(p);
                }
            }
        }
        // Deliveries stored but not read yet (a listener's writer between groups): their events
        // would bring the records back.
        let pending = pending_about(&tx, &matcher)?;

        // Derived data about them goes.
        let mut relink = BTreeSet::new();
        for d in &deliveries {
            tx.prepare_cached("DELETE FROM events WHERE delivery_id = ?1")?
                .execute([d])?;
        }
        for profile in &profiles {
            // Removing every key, counted as it goes: a shared key that drops back under the
            // limit links its other holders again.
            people::update_identity_keys(
                &tx,
                *profile,
                &ProfileState::default(),
                None,
                &mut relink,
            )?;
            tx.prepare_cached("DELETE FROM source_profiles WHERE id = ?1")?
                .execute([profile])?;
        }
        for profile in &bystanders {
            crate::derive::refold_saved(&tx, *profile, country, &mut relink)?;
        }
        relink.retain(|p| !forgotten.contains(p));
        // Whoever stays behind in their people forms people of their own.
        for person in &persons {
            let mut stmt =
                tx.prepare_cached("SELECT id FROM source_profiles WHERE person_id = ?1")?;
            for p in stmt.query_map([person], |r| r.get(0))? {
                relink.insert(p?);
            }
        }
        let decisions = forget_decisions(&tx, &matcher)?;
        let mut changed = people::relink(&tx, relink)?;
        changed.extend(persons.iter().copied());
        for person in &changed {
            people::rebuild_person(&tx, *person, country)?;
        }
        let people_gone = persons
            .iter()
            .filter(|&&p| {
                !tx.prepare_cached("SELECT 1 FROM people WHERE id = ?1")
                    .and_then(|mut s| s.exists([p]))
                    .unwrap_or(true)
            })
            .count() as i64;

        // The incremental-export baseline of those people and events.
        let export_profiles: Vec<i64> = tx
            .prepare_cached("SELECT DISTINCT profile_id FROM export_row_state")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for profile in &export_profiles {
            for person in &persons {
                tx.prepare_cached(
                    "DELETE FROM export_row_state WHERE profile_id = ?1 AND row_key = ?2",
                )?
                .execute(params![profile, format!("p{person}")])?;
            }
            for d in &deliveries {
                tx.prepare_cached(
                    "DELETE FROM export_row_state
                     WHERE profile_id = ?1 AND row_key >= ?2 AND row_key < ?3",
                )?
                .execute(params![profile, format!("e{d}:"), format!("e{d};")])?;
            }
        }

        // The deliveries themselves.
        let key = erasure_key(&tx)?;
        let at = to_millis(req.at);
        for d in deliveries.iter().chain(&pending) {
            erase_delivery(&tx, &key, *d, at)?;
        }
        for d in &deliveries {
            tx.prepare_cached(
                "INSERT INTO delivery_outcomes (delivery_id, status, error, events)
                 VALUES (?1, 'erased', NULL, 0)
                 ON CONFLICT (delivery_id) DO UPDATE SET status = 'erased', error = NULL, events = 0",
            )?
            .execute([d])?;
        }
        forget_outbox(&tx, &matcher, &decisions)?;

        let erased = (deliveries.len() + pending.len()) as i64;
        tx.execute(
            "INSERT INTO erasures (uid, at, computer, reason, people, records, deliveries,
                                   rejections)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
            params![
                req.uid,
                at,
                req.computer,
                req.reason.as_str(),
                people_gone,
                profiles.len() as i64,
                erased
            ],
        )?;
        let erasure_id = tx.last_insert_rowid();
        if req.keep_forgetting {
            for hash in &req.record_hashes {
                tx.prepare_cached(
                    "INSERT INTO suppressions (forget_uid, salt, record_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (forget_uid, record_hash) DO NOTHING",
                )?
                .execute(params![req.uid, req.salt, &hash[..], at])?;
            }
        }
        tx.commit()?;
        Ok(ForgetReport {
            erasure_id,
            repeated: false,
            people: people_gone,
            records: profiles.len() as i64,
            deliveries: erased,
            rejections: 0,
            people_changed: changed,
        })
    }

    /// Erases the deliveries `ids` (the relay's side of a forget: it keeps no timelines to find
    /// them by). Derived data, if any, is the caller's to remove. Returns how many were erased now.
    pub fn erase_deliveries(&mut self, ids: &[i64], at: DateTime<Utc>) -> Result<i64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let key = erasure_key(&tx)?;
        let mut erased = 0;
        for id in ids {
            erased += erase_delivery(&tx, &key, *id, to_millis(at))? as i64;
        }
        tx.commit()?;
        Ok(erased)
    }

    /// Makes what a forget deleted unreadable on disk: `VACUUM`s a database written before
    /// `secure_delete` was on (once; its free pages may hold stale copies), then copies the WAL
    /// into the database and truncates it, retrying while a reader or the listener's writer holds
    /// it, until `deadline` has passed.
    pub fn wipe_forgotten(&mut self, deadline: Duration) -> Result<Wipe, StoreError> {
        let started = Instant::now();
        let marked: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM settings WHERE key = ?1")?
            .exists([SECURE_DELETE_SINCE])?;
        let mut vacuumed = false;
        if !marked {
            self.conn.execute_batch("VACUUM")?;
            mark_secure_delete(&self.conn, Utc::now())?;
            vacuumed = true;
        }
        let checkpointed = loop {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .or_else(|e| match StoreError::from(e) {
                    StoreError::Busy => Ok(1),
                    other => Err(other),
                })?;
            if busy == 0 {
                break true;
            }
            if started.elapsed() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(Wipe {
            vacuumed,
            checkpointed,
        })
    }

    /// Lifts the suppression of the forget `forget_uid`. Returns false when there was none to lift
    /// (unknown, or lifted already).
    pub fn stop_forgetting(
        &mut self,
        forget_uid: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE suppressions SET lifted_at = ?2 WHERE forget_uid = ?1 AND lifted_at IS NULL",
            params![forget_uid, to_millis(at)],
        )? > 0)
    }
}

impl Reader {
    /// The erasure log, newest first.
    pub fn erasures(&self) -> Result<Vec<Erasure>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, uid, at, computer, reason, people, records, deliveries, rejections
             FROM erasures ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let reason: String = r.get(4)?;
            Ok((
                Erasure {
                    id: r.get(0)?,
                    uid: r.get(1)?,
                    at: from_millis(r.get(2)?),
                    computer: r.get(3)?,
                    reason: ErasureReason::Request,
                    people: r.get(5)?,
                    records: r.get(6)?,
                    deliveries: r.get(7)?,
                    rejections: r.get(8)?,
                },
                reason,
            ))
        })?;
        rows.map(|row| {
            let (mut e, reason) = row?;
            e.reason = ErasureReason::parse(&reason)
                .ok_or_else(|| stored::Unknown::new("erasure reason", &reason))?;
            Ok(e)
        })
        .collect()
    }

    /// Every "keep forgetting", newest first, lifted ones too.
    pub fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.forget_uid, MIN(s.created_at), COUNT(*), MAX(s.lifted_at),
                    (SELECT COUNT(*) FROM withheld w WHERE w.suppression_id IN
                        (SELECT id FROM suppressions WHERE forget_uid = s.forget_uid))
             FROM suppressions s GROUP BY s.forget_uid ORDER BY MIN(s.id) DESC",
        )?;
        stmt.query_map([], |r| {
            Ok(Suppression {
                forget_uid: r.get(0)?,
                since: from_millis(r.get(1)?),
                records: r.get(2)?,
                lifted_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
                withheld: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()
        .map_err(Into::into)
    }

    /// What forgetting `person_id` would reach: their records, the deliveries about them, and
    /// the export files that have (or may have) included them.
    pub fn forget_scope(&self, person_id: i64) -> Result<ForgetScope, StoreError> {
        let records: Vec<RecordRef> = self
            .conn
            .prepare_cached(
                "SELECT c.provider, c.name, sp.customer_ref
                 FROM source_profiles sp JOIN connections c ON c.id = sp.connection_id
                 WHERE sp.person_id = ?1 ORDER BY sp.id",
            )?
            .query_map([person_id], |r| {
                Ok(RecordRef {
                    provider: stored::column(r, 0, stored::provider)?,
                    connection: r.get(1)?,
                    customer_ref: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        if records.is_empty() {
            return Err(StoreError::NotFound(format!(
                "There is no customer with id {person_id}."
            )));
        }
        let deliveries: Vec<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT d.id, d.received_at FROM events e
                 JOIN source_profiles sp ON sp.id = e.source_profile_id
                 JOIN deliveries d ON d.id = e.delivery_id
                 WHERE sp.person_id = ?1",
            )?
            .query_map([person_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let first_received = deliveries.iter().map(|d| d.1).min().unwrap_or(i64::MAX);

        // Runs whose baseline names the person or one of their events.
        let mut certain: BTreeSet<i64> = BTreeSet::new();
        let export_profiles: Vec<i64> = self
            .conn
            .prepare_cached("SELECT DISTINCT profile_id FROM export_row_state")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for profile in &export_profiles {
            let mut by_key = self.conn.prepare_cached(
                "SELECT run_id FROM export_row_state WHERE profile_id = ?1 AND row_key = ?2",
            )?;
            for run in by_key.query_map(params![profile, format!("p{person_id}")], |r| r.get(0))? {
                certain.insert(run?);
            }
            let mut by_range = self.conn.prepare_cached(
                "SELECT run_id FROM export_row_state
                 WHERE profile_id = ?1 AND row_key >= ?2 AND row_key < ?3",
            )?;
            for (d, _) in &deliveries {
                for run in by_range
                    .query_map(params![profile, format!("e{d}:"), format!("e{d};")], |r| {
                        r.get(0)
                    })?
                {
                    certain.insert(run?);
                }
            }
        }
        let exports = self
            .conn
            .prepare_cached(
                "SELECT id, profile_name, file, finished_at FROM export_runs
                 WHERE outcome = 'succeeded' AND finished_at >= ?1 ORDER BY id",
            )?
            .query_map([first_received], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ExportWritten {
                        profile_name: r.get(1)?,
                        file: r.get(2)?,
                        finished_at: from_millis(r.get(3)?),
                        certain: false,
                    },
                ))
            })?
            .map(|row| {
                row.map(|(id, mut e)| {
                    e.certain = certain.contains(&id);
                    e
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ForgetScope {
            records,
            deliveries: deliveries.len() as i64,
            exports,
        })
    }
}

fn corrupt(e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A forget's salt and record hashes: how a forget names records without holding them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetHashes {
    pub salt: Vec<u8>,
    pub records: HashSet<[u8; 32]>,
}

impl ForgetHashes {
    /// Decodes a forget's hex; `None` when it isn't a salt and 32-byte hashes.
    pub fn decode(forget: &clientele_core::hand::Forget) -> Option<ForgetHashes> {
        let salt = hex::decode(&forget.salt).ok().filter(|s| !s.is_empty())?;
        let records = forget
            .records
            .iter()
            .map(|h| hex::decode(h).ok()?.try_into().ok())
            .collect::<Option<HashSet<[u8; 32]>>>()?;
        Some(ForgetHashes { salt, records })
    }

    /// Whether `record` is one of these.
    pub fn names(&self, record: &RecordRef) -> bool {
        self.records.contains(&record_hash(&self.salt, record))
    }

    /// Whether any event of the stored delivery `d` is about one of these records (false when it
    /// can't be read: nothing then says whose it is).
    pub fn names_any_in(&self, d: &DeliveryToCheck) -> bool {
        let headers = crate::derive::header_map_of(&d.headers);
        records_of(d.provider, &d.connection, &d.settings, &headers, &d.body)
            .iter()
            .any(|r| self.names(r))
    }

    /// The hash state after `provider/connection/`, as `record_hash` builds it: hashing a
    /// connection's customer ids then costs one copy and one update each.
    fn prefix(&self, provider: &str, connection: &str) -> Sha256 {
        let mut h = Sha256::new();
        h.update(&self.salt);
        h.update(provider.as_bytes());
        h.update([0]);
        h.update(connection.as_bytes());
        h.update([0]);
        h
    }

    fn matches(&self, prefix: &Sha256, customer_ref: &[u8]) -> bool {
        let mut h = prefix.clone();
        h.update(customer_ref);
        let hash: [u8; 32] = h.finalize().into();
        self.records.contains(&hash)
    }
}

/// Stored deliveries not derived yet that are about a record `matcher` names.
fn pending_about(tx: &Transaction<'_>, matcher: &ForgetHashes) -> Result<Vec<i64>, StoreError> {
    let mut after: i64 = tx.query_row(
        "SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes",
        [],
        |r| r.get(0),
    )?;
    let mut about = Vec::new();
    loop {
        let batch = crate::relay_changes::deliveries_to_check(tx, after, PENDING_BATCH)?;
        let Some(last) = batch.last().map(|d| d.id) else {
            return Ok(about);
        };
        about.extend(
            batch
                .iter()
                .filter(|d| matcher.names_any_in(d))
                .map(|d| d.id),
        );
        after = last;
    }
}

/// Deliveries read at a time when looking for those not derived yet.
const PENDING_BATCH: usize = 500;

/// The records a delivery's events are about (none when it can't be read).
fn records_of(
    provider: Provider,
    connection: &str,
    settings: &ConnectionSettings,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Vec<RecordRef> {
    providers::parse(provider, settings, headers, body)
        .map(|parsed| {
            parsed
                .events
                .into_iter()
                .map(|e| RecordRef {
                    provider,
                    connection: connection.to_string(),
                    customer_ref: e.customer_ref,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes the hand decisions naming a record `matcher` names; returns their uids.
fn forget_decisions(
    tx: &Transaction<'_>,
    matcher: &ForgetHashes,
) -> Result<HashSet<String>, StoreError> {
    let named: Vec<(i64, String, String, String, String)> = tx
        .prepare_cached(
            "SELECT d.id, d.uid, r.provider, r.connection, r.customer_ref
             FROM hand_decision_records r JOIN hand_decisions d ON d.id = r.decision_id",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut uids = HashSet::new();
    for (id, uid, provider, connection, customer_ref) in named {
        let record = RecordRef {
            provider: stored::provider(&provider)?,
            connection,
            customer_ref,
        };
        if matcher.names(&record) {
            tx.prepare_cached("DELETE FROM hand_decisions WHERE id = ?1")?
                .execute([id])?;
            uids.insert(uid);
        }
    }
    Ok(uids)
}

/// Drops the outbox entries that would carry a forgotten record to the relay: decisions naming
/// one, and undos of those decisions. (The forget itself names records by hash only, and stays.)
fn forget_outbox(
    tx: &Transaction<'_>,
    matcher: &ForgetHashes,
    decisions: &HashSet<String>,
) -> Result<(), StoreError> {
    let queued: Vec<(i64, String)> = tx
        .prepare_cached("SELECT id, change FROM relay_outbox")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, change) in queued {
        let Ok(change) = serde_json::from_str::<HandChange>(&change) else {
            continue;
        };
        let names = match &change.what {
            HandChangeKind::Decide { decision } => {
                decisions.contains(&change.uid)
                    || decision.records().into_iter().any(|r| matcher.names(r))
            }
            HandChangeKind::Undo { decision } => decisions.contains(decision),
            HandChangeKind::Forget { .. } | HandChangeKind::StopForgetting { .. } => false,
        };
        if names {
            tx.prepare_cached("DELETE FROM relay_outbox WHERE id = ?1")?
                .execute([id])?;
        }
    }
    Ok(())
}

/// The erasure key, created (32 random bytes) on first use.
fn erasure_key(tx: &Transaction<'_>) -> Result<[u8; 32], StoreError> {
    let stored: Option<String> = tx
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([ERASURE_KEY], |r| r.get(0))
        .optional()?;
    if let Some(hex_key) = stored {
        return parse_erasure_key(&hex_key);
    }
    let key = new_erasure_key()?;
    tx.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        params![ERASURE_KEY, hex::encode(key)],
    )?;
    Ok(key)
}

/// A stored erasure key (64 hex digits).
pub fn parse_erasure_key(hex_key: &str) -> Result<[u8; 32], StoreError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut key)
        .map_err(|_| StoreError::Corrupt("the erasure key isn't 64 hex digits".into()))?;
    Ok(key)
}

/// A new erasure key: 32 bytes from the OS's random source (stored as hex).
pub fn new_erasure_key() -> Result<[u8; 32], StoreError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| StoreError::Invalid(format!("no random numbers for the erasure key: {e}")))?;
    Ok(key)
}

/// The erasure key, when one exists (no delivery was ever erased without one).
fn existing_erasure_key(tx: &Transaction<'_>) -> Result<Option<[u8; 32]>, StoreError> {
    let stored: Option<String> = tx
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([ERASURE_KEY], |r| r.get(0))
        .optional()?;
    Ok(stored.and_then(|h| parse_erasure_key(&h).ok()))
}

/// What an erased delivery's dedupe key becomes: a keyed hash (HMAC-SHA256 under the erasure
/// key), so a provider's retry is recognised without the key itself being kept.
pub fn erased_dedupe_key(key: &[u8; 32], dedupe_key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(dedupe_key.as_bytes());
    format!(
        "{ERASED_KEY_PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Erases one delivery's content, keeping its row. Returns false if it was erased already.
fn erase_delivery(
    tx: &Transaction<'_>,
    key: &[u8; 32],
    id: i64,
    at: i64,
) -> Result<bool, StoreError> {
    let dedupe: Option<String> = tx
        .prepare_cached("SELECT dedupe_key FROM deliveries WHERE id = ?1 AND erased_at IS NULL")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(dedupe) = dedupe else {
        return Ok(false);
    };
    tx.prepare_cached(
        "UPDATE deliveries SET body = x'', body_codec = 0, headers = '[]', verification = '',
                               erased_at = ?2, dedupe_key = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, at, erased_dedupe_key(key, &dedupe)])?;
    Ok(true)
}

/// Marks a database every connection to which has had `secure_delete` on.
pub(crate) fn mark_secure_delete(
    conn: &rusqlite::Connection,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![SECURE_DELETE_SINCE, to_millis(now).to_string()],
    )?;
    Ok(())
}

/// What arriving deliveries are checked against while anything is forgotten: the erasure key
/// (a retry of an erased delivery) and the active suppressions (a delivery about a record being
/// kept forgotten). Loaded once per group; `None` — one small read — when nothing is forgotten.
pub(crate) struct Screen {
    erasure_key: Option<[u8; 32]>,
    suppressions: SuppressionScreen,
    connections: HashMap<i64, Option<(Provider, String, ConnectionSettings)>>,
}

/// What the screen says about one arriving delivery.
pub(crate) enum Screened {
    /// A retry of the erased delivery with this id.
    Erased(i64),
    /// About a record kept forgotten by this suppression.
    Withheld(i64),
}

/// The screen for this group of deliveries, or `None` when nothing was ever erased.
pub(crate) fn screen(tx: &Transaction<'_>) -> Result<Option<Screen>, StoreError> {
    let erased_any: bool = tx
        .prepare_cached("SELECT 1 FROM settings WHERE key = ?1")?
        .exists([ERASURE_KEY])?;
    let suppressing: bool = tx
        .prepare_cached("SELECT 1 FROM suppressions WHERE lifted_at IS NULL LIMIT 1")?
        .exists([])?;
    if !erased_any && !suppressing {
        return Ok(None);
    }
    let suppressions = if suppressing {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT id, salt, record_hash FROM suppressions WHERE lifted_at IS NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        SuppressionScreen::new(rows)
    } else {
        SuppressionScreen::default()
    };
    Ok(Some(Screen {
        erasure_key: if erased_any {
            existing_erasure_key(tx)?
        } else {
            None
        },
        suppressions,
        connections: HashMap::new(),
    }))
}

impl Screen {
    pub(crate) fn check(
        &mut self,
        tx: &Transaction<'_>,
        d: &NewDelivery,
    ) -> Result<Option<Screened>, StoreError> {
        if let Some(key) = &self.erasure_key {
            let erased: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM deliveries WHERE connection_id = ?1 AND dedupe_key = ?2",
                )?
                .query_row(
                    params![d.connection_id, erased_dedupe_key(key, &d.dedupe_key)],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = erased {
                return Ok(Some(Screened::Erased(id)));
            }
        }
        if self.suppressions.is_empty() || d.is_test {
            return Ok(None);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) =
            self.connections.entry(d.connection_id)
        {
            let found: Option<(String, String, String)> = tx
                .prepare_cached("SELECT provider, name, settings FROM connections WHERE id = ?1")?
                .query_row([d.connection_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            slot.insert(match found {
                Some((provider, name, settings)) => Some((
                    stored::provider(&provider)?,
                    name,
                    serde_json::from_str(&settings)?,
                )),
                None => None,
            });
        }
        let Some(Some((provider, name, settings))) = self.connections.get(&d.connection_id) else {
            return Ok(None);
        };
        Ok(self
            .suppressions
            .withholding(*provider, name, settings, d)
            .map(Screened::Withheld))
    }
}

/// The active suppressions ("keep forgetting") an arriving delivery is checked against: pure,
/// so the relay's PostgreSQL store screens exactly as this store does.
#[derive(Debug, Clone, Default)]
pub struct SuppressionScreen {
    /// By salt: (suppression id, record hash).
    by_salt: HashMap<Vec<u8>, Vec<(i64, [u8; 32])>>,
}

impl SuppressionScreen {
    /// From the active suppressions' `(id, salt, record_hash)` (a hash that isn't 32 bytes
    /// names nothing and is left out).
    pub fn new(rows: impl IntoIterator<Item = (i64, Vec<u8>, Vec<u8>)>) -> SuppressionScreen {
        let mut by_salt: HashMap<Vec<u8>, Vec<(i64, [u8; 32])>> = HashMap::new();
        for (id, salt, hash) in rows {
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                by_salt.entry(salt).or_default().push((id, hash));
            }
        }
        SuppressionScreen { by_salt }
    }

    pub fn is_empty(&self) -> bool {
        self.by_salt.is_empty()
    }

    /// The suppression withholding `d`, which arrived on `provider`/`connection` read with
    /// `settings`: the first whose records one of its events is about. Test events and
    /// deliveries that can't be read are never withheld.
    pub fn withholding(
        &self,
        provider: Provider,
        connection: &str,
        settings: &ConnectionSettings,
        d: &NewDelivery,
    ) -> Option<i64> {
        if self.by_salt.is_empty() || d.is_test {
            return None;
        }
        let headers = crate::derive::header_map_of(&d.headers);
        for record in records_of(provider, connection, settings, &headers, &d.body) {
            for (salt, hashes) in &self.by_salt {
                let hash = record_hash(salt, &record);
                if let Some((id, _)) = hashes.iter().find(|(_, h)| *h == hash) {
                    return Some(*id);
                }
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "forget_tests.rs"]
mod tests;
