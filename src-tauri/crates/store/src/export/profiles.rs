//! Stored export profiles, the history of runs, and incremental state.

use crate::stored::{self, Unknown};
use crate::time::{from_millis, to_millis};
use crate::{Reader, StoreError, Writer};
use chrono::{DateTime, Utc};
use clientele_core::export::ExportProfile;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::path::Path;

/// A profile as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedProfile {
    pub id: i64,
    pub name: String,
    pub profile: ExportProfile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a run ended (or that it hasn't).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Started and not finished: still going, or Clientele stopped in the middle.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
        }
    }

    fn from_db(s: &str) -> Result<RunOutcome, Unknown> {
        match s {
            "running" => Ok(RunOutcome::Running),
            "succeeded" => Ok(RunOutcome::Succeeded),
            "failed" => Ok(RunOutcome::Failed),
            "cancelled" => Ok(RunOutcome::Cancelled),
            other => Err(Unknown::new("export run outcome", other)),
        }
    }
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRun {
    pub id: i64,
    pub profile: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Rows written (not counting the header).
    pub rows: u64,
    /// The file written (or that would have been).
    pub file: String,
    pub format: String,
    pub incremental: bool,
    pub outcome: RunOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a run ended, for the history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunEnd<'a> {
    pub outcome: RunOutcome,
    pub rows: u64,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub error: Option<&'a str>,
}

/// Whether saving created a profile or replaced one of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Saved {
    Created,
    Replaced,
}

const RUN_COLUMNS: &str = "id, profile_name, started_at, finished_at, duration_ms, rows, file, \
                           format, incremental, outcome, error";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExportRun> {
    Ok(ExportRun {
        id: r.get(0)?,
        profile: r.get(1)?,
        started_at: from_millis(r.get(2)?),
        finished_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
        duration_ms: r.get(4)?,
        rows: r.get::<_, i64>(5)?.max(0) as u64,
        file: r.get(6)?,
        format: r.get(7)?,
        incremental: r.get(8)?,
        outcome: stored::column(r, 9, RunOutcome::from_db)?,
        error: r.get(10)?,
    })
}

fn profile_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn saved(row: (i64, String, String, i64, i64)) -> Result<SavedProfile, StoreError> {
    let (id, name, definition, created, updated) = row;
    // Read without re-validating, so a profile a newer rule would refuse still lists (it is
    // validated when it runs).
    let profile: ExportProfile = serde_json::from_str(&definition)?;
    Ok(SavedProfile {
        id,
        name,
        profile,
        created_at: from_millis(created),
        updated_at: from_millis(updated),
    })
}

