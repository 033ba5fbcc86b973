//! The log of refused requests.

use crate::time::from_millis;
use crate::{Reader, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One refused request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionRow {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The provider the request named, as it named it: a `String`, not a
    /// [`Provider`](clientele_core::Provider), because a refused request may name a provider
    /// nobody knows.
    pub provider: String,
    pub connection: String,
    pub code: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RejectionRow> {
    Ok(RejectionRow {
        id: r.get(0)?,
        received_at: from_millis(r.get(1)?),
        provider: r.get(2)?,
        connection: r.get(3)?,
        code: r.get(4)?,
        reason: r.get(5)?,
        remote_addr: r.get(6)?,
    })
}

impl Reader {
    /// Refused requests after the one with id `after`, oldest first (what a relay's admin desks
    /// copy).
    pub fn rejections_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RejectionRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, received_at, provider, connection, code, reason, remote_addr
                 FROM rejections WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(rusqlite::params![after, limit as i64], from_row)?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Refused requests, newest first.
    pub fn rejections(&self, limit: Option<usize>) -> Result<Vec<RejectionRow>, StoreError> {
        let limit = limit.map_or(-1, |l| l as i64);
        self.conn
            .prepare_cached(
                "SELECT id, received_at, provider, connection, code, reason, remote_addr
                 FROM rejections ORDER BY id DESC LIMIT ?1",
            )?
            .query_map([limit], from_row)?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}
