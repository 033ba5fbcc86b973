//! Hand changes (merges, splits, undos, forgets) travelling through a relay.
//!
//! **On the relay**: `relay_changes`, the changes desks sent, in the order the relay accepted
//! them; desks read "the changes after id N" as they read deliveries. Ids are given inside one
//! write transaction each (SQLite commits one at a time), so they become visible in order, and a
//! forget is stored *before* the earlier decisions it makes the relay delete, so the newest row is
//! never deleted and no id is handed out twice. A forget names records only by salted hashes; the
//! decisions about those records — which name customers in plain words — are deleted from the
//! relay when the forget arrives ([`Writer::accept_change`]), and the relay's own deliveries
//! about them are erased (`Writer::erase_deliveries`, as a desk erases them) before it answers.
//!
//! **On a desk**: the outbox of changes the relay hasn't accepted yet (`relay_outbox`, kept by
//! [`Writer::queue_hand_change`]), how far the desk has read the relay's changes
//! (`relay_link.changes_cursor`), and the retention policy the relay holds for every desk.

use crate::time::to_millis;
use crate::{ForgetHashes, Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::hand::{HandChange, HandChangeKind};
use clientele_core::{ConnectionSettings, Provider};
use rusqlite::{OptionalExtension, params};

/// A change the relay accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedChange {
    /// Its place in `relay_changes`.
    pub id: i64,
    /// False when the relay had it already (a desk sent it again).
    pub new: bool,
    /// Earlier decisions deleted because this forget names their records.
    pub decisions_deleted: usize,
}

/// A stored delivery the relay reads to find the ones a forget names.
#[derive(Debug, Clone)]
pub struct DeliveryToCheck {
    pub id: i64,
    pub provider: Provider,
    pub connection: String,
    pub settings: ConnectionSettings,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Writer {
    /// Keeps a change a desk sent, once (by its uid): returns its place in the list. A forget
    /// also deletes the earlier decisions about any of its records (their plain customer ids must
    /// not stay on the relay) and, when it keeps forgetting, records the relay's suppressions; a
    /// stop-forgetting lifts them. One transaction.
    pub fn accept_change(
        &mut self,
        change: &HandChange,
        device: &str,
        now: DateTime<Utc>,
    ) -> Result<AcceptedChange, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT id FROM relay_changes WHERE uid = ?1",
                [&change.uid],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = known {
            return Ok(AcceptedChange {
                id,
                new: false,
                decisions_deleted: 0,
            });
        }
        tx.execute(
            "INSERT INTO relay_changes (uid, change, device, accepted_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                change.uid,
                serde_json::to_string(change)?,
                device,
                to_millis(now)
            ],
        )?;
        let id = tx.last_insert_rowid();
        let mut decisions_deleted = 0;
        match &change.what {
            HandChangeKind::Forget { forget } => {
                let hashes = ForgetHashes::decode(forget).ok_or_else(|| {
                    StoreError::Invalid("A forget must name records by salted hashes.".into())
                })?;
                // Inserted above first: the rows deleted here are older, never the newest.
                let decided: Vec<(i64, String)> = tx
                    .prepare(
                        "SELECT id, change FROM relay_changes
                         WHERE id < ?1 AND change LIKE '%\"change\":\"decide\"%'",
                    )?
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                for (row, text) in decided {
                    let Ok(earlier) = serde_json::from_str::<HandChange>(&text) else {
                        continue;
                    };
                    if let HandChangeKind::Decide { decision } = &earlier.what
                        && decision.records().into_iter().any(|r| hashes.names(r))
                    {
                        tx.execute("DELETE FROM relay_changes WHERE id = ?1", [row])?;
                        decisions_deleted += 1;
                    }
                }
                if forget.keep_forgetting {
                    let mut insert = tx.prepare(
                        "INSERT INTO suppressions (forget_uid, salt, record_hash, created_at)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (forget_uid, record_hash) DO NOTHING",
                    )?;
                    for hash in &hashes.records {
                        insert.execute(params![
                            change.uid,
                            hashes.salt,
                            hash.as_slice(),
                            to_millis(now)
                        ])?;
                    }
                }
            }
            HandChangeKind::StopForgetting { forget } => {
                tx.execute(
                    "UPDATE suppressions SET lifted_at = ?2
                     WHERE forget_uid = ?1 AND lifted_at IS NULL",
                    params![forget, to_millis(now)],
                )?;
            }
            HandChangeKind::Decide { .. } | HandChangeKind::Undo { .. } => {}
        }
        tx.commit()?;
        Ok(AcceptedChange {
            id,
            new: true,
            decisions_deleted,
        })
    }

    /// A relay connection's new settings. Returns false when there is no such connection.
    pub fn replace_connection_settings(
        &mut self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE connections SET settings = ?3
             WHERE provider = ?1 AND name = ?2 AND removed_at IS NULL",
            params![provider.id(), name, serde_json::to_string(settings)?],
        )? > 0)
    }

    /// The relay accepted the change `uid`: it leaves the outbox.
    pub fn hand_change_sent(&mut self, uid: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM relay_outbox WHERE uid = ?1", [uid])?;
        Ok(())
    }

    /// This desk has applied the relay's changes up to `id` (never moves backwards).
    pub fn set_changes_cursor(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE relay_link SET changes_cursor = MAX(changes_cursor, ?1) WHERE id = 1",
            [id],
        )?;
        Ok(())
    }
}

