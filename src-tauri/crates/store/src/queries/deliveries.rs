//! Stored deliveries: the list, one delivery with its content, and how far derivation got.

use crate::ingest::DeliveryStatus;
use crate::stored;
use crate::time::from_millis;
use crate::{Reader, StoreError};
use chrono::{DateTime, Utc};
use clientele_core::Provider;
use rusqlite::OptionalExtension;
use serde::Serialize;

/// One stored delivery in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub provider: Provider,
    pub connection: String,
    pub received_at: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub dedupe_key: String,
    pub duplicates: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A stored delivery with its content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub row: DeliveryRow,
    pub headers: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub verification: String,
}

impl Reader {
    /// Stored deliveries, newest first; all of them unless `limit` is given.
    pub fn deliveries(&self, limit: Option<usize>) -> Result<Vec<DeliveryRow>, StoreError> {
        let limit = limit.map_or(-1, |l| l as i64);
        self.conn
            .prepare_cached(
                "SELECT d.id, c.provider, c.name, d.received_at, o.status, d.dedupe_key,
                        d.duplicates, o.error
                 FROM deliveries d JOIN connections c ON c.id = d.connection_id
                 LEFT JOIN delivery_outcomes o ON o.delivery_id = d.id
                 ORDER BY d.id DESC LIMIT ?1",
            )?
            .query_map([limit], delivery_row)?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// One delivery with its body and kept headers.
    pub fn delivery(&self, id: i64) -> Result<DeliveryDetail, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT d.id, c.provider, c.name, d.received_at, o.status, d.dedupe_key,
                        d.duplicates, o.error, d.headers, d.body, d.verification, d.body_codec
                 FROM deliveries d JOIN connections c ON c.id = d.connection_id
                 LEFT JOIN delivery_outcomes o ON o.delivery_id = d.id
                 WHERE d.id = ?1",
            )?
            .query_row([id], |r| {
                let headers: String = r.get(8)?;
                Ok((
                    delivery_row(r)?,
                    headers,
                    (r.get::<_, i64>(11)?, r.get::<_, Vec<u8>>(9)?),
                    r.get::<_, String>(10)?,
                ))
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("There is no delivery with id {id}.")))
            .and_then(|(row, headers, (codec, body), verification)| {
                Ok(DeliveryDetail {
                    row,
                    headers: serde_json::from_str(&headers)?,
                    body: crate::stored::body(codec, body)?,
                    verification,
                })
            })
    }

    /// The id of the newest stored delivery.
    pub fn newest_delivery_id(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(id) FROM deliveries", [], |r| r.get(0))?)
    }

    /// Every delivery up to this id has been derived.
    pub fn derived_through(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes",
            [],
            |r| r.get(0),
        )?)
    }

    /// How many stored deliveries are not yet derived.
    pub fn pending_deliveries(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM deliveries)
                  - (SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes)",
            [],
            |r| r.get(0),
        )?)
    }
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let status: Option<String> = r.get(4)?;
    Ok(DeliveryRow {
        id: r.get(0)?,
        provider: stored::column(r, 1, stored::provider)?,
        connection: r.get(2)?,
        received_at: from_millis(r.get(3)?),
        status: DeliveryStatus::from_db(status.as_deref()).map_err(stored::in_column(4))?,
        dedupe_key: r.get(5)?,
        duplicates: r.get(6)?,
        error: r.get(7)?,
    })
}
