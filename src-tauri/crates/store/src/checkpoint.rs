//! Keeping the WAL short without stalling the listener.
//!
//! Every commit appends pages to the WAL; a *checkpoint* copies them into the database file and
//! fsyncs it, after which the WAL starts again from its beginning. SQLite's own automatic
//! checkpoint runs inside the commit that crosses its threshold, on the writer thread, so the
//! deliveries waiting for that commit waited for the whole copy too: profiling `make bench` found
//! checkpoints behind most of the listener's slowest answers (10–30 ms at the 99th percentile).
//!
//! So the listener splits the work:
//! - a [`Checkpointer`] on its own connection and thread copies what it can, often, in `PASSIVE`
//!   mode — it never takes the write lock, so the writer keeps committing meanwhile;
//! - a copy rarely catches up while the writer keeps appending, and the WAL only starts again
//!   once every frame is copied. When the WAL has grown past [`WAL_RESTART_FRAMES`], the writer
//!   itself, between two groups, copies the few frames appended since the checkpointer's last pass
//!   ([`Writer::finish_checkpoint`]); its next transaction then starts the WAL again.
//!
//! (Copying only in the background was tried first: under a sustained burst the WAL never
//! restarted and grew past 130 MB.) SQLite's automatic checkpoint stays on the writer as a
//! backstop at [`BACKSTOP_FRAMES`], for when readers hold old snapshots for long.

use crate::{Store, StoreError, Writer};

/// Past this many frames (of one page each) in the WAL, the writer finishes the checkpoint.
pub const WAL_RESTART_FRAMES: i64 = 16_000;
/// The writer's automatic checkpoint, should the split one not keep up.
pub const BACKSTOP_FRAMES: i64 = 40_000;
/// A WAL file larger than this is cut back to it when it starts again (a burst's WAL isn't kept).
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Where a checkpoint left the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalProgress {
    /// Frames in the WAL.
    pub frames: i64,
    /// Of those, frames copied into the database file.
    pub copied: i64,
}

/// A connection that only copies the WAL into the database.
#[derive(Debug)]
pub struct Checkpointer {
    conn: rusqlite::Connection,
}

impl Store {
    /// The background half of checkpointing (see the module documentation).
    pub fn checkpointer(&self) -> Result<Checkpointer, StoreError> {
        Ok(Checkpointer {
            conn: self.connect()?,
        })
    }
}

impl Checkpointer {
    /// Copies every frame no reader still needs, without blocking the writer or readers.
    pub fn copy(&self) -> Result<WalProgress, StoreError> {
        passive_checkpoint(&self.conn)
    }
}

impl Writer {
    /// Hands routine checkpoints to a [`Checkpointer`]: SQLite's automatic one only steps in at
    /// `BACKSTOP_FRAMES` (40,000 frames).
    pub fn checkpoint_elsewhere(&mut self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", BACKSTOP_FRAMES)?;
        self.conn
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        Ok(())
    }

    /// Copies the frames the checkpointer hasn't yet. Called between transactions, no frame can
    /// be added meanwhile, so unless a reader holds an old snapshot the WAL is then fully copied
    /// and the next transaction starts it again.
    pub fn finish_checkpoint(&mut self) -> Result<WalProgress, StoreError> {
        passive_checkpoint(&self.conn)
    }
}

fn passive_checkpoint(conn: &rusqlite::Connection) -> Result<WalProgress, StoreError> {
    let (_busy, frames, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(WalProgress { frames, copied })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{connect, delivery, temp_store};
    use clientele_core::Provider;

    fn store_one(w: &mut Writer, connection_id: i64, key: &str) {
        w.ingest(&[delivery(connection_id, key, &[b'x'; 3_000])], &[])
            .unwrap();
    }

    #[test]
    fn the_wal_starts_again_once_the_writer_finishes_what_the_checkpointer_copied() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        w.checkpoint_elsewhere().unwrap();
        let c = connect(&mut w, Provider::Tiquo, "main");
        // Past SQLite's own threshold (1,000 frames): the writer no longer copies on its own.
        for i in 0..600 {
            store_one(&mut w, c, &format!("evt_{i}"));
        }
        // A reader's snapshot stops the background copy short, as the writer's appends do under
        // load: frames written after it stay to be copied.
        let reader = store.reader().unwrap();
        reader.conn.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .conn
            .query_row("SELECT COUNT(*) FROM deliveries", [], |row| row.get(0))
            .unwrap();
        for i in 600..650 {
            store_one(&mut w, c, &format!("evt_{i}"));
        }
        let checkpointer = store.checkpointer().unwrap();
        let copied = checkpointer.copy().unwrap();
        assert!(copied.frames > 1_000, "{copied:?}");
        assert!(copied.copied < copied.frames, "{copied:?}");
        reader.conn.execute_batch("COMMIT").unwrap();

        // Not fully copied, so the WAL goes on growing...
        store_one(&mut w, c, "late");
        // ...until the writer, between transactions, copies the rest.
        let finished = w.finish_checkpoint().unwrap();
        assert!(finished.frames > copied.frames, "{finished:?}");
        assert_eq!(finished.copied, finished.frames, "{finished:?}");

        // The next transaction starts the WAL from its beginning.
        store_one(&mut w, c, "after");
        let after = checkpointer.copy().unwrap();
        assert!(after.frames < 20, "the WAL started again: {after:?}");
        let r = store.reader().unwrap();
        let count: i64 = r
            .conn
            .query_row("SELECT COUNT(*) FROM deliveries", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            count, 652,
            "every delivery is there after the WAL restarted"
        );
    }
}