impl Writer {
    /// Creates the profile, or replaces the one with the same name (keeping its history and
    /// incremental state). The profile is validated first.
    pub fn save_export_profile(
        &mut self,
        profile: &ExportProfile,
        now: DateTime<Utc>,
    ) -> Result<Saved, StoreError> {
        profile
            .validate()
            .map_err(|e| StoreError::Invalid(format!("The export profile isn't valid: {e}")))?;
        let definition = serde_json::to_string(profile)?;
        let existed: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM export_profiles WHERE name = ?1",
                [&profile.name],
                |r| r.get(0),
            )
            .optional()?;
        self.conn.execute(
            "INSERT INTO export_profiles (name, definition, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,
                updated_at = excluded.updated_at",
            params![profile.name, definition, to_millis(now)],
        )?;
        Ok(if existed.is_some() {
            Saved::Replaced
        } else {
            Saved::Created
        })
    }

    /// Deletes a profile and its incremental state; its history is kept.
    pub fn delete_export_profile(&mut self, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM export_profiles WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(no_such_profile(name));
        }
        Ok(())
    }

    pub(crate) fn start_export_run(
        &mut self,
        profile: &SavedProfile,
        now: DateTime<Utc>,
        file: &Path,
    ) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        // State left by runs that did not succeed is never a baseline; drop it.
        tx.execute(
            "DELETE FROM export_row_state WHERE profile_id = ?1 AND run_id IN
               (SELECT id FROM export_runs WHERE profile_id = ?1 AND outcome IN ('failed', 'cancelled'))",
            [profile.id],
        )?;
        tx.execute(
            "INSERT INTO export_runs (profile_id, profile_name, started_at, file, format,
                                      incremental, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
            params![
                profile.id,
                profile.name,
                to_millis(now),
                file.display().to_string(),
                profile.profile.format.extension(),
                profile.profile.incremental
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Records fingerprints of rows a run wrote (one transaction per call).
    pub(crate) fn record_row_state(
        &mut self,
        profile_id: i64,
        run_id: i64,
        rows: &[(String, [u8; 16])],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO export_row_state (profile_id, row_key, run_id, fingerprint)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (key, fp) in rows {
                insert.execute(params![profile_id, key, run_id, &fp[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn finish_export_run(
        &mut self,
        run_id: i64,
        profile_id: i64,
        end: &RunEnd<'_>,
    ) -> Result<ExportRun, StoreError> {
        let RunEnd {
            outcome,
            rows,
            finished_at,
            duration_ms,
            error,
        } = *end;
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE export_runs SET outcome = ?2, rows = ?3, finished_at = ?4, duration_ms = ?5,
                                    error = ?6
             WHERE id = ?1",
            params![
                run_id,
                outcome.as_str(),
                rows as i64,
                to_millis(finished_at),
                duration_ms,
                error
            ],
        )?;
        if outcome == RunOutcome::Succeeded {
            // This run's fingerprints are now the baseline of the rows it wrote.
            tx.execute(
                "DELETE FROM export_row_state WHERE profile_id = ?1 AND run_id < ?2 AND row_key IN
                   (SELECT row_key FROM export_row_state WHERE profile_id = ?1 AND run_id = ?2)",
                params![profile_id, run_id],
            )?;
        } else {
            tx.execute(
                "DELETE FROM export_row_state WHERE profile_id = ?1 AND run_id = ?2",
                params![profile_id, run_id],
            )?;
        }
        let run = tx.query_row(
            &format!("SELECT {RUN_COLUMNS} FROM export_runs WHERE id = ?1"),
            [run_id],
            run_row,
        )?;
        tx.commit()?;
        Ok(run)
    }
}

pub(crate) fn no_such_profile(name: &str) -> StoreError {
    StoreError::NotFound(format!("There is no export profile called '{name}'."))
}

impl Reader {
    /// Every stored profile, by name.
    pub fn export_profiles(&self) -> Result<Vec<SavedProfile>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, name, definition, created_at, updated_at FROM export_profiles
                 ORDER BY name COLLATE NOCASE, name",
            )?
            .query_map([], profile_row)?
            .map(|row| saved(row?))
            .collect()
    }

    /// One stored profile by name.
    pub fn export_profile(&self, name: &str) -> Result<SavedProfile, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT id, name, definition, created_at, updated_at FROM export_profiles
                 WHERE name = ?1",
            )?
            .query_row([name], profile_row)
            .optional()?
            .ok_or_else(|| no_such_profile(name))?;
        saved(row)
    }

    /// Runs, newest first; of one profile when `profile` is given.
    pub fn export_runs(
        &self,
        profile: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<ExportRun>, StoreError> {
        let limit = limit.map_or(-1, |l| l as i64);
        self.conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM export_runs
                 WHERE ?1 IS NULL OR profile_name = ?1 ORDER BY id DESC LIMIT ?2"
            ))?
            .query_map(params![profile, limit], run_row)?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// The fingerprint a succeeded run of `profile_id` last wrote for `row_key`.
    pub(crate) fn last_fingerprint(
        &self,
        profile_id: i64,
        row_key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT s.fingerprint FROM export_row_state s
                 JOIN export_runs r ON r.id = s.run_id
                 WHERE s.profile_id = ?1 AND s.row_key = ?2 AND r.outcome = 'succeeded'
                 ORDER BY s.run_id DESC LIMIT 1",
            )?
            .query_row(params![profile_id, row_key], |r| r.get(0))
            .optional()?)
    }
}
