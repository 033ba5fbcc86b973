//! Hand changes (merges, splits, undos, forgets) reaching the relay, so every desk joined to it
//! shows the same people and forgets the same customers.
//!
//! A change is sent to the relay as it is made; when the relay can't be reached it waits in the
//! desk's outbox (`relay_outbox`) and is sent when the relay is back.

use super::Operations;
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::Utc;
use clientele_core::hand::{HandChange, HandChangeKind};
use clientele_core::relay_protocol::{Policy, PulledChange, UpdateRemoteConnection};
use clientele_core::{ConnectionSettings, Provider};
use clientele_relay_client::{ClientError, HandChanges};
use clientele_store::{Connection, ForgetHashes, ForgetRequest, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use ts_rs::TS;

/// Whether a change made here has reached the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "state", rename_all = "snake_case")]
#[ts(export)]
pub enum RelaySync {
    /// This computer isn't joined to a relay: the change is only here.
    NotJoined,
    /// The relay has it: every desk joined to it gets it when it next pulls.
    Shared,
    /// The relay couldn't be reached; the change waits here and is sent when it is back.
    Pending { message: String },
    /// The relay refused the change (this computer's access was removed, or it found the change
    /// wrong): it was made on this computer only, and the message says so and what to do.
    Refused { message: String },
}

impl Operations {
    /// Shares `change` with the relay this computer is joined to, if any: sent now, so a forget
    /// is carried out on the relay's copy before this returns `Shared`. When the relay can't be
    /// reached (or fails), the change waits in the outbox and is sent when it is back:
    /// `Pending`, with a sentence that says so. A refusal (this computer's access was removed,
    /// the change was refused) is `Refused`: the change stands here — staff must always be able
    /// to correct or forget someone on their own computer — and isn't kept to send.
    pub fn share_hand_change(&self, change: &HandChange) -> ApiResult<RelaySync> {
        if self.relay_link()?.is_none() {
            return Ok(RelaySync::NotJoined);
        }
        // Kept first: should this process stop mid-call, the change still reaches the relay.
        self.store.writer()?.queue_hand_change(change, Utc::now())?;
        let pending = || RelaySync::Pending {
            message: pending_words(change),
        };
        let client = match self.relay_client() {
            Ok((_, client)) => client,
            Err(e) => {
                self.store.writer()?.hand_change_sent(&change.uid)?;
                return Ok(refused(change, &e.message));
            }
        };
        match super::relay::block_on(client.send_change(change)) {
            Ok(_) => {
                self.store.writer()?.hand_change_sent(&change.uid)?;
                Ok(RelaySync::Shared)
            }
            Err(e) if relay_may_take_it_later(&e) => {
                tracing::warn!(error = %e, "the relay couldn't be reached; a hand change waits to be sent");
                Ok(pending())
            }
            Err(e) => {
                tracing::warn!(error = %e, "the relay refused a hand change");
                self.store.writer()?.hand_change_sent(&change.uid)?;
                Ok(refused(change, &AppError::from(e).message))
            }
        }
    }

    /// Sets the retention policy on the relay, for every desk (admin desks). Returns false when
    /// this computer isn't joined to a relay (the policy is then this computer's own).
    pub fn share_policy(&self, policy: &Policy) -> ApiResult<bool> {
        let Some(link) = self.relay_link()? else {
            return Ok(false);
        };
        if !link.admin {
            return Err(AppError::new(
                ErrorCode::RelayNotAdmin,
                "How long customers are kept is set for every desk on a desk that manages the relay. Change it there.",
            ));
        }
        let (_, client) = self.relay_client()?;
        let held = super::relay::block_on(client.set_policy(policy))?;
        self.store.writer()?.store_retention_policy(&held, true)?;
        Ok(true)
    }

    /// Sends the new settings of the relay's connection `provider`/`name` to the relay (admin
    /// desks) and keeps them here. Returns false when the connection is this desk's own (not the
    /// relay's): the caller changes it here only.
    pub fn share_connection_settings(
        &self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> ApiResult<bool> {
        let via_relay = self
            .store
            .reader()?
            .connection(provider, name)?
            .is_some_and(|c| c.via_relay);
        if !via_relay || self.relay_link()?.is_none() {
            return Ok(false);
        }
        let Some((_, client)) = self.relay_admin()? else {
            return Err(AppError::new(
                ErrorCode::RelayNotAdmin,
                "This connection belongs to the relay: only a desk that manages the relay can change it.",
            ));
        };
        let update = UpdateRemoteConnection {
            settings: settings.clone(),
        };
        let updated = super::relay::block_on(client.update_connection(provider, name, &update))?;
        self.store
            .writer()?
            .relay_connection(provider, name, &updated.settings, Utc::now())?;
        self.connections_changed()?;
        Ok(true)
    }

    /// Replaces the settings of this computer's connection `provider`/`name` (on a relay: what
    /// an admin desk's `PATCH` does).
    pub(crate) fn replace_connection_settings(
        &self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> ApiResult<Connection> {
        let replaced = self
            .store
            .writer()?
            .replace_connection_settings(provider, name, settings)?;
        if !replaced {
            return Err(AppError::no_connection(provider, name));
        }
        self.connections_changed()?;
        self.store
            .reader()?
            .connection(provider, name)?
            .ok_or_else(|| AppError::no_connection(provider, name))
    }

    /// The desk's side of hand changes for its relay puller.
    pub(crate) fn hand_changes(&self) -> Arc<dyn HandChanges> {
        Arc::new(DeskChanges {
            store: self.store.clone(),
        })
    }

    /// What this computer is called in decisions and the erasure log: its name on the relay when
    /// joined to one, else the operating system's name for it.
    pub fn computer_name(&self) -> String {
        if let Ok(Some(link)) = self.relay_link() {
            return link.device_name;
        }
        host_name().unwrap_or_else(|| "this computer".to_string())
    }
}

/// A new random id for a change (128 bits, hex).
pub fn new_uid() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

#[cfg(unix)]
fn host_name() -> Option<String> {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn host_name() -> Option<String> {
    std::env::var("COMPUTERNAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
}

/// How long applying a change waits for another process's write to finish.
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a forget from the relay keeps trying to empty the WAL.
const WIPE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the desk says when the relay couldn't take a change now.
/// A refusal in words: what stands, what didn't reach the relay, and the relay's reason.
fn refused(change: &HandChange, why: &str) -> RelaySync {
    let done = match change.what {
        HandChangeKind::Forget { .. } => {
            "They were forgotten on this computer, but the relay's copy and the other desks' weren't"
        }
        _ => "The change was made on this computer only: the other desks don't get it",
    };
    RelaySync::Refused {
        message: format!("{done}. The relay said: {why}"),
    }
}

fn pending_words(change: &HandChange) -> String {
    match change.what {
        HandChangeKind::Forget { .. } => {
            "The relay couldn't be reached; its copy is forgotten when it is back.".into()
        }
        _ => {
            "The relay couldn't be reached; the other desks get this change when it is back.".into()
        }
    }
}

/// A failure the relay may get over: it can't be reached, its certificate can't be checked
/// just now, or it failed (5xx, or something in front of it answered).
fn relay_may_take_it_later(e: &ClientError) -> bool {
    match e {
        ClientError::Unreachable { .. }
        | ClientError::Certificate { .. }
        | ClientError::NotARelay { .. } => true,
        // 404: a relay from before hand changes; it takes them once it is updated.
        ClientError::Refused { status, .. } => *status >= 500 || matches!(*status, 404 | 429),
        _ => false,
    }
}

/// Applies the relay's hand changes to this desk's store.
#[derive(Debug)]
struct DeskChanges {
    store: Store,
}

impl DeskChanges {
    fn apply_change(&self, change: &HandChange) -> Result<BTreeSet<i64>, StoreError> {
        let mut writer = self.store.writer()?;
        match &change.what {
            HandChangeKind::Decide { decision } => {
                writer.add_decision(&change.uid, decision, change.at, &change.by)
            }
            HandChangeKind::Undo { decision } => {
                writer.undo_decision(decision, change.at, &change.by)
            }
            HandChangeKind::Forget { forget } => {
                let hashes = ForgetHashes::decode(forget).ok_or_else(|| {
                    StoreError::Invalid(
                        "A forget from the relay didn't name its records by salted hashes.".into(),
                    )
                })?;
                let report = writer.forget(&ForgetRequest {
                    uid: change.uid.clone(),
                    at: change.at,
                    computer: change.by.clone(),
                    reason: forget.reason,
                    salt: hashes.salt,
                    record_hashes: hashes.records.into_iter().collect(),
                    keep_forgetting: forget.keep_forgetting,
                })?;
                if !report.repeated {
                    // Gone from the disk too, as when forgetting here (logged, not fatal: the
                    // forget itself is done).
                    match writer.wipe_forgotten(WIPE_WAIT) {
                        Ok(wipe) if !wipe.checkpointed => tracing::warn!(
                            "couldn't truncate the write-ahead log after a forget from the relay"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "couldn't wipe after a forget from the relay")
                        }
                    }
                    tracing::info!(
                        records = report.records,
                        deliveries = report.deliveries,
                        "forgot customers another desk forgot"
                    );
                }
                Ok(report.people_changed)
            }
            HandChangeKind::StopForgetting { forget } => {
                writer.stop_forgetting(forget, change.at)?;
                Ok(BTreeSet::new())
            }
        }
    }

    /// Applies `change`, trying again for a while when a writer in another process holds the
    /// database (`clientele customers …` beside a running desk).
    fn apply_while_busy(&self, change: &HandChange) -> Result<BTreeSet<i64>, StoreError> {
        let deadline = std::time::Instant::now() + WRITE_WAIT;
        loop {
            match self.apply_change(change) {
                Err(StoreError::Busy) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }
}

impl HandChanges for DeskChanges {
    fn to_send(&self) -> Result<Vec<HandChange>, String> {
        let run = || self.store.reader()?.hand_changes_to_send();
        run().map_err(|e| e.to_string())
    }

    fn sent(&self, uid: &str) -> Result<(), String> {
        let run = || self.store.writer()?.hand_change_sent(uid);
        run().map_err(|e| e.to_string())
    }

    fn cursor(&self) -> Result<i64, String> {
        let run = || self.store.reader()?.changes_cursor();
        run().map_err(|e| e.to_string())
    }

    fn apply(&self, pulled: &PulledChange) -> Result<BTreeSet<i64>, String> {
        let run = || {
            let people = self.apply_while_busy(&pulled.change)?;
            self.store.writer()?.set_changes_cursor(pulled.id)?;
            Ok::<_, StoreError>(people)
        };
        run().map_err(|e| e.to_string())
    }

    fn policy(&self, policy: &Policy) -> Result<(), String> {
        let run = || self.store.writer()?.store_retention_policy(policy, true);
        run().map_err(|e| e.to_string())
    }
}

/// Holds the people screens back while a desk that was off brings in the relay's hand changes
/// at start, so a customer forgotten on another desk meanwhile is never shown here again. Open
/// unless a start is under way; waiting is bounded, so an unreachable relay delays a screen by
/// at most [`ChangesGate::MOST`].
#[derive(Debug, Default)]
pub(crate) struct ChangesGate {
    closed: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl ChangesGate {
    /// The longest a screen waits for the relay's changes.
    pub(crate) const MOST: std::time::Duration = std::time::Duration::from_secs(15);

    pub(crate) fn close(&self) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    pub(crate) fn open(&self) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.opened.notify_all();
    }

    /// Returns once the gate is open, or after [`ChangesGate::MOST`] — and then opens it, so a
    /// start that never comes costs one wait, not one per screen.
    pub(crate) fn wait(&self) {
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        let (mut closed, _) = self
            .opened
            .wait_timeout_while(closed, Self::MOST, |closed| *closed)
            .unwrap_or_else(|p| p.into_inner());
        *closed = false;
    }
}

#[cfg(test)]
mod gate_tests {
    use super::ChangesGate;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_closed_gate_holds_screens_until_the_start_opens_it() {
        let gate = Arc::new(ChangesGate::default());
        let started = Instant::now();
        gate.wait();
        assert!(
            started.elapsed() < ChangesGate::MOST,
            "an open gate doesn't wait"
        );
        gate.close();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.wait();
                tx.send(()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a closed gate holds the screen"
        );
        gate.open();
        rx.recv_timeout(ChangesGate::MOST)
            .expect("opening the gate lets the screen through");
        waiting.join().unwrap();
    }
}
