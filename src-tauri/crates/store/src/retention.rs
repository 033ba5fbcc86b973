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
use clientele_core::relay_protocol::Policy;
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

/// The settings keys of the retention policy.
pub const RETENTION_INACTIVE_MONTHS: &str = "retention_inactive_months";
pub const RETENTION_REJECTIONS_DAYS: &str = "retention_rejections_days";
/// Present (`1`) on a desk whose retention policy comes from its relay.
pub const RETENTION_HELD_BY_RELAY: &str = "retention_held_by_relay";
const INACTIVE: &str = RETENTION_INACTIVE_MONTHS;
const REJECTIONS: &str = RETENTION_REJECTIONS_DAYS;
const HELD: &str = RETENTION_HELD_BY_RELAY;

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

    /// The retention policy as the relay protocol carries it (on a relay: the one it holds for
    /// its desks).
    pub fn retention_policy(&self) -> Result<Policy, StoreError> {
        let kept = self.retention()?;
        Ok(Policy {
            retention_inactive_months: kept.inactive_months,
            retention_rejections_days: kept.rejections_days,
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

    /// Stores a retention policy from (or for) the relay. `held_by_relay`: on a desk, the
    /// policy came from its relay (its own Settings may not change it); on the relay, false.
    pub fn store_retention_policy(
        &mut self,
        policy: &Policy,
        held_by_relay: bool,
    ) -> Result<(), StoreError> {
        self.set_retention(&Retention {
            inactive_months: policy.retention_inactive_months,
            rejections_days: policy.retention_rejections_days,
            held_by_relay,
        })
    }

    /// The policy no longer comes from a relay (this desk left it); the values stay.
    pub fn release_retention_policy(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [HELD])?;
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
}
