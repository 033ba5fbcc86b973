//! Decisions staff make by hand about who is who (merge, split, undo), kept apart from the
//! automatic links and applied over them by [`crate::people`], and the outbox of hand changes a
//! desk owes its relay.
//!
//! A decision names provider records, not person ids, so it survives `reprocess` (which rebuilds
//! people but never touches these tables) and means the same on every desk. A record a decision
//! names that this desk hasn't received yet simply doesn't count until it arrives; then linking
//! applies it like any other.

use crate::people;
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::hand::{Decision, HandChange, RecordRef};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::BTreeSet;

/// A decision as stored, with where its records are now.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    /// This desk's id for it (what `clientele customers undo` takes).
    pub id: i64,
    /// The same on every desk.
    pub uid: String,
    pub decision: Decision,
    pub made_at: DateTime<Utc>,
    pub made_by: String,
    pub undone_at: Option<DateTime<Utc>>,
    pub undone_by: Option<String>,
    /// The person each of the decision's records belongs to now (None: not on this desk).
    pub people: Vec<Option<i64>>,
}

impl Writer {
    /// Records a decision and relinks the people it touches, in one transaction. Returns the
    /// people whose row changed or disappeared. A decision already here (same uid) changes
    /// nothing.
    pub fn add_decision(
        &mut self,
        uid: &str,
        decision: &Decision,
        made_at: DateTime<Utc>,
        made_by: &str,
    ) -> Result<BTreeSet<i64>, StoreError> {
        let country = self.default_country()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM hand_decisions WHERE uid = ?1)",
            [uid],
            |r| r.get(0),
        )?;
        if known {
            return Ok(BTreeSet::new());
        }
        tx.execute(
            "INSERT INTO hand_decisions (uid, kind, made_at, made_by) VALUES (?1, ?2, ?3, ?4)",
            params![uid, decision.kind().as_str(), to_millis(made_at), made_by],
        )?;
        let id = tx.last_insert_rowid();
        for record in decision.records() {
            tx.execute(
                "INSERT OR IGNORE INTO hand_decision_records
                    (decision_id, provider, connection, customer_ref)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    id,
                    record.provider.id(),
                    record.connection,
                    record.customer_ref
                ],
            )?;
        }
        let changed = relink_around(&tx, id, country)?;
        tx.commit()?;
        Ok(changed)
    }

    /// Undoes the decision `uid` (kept, marked undone, so the undo can travel too) and relinks
    /// the people it touched. Undoing one already undone, or unknown here, changes nothing.
    pub fn undo_decision(
        &mut self,
        uid: &str,
        at: DateTime<Utc>,
        by: &str,
    ) -> Result<BTreeSet<i64>, StoreError> {
        let country = self.default_country()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<i64> = tx
            .query_row(
                "SELECT id FROM hand_decisions WHERE uid = ?1 AND undone_at IS NULL",
                [uid],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = found else {
            return Ok(BTreeSet::new());
        };
        tx.execute(
            "UPDATE hand_decisions SET undone_at = ?2, undone_by = ?3 WHERE id = ?1",
            params![id, to_millis(at), by],
        )?;
        let changed = relink_around(&tx, id, country)?;
        tx.commit()?;
        Ok(changed)
    }

    /// Keeps `change` until the relay has accepted it (idempotent by its uid).
    pub fn queue_hand_change(
        &mut self,
        change: &HandChange,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO relay_outbox (uid, change, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (uid) DO NOTHING",
            params![change.uid, serde_json::to_string(change)?, to_millis(now)],
        )?;
        Ok(())
    }
}

