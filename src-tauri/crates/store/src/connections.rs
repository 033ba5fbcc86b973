//! Connections: one per provider account that sends to Clientele ("Vagaro – main salon"). The
//! secret is never here; only whether the connection requires one.

use crate::stored;
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::{ConnectionSettings, Provider};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

/// A configured connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    pub id: i64,
    pub provider: Provider,
    pub name: String,
    pub settings: ConnectionSettings,
    /// False only when the connection was added on purpose without a secret.
    pub requires_secret: bool,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    /// A relay's connection, on a desk that pulls from it: its deliveries arrive through the
    /// relay (which holds the secret), not at this computer's own listener.
    pub via_relay: bool,
}

/// What `add_connection` needs.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub provider: Provider,
    pub name: String,
    pub settings: ConnectionSettings,
    pub requires_secret: bool,
}

const MAX_NAME_LEN: usize = 64;

/// Connection names appear in the address providers post to, so they are kept URL-safe.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "'{name}' can't be used as a connection name: use 1 to {MAX_NAME_LEN} letters, digits, '-' or '_' (for example main-salon)."
        )))
    }
}

const COLUMNS: &str =
    "id, provider, name, settings, requires_secret, paused, created_at, via_relay";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Connection> {
    let settings: String = row.get(3)?;
    Ok(Connection {
        id: row.get(0)?,
        provider: stored::column(row, 1, stored::provider)?,
        name: row.get(2)?,
        settings: serde_json::from_str(&settings).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        requires_secret: row.get(4)?,
        paused: row.get(5)?,
        created_at: from_millis(row.get(6)?),
        via_relay: row.get(7)?,
    })
}

pub(crate) fn active(
    conn: &rusqlite::Connection,
    provider: Provider,
    name: &str,
) -> Result<Option<Connection>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM connections WHERE provider = ?1 AND name = ?2 AND removed_at IS NULL"
            ),
            params![provider.id(), name],
            from_row,
        )
        .optional()?)
}

impl Writer {
    /// Adds a connection, or brings back one that was removed (its history was kept).
    pub fn add_connection(
        &mut self,
        new: &NewConnection,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        validate_name(&new.name)?;
        if active(&self.conn, new.provider, &new.name)?.is_some() {
            return Err(StoreError::Invalid(format!(
                "There is already a {} connection called '{}'.",
                new.provider.display_name(),
                new.name
            )));
        }
        let settings = serde_json::to_string(&new.settings)?;
        self.conn.execute(
            "INSERT INTO connections (provider, name, settings, requires_secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (provider, name) DO UPDATE SET
                settings = excluded.settings, requires_secret = excluded.requires_secret,
                paused = 0, removed_at = NULL",
            params![
                new.provider.id(),
                new.name,
                settings,
                new.requires_secret,
                to_millis(now)
            ],
        )?;
        active(&self.conn, new.provider, &new.name)?
            .ok_or_else(|| StoreError::NotFound("the connection just added".into()))
    }

    /// Removes a connection from use. Its deliveries and customers are kept.
    pub fn remove_connection(
        &mut self,
        provider: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        let found = active(&self.conn, provider, name)?.ok_or_else(|| not_found(provider, name))?;
        self.conn.execute(
            "UPDATE connections SET removed_at = ?1 WHERE id = ?2",
            params![to_millis(now), found.id],
        )?;
        Ok(found)
    }

    /// Pauses or resumes a connection. A paused connection refuses deliveries with 503 so the
    /// provider keeps them and retries later.
    pub fn set_paused(
        &mut self,
        provider: Provider,
        name: &str,
        paused: bool,
    ) -> Result<Connection, StoreError> {
        let found = active(&self.conn, provider, name)?.ok_or_else(|| not_found(provider, name))?;
        self.conn.execute(
            "UPDATE connections SET paused = ?1 WHERE id = ?2",
            params![paused, found.id],
        )?;
        Ok(Connection { paused, ..found })
    }
}

pub(crate) fn not_found(provider: Provider, name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "There is no {} connection called '{name}'.",
        provider.display_name()
    ))
}

impl Reader {
    /// Connections in use, by provider then name.
    pub fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM connections WHERE removed_at IS NULL ORDER BY provider, name"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn connection(
        &self,
        provider: Provider,
        name: &str,
    ) -> Result<Option<Connection>, StoreError> {
        active(&self.conn, provider, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::temp_store;

    fn new(name: &str) -> NewConnection {
        NewConnection {
            provider: Provider::Vagaro,
            name: name.into(),
            settings: ConnectionSettings::default(),
            requires_secret: true,
        }
    }

    #[test]
    fn add_list_remove_and_add_back() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let now = Utc::now();
        let added = w.add_connection(&new("main"), now).unwrap();
        assert!(matches!(
            w.add_connection(&new("main"), now),
            Err(StoreError::Invalid(_))
        ));
        let r = store.reader().unwrap();
        assert_eq!(r.connections().unwrap(), vec![added.clone()]);
        w.remove_connection(Provider::Vagaro, "main", now).unwrap();
        assert!(r.connections().unwrap().is_empty());
        let back = w.add_connection(&new("main"), now).unwrap();
        assert_eq!(
            back.id, added.id,
            "re-adding keeps the same connection and its history"
        );
    }

    #[test]
    fn names_must_be_url_safe() {
        for bad in ["", "main salon", "a/b", "é", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        validate_name("Main_salon-2").unwrap();
    }
}
