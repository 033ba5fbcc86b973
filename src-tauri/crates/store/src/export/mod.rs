//! Running exports: stream rows from SQLite, map them with the profile
//! (`clientele_core::export`), write CSV or XLSX into a temporary file beside the destination,
//! rename it into place, and record the run.
//!
//! Entry points, shaped for both the command line and a Tauri command (which runs them on a
//! worker thread, forwards [`ExportProgress`] as events, and flips the `cancel` flag):
//! - [`run_export`] — a stored profile to a file, with progress and cancel; records history.
//! - [`preview_export`] — the first rows of any profile (saved or being edited) exactly as they
//!   would be written, without writing anything.
//! - [`source_options`] — every source a column can use, in words, with sample values (for a
//!   searchable column picker); sensitive fields are listed but never sampled.
//!
//! # Incremental exports: what "changed" means
//!
//! An incremental profile writes a row only when the row *as this profile writes it* — every
//! cell, after transforms — differs from what the profile's last **successful** run wrote for
//! the same row, or when no successful run wrote that row yet. A row is identified by the
//! person's id (people rows) or by the event's delivery and position in it (event rows, stable
//! across `clientele reprocess`). Concretely:
//! - a new customer, or a customer newly matching the filters, is exported;
//! - a customer whose exported columns changed (new email, new tier, a new last-activity date
//!   when that is a column) is exported again;
//! - a change to a field the profile doesn't export does not bring the row back;
//! - editing the profile's columns or transforms changes every row, so the next run writes all;
//! - rows that no longer exist or no longer match are simply absent (nothing is "deleted").
//!
//! Each written row's fingerprint (16 bytes of SHA-256 over its typed cells) is stored with the
//! run; a run's fingerprints become the baseline only when the run succeeds, so a failed or
//! cancelled run changes nothing. `full` runs write every row and refresh the baseline.

mod catalog;
mod file;
mod profiles;
mod rows;

#[cfg(test)]
mod tests;

pub use catalog::{SourceOption, filter_values, source_options};
use profiles::RunEnd;
pub use profiles::{ExportRun, RunOutcome, Saved, SavedProfile};

use crate::{Reader, Store, StoreError};
use chrono::{DateTime, Utc};
use clientele_core::export::{
    Cell, CompiledProfile, ExportProfile, Output, ProfileError, Protection, RowRef, fingerprint,
};
use clientele_core::identity::parse_country;
use file::Sink;
use rows::Flow;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A preview counts the rows that pass the tier, tag and consent filters (which need each
/// person's profile read) only when there are at most this many to read; beyond, the count would
/// slow down a preview that refreshes as the filters are edited.
pub const MATCH_COUNT_LIMIT: u64 = 50_000;

/// How often (in rows read) progress is reported.
const PROGRESS_EVERY: u64 = 1_000;
/// Fingerprints are recorded in batches of this many rows (a short write each).
const STATE_BATCH: usize = 2_000;

/// Why an export did not produce its file. Messages are safe to show as they are.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("The export profile '{name}' can't be used: {error}")]
    InvalidProfile { name: String, error: ProfileError },
    #[error("The folder {} doesn't exist. Choose another folder, or create it first.", .0.display())]
    FolderMissing(PathBuf),
    #[error("Clientele can't write in the folder {} ({reason}). Choose a folder you can write to.", .path.display())]
    FolderNotWritable { path: PathBuf, reason: String },
    #[error("{} is a folder. Give the name of the file to write.", .0.display())]
    IsAFolder(PathBuf),
    #[error("Clientele couldn't write {}: {reason}. Nothing was left behind.", .path.display())]
    Write { path: PathBuf, reason: String },
    #[error(
        "An Excel sheet holds at most 1,048,576 rows and this export has more. Export to CSV, or narrow it with filters."
    )]
    TooManyRows,
    #[error("The export was cancelled; no file was written.")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ExportError {
    fn from(e: rusqlite::Error) -> Self {
        ExportError::Store(e.into())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ExportRequest<'a> {
    /// A stored profile's name.
    pub profile: &'a str,
    /// The file to write (replaced if it exists). Its folder must exist.
    pub out: &'a Path,
    /// The clock, injected: the run's start time in the history.
    pub now: DateTime<Utc>,
    /// Write every row even if the profile is incremental (the baseline is refreshed).
    pub full: bool,
}

/// Progress of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportProgress {
    /// Rows written so far.
    pub written: u64,
    /// Rows read so far (written or filtered out).
    pub scanned: u64,
    /// Rows to read in all (before the tier, tag and consent filters): `scanned / total` is the
    /// fraction done.
    pub total: u64,
}

/// One previewed cell: `text` exactly as the file will contain it (CSV) or as a spreadsheet
/// shows it (XLSX), and how it is typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewCell {
    pub text: String,
    /// `text`, `number`, `date`, `bool` or `empty`.
    pub kind: &'static str,
}

