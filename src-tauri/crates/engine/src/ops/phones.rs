//! Settings → Phone numbers: the country for numbers written without a country code, and reading
//! the earlier ones again when it changes.
//!
//! The country decides only which numbers are valid and how they read — their identity keys,
//! hence who is linked with whom, and search. So a change re-reads just that
//! (`Writer::rekey_phones`), in short batches beside a running listener, instead of
//! `reprocess`, which needs the data folder to itself (it is refused while the app receives)
//! and re-reads every delivery. Same result (the store's tests compare the two), seconds instead
//! of minutes, and the window stays usable: progress is reported as it goes.

use super::Operations;
use crate::error::{ApiResult, AppError, ErrorCode};
use clientele_core::identity::{parse_country, phone_countries};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use ts_rs::TS;

/// Source profiles re-read per transaction: short enough that a delivery arriving meanwhile
/// waits a fraction of a second for its turn to be stored.
const REREAD_BATCH: usize = 500;

/// A country the phone rules know, for the picker (the window names it in the user's language).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PhoneCountry {
    /// ISO code: `GB`.
    pub code: String,
    /// Its calling code: 44.
    pub calling_code: u16,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PhoneSettingsView {
    /// ISO code, `None` until someone sets it.
    pub default_country: Option<String>,
    pub countries: Vec<PhoneCountry>,
    /// Whether earlier numbers are being read again now (started here or elsewhere).
    pub rereading: bool,
}

/// How far re-reading earlier phone numbers got (the `clientele://phone-reread` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RereadProgress {
    /// Customer records read so far…
    #[ts(type = "number")]
    pub done: u64,
    /// …of this many.
    #[ts(type = "number")]
    pub total: u64,
    pub finished: bool,
}

/// What a change of the default country did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RereadSummary {
    pub default_country: String,
    /// Customer records whose numbers were read again.
    #[ts(type = "number")]
    pub records: u64,
    /// People whose links or details changed.
    #[ts(type = "Array<number>")]
    pub people_changed: Vec<i64>,
}

/// Marks a re-read as running while it lives.
pub(crate) struct Rereading<'a>(&'a AtomicBool);

impl Drop for Rereading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Operations {
    pub fn phone_settings(&self) -> ApiResult<PhoneSettingsView> {
        Ok(PhoneSettingsView {
            default_country: self.store.reader()?.setting("default_country")?,
            countries: phone_countries()
                .into_iter()
                .map(|(code, calling_code)| PhoneCountry { code, calling_code })
                .collect(),
            rereading: self.rereading.load(Ordering::SeqCst),
        })
    }

    /// Sets the country for phone numbers written without a country code (e.g. GB, US, BR), then
    /// reads every customer record's numbers again with it, calling `progress` as it goes. Runs
    /// beside the listener; refused while another change is still being read.
    pub fn set_default_country(
        &self,
        code: &str,
        progress: &mut dyn FnMut(RereadProgress),
    ) -> ApiResult<RereadSummary> {
        if parse_country(code).is_none() {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                format!(
                    "'{}' is not a country code (for example GB, US, BR).",
                    code.trim()
                ),
            ));
        }
        if self.rereading.swap(true, Ordering::SeqCst) {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "Clientele is still reading phone numbers again after the last change. Try again when it has finished.",
            ));
        }
        let _running = Rereading(&self.rereading);
        let mut writer = self.store.writer()?;
        writer.set_default_country(code)?;
        let total = self.store.reader()?.source_profile_count()? as u64;
        let mut done = 0u64;
        let mut after = 0;
        let mut changed = BTreeSet::new();
        progress(RereadProgress {
            done,
            total,
            finished: false,
        });
        loop {
            let step = writer.rekey_phones(after, REREAD_BATCH)?;
            done += step.profiles as u64;
            changed.extend(step.people_changed);
            let last_batch = step.profiles < REREAD_BATCH;
            if let Some(last) = step.last {
                after = last;
            }
            progress(RereadProgress {
                done,
                total: total.max(done),
                finished: last_batch,
            });
            if last_batch {
                break;
            }
        }
        Ok(RereadSummary {
            default_country: code.trim().to_uppercase(),
            records: done,
            people_changed: changed.into_iter().collect(),
        })
    }
}
