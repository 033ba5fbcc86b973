//! Forgetting a customer for good (the right to be forgotten), going on forgetting them, and the
//! erasure log an auditor can read.
//!
//! A forget is a hand change like a merge: it is shared with the relay first (so the relay's copy
//! is forgotten before this computer says it is done, or queued when the relay can't be reached),
//! then carried out here by [`clientele_store::Writer::forget`], then the freed bytes are wiped
//! from disk. It works while a listener runs on the same data folder: it is one short write
//! transaction, like a listener's group, and never takes the data folder's lock.

use super::hand::RecordView;
use super::hand_sync::{RelaySync, new_uid};
use super::{Operations, iso};
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::Utc;
use clientele_core::hand::{
    ErasureReason, Forget, HandChange, HandChangeKind, RecordRef, SALT_BYTES, record_hash,
};
use clientele_store::{ForgetRequest, StoreError};
use serde::Serialize;
use std::time::{Duration, Instant};
use ts_rs::TS;

/// A record of the person about to be forgotten, as the confirmation lists it.
fn record_view(record: RecordRef, name: &str) -> RecordView {
    RecordView {
        provider_name: record.provider.display_name().to_string(),
        label: super::hand::label(&record),
        record,
        name: Some(name.to_string()),
    }
}

/// How long a forget waits for a running listener's writer before giving up.
const WRITE_WAIT: Duration = Duration::from_secs(30);
/// How long it tries to truncate the WAL after the forget (a reader or the listener may hold it).
const WIPE_WAIT: Duration = Duration::from_secs(10);

/// An export file that included (or may have included) a person: Clientele can't reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ExportMention {
    pub profile_name: String,
    pub file: String,
    pub finished_at: String,
    /// An incremental export's baseline says it wrote them; otherwise it "may have".
    pub certain: bool,
}

/// What forgetting a person will do, for the confirmation.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ForgetPreview {
    #[ts(type = "number")]
    pub person_id: i64,
    pub display_name: String,
    pub records: Vec<RecordView>,
    /// Stored messages about them that will be erased.
    #[ts(type = "number")]
    pub deliveries: i64,
    pub exports: Vec<ExportMention>,
    /// This computer is joined to a relay: the relay's copy is forgotten too.
    pub relay_joined: bool,
}

/// What a forget did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ForgetOutcome {
    /// Its line in the erasure log.
    #[ts(type = "number")]
    pub erasure_id: i64,
    #[ts(type = "number")]
    pub people: i64,
    #[ts(type = "number")]
    pub records: i64,
    #[ts(type = "number")]
    pub deliveries: i64,
    #[ts(type = "number")]
    pub rejections: i64,
    pub keep_forgetting: bool,
    pub relay: RelaySync,
}

/// One line of the erasure log: no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ErasureView {
    #[ts(type = "number")]
    pub id: i64,
    pub at: String,
    pub computer: String,
    pub reason: ErasureReason,
    #[ts(type = "number")]
    pub people: i64,
    #[ts(type = "number")]
    pub records: i64,
    #[ts(type = "number")]
    pub deliveries: i64,
    #[ts(type = "number")]
    pub rejections: i64,
}

/// One "keep forgetting".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SuppressionView {
    /// The forget it came with (what `stop-forgetting` takes).
    pub forget_uid: String,
    pub since: String,
    #[ts(type = "number")]
    pub records: i64,
    /// Messages about them acknowledged and not kept.
    #[ts(type = "number")]
    pub withheld: i64,
    pub lifted_at: Option<String>,
}

impl Operations {
    /// What forgetting person `person` will do: their records, how many stored messages go, the
    /// export files that have or may have included them (out of Clientele's reach).
    pub fn forget_preview(&self, person: i64) -> ApiResult<ForgetPreview> {
        self.catch_up()?;
        let reader = self.store.reader()?;
        let detail = reader.person(person)?;
        let scope = reader.forget_scope(person)?;
        Ok(ForgetPreview {
            person_id: person,
            display_name: detail.display_name.clone(),
            records: scope
                .records
                .into_iter()
                .map(|r| record_view(r, &detail.display_name))
                .collect(),
            deliveries: scope.deliveries,
            exports: scope
                .exports
                .into_iter()
                .map(|e| ExportMention {
                    profile_name: e.profile_name,
                    file: e.file,
                    finished_at: iso(e.finished_at),
                    certain: e.certain,
                })
                .collect(),
            relay_joined: self.relay_link()?.is_some(),
        })
    }

    /// Forgets person `person` for good: every record of theirs, every message about them, their
    /// people rows and export baselines; with `keep_forgetting`, later messages about those
    /// records are acknowledged and not kept.
    pub fn forget_person(&self, person: i64, keep_forgetting: bool) -> ApiResult<ForgetOutcome> {
        self.catch_up()?;
        let records = self.store.reader()?.forget_scope(person)?.records;
        self.forget_records(&records, keep_forgetting, ErasureReason::Request)
    }