/// The first rows of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportPreview {
    /// Column headers as written (empty when the profile writes no header row).
    pub headers: Vec<String>,
    pub rows: Vec<Vec<PreviewCell>>,
    /// Rows the export would read (before the tier, tag and consent filters).
    pub total: u64,
    /// Rows that pass every filter — what a full run would write — when that was cheap to count
    /// (no tier, tag or consent filter, or at most [`MATCH_COUNT_LIMIT`] rows to read).
    pub matching: Option<u64>,
    /// The file name a run now would get.
    pub file_name: String,
}

impl Reader {
    fn business_country(&self) -> Result<Option<clientele_core::identity::CountryId>, StoreError> {
        Ok(self
            .setting("default_country")?
            .as_deref()
            .and_then(parse_country))
    }

    /// Holds one snapshot of the database for the whole export, so every row comes from the
    /// same moment even while the listener keeps writing.
    fn begin_snapshot(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        // The snapshot starts at the first read.
        self.conn
            .query_row("SELECT COUNT(*) FROM export_profiles", [], |r| {
                r.get::<_, i64>(0)
            })?;
        Ok(())
    }

    fn end_snapshot(&self) {
        let _ = self.conn.execute_batch("COMMIT");
    }
}

/// Compiles `profile` against the store's settings.
fn compile(reader: &Reader, profile: ExportProfile) -> Result<CompiledProfile, ExportError> {
    let name = profile.name.clone();
    CompiledProfile::new(profile, reader.business_country()?)
        .map_err(|error| ExportError::InvalidProfile { name, error })
}

/// Runs the stored profile `request.profile` into `request.out`.
///
/// `progress` is called every thousand rows and at the end; setting `cancel` stops the run at
/// the next row, removes the temporary file and records the run as cancelled. Every run —
/// succeeded, failed or cancelled — is recorded in the history.
pub fn run_export(
    store: &Store,
    request: &ExportRequest<'_>,
    progress: &mut dyn FnMut(ExportProgress),
    cancel: &AtomicBool,
) -> Result<ExportRun, ExportError> {
    let reader = store.reader()?;
    let saved = reader.export_profile(request.profile)?;
    let compiled = compile(&reader, saved.profile.clone())?;
    let mut writer = store.writer()?;
    let out = absolute(request.out);
    let run_id = writer.start_export_run(&saved, request.now, &out)?;
    let started = Instant::now();
    reader.begin_snapshot()?;
    let mut job = Job {
        reader: &reader,
        writer: &mut writer,
        compiled: &compiled,
        profile_id: saved.id,
        run_id,
        track: compiled.profile.incremental,
        skip_unchanged: compiled.profile.incremental && !request.full,
        pending: Vec::new(),
    };
    let result = job.write_file(&out, progress, cancel);
    reader.end_snapshot();
    let elapsed = started.elapsed();
    let finished_at = request.now + chrono::Duration::from_std(elapsed).unwrap_or_default();
    let duration_ms = elapsed.as_millis() as i64;
    match result {
        Ok(rows) => Ok(writer.finish_export_run(
            run_id,
            saved.id,
            &RunEnd {
                outcome: RunOutcome::Succeeded,
                rows,
                finished_at,
                duration_ms,
                error: None,
            },
        )?),
        Err(e) => {
            let outcome = if matches!(e, ExportError::Cancelled) {
                RunOutcome::Cancelled
            } else {
                RunOutcome::Failed
            };
            let error = e.to_string();
            let end = RunEnd {
                outcome,
                rows: 0,
                finished_at,
                duration_ms,
                error: Some(&error),
            };
            if let Err(record) = writer.finish_export_run(run_id, saved.id, &end) {
                tracing::warn!(error = %record, "couldn't record the export's outcome");
            }
            Err(e)
        }
    }
}

