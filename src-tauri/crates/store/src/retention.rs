//! What the retention settings and each connection's "when the provider deletes a customer"
//! choice select for forgetting, and dropping old refused requests. The forgetting itself is
//! [`Writer::forget`](crate::Writer::forget), the same as forgetting on request.
//!
//! The settings live in `settings` (absent = off): `retention_inactive_months` (forget people
//! with no activity for that long) and `retention_rejections_days` (drop refused requests older
//! than that). On a desk joined to a relay they are the relay's, copied at each pull, and
//! `retention_held_by_relay` says so.

use crate::time::to_millis;
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::ConnectionSettings;
use clientele_core::hand::RecordRef;
use rusqlite::{OptionalExtension, params};

/// The retention settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Forget people with no activity for this many months.
    pub inactive_months: Option<u32>,
    /// Drop refused requests older than this many days.
    pub rejections_days: Option<u32>,
    /// Set by an admin desk and held by the relay this desk is joined to.
    pub held_by_relay: bool,
}

const INACTIVE: &str = "retention_inactive_months";
const REJECTIONS: &str = "retention_rejections_days";
const HELD: &str = "retention_held_by_relay";

impl Reader {
    pub fn retention(&self) -> Result<Retention, StoreError> {
        let number = |key: &str| -> Result<Option<u32>, StoreError> {
            let value: Option<String> = self
                .conn
                .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?;
            Ok(value.and_then(|v| v.parse().ok()).filter(|n| *n > 0))
        };
        Ok(Retention {
            inactive_months: number(INACTIVE)?,
            rejections_days: number(REJECTIONS)?,
            held_by_relay: number(HELD)? == Some(1),
        })
    }

    /// People whose latest activity (their newest event) is before `cutoff`, oldest first.
    pub fn inactive_people(&self, cutoff: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM people WHERE last_event_at < ?1 ORDER BY last_event_at, id",
            )?
            .query_map([to_millis(cutoff)], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// Records their provider deleted long enough ago that their connection's choice says to
    /// forget them by `now`.
    pub fn deleted_records_due(&self, now: DateTime<Utc>) -> Result<Vec<RecordRef>, StoreError> {
        let connections: Vec<(i64, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT id, provider, name, settings FROM connections WHERE removed_at IS NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut due = Vec::new();
        for (id, provider, name, settings) in connections {
            let settings: ConnectionSettings = serde_json::from_str(&settings)?;
            let Some(days) = settings.forget_deleted_after_days else {
                continue;
            };
            let cutoff = now - chrono::Duration::days(i64::from(days));
            let provider = crate::stored::provider(&provider)?;
            let refs: Vec<String> = self
                .conn
                .prepare_cached(
                    "SELECT customer_ref FROM source_profiles
                     WHERE connection_id = ?1 AND deleted_at IS NOT NULL AND deleted_at <= ?2
                     ORDER BY id",
                )?
                .query_map(params![id, to_millis(cutoff)], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            due.extend(refs.into_iter().map(|customer_ref| RecordRef {
                provider,
                connection: name.clone(),
                customer_ref,
            }));
        }
        Ok(due)
    }
}

impl Writer {
    /// Saves the retention settings (`None` turns one off). `held_by_relay` marks them as the
    /// relay's (a desk joined to one copies them at each pull).
    pub fn set_retention(&mut self, retention: &Retention) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (key, value) in [
            (INACTIVE, retention.inactive_months),
            (REJECTIONS, retention.rejections_days),
            (HELD, retention.held_by_relay.then_some(1)),
        ] {
            match value.filter(|n| *n > 0) {
                Some(n) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, n.to_string()],
                )?,
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [key])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops refused requests received before `cutoff` and notes it in the erasure log (with
    /// `uid`, by `computer`, for retention). Returns how many went.
    pub fn drop_rejections_before(
        &mut self,
        cutoff: DateTime<Utc>,
        uid: &str,
        at: DateTime<Utc>,
        computer: &str,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let dropped = tx.execute(
            "DELETE FROM rejections WHERE received_at < ?1",
            [to_millis(cutoff)],
        )?;
        if dropped > 0 {
            tx.execute(
                "INSERT INTO erasures (uid, at, computer, reason, people, records, deliveries,
                                       rejections)
                 VALUES (?1, ?2, ?3, 'retention', 0, 0, 0, ?4)",
                params![uid, to_millis(at), computer, dropped as i64],
            )?;
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// Sets the "when the provider deletes a customer" choice of this desk's connection
    /// `provider`/`name`: `None` keeps their history, `Some(days)` forgets them that long after.
    pub fn set_forget_deleted(
        &mut self,
        provider: clientele_core::Provider,
        name: &str,
        days: Option<u32>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let settings: Option<String> = tx
            .query_row(
                "SELECT settings FROM connections
                 WHERE provider = ?1 AND name = ?2 AND removed_at IS NULL",
                params![provider.id(), name],
                |r| r.get(0),
            )
            .optional()?;
        let Some(settings) = settings else {
            return Err(StoreError::NotFound(format!(
                "There is no {} connection called '{name}'.",
                provider.display_name()
            )));
        };
        let mut settings: ConnectionSettings = serde_json::from_str(&settings)?;
        settings.forget_deleted_after_days = days;
        tx.execute(
            "UPDATE connections SET settings = ?3 WHERE provider = ?1 AND name = ?2
             AND removed_at IS NULL",
            params![provider.id(), name, serde_json::to_string(&settings)?],
        )?;
        tx.commit()?;
        Ok(())
    }
}