impl Reader {
    /// Up to `limit` of the relay's changes after `after`, oldest first. A row that doesn't read
    /// as a change (written by a newer relay) is skipped.
    pub fn changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, HandChange)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, change FROM relay_changes WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows: Vec<(i64, String)> = stmt
            .query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, text)| Some((id, serde_json::from_str(&text).ok()?)))
            .collect())
    }

    /// The place of the change `uid` in `relay_changes`, if the relay has it.
    pub fn change_id(&self, uid: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT id FROM relay_changes WHERE uid = ?1", [uid], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The newest id in `relay_changes` (0 when there are none).
    pub fn newest_change_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM relay_changes", [], |r| {
                r.get(0)
            })?)
    }

    /// Up to `limit` stored, not erased, not test deliveries after id `after`, with their
    /// connection's settings: what a forget on the relay reads.
    pub fn deliveries_to_check(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryToCheck>, StoreError> {
        deliveries_to_check(&self.conn, after, limit)
    }

    /// The changes this desk owes its relay, oldest first.
    pub fn hand_changes_to_send(&self) -> Result<Vec<HandChange>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT change FROM relay_outbox ORDER BY id")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|text| Ok(serde_json::from_str(&text)?))
            .collect()
    }

    /// How far this desk has applied its relay's changes (0 when not joined).
    pub fn changes_cursor(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT changes_cursor FROM relay_link WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }
}

/// Up to `limit` stored, not erased, not test deliveries after id `after`, with their
/// connection's settings: what a forget reads to find deliveries about its records (on a
/// relay, every one; on a desk, those not derived yet).
pub(crate) fn deliveries_to_check(
    conn: &rusqlite::Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<DeliveryToCheck>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, c.provider, c.name, c.settings, d.headers, d.body, d.body_codec
         FROM deliveries d JOIN connections c ON c.id = d.connection_id
         WHERE d.id > ?1 AND d.erased_at IS NULL AND d.is_test = 0
         ORDER BY d.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        let settings: String = r.get(3)?;
        let headers: String = r.get(4)?;
        let bad = |i: usize, e: serde_json::Error| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        };
        Ok(DeliveryToCheck {
            id: r.get(0)?,
            provider: crate::stored::column(r, 1, crate::stored::provider)?,
            connection: r.get(2)?,
            settings: serde_json::from_str(&settings).map_err(|e| bad(3, e))?,
            headers: serde_json::from_str(&headers).map_err(|e| bad(4, e))?,
            body: crate::stored::body(r.get(6)?, r.get(5)?).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[path = "relay_changes_tests.rs"]
mod tests;