/// The first `limit` rows of `profile` (saved or not) exactly as a run now would write them.
/// For an incremental profile that is saved under the same name, only rows that changed since
/// its last successful run are shown, as the next run would write.
pub fn preview_export(
    store: &Store,
    profile: &ExportProfile,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<ExportPreview, ExportError> {
    let reader = store.reader()?;
    let compiled = compile(&reader, profile.clone())?;
    let baseline = if profile.incremental {
        match reader.export_profile(&profile.name) {
            Ok(saved) => Some(saved.id),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    reader.begin_snapshot()?;
    let result = (|| {
        let total = rows::count(&reader.conn, &compiled)?;
        let neutralize = compiled.output.neutralize();
        let csv = matches!(compiled.output, Output::Csv(_));
        let text = |cell: &Cell, protection: Protection| -> String {
            if csv {
                cell.csv_text_guarded(protection).into_owned()
            } else {
                cell.display_text().into_owned()
            }
        };
        let headers = if compiled.output.header() {
            compiled
                .headers()
                .map(|h| {
                    if csv && neutralize {
                        clientele_core::export::neutralize(h).into_owned()
                    } else {
                        h.to_string()
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut out = Vec::new();
        let mut cells = Vec::new();
        // Counting what matches means reading every row when a filter looks at the profile.
        let count_all = compiled.filters_on_profile() && total <= MATCH_COUNT_LIMIT;
        let mut matching = if compiled.filters_on_profile() {
            0
        } else {
            total
        };
        if limit > 0 || count_all {
            rows::for_each(&reader.conn, &compiled, |row| {
                if !compiled.keeps(row) {
                    return Ok::<_, ExportError>(Flow::Continue);
                }
                if count_all {
                    matching += 1;
                }
                if out.len() >= limit {
                    return Ok(if count_all {
                        Flow::Continue
                    } else {
                        Flow::Stop
                    });
                }
                compiled.cells(row, &mut cells);
                if let Some(profile_id) = baseline
                    && reader
                        .last_fingerprint(profile_id, &row.key())?
                        .is_some_and(|fp| fp == fingerprint(&cells))
                {
                    return Ok(Flow::Continue);
                }
                out.push(
                    cells
                        .iter()
                        .zip(compiled.protections())
                        .map(|(c, protection)| PreviewCell {
                            text: text(c, *protection),
                            kind: c.kind().as_str(),
                        })
                        .collect(),
                );
                Ok(if out.len() >= limit && !count_all {
                    Flow::Stop
                } else {
                    Flow::Continue
                })
            })?;
        }
        Ok(ExportPreview {
            headers,
            rows: out,
            total,
            matching: (count_all || !compiled.filters_on_profile()).then_some(matching),
            file_name: profile.file_name_at(now),
        })
    })();
    reader.end_snapshot();
    result
}

/// One run in progress.
struct Job<'a> {
    reader: &'a Reader,
    writer: &'a mut crate::Writer,
    compiled: &'a CompiledProfile,
    profile_id: i64,
    run_id: i64,
    /// Record fingerprints of written rows (incremental profiles).
    track: bool,
    /// Leave out rows whose fingerprint equals the baseline.
    skip_unchanged: bool,
    pending: Vec<(String, [u8; 16])>,
}

impl Job<'_> {
    /// Writes the file and returns the number of rows written.
    fn write_file(
        &mut self,
        out: &Path,
        progress: &mut dyn FnMut(ExportProgress),
        cancel: &AtomicBool,
    ) -> Result<u64, ExportError> {
        let dir = file::destination_folder(out)?;
        let tmp = file::temporary_in(&dir)?;
        let handle = tmp
            .as_file()
            .try_clone()
            .map_err(|e| file::write_error(out, &e))?;
        let mut sink = Sink::open(self.compiled, handle, &dir, out)?;
        if self.compiled.output.header() {
            sink.header(self.compiled.headers(), out)?;
        }
        let total = rows::count(&self.reader.conn, self.compiled)?;
        let mut p = ExportProgress {
            written: 0,
            scanned: 0,
            total,
        };
        progress(p);
        let mut cells = Vec::with_capacity(self.compiled.column_count());
        let reader = self.reader;
        rows::for_each(&reader.conn, self.compiled, |row| {
            if cancel.load(Ordering::Relaxed) {
                return Err(ExportError::Cancelled);
            }
            p.scanned += 1;
            if self.compiled.keeps(row) {
                self.compiled.cells(row, &mut cells);
                if self.row(row, &cells)? {
                    sink.row(&cells, out)?;
                    p.written += 1;
                }
            }
            if p.scanned.is_multiple_of(PROGRESS_EVERY) {
                progress(p);
            }
            Ok(Flow::Continue)
        })?;
        self.flush_state()?;
        sink.finish(out)?;
        if cancel.load(Ordering::Relaxed) {
            return Err(ExportError::Cancelled);
        }
        file::publish(tmp, out)?;
        progress(p);
        Ok(p.written)
    }

    /// Whether to write `row`; records its fingerprint when it is written.
    fn row(&mut self, row: RowRef<'_>, cells: &[Cell]) -> Result<bool, ExportError> {
        if !self.track {
            return Ok(true);
        }
        let key = row.key();
        let fp = fingerprint(cells);
        if self.skip_unchanged
            && self
                .reader
                .last_fingerprint(self.profile_id, &key)?
                .is_some_and(|last| last == fp)
        {
            return Ok(false);
        }
        self.pending.push((key, fp));
        if self.pending.len() >= STATE_BATCH {
            self.flush_state()?;
        }
        Ok(true)
    }

    fn flush_state(&mut self) -> Result<(), ExportError> {
        if !self.pending.is_empty() {
            self.writer
                .record_row_state(self.profile_id, self.run_id, &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// `path` made absolute against the current folder (for the history and messages).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
