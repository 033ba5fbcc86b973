//! Queries behind the app's screens: connection health, the activity list, settings, and
//! re-reading a single delivery.

use crate::ingest::DeliveryStatus;
use crate::stored;
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::Provider;
use rusqlite::{OptionalExtension, params};

/// How one connection is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionStats {
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Real deliveries (not test events) since the given time.
    pub deliveries_since: i64,
    pub rejections_since: i64,
    /// Arrival times of the latest deliveries, newest first (for "longer than usual").
    pub recent_arrivals: Vec<DateTime<Utc>>,
}

/// One line of the activity list.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityRow {
    Delivery {
        id: i64,
        provider: Provider,
        connection: String,
        received_at: DateTime<Utc>,
        status: DeliveryStatus,
        duplicates: i64,
        is_test: bool,
        /// The first timeline sentence this delivery produced, if any.
        summary: Option<String>,
        error: Option<String>,
        /// The person that sentence is about (id and name), when the delivery was about one.
        person: Option<(i64, String)>,
    },
    Rejection {
        id: i64,
        /// As the refused request named it, which may be no known provider (see
        /// [`RejectionRow::provider`](crate::RejectionRow::provider)).
        provider: String,
        connection: String,
        received_at: DateTime<Utc>,
        code: String,
        reason: String,
    },
    /// A delivery about a customer kept forgotten: acknowledged, not kept. Nothing about it but
    /// where and when it arrived.
    Withheld {
        id: i64,
        provider: Provider,
        connection: String,
        received_at: DateTime<Utc>,
    },
}

impl ActivityRow {
    pub fn received_at(&self) -> DateTime<Utc> {
        match self {
            ActivityRow::Delivery { received_at, .. }
            | ActivityRow::Rejection { received_at, .. }
            | ActivityRow::Withheld { received_at, .. } => *received_at,
        }
    }
}

