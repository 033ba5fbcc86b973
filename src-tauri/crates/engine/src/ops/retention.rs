//! Retention — forgetting customers with no activity for N months and dropping refused requests
//! older than N days — and each connection's "when the provider deletes a customer" choice,
//! applied by the clock ([`Operations::apply_retention`], run hourly by the engine).
//!
//! Every desk applies the policies to its own data by itself, so nothing needs to travel when
//! they act; on desks joined to a relay the policies themselves are the relay's (set from an
//! admin desk, copied by every desk when it pulls), so they are the same everywhere.

use super::Operations;
use super::hand_sync::new_uid;
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::{DateTime, Months, Utc};
use clientele_core::Provider;
use clientele_core::hand::{ErasureReason, RecordRef};
use clientele_store::Retention;
use serde::Serialize;
use ts_rs::TS;

/// The retention settings as Settings shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RetentionView {
    /// Forget customers with no activity for this many months (None: off).
    pub inactive_months: Option<u32>,
    /// Drop refused requests older than this many days (None: off).
    pub rejections_days: Option<u32>,
    /// They are the relay's: set from an admin desk, the same on every desk joined to it.
    pub held_by_relay: bool,
    /// This computer may change them (not joined to a relay, or its admin desk).
    pub can_change: bool,
}

/// What one application of the policies did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionRun {
    /// Customers forgotten for having no activity.
    pub inactive_people: i64,
    /// Records forgotten because their provider deleted them.
    pub deleted_records: i64,
    /// Messages erased with them.
    pub deliveries: i64,
    /// Refused requests dropped.
    pub rejections: i64,
}

/// Longest retention accepted (100 years): anything longer is a typing mistake.
const MAX_MONTHS: u32 = 1_200;
const MAX_DAYS: u32 = 36_500;

impl Operations {
    pub fn retention(&self) -> ApiResult<RetentionView> {
        let kept = self.store.reader()?.retention()?;
        let link = self.relay_link()?;
        Ok(RetentionView {
            inactive_months: kept.inactive_months,
            rejections_days: kept.rejections_days,
            held_by_relay: link.is_some() || kept.held_by_relay,
            can_change: link.as_ref().is_none_or(|l| l.admin),
        })
    }

    /// Sets the retention settings (None turns one off). On a desk joined to a relay only its
    /// admin desk may, and they are set on the relay for every desk.
    pub fn set_retention(
        &self,
        inactive_months: Option<u32>,
        rejections_days: Option<u32>,
    ) -> ApiResult<RetentionView> {
        let inactive_months = inactive_months.filter(|n| *n > 0);
        let rejections_days = rejections_days.filter(|n| *n > 0);
        if inactive_months.is_some_and(|m| m > MAX_MONTHS)
            || rejections_days.is_some_and(|d| d > MAX_DAYS)
        {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "That is longer than Clientele keeps anything anyway: choose up to 1,200 months or 36,500 days.",
            ));
        }
        let held_by_relay = self.relay_link()?.is_some();
        if held_by_relay {
            self.set_relay_policy(inactive_months, rejections_days)?;
        }
        self.store.writer()?.set_retention(&Retention {
            inactive_months,
            rejections_days,
            held_by_relay,
        })?;
        self.retention()
    }

    /// Sets what happens when `provider` deletes a customer of connection `name`: keep their
    /// history (`None`) or forget them `days` after the deletion.
    pub fn set_forget_deleted(
        &self,
        provider: Provider,
        name: &str,
        days: Option<u32>,
    ) -> ApiResult<()> {
        if days.is_some_and(|d| d > MAX_DAYS) {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "Choose up to 36,500 days.",
            ));
        }
        let here = self.store.reader()?.connection(provider, name)?;
        match here {
            Some(c) if !c.via_relay => {
                self.store
                    .writer()?
                    .set_forget_deleted(provider, name, days)?;
            }
            _ => self.set_relay_forget_deleted(provider, name, days)?,
        }
        self.connections_changed()
    }

    /// Applies the policies as of `now`: forgets customers inactive for longer than the setting,
    /// records whose provider deleted them long enough ago where their connection says so, and
    /// drops old refused requests. Each kind of forgetting is one line in the erasure log.
    pub fn apply_retention(&self, now: DateTime<Utc>) -> ApiResult<RetentionRun> {
        self.catch_up()?;
        let reader = self.store.reader()?;
        let policy = reader.retention()?;
        let mut run = RetentionRun::default();
        if let Some(months) = policy.inactive_months {
            let cutoff = now
                .checked_sub_months(Months::new(months))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let people = reader.inactive_people(cutoff)?;
            let mut records: Vec<RecordRef> = Vec::new();
            for person in &people {
                records.extend(reader.records_of(*person)?);
            }
            if !records.is_empty() {
                let done =
                    self.forget_records_at(&records, false, ErasureReason::Retention, now, false)?;
                run.inactive_people = done.people;
                run.deliveries += done.deliveries;
            }
        }
        let deleted = reader.deleted_records_due(now)?;
        if !deleted.is_empty() {
            let done = self.forget_records_at(
                &deleted,
                false,
                ErasureReason::ProviderDeleted,
                now,
                false,
            )?;
            run.deleted_records = done.records;
            run.deliveries += done.deliveries;
        }
        if let Some(days) = policy.rejections_days {
            let cutoff = now - chrono::Duration::days(i64::from(days));
            run.rejections = self.store.writer()?.drop_rejections_before(
                cutoff,
                &new_uid(),
                now,
                &self.computer_name(),
            )? as i64;
        }
        Ok(run)
    }

    /// Sets the relay's policy (admin desks only).
    fn set_relay_policy(
        &self,
        inactive_months: Option<u32>,
        rejections_days: Option<u32>,
    ) -> ApiResult<()> {
        let _ = (inactive_months, rejections_days);
        Err(not_admin("the retention settings"))
    }

    /// Sets a relay connection's choice (admin desks only).
    fn set_relay_forget_deleted(
        &self,
        provider: Provider,
        name: &str,
        days: Option<u32>,
    ) -> ApiResult<()> {
        let _ = days;
        match self.store.reader()?.connection(provider, name)? {
            None if self.relay_link()?.is_none() => Err(AppError::new(
                ErrorCode::NotFound,
                format!(
                    "There is no {} connection called '{name}'.",
                    provider.display_name()
                ),
            )),
            _ => Err(not_admin("what happens when a provider deletes a customer")),
        }
    }
}

fn not_admin(what: &str) -> AppError {
    AppError::new(
        ErrorCode::RelayNotAdmin,
        format!(
            "On computers joined to a relay, {what} are the relay's: change them on the desk that manages the relay's connections."
        ),
    )
}
