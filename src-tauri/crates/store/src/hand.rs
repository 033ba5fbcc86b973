//! Decisions staff make by hand about who is who (merge, split, undo), kept apart from the
//! automatic links and applied over them by [`crate::people`], and the outbox of hand changes a
//! desk owes its relay.

use crate::time::to_millis;
use crate::{StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::hand::HandChange;
use rusqlite::params;

impl Writer {
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
