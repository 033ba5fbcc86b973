//! The relay's own tables: paired devices, one-time pairing codes, sealed connection secrets, and
//! the feed desks pull deliveries from.
//!
//! Tokens and codes are kept only as SHA-256 hashes (the caller hashes them): a copy of the
//! database lets nobody pull or pair. Secrets are kept only sealed (the caller seals them with a
//! key that is not in the database).
//!
//! **The feed never skips.** A desk asks for "deliveries after id N" and saves the last id it got.
//! That is only safe if no delivery with an id `<= N` can become visible after the desk read past
//! it. Here it cannot: every delivery is written by the one writer thread (the ingest pipeline),
//! and SQLite runs one write transaction at a time, so ids become visible in the order they were
//! given. Two things could still break it, and are designed out:
//! - SQLite gives a new row `max(id) + 1`, so deleting the newest delivery (retention) would hand
//!   its id out again, below every desk's cursor: [`Writer::delete_acknowledged`] never deletes the
//!   newest row.
//! - A second writer (another process inserting deliveries) would break the ordering argument;
//!   only the pipeline of the process holding the data folder's lock inserts deliveries.

use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::{ConnectionSettings, Provider};
use rusqlite::{OptionalExtension, params};

/// A device paired with this relay.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub paired_at: DateTime<Utc>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The newest delivery id the device has stored.
    pub acked: i64,
    /// Deliveries it has not acknowledged yet (counted only by [`Reader::devices`] and
    /// [`Reader::device_behind`]; 0 elsewhere).
    pub behind: i64,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a pairing code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// No such code (mistyped, or never made here).
    Unknown,
    /// The code was already used.
    Used,
    Expired,
    /// Since the code was made, another device took its name.
    NameTaken,
}

/// One delivery as a desk pulls it: what the relay stored, with the connection it came in on.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub id: i64,
    pub provider: Provider,
    pub connection: String,
    pub received_at: DateTime<Utc>,
    pub dedupe_key: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub verification: String,
    pub is_test: bool,
}

/// A connection as desks need it to read what came in on it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConnection {
    pub provider: Provider,
    pub name: String,
    pub settings: ConnectionSettings,
}

/// A sealed secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRow {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// How often a device's `last_seen` is written at most (every pull would otherwise be a write).
const LAST_SEEN_RESOLUTION_MS: i64 = 30_000;

/// A device's columns, without how far behind it is (`0`): counting that reads every delivery it
/// hasn't acknowledged, far too much for every request a desk makes while catching up.
const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.admin, d.paired_at, d.last_seen, d.acked, d.revoked_at, 0";
/// [`DEVICE_COLUMNS`] with how far behind the device is, for listings.
const DEVICE_COLUMNS_BEHIND: &str =
    "d.id, d.name, d.admin, d.paired_at, d.last_seen, d.acked, d.revoked_at,
     (SELECT COUNT(*) FROM deliveries WHERE id > d.acked)";

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        name: r.get(1)?,
        admin: r.get(2)?,
        paired_at: from_millis(r.get(3)?),
        last_seen: r.get::<_, Option<i64>>(4)?.map(from_millis),
        acked: r.get(5)?,
        revoked_at: r.get::<_, Option<i64>>(6)?.map(from_millis),
        behind: r.get(7)?,
    })
}

impl Writer {
    /// Records a new pairing code (by hash) for a device called `name`.
    pub fn add_pairing_code(
        &mut self,
        code_hash: &[u8],
        name: &str,
        admin: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.active_device(name)?.is_some() {
            return Err(StoreError::Invalid(format!(
                "A device called '{name}' is already paired. Choose another name, or end its access first with `clientele relay revoke {name}`."
            )));
        }
        // Old codes are of no use to anyone: keep the table small.
        self.conn.execute(
            "DELETE FROM relay_pairing_codes WHERE expires_at < ?1",
            [to_millis(now) - 86_400_000],
        )?;
        self.conn.execute(
            "INSERT INTO relay_pairing_codes (code_hash, device_name, admin, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![code_hash, name, admin, to_millis(now), to_millis(expires_at)],
        )?;
        Ok(())
    }

