//! Converting rows an earlier version wrote into the layout this one reads, inside the
//! migration that changed it (see schema.rs). Each converter works in id order, in the
//! migration's transaction, and reports `(done, total)` as it goes.

use crate::{StoreError, stored};
use clientele_core::Change;
use clientele_core::profile::ProfileState;
use rusqlite::{Transaction, params};

/// Rows converted between progress reports.
const STEP: usize = 5_000;

/// Migration 7: events' changes become `[field, old, new]` rows, profile states and merged
/// profiles are packed. Returns how many rows it rewrote.
pub(crate) fn derived_rows_v7(
    tx: &Transaction<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        Ok(
            tx.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
        )
    };
    let total = count("events")? + count("source_profiles")? + count("people")?;
    let mut done = 0u64;
    progress(done, total);
    done += rewrite(tx, "events", "changes", total, done, progress, |text| {
        let changes: Vec<Change> = serde_json::from_slice(text)?;
        Ok(Converted::Text(stored::changes_text(&changes)?))
    })?;
    done += rewrite(
        tx,
        "source_profiles",
        "state",
        total,
        done,
        progress,
        |text| {
            let state: ProfileState = serde_json::from_slice(text)?;
            Ok(Blob(stored::state_blob(&state)?))
        },
    )?;
    done += rewrite(tx, "people", "profile", total, done, progress, |text| {
        let profile: serde_json::Value = serde_json::from_slice(text)?;
        Ok(Blob(stored::profile_blob(&profile)?))
    })?;
    Ok(done)
}

/// A converted value: text stays text, packed values are blobs.
enum Converted {
    Text(String),
    Blob(Vec<u8>),
}
use Converted::Blob;

fn rewrite(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    total: u64,
    before: u64,
    progress: &mut dyn FnMut(u64, u64),
    convert: impl Fn(&[u8]) -> Result<Converted, StoreError>,
) -> Result<u64, StoreError> {
    let mut after = 0i64;
    let mut done = 0u64;
    let mut read = tx.prepare(&format!(
        "SELECT id, CAST({column} AS BLOB) FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let mut write = tx.prepare(&format!("UPDATE {table} SET {column} = ?2 WHERE id = ?1"))?;
    loop {
        let rows: Vec<(i64, Vec<u8>)> = read
            .query_map(params![after, STEP as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(done);
        };
        for (id, old) in &rows {
            match convert(old)? {
                Converted::Text(text) => write.execute(params![id, text])?,
                Converted::Blob(blob) => write.execute(params![id, blob])?,
            };
        }
        done += rows.len() as u64;
        after = last;
        progress(before + done, total);
    }
}