/// Relinks everyone who shares a person with a record of `decision`, and rebuilds the people
/// that changed.
fn relink_around(
    tx: &Transaction<'_>,
    decision: i64,
    country: Option<clientele_core::identity::CountryId>,
) -> Result<BTreeSet<i64>, StoreError> {
    let mut seeds = BTreeSet::new();
    for profile in people::decision_profiles(tx, decision)?
        .into_iter()
        .flatten()
    {
        seeds.insert(profile);
        let members: Vec<i64> = tx
            .prepare_cached(
                "SELECT id FROM source_profiles WHERE person_id =
                   (SELECT person_id FROM source_profiles WHERE id = ?1)",
            )?
            .query_map([profile], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        seeds.extend(members);
    }
    let changed = people::relink(tx, seeds)?;
    for person in &changed {
        people::rebuild_person(tx, *person, country)?;
    }
    Ok(changed)
}

/// uid, kind, made at, made by, undone at, undone by
type DecisionRow = (String, String, i64, String, Option<i64>, Option<String>);

impl Reader {
    /// Every decision made by hand, newest first (undone ones too, marked).
    pub fn decisions(&self) -> Result<Vec<StoredDecision>, StoreError> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT id FROM hand_decisions ORDER BY made_at DESC, id DESC")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter()
            .map(|id| {
                self.decision(id)?.ok_or_else(|| {
                    StoreError::Corrupt("a decision vanished while being read".into())
                })
            })
            .collect()
    }

    /// The decision with this desk's id `id`.
    pub fn decision(&self, id: i64) -> Result<Option<StoredDecision>, StoreError> {
        let row: Option<DecisionRow> = self
            .conn
            .prepare_cached(
                "SELECT uid, kind, made_at, made_by, undone_at, undone_by
                 FROM hand_decisions WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()?;
        let Some((uid, kind, made_at, made_by, undone_at, undone_by)) = row else {
            return Ok(None);
        };
        let rows: Vec<(String, String, String, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT r.provider, r.connection, r.customer_ref,
                        (SELECT sp.person_id FROM source_profiles sp JOIN connections c
                           ON c.id = sp.connection_id
                         WHERE c.provider = r.provider AND c.name = r.connection
                           AND sp.customer_ref = r.customer_ref)
                 FROM hand_decision_records r WHERE r.decision_id = ?1
                 ORDER BY r.provider, r.connection, r.customer_ref",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut records = Vec::new();
        let mut people = Vec::new();
        for (provider, connection, customer_ref, person) in rows {
            records.push(RecordRef {
                provider: crate::stored::provider(&provider)?,
                connection,
                customer_ref,
            });
            people.push(person);
        }
        let decision = match (kind.as_str(), records.as_slice()) {
            ("merge", [a, b]) => Decision::Merge {
                records: [a.clone(), b.clone()],
            },
            ("split", [r]) => Decision::Split { record: r.clone() },
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "decision {id} is a {kind} of {} records",
                    records.len()
                )));
            }
        };
        Ok(Some(StoredDecision {
            id,
            uid,
            decision,
            made_at: from_millis(made_at),
            made_by,
            undone_at: undone_at.map(from_millis),
            undone_by,
            people,
        }))
    }

    /// The person `record` belongs to now, if it is on this desk.
    pub fn person_of_record(&self, record: &RecordRef) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT sp.person_id FROM source_profiles sp JOIN connections c
                   ON c.id = sp.connection_id
                 WHERE c.provider = ?1 AND c.name = ?2 AND sp.customer_ref = ?3",
            )?
            .query_row(
                params![record.provider.id(), record.connection, record.customer_ref],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The record (provider/connection/customer id) of each of `person`'s source profiles, the
    /// one the person's id comes from first.
    pub fn records_of(&self, person: i64) -> Result<Vec<RecordRef>, StoreError> {
        let rows: Vec<(String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT c.provider, c.name, sp.customer_ref FROM source_profiles sp
                 JOIN connections c ON c.id = sp.connection_id
                 WHERE sp.person_id = ?1 ORDER BY sp.id",
            )?
            .query_map([person], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(provider, connection, customer_ref)| {
                Ok(RecordRef {
                    provider: crate::stored::provider(&provider)?,
                    connection,
                    customer_ref,
                })
            })
            .collect()
    }
}
