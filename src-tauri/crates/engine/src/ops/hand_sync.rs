//! Hand changes (merges, splits, undos, forgets) reaching the relay, so every desk joined to it
//! shows the same people and forgets the same customers.
//!
//! A change is sent to the relay as it is made; when the relay can't be reached it waits in the
//! desk's outbox (`relay_outbox`) and is sent when the relay is back.

use super::Operations;
use crate::error::ApiResult;
use clientele_core::hand::HandChange;
use serde::Serialize;
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
}

impl Operations {
    /// Shares `change` with the relay this computer is joined to, if any.
    pub fn share_hand_change(&self, change: &HandChange) -> ApiResult<RelaySync> {
        if self.relay_link()?.is_none() {
            return Ok(RelaySync::NotJoined);
        }
        self.store
            .writer()?
            .queue_hand_change(change, chrono::Utc::now())?;
        Ok(RelaySync::Pending {
            message: "The relay couldn't be reached; it gets this change when it is back.".into(),
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
