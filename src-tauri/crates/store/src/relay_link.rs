//! On a desk: the relay it pulls from, where it got to, and storing what it pulls.
//!
//! The cursor is saved in the same transaction as the deliveries it covers, so a desk killed at
//! any moment either has a page and its cursor, or neither: it asks again from where it really
//! is. (The dedupe key would make a repeat harmless anyway; this keeps `received` exact.)

use crate::ingest::{IngestOutcome, NewDelivery};
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::{ConnectionSettings, Provider};
use rusqlite::{OptionalExtension, params};

/// The relay this desk is joined to.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayLink {
    /// The address the desk talks to (`https://relay.example.com`).
    pub url: String,
    /// This desk's name on the relay.
    pub device_name: String,
    /// May manage the relay's connections.
    pub admin: bool,
    /// A certificate to trust for this relay (PEM), when it has a self-signed one.
    pub ca_cert: Option<String>,
    /// The address providers post to (`<public_url>/hooks/<provider>/<connection>`).
    pub public_url: String,
    pub joined_at: DateTime<Utc>,
    /// Where the next pull starts (opaque to the desk).
    pub cursor: String,
    pub last_pull_at: Option<DateTime<Utc>>,
    /// Deliveries received from the relay (duplicates of ones already here not counted).
    pub received: i64,
    /// On an admin desk: the newest of the relay's refusals copied here.
    pub rejections_cursor: i64,
}

/// What a pulled page moves the link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledUpTo {
    pub cursor: String,
    pub at: DateTime<Utc>,
}

impl Writer {
    /// Joins a relay (replacing any previous link).
    pub fn set_relay_link(&mut self, link: &RelayLink) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO relay_link
                (id, url, device_name, admin, ca_cert, public_url, joined_at, cursor, last_pull_at,
                 received, rejections_cursor)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                link.url,
                link.device_name,
                link.admin,
                link.ca_cert,
                link.public_url,
                to_millis(link.joined_at),
                link.cursor,
                link.last_pull_at.map(to_millis),
                link.received,
                link.rejections_cursor
            ],
        )?;
        Ok(())
    }

    /// Leaves the relay. Everything already pulled stays.
    pub fn clear_relay_link(&mut self) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM relay_link", [])? > 0)
    }

    /// The connection pulled deliveries of `provider`/`name` are stored under: the desk's own
    /// connection of that name if it has one (so a delivery that arrives both ways is stored
    /// once), else a new one marked as the relay's. Its settings follow the relay's.
    pub fn relay_connection(
        &mut self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let found: Option<(i64, bool)> = self
            .conn
            .query_row(
                "SELECT id, via_relay FROM connections WHERE provider = ?1 AND name = ?2",
                params![provider.id(), name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let settings = serde_json::to_string(settings)?;
        match found {
            Some((id, true)) => {
                self.conn.execute(
                    "UPDATE connections SET settings = ?2, removed_at = NULL WHERE id = ?1",
                    params![id, settings],
                )?;
                Ok(id)
            }
            Some((id, false)) => Ok(id),
            None => {
                self.conn.execute(
                    "INSERT INTO connections
                        (provider, name, settings, requires_secret, created_at, via_relay)
                     VALUES (?1, ?2, ?3, 1, ?4, 1)",
                    params![provider.id(), name, settings, to_millis(now)],
                )?;
                Ok(self.conn.last_insert_rowid())
            }
        }
    }

    /// Marks the relay's connection `provider`/`name` as gone from this desk's list (an admin
    /// removed it on the relay). Its deliveries and customers stay.
    pub fn drop_relay_connection(
        &mut self,
        provider: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE connections SET removed_at = ?3
             WHERE provider = ?1 AND name = ?2 AND via_relay = 1 AND removed_at IS NULL",
            params![provider.id(), name, to_millis(now)],
        )?;
        Ok(())
    }

    /// Stores a pulled page and moves the cursor past it, in one durable transaction.
    pub fn ingest_pulled(
        &mut self,
        deliveries: &[NewDelivery],
        up_to: &PulledUpTo,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let outcomes = crate::ingest::insert_deliveries(&tx, deliveries, None)?;
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Stored { .. }))
            .count() as i64;
        tx.execute(
            "UPDATE relay_link SET cursor = ?1, last_pull_at = ?2, received = received + ?3
             WHERE id = 1",
            params![up_to.cursor, to_millis(up_to.at), stored],
        )?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// Copies the relay's refusals into this desk's log (so Activity and each connection's health
    /// show them) and moves the refusals cursor to `up_to`, in one transaction: each is copied
    /// once, even if the desk stops in between.
    pub fn ingest_relay_rejections(
        &mut self,
        rejections: &[crate::NewRejection],
        up_to: i64,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        crate::ingest::insert_rejections(&tx, rejections)?;
        tx.execute(
            "UPDATE relay_link SET rejections_cursor = MAX(rejections_cursor, ?1) WHERE id = 1",
            [up_to],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Notes a successful pull that brought nothing new.
    pub fn note_pull(&mut self, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE relay_link SET last_pull_at = ?1 WHERE id = 1",
            [to_millis(at)],
        )?;
        Ok(())
    }
}

impl Reader {
    /// The relay this desk pulls from, if it has joined one.
    pub fn relay_link(&self) -> Result<Option<RelayLink>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT url, device_name, admin, ca_cert, public_url, joined_at, cursor,
                        last_pull_at, received, rejections_cursor
                 FROM relay_link WHERE id = 1",
                [],
                |r| {
                    Ok(RelayLink {
                        url: r.get(0)?,
                        device_name: r.get(1)?,
                        admin: r.get(2)?,
                        ca_cert: r.get(3)?,
                        public_url: r.get(4)?,
                        joined_at: from_millis(r.get(5)?),
                        cursor: r.get(6)?,
                        last_pull_at: r.get::<_, Option<i64>>(7)?.map(from_millis),
                        received: r.get(8)?,
                        rejections_cursor: r.get(9)?,
                    })
                },
            )
            .optional()?)
    }
}