    /// Exchanges a pairing code for a device with the token hash `token_hash`, once. `rename`
    /// replaces the name the code was made for (the desk's `--name`).
    pub fn claim_pairing_code(
        &mut self,
        code_hash: &[u8],
        token_hash: &[u8],
        rename: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Device, ClaimRefused>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<(String, bool, i64, Option<i64>)> = tx
            .query_row(
                "SELECT device_name, admin, expires_at, used_at FROM relay_pairing_codes
                 WHERE code_hash = ?1",
                [code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((name, admin, expires_at, used_at)) = found else {
            return Ok(Err(ClaimRefused::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(ClaimRefused::Used));
        }
        if expires_at <= to_millis(now) {
            return Ok(Err(ClaimRefused::Expired));
        }
        let name = rename.unwrap_or(&name).to_string();
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM relay_devices WHERE name = ?1 AND revoked_at IS NULL)",
            [&name],
            |r| r.get(0),
        )?;
        if taken {
            return Ok(Err(ClaimRefused::NameTaken));
        }
        tx.execute(
            "UPDATE relay_pairing_codes SET used_at = ?2 WHERE code_hash = ?1",
            params![code_hash, to_millis(now)],
        )?;
        // A new device starts at the beginning: it gets the relay's whole history.
        tx.execute(
            "INSERT INTO relay_devices (name, token_hash, admin, paired_at, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![name, token_hash, admin, to_millis(now)],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Ok(self.device(id)?.ok_or_else(|| {
            StoreError::NotFound("the device just paired".into())
        })?))
    }

    /// Ends a device's access. Returns false when no such device is paired.
    pub fn revoke_device(&mut self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE relay_devices SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, to_millis(now)],
        )?;
        Ok(changed > 0)
    }

    /// Notes that a device was seen (written at most every half minute per device).
    pub fn touch_device(&mut self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = to_millis(now);
        self.conn
            .prepare_cached(
                "UPDATE relay_devices SET last_seen = ?2
                 WHERE id = ?1 AND (last_seen IS NULL OR last_seen < ?2 - ?3)",
            )?
            .execute(params![id, now, LAST_SEEN_RESOLUTION_MS])?;
        Ok(())
    }

    /// Records that a device has stored every delivery up to `upto`. Never moves backwards.
    pub fn acknowledge(&mut self, id: i64, upto: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE relay_devices SET acked = MAX(acked, ?2) WHERE id = ?1")?
            .execute(params![id, upto])?;
        Ok(())
    }

    /// Deletes deliveries received before `cutoff` that every paired, not-revoked device has
    /// acknowledged. With no device paired nothing is deleted: nobody has them yet. The newest
    /// delivery is always kept, so its id is never handed out again (see the module docs).
    pub fn delete_acknowledged(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let everyone: Option<i64> = tx.query_row(
            "SELECT MIN(acked) FROM relay_devices WHERE revoked_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        let Some(everyone) = everyone else {
            return Ok(0);
        };
        let deleted = tx.execute(
            "DELETE FROM deliveries
             WHERE id <= ?1 AND received_at < ?2
               AND id < (SELECT MAX(id) FROM deliveries)
               AND id NOT IN (SELECT delivery_id FROM delivery_outcomes)",
            params![everyone, to_millis(cutoff)],
        )?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Seals (replaces) the secret of `account`.
    pub fn put_sealed_secret(&mut self, account: &str, row: &SealedRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sealed_secrets (account, nonce, ciphertext) VALUES (?1, ?2, ?3)
             ON CONFLICT (account) DO UPDATE SET nonce = excluded.nonce,
                ciphertext = excluded.ciphertext",
            params![account, row.nonce, row.ciphertext],
        )?;
        Ok(())
    }

    pub fn delete_sealed_secret(&mut self, account: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM sealed_secrets WHERE account = ?1", [account])?;
        Ok(())
    }

    fn active_device(&self, name: &str) -> Result<Option<Device>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {DEVICE_COLUMNS} FROM relay_devices d
                     WHERE d.name = ?1 AND d.revoked_at IS NULL"
                ),
                [name],
                device_from_row,
            )
            .optional()?)
    }

    fn device(&self, id: i64) -> Result<Option<Device>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM relay_devices d WHERE d.id = ?1"),
                [id],
                device_from_row,
            )
            .optional()?)
    }
}

impl Reader {
    /// The active (not revoked) device holding the token with this hash.
    pub fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<Device>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM relay_devices d
                 WHERE d.token_hash = ?1 AND d.revoked_at IS NULL"
            ))?
            .query_row([token_hash], device_from_row)
            .optional()?)
    }

    /// Whether the device `id` is paired and not revoked.
    pub fn device_active(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM relay_devices WHERE id = ?1 AND revoked_at IS NULL)",
            )?
            .query_row([id], |r| r.get(0))?)
    }

    /// How many deliveries the device `id` hasn't acknowledged.
    pub fn device_behind(&self, id: i64) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM deliveries
             WHERE id > (SELECT acked FROM relay_devices WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Every device ever paired, revoked ones included, by name.
    pub fn devices(&self) -> Result<Vec<Device>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {DEVICE_COLUMNS_BEHIND} FROM relay_devices d ORDER BY d.name, d.id"
        ))?;
        let rows = stmt.query_map([], device_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` deliveries after `after`, oldest first.
    pub fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, c.provider, c.name, d.received_at, d.dedupe_key, d.headers, d.body,
                    d.verification, d.is_test, d.body_codec
             FROM deliveries d JOIN connections c ON c.id = d.connection_id
             WHERE d.id > ?1 AND d.erased_at IS NULL ORDER BY d.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            let headers: String = r.get(5)?;
            Ok(FeedItem {
                id: r.get(0)?,
                provider: crate::stored::column(r, 1, crate::stored::provider)?,
                connection: r.get(2)?,
                received_at: from_millis(r.get(3)?),
                dedupe_key: r.get(4)?,
                headers: serde_json::from_str(&headers).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        5,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
                // Unpacked: desks receive the body byte for byte, as the provider sent it.
                body: crate::stored::body(r.get(9)?, r.get(6)?).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        6,
                        rusqlite::types::Type::Blob,
                        Box::new(e),
                    )
                })?,
                verification: r.get(7)?,
                is_test: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The connections named, with their settings (removed ones too: their deliveries are still
    /// pulled).
    pub fn feed_connections(
        &self,
        names: &[(Provider, String)],
    ) -> Result<Vec<FeedConnection>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT settings FROM connections WHERE provider = ?1 AND name = ?2")?;
        let mut found = Vec::with_capacity(names.len());
        for (provider, name) in names {
            let settings: Option<String> = stmt
                .query_row(params![provider.id(), name], |r| r.get(0))
                .optional()?;
            if let Some(settings) = settings {
                found.push(FeedConnection {
                    provider: *provider,
                    name: name.clone(),
                    settings: serde_json::from_str(&settings)?,
                });
            }
        }
        Ok(found)
    }

    pub fn sealed_secret(&self, account: &str) -> Result<Option<SealedRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT nonce, ciphertext FROM sealed_secrets WHERE account = ?1",
                [account],
                |r| {
                    Ok(SealedRow {
                        nonce: r.get(0)?,
                        ciphertext: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests;
