//! The Settings screen: where the listener listens, start at login, keep in the tray.

use super::Operations;
use super::connections::DEFAULT_PORT;
use crate::error::{ApiResult, AppError, ErrorCode};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Default, Serialize, TS)]
#[ts(export)]
pub struct ListenerStatus {
    pub running: bool,
    pub address: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SettingsView {
    pub port: u16,
    pub allow_network: bool,
    pub data_dir: String,
    pub start_at_login: bool,
    pub keep_in_tray: bool,
    pub version: String,
    pub listener: ListenerStatus,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct SettingsUpdate {
    pub port: u16,
    pub allow_network: bool,
    pub start_at_login: bool,
    pub keep_in_tray: bool,
}

/// The setting behind "Start Clientele when I log in".
const START_AT_LOGIN: &str = "start_at_login";

/// Stored listener preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerPrefs {
    pub port: u16,
    pub allow_network: bool,
    pub start_at_login: bool,
    pub keep_in_tray: bool,
}

impl ListenerPrefs {
    /// What a new data folder starts with. Start at login is off until someone (or the first
    /// start of an installed Clientele, through [`Operations::choose_start_at_login_once`])
    /// chooses.
    pub const DEFAULT: ListenerPrefs = ListenerPrefs {
        port: DEFAULT_PORT,
        allow_network: false,
        start_at_login: false,
        keep_in_tray: true,
    };
}

impl Operations {
    pub fn prefs(&self) -> ApiResult<ListenerPrefs> {
        let reader = self.store.reader()?;
        let flag = |key: &str, default: bool| -> ApiResult<bool> {
            Ok(reader.setting(key)?.map_or(default, |v| v == "true"))
        };
        let default = ListenerPrefs::DEFAULT;
        Ok(ListenerPrefs {
            port: reader
                .setting("listener_port")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(default.port),
            allow_network: flag("listener_allow_network", default.allow_network)?,
            start_at_login: flag(START_AT_LOGIN, default.start_at_login)?,
            keep_in_tray: flag("keep_in_tray", default.keep_in_tray)?,
        })
    }

    pub fn settings(&self) -> ApiResult<SettingsView> {
        let prefs = self.prefs()?;
        Ok(SettingsView {
            port: prefs.port,
            allow_network: prefs.allow_network,
            data_dir: self.data_dir.display().to_string(),
            start_at_login: prefs.start_at_login,
            keep_in_tray: prefs.keep_in_tray,
            version: env!("CARGO_PKG_VERSION").into(),
            listener: self.listener_status(),
        })
    }

    /// Saves settings; the caller restarts the listener when its address changed.
    pub fn save_settings(&self, update: &SettingsUpdate) -> ApiResult<ListenerPrefs> {
        if update.port < 1024 {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "Choose a port number from 1024 to 65535.",
            ));
        }
        let mut w = self.store.writer()?;
        w.set_setting("listener_port", &update.port.to_string())?;
        w.set_setting("listener_allow_network", &update.allow_network.to_string())?;
        w.set_setting(START_AT_LOGIN, &update.start_at_login.to_string())?;
        w.set_setting("keep_in_tray", &update.keep_in_tray.to_string())?;
        self.prefs()
    }

    /// Records `on` as the start-at-login choice unless one was ever made for this data folder
    /// (in Settings, or by an earlier call); returns whether it recorded it. The desktop app
    /// calls it on every start, so a new installation starts at login without ever overriding
    /// what a person chose.
    pub fn choose_start_at_login_once(&self, on: bool) -> ApiResult<bool> {
        // Only the desktop app's start calls this, before its window can save Settings.
        if self.store.reader()?.setting(START_AT_LOGIN)?.is_some() {
            return Ok(false);
        }
        self.store
            .writer()?
            .set_setting(START_AT_LOGIN, &on.to_string())?;
        Ok(true)
    }

    pub(crate) fn set_listener_status(&self, status: ListenerStatus) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// Whether the listener runs, where, or why not.
    pub fn listener_status(&self) -> ListenerStatus {
        self.listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
