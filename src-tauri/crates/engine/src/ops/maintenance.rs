//! Keeping derived data current: catching up what a stopped listener left pending before a
//! read, and rebuilding everything from the stored deliveries. (The default country of phone
//! numbers, which changes how they are read, is in [`super::phones`].)

use super::Operations;
use crate::data_dir::{DataDirLock, LockError};
use crate::error::{ApiResult, AppError, ErrorCode};
use std::time::{Duration, Instant};

/// How long a read waits for a running listener to derive what it already stored.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// What [`Operations::reprocess`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReprocessSummary {
    pub deliveries: usize,
    pub events: usize,
    pub people: i64,
    pub needs_attention: usize,
}

impl Operations {
    /// Makes reads current. When no listener holds the data folder, derives whatever a stopped
    /// one left pending; when one is running (it derives by itself), waits a moment for it to
    /// derive what was already stored.
    pub fn catch_up(&self) -> ApiResult<()> {
        let reader = self.store().reader()?;
        let Some(target) = reader.newest_delivery_id()? else {
            return Ok(());
        };
        if reader.derived_through()? >= target {
            return Ok(());
        }
        if let Ok(_lock) = DataDirLock::acquire(self.data_dir()) {
            self.store().writer()?.derive_all()?;
            return Ok(());
        }
        let deadline = Instant::now() + CATCH_UP_WAIT;
        while reader.derived_through()? < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Rebuilds timelines, profiles and people from the stored deliveries. Needs the data
    /// folder to itself: refused while a listener (the app or `clientele serve`) uses it.
    pub fn reprocess(&self, progress: &mut dyn FnMut(usize, usize)) -> ApiResult<ReprocessSummary> {
        let _lock = DataDirLock::acquire(self.data_dir()).map_err(lock_error)?;
        let report = self.store().writer()?.reprocess(progress)?;
        Ok(ReprocessSummary {
            deliveries: report.deliveries,
            events: report.events,
            people: self.store().reader()?.people_count()?,
            needs_attention: report.needs_attention,
        })
    }
}

/// The data folder's lock as an [`AppError`]: in use elsewhere is a plain "stop it first".
pub(crate) fn lock_error(e: LockError) -> AppError {
    let code = match e {
        LockError::HeldElsewhere(_) => ErrorCode::DataDirInUse,
        LockError::Io(_) | LockError::NoHome => ErrorCode::DataDir,
    };
    AppError::new(code, e.to_string())
}