/// Which activity to list.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub deliveries: bool,
    pub rejections: bool,
    /// Only deliveries from connections of this provider, and refusals of requests that named
    /// it.
    pub provider: Option<Provider>,
    pub status: Option<DeliveryStatus>,
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl Reader {
    pub fn connection_stats(
        &self,
        connection_id: i64,
        provider: Provider,
        name: &str,
        since: DateTime<Utc>,
    ) -> Result<ConnectionStats, StoreError> {
        let recent_arrivals: Vec<DateTime<Utc>> = self
            .conn
            .prepare_cached(
                "SELECT received_at FROM deliveries WHERE connection_id = ?1 AND is_test = 0
                 ORDER BY id DESC LIMIT 20",
            )?
            .query_map([connection_id], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(from_millis))
            .collect::<Result<_, _>>()?;
        let deliveries_since: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM deliveries
             WHERE connection_id = ?1 AND is_test = 0 AND received_at >= ?2",
            params![connection_id, to_millis(since)],
            |r| r.get(0),
        )?;
        let rejections_since: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM rejections WHERE provider = ?1 AND connection = ?2 AND received_at >= ?3",
            params![provider.id(), name, to_millis(since)],
            |r| r.get(0),
        )?;
        Ok(ConnectionStats {
            last_delivery_at: recent_arrivals.first().copied(),
            deliveries_since,
            rejections_since,
            recent_arrivals,
        })
    }

    /// The latest refusals for one connection, newest first.
    pub fn rejections_for(
        &self,
        provider: Provider,
        name: &str,
        limit: usize,
    ) -> Result<Vec<crate::RejectionRow>, StoreError> {
        Ok(self
            .rejections(None)?
            .into_iter()
            .filter(|r| r.provider == provider.id() && r.connection == name)
            .take(limit)
            .collect())
    }

    /// Deliveries and refusals, newest first, merged.
    pub fn activity(&self, filter: &ActivityFilter) -> Result<Vec<ActivityRow>, StoreError> {
        let limit = filter.limit.max(1) as i64;
        let since = filter.since.map_or(i64::MIN, to_millis);
        let mut rows = Vec::new();
        if filter.deliveries {
            let mut stmt = self.conn.prepare_cached(
                // The first event (seq 0) names the sentence and the person, each found through
                // its primary key or unique index: one lookup per row, never a scan.
                "SELECT d.id, c.provider, c.name, d.received_at, o.status, d.duplicates, d.is_test,
                        e.summary, o.error, p.id, p.display_name
                 FROM deliveries d JOIN connections c ON c.id = d.connection_id
                 LEFT JOIN delivery_outcomes o ON o.delivery_id = d.id
                 LEFT JOIN events e ON e.delivery_id = d.id AND e.seq = 0
                 LEFT JOIN source_profiles sp ON sp.id = e.source_profile_id
                 LEFT JOIN people p ON p.id = sp.person_id
                 WHERE d.received_at >= ?1 AND (?2 IS NULL OR c.provider = ?2)
                   AND (?3 IS NULL OR COALESCE(o.status, 'pending') = ?3)
                 ORDER BY d.id DESC LIMIT ?4",
            )?;
            let found = stmt.query_map(
                params![
                    since,
                    filter.provider.map(Provider::id),
                    filter.status.map(|s| s.as_str()),
                    limit
                ],
                |r| {
                    let status: Option<String> = r.get(4)?;
                    Ok(ActivityRow::Delivery {
                        id: r.get(0)?,
                        provider: stored::column(r, 1, stored::provider)?,
                        connection: r.get(2)?,
                        received_at: from_millis(r.get(3)?),
                        status: DeliveryStatus::from_db(status.as_deref())
                            .map_err(stored::in_column(4))?,
                        duplicates: r.get(5)?,
                        is_test: r.get(6)?,
                        summary: r.get(7)?,
                        error: r.get(8)?,
                        person: match (r.get::<_, Option<i64>>(9)?, r.get(10)?) {
                            (Some(id), Some(name)) => Some((id, name)),
                            _ => None,
                        },
                    })
                },
            )?;
            for row in found {
                rows.push(row?);
            }
        }
        if filter.rejections && filter.status.is_none() {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, provider, connection, received_at, code, reason FROM rejections
                 WHERE received_at >= ?1 AND (?2 IS NULL OR provider = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let found = stmt.query_map(
                params![since, filter.provider.map(Provider::id), limit],
                |r| {
                    Ok(ActivityRow::Rejection {
                        id: r.get(0)?,
                        provider: r.get(1)?,
                        connection: r.get(2)?,
                        received_at: from_millis(r.get(3)?),
                        code: r.get(4)?,
                        reason: r.get(5)?,
                    })
                },
            )?;
            for row in found {
                rows.push(row?);
            }
        }
        if filter.deliveries && filter.status.is_none() {
            let mut stmt = self.conn.prepare_cached(
                "SELECT w.id, c.provider, c.name, w.received_at
                 FROM withheld w JOIN connections c ON c.id = w.connection_id
                 WHERE w.received_at >= ?1 AND (?2 IS NULL OR c.provider = ?2)
                 ORDER BY w.id DESC LIMIT ?3",
            )?;
            let found = stmt.query_map(
                params![since, filter.provider.map(Provider::id), limit],
                |r| {
                    Ok(ActivityRow::Withheld {
                        id: r.get(0)?,
                        provider: stored::column(r, 1, stored::provider)?,
                        connection: r.get(2)?,
                        received_at: from_millis(r.get(3)?),
                    })
                },
            )?;
            for row in found {
                rows.push(row?);
            }
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.received_at()));
        rows.truncate(limit as usize);
        Ok(rows)
    }

    /// The timeline sentences one delivery produced, in order.
    pub fn delivery_events(
        &self,
        delivery_id: i64,
    ) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT occurred_at, summary FROM events WHERE delivery_id = ?1 ORDER BY seq",
            )?
            .query_map([delivery_id], |r| Ok((from_millis(r.get(0)?), r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// The people one delivery's events are about (id and name), in the order it named them.
    pub fn delivery_people(&self, delivery_id: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT p.id, p.display_name FROM events e
                 JOIN source_profiles sp ON sp.id = e.source_profile_id
                 JOIN people p ON p.id = sp.person_id
                 WHERE e.delivery_id = ?1 ORDER BY e.seq",
            )?
            .query_map([delivery_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut seen = std::collections::BTreeSet::new();
        Ok(rows
            .into_iter()
            .filter(|(id, _)| seen.insert(*id))
            .collect())
    }

    /// A stored setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }
}

impl Writer {
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}
