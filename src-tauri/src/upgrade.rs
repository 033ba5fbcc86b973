//! Opening a data folder written by an older version of Clientele, which this one converts
//! first (a minute on a million messages). The window opens at once on an "Updating your data"
//! screen while a background thread converts, then goes on to the usual screens. The screen
//! asks [`UpgradeView`] with the `upgrade_status` command when it loads, and follows
//! [`UPGRADE_EVENT`] after that.

use clientele_engine::events::UPGRADE_EVENT;
use clientele_store::{GIVING_SPACE_BACK, UpgradeProgress};
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tauri::{AppHandle, Emitter, Manager};
use ts_rs::TS;

/// Where opening the data folder stands, for the window.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
#[ts(export)]
pub enum UpgradeView {
    /// Nothing to convert, or done: the usual screens.
    Ready,
    /// Converting: `done` of `total` `unit`s (`total` 0: no count for this step).
    Updating {
        /// What is happening, in words ("Converting your stored messages").
        step: String,
        /// Giving disk space back, the last step (no count).
        giving_space_back: bool,
        #[ts(type = "number")]
        done: u64,
        #[ts(type = "number")]
        total: u64,
        unit: String,
    },
    /// It couldn't: why, in words (Clientele also says so in a message and closes).
    Failed { message: String },
}

impl UpgradeView {
    /// Before the first step reports.
    pub fn starting() -> UpgradeView {
        UpgradeView::Updating {
            step: "Getting ready".into(),
            giving_space_back: false,
            done: 0,
            total: 0,
            unit: String::new(),
        }
    }
}

/// The latest [`UpgradeView`] (managed from the start, before the engine is).
pub struct UpgradeState(Mutex<UpgradeView>);

impl UpgradeState {
    pub fn new(view: UpgradeView) -> UpgradeState {
        UpgradeState(Mutex::new(view))
    }

    pub fn get(&self) -> UpgradeView {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Records `view` and tells the window.
pub fn publish(app: &AppHandle, view: UpgradeView) {
    if let Some(state) = app.try_state::<UpgradeState>() {
        *state.0.lock().unwrap_or_else(|p| p.into_inner()) = view.clone();
    }
    let _ = app.emit(UPGRADE_EVENT, &view);
}

/// Passes the store's progress on to the window, at most ten times a second (and at each new
/// step).
pub struct Reporter {
    app: AppHandle,
    last: Option<Instant>,
    step: String,
}

const EVERY: Duration = Duration::from_millis(100);

impl Reporter {
    pub fn new(app: AppHandle) -> Reporter {
        Reporter {
            app,
            last: None,
            step: String::new(),
        }
    }

    pub fn report(&mut self, p: &UpgradeProgress) {
        match p {
            UpgradeProgress::Step {
                what,
                unit,
                done,
                total,
                ..
            } => {
                let new_step = *what != self.step;
                if !new_step && self.last.is_some_and(|l| l.elapsed() < EVERY) {
                    return;
                }
                self.last = Some(Instant::now());
                self.step = what.clone();
                publish(
                    &self.app,
                    UpgradeView::Updating {
                        step: what.clone(),
                        giving_space_back: what == GIVING_SPACE_BACK,
                        done: *done,
                        total: *total,
                        unit: unit.clone(),
                    },
                );
            }
            UpgradeProgress::Finished(report) => {
                tracing::info!(
                    from = report.from_version,
                    to = report.to_version,
                    seconds = report.seconds,
                    freed_bytes = report.freed_bytes,
                    "converted the data folder for this version"
                );
                if let Some(why) = &report.vacuum_failed {
                    tracing::warn!(
                        "the converted data folder's free space wasn't given back: {why}"
                    );
                }
            }
        }
    }
}