    /// Forgets `records` (all of one person's, or those a policy chose) for `reason`, here and
    /// — through the relay — on every desk joined to it.
    pub fn forget_records(
        &self,
        records: &[RecordRef],
        keep_forgetting: bool,
        reason: ErasureReason,
    ) -> ApiResult<ForgetOutcome> {
        self.forget_records_at(records, keep_forgetting, reason, Utc::now(), true)
    }

    /// [`Operations::forget_records`] at `at` (the retention's clock), shared with the relay or
    /// only here: a policy that every desk applies by itself shares nothing.
    pub(crate) fn forget_records_at(
        &self,
        records: &[RecordRef],
        keep_forgetting: bool,
        reason: ErasureReason,
        at: chrono::DateTime<Utc>,
        share: bool,
    ) -> ApiResult<ForgetOutcome> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| {
            AppError::new(
                ErrorCode::Database,
                format!("Clientele couldn't get random numbers from the system: {e}"),
            )
        })?;
        let hashes: Vec<[u8; 32]> = records.iter().map(|r| record_hash(&salt, r)).collect();
        let change = HandChange {
            uid: new_uid(),
            at,
            by: self.computer_name(),
            what: HandChangeKind::Forget {
                forget: Forget {
                    salt: hex::encode(salt),
                    records: hashes.iter().map(hex::encode).collect(),
                    keep_forgetting,
                    reason,
                },
            },
        };
        // The relay first: its copy is forgotten before this one says it is done (or the change
        // waits in the outbox, and the outcome says so).
        let relay = if share {
            self.share_hand_change(&change)?
        } else {
            RelaySync::NotJoined
        };
        let request = ForgetRequest {
            uid: change.uid.clone(),
            at: change.at,
            computer: change.by.clone(),
            reason,
            salt: salt.to_vec(),
            record_hashes: hashes,
            keep_forgetting,
        };
        let report = self.while_busy(|| self.store.writer()?.forget(&request))?;
        self.wipe();
        Ok(ForgetOutcome {
            erasure_id: report.erasure_id,
            people: report.people,
            records: report.records,
            deliveries: report.deliveries,
            rejections: report.rejections,
            keep_forgetting,
            relay,
        })
    }

    /// The erasure log, newest first.
    pub fn erasure_log(&self) -> ApiResult<Vec<ErasureView>> {
        Ok(self
            .store
            .reader()?
            .erasures()?
            .into_iter()
            .map(|e| ErasureView {
                id: e.id,
                at: iso(e.at),
                computer: e.computer,
                reason: e.reason,
                people: e.people,
                records: e.records,
                deliveries: e.deliveries,
                rejections: e.rejections,
            })
            .collect())
    }

    /// Every "keep forgetting", newest first (lifted ones too).
    pub fn suppressions(&self) -> ApiResult<Vec<SuppressionView>> {
        Ok(self
            .store
            .reader()?
            .suppressions()?
            .into_iter()
            .map(|s| SuppressionView {
                forget_uid: s.forget_uid,
                since: iso(s.since),
                records: s.records,
                withheld: s.withheld,
                lifted_at: s.lifted_at.map(iso),
            })
            .collect())
    }

    /// Stops keeping the records of forget `forget_uid` forgotten: later messages about them are
    /// kept again. (What was forgotten stays forgotten.)
    pub fn stop_forgetting(&self, forget_uid: &str) -> ApiResult<RelaySync> {
        let forget_uid = forget_uid.trim();
        let active = self
            .store
            .reader()?
            .suppressions()?
            .into_iter()
            .any(|s| s.forget_uid == forget_uid && s.lifted_at.is_none());
        if !active {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!(
                    "Nothing is being kept forgotten under '{forget_uid}'. `clientele customers keep-forgetting` lists what is."
                ),
            ));
        }
        let change = HandChange {
            uid: new_uid(),
            at: Utc::now(),
            by: self.computer_name(),
            what: HandChangeKind::StopForgetting {
                forget: forget_uid.to_string(),
            },
        };
        let relay = self.share_hand_change(&change)?;
        self.while_busy(|| self.store.writer()?.stop_forgetting(forget_uid, change.at))?;
        Ok(relay)
    }

    /// Runs a write, trying again while a running listener's writer holds the database.
    fn while_busy<T>(&self, mut write: impl FnMut() -> Result<T, StoreError>) -> ApiResult<T> {
        let deadline = Instant::now() + WRITE_WAIT;
        loop {
            match write() {
                Err(StoreError::Busy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Wipes what a forget deleted from the disk (the WAL, and once the free pages of an old
    /// database). A failure is logged, not returned: the forget itself is done, and the next
    /// checkpoint of a listener finishes the job.
    fn wipe(&self) {
        match self
            .store
            .writer()
            .and_then(|mut w| w.wipe_forgotten(WIPE_WAIT))
        {
            Ok(wipe) => {
                if wipe.vacuumed {
                    tracing::info!("vacuumed the database once, so no free page holds old data");
                }
                if !wipe.checkpointed {
                    tracing::warn!(
                        "couldn't truncate the write-ahead log after forgetting (it stayed busy): old copies of the forgotten pages stay in it until new writes overwrite them"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "couldn't wipe the write-ahead log after forgetting")
            }
        }
    }
}
