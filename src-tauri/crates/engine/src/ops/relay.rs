//! "Receive from the internet": joining a relay, leaving it, and how the link is doing — for
//! Settings, the tray and `clientele relay join | status | leave`.

use super::{Operations, iso};
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::{DateTime, Utc};
use clientele_core::Sensitive;
use clientele_relay_client::{ClientError, LinkState, PullStatus, RelayClient};
use clientele_store::RelayLink;
use serde::Serialize;
use std::future::Future;
use tokio::sync::watch;
use ts_rs::TS;

/// Where the link to the relay stands, in the window's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RelayState {
    /// This computer isn't joined to a relay.
    NotJoined,
    /// Joined; this process isn't pulling (the command line) or hasn't heard back yet.
    Connecting,
    Connected,
    /// The relay can't be reached since `since`; messages wait there.
    Unreachable,
    /// The relay removed this computer's access.
    Revoked,
}

/// The relay link as Settings, the tray and `relay status` show it. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RelayStatus {
    pub state: RelayState,
    /// The address this computer pulls from.
    pub url: Option<String>,
    /// Its host name, for sentences ("Connected to relay.example.com").
    pub host: Option<String>,
    /// This computer's name on the relay.
    pub name: Option<String>,
    /// May manage the relay's connections.
    pub admin: bool,
    /// Where providers post to.
    pub public_url: Option<String>,
    /// Since when the relay can't be reached.
    pub since: Option<String>,
    /// Why, in plain words.
    pub error: Option<String>,
    pub last_pull_at: Option<String>,
    /// When the newest message pulled was received at the relay.
    pub last_delivery_at: Option<String>,
    /// Messages received from the relay, in all.
    #[ts(type = "number")]
    pub received: i64,
}

/// What joining did.
#[derive(Debug)]
pub struct Joined {
    pub url: String,
    pub name: String,
    pub admin: bool,
    /// The device token, when the secret store couldn't keep it (environment variables): the
    /// caller shows it once for the operator to put in `CLIENTELE_RELAY_TOKEN`.
    pub token_to_show: Option<Sensitive<String>>,
}

/// Runs `future` to completion from blocking code, on a thread of its own with its own small
/// runtime (so it works the same from a command, a Tauri command's blocking thread or a test).
pub(crate) fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(future))
            })
            .join()
    })
    .unwrap_or_else(|_| panic!("the relay call's thread panicked"))
    .unwrap_or_else(|e| panic!("couldn't start a runtime for a relay call: {e}"))
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::BadAddress(_) | ClientError::CaCert(_) => ErrorCode::InvalidInput,
            ClientError::Unreachable { .. } => ErrorCode::RelayUnreachable,
            ClientError::Certificate { .. } => ErrorCode::RelayUntrusted,
            ClientError::Unauthorized { .. } => ErrorCode::RelayAccessRemoved,
            ClientError::NotAdmin { .. } => ErrorCode::RelayNotAdmin,
            ClientError::Refused { code, .. } if code == "invalid_input" => ErrorCode::InvalidInput,
            ClientError::Refused { code, .. } if code == "not_found" => ErrorCode::NotFound,
            ClientError::Refused { code, .. } if code == "connection_name_taken" => {
                ErrorCode::ConnectionNameTaken
            }
            ClientError::Refused { .. } => ErrorCode::RelayRefused,
            ClientError::NotARelay { .. } => ErrorCode::NotARelay,
        };
        AppError::new(code, e.to_string())
    }
}

fn host_of(url: &str) -> Option<String> {
    clientele_relay_client::client::parse_url(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

impl Operations {
    /// The relay this computer pulls from, if any.
    pub fn relay_link(&self) -> ApiResult<Option<RelayLink>> {
        Ok(self.store.reader()?.relay_link()?)
    }

    /// A client for the joined relay, with this computer's token.
    pub fn relay_client(&self) -> ApiResult<(RelayLink, RelayClient)> {
        let Some(link) = self.relay_link()? else {
            return Err(AppError::new(
                ErrorCode::RelayNotJoined,
                "This computer isn't joined to a relay. Join one in Settings, or with `clientele relay join`.",
            ));
        };
        let token = self.secrets.relay_token()?.ok_or_else(|| {
            AppError::new(
                ErrorCode::RelayAccessRemoved,
                format!(
                    "This computer's relay access key isn't in {}. Leave the relay and join it again with a new code.",
                    self.secrets.describe()
                ),
            )
        })?;
        let client =
            RelayClient::new(&link.url, link.ca_cert.as_deref())?.with_token(token.expose());
        Ok((link, client))
    }

    /// The relay's client when this computer may manage the relay's connections.
    pub(crate) fn relay_admin(&self) -> ApiResult<Option<(RelayLink, RelayClient)>> {
        match self.relay_link()? {
            Some(link) if link.admin => self.relay_client().map(Some),
            _ => Ok(None),
        }
    }

    /// Pairs this data folder with the relay at `url` using a one-time `code`. The token goes to
    /// the secret store; when that is read-only (environment variables) it is handed back once
    /// for the operator to keep.
    pub fn join_relay(
        &self,
        url: &str,
        code: &str,
        name: Option<&str>,
        ca_cert: Option<String>,
        now: DateTime<Utc>,
    ) -> ApiResult<Joined> {
        if let Some(link) = self.relay_link()? {
            return Err(AppError::new(
                ErrorCode::RelayAlreadyJoined,
                format!(
                    "This computer already receives through the relay at {}. Leave it first.",
                    link.url
                ),
            ));
        }
        // A typo is caught here, before anything goes over the network.
        let code = clientele_relay::code::PairingCode::parse(code)
            .map_err(|e| AppError::new(ErrorCode::InvalidInput, e.to_string()))?;
        let client = RelayClient::new(url, ca_cert.as_deref())?;
        let paired = block_on(client.pair(&code.to_string(), name))?;
        let token = Sensitive::new(paired.token.clone());
        let token_to_show = match self.secrets.set_relay_token(&token) {
            Ok(()) => None,
            Err(clientele_secrets::SecretError::ReadOnly { .. }) => Some(token),
            Err(e) => return Err(e.into()),
        };
        let link = RelayLink {
            url: client.url().to_string(),
            device_name: paired.device.name.clone(),
            admin: paired.device.admin,
            ca_cert,
            public_url: paired.public_url.trim_end_matches('/').to_string(),
            joined_at: now,
            cursor: "0".into(),
            last_pull_at: None,
            received: 0,
            rejections_cursor: 0,
        };
        self.store.writer()?.set_relay_link(&link)?;
        tracing::info!(url = %link.url, name = %link.device_name, "joined a relay");
        Ok(Joined {
            url: link.url,
            name: link.device_name,
            admin: link.admin,
            token_to_show,
        })
    }

    /// Stops receiving through the relay. Everything already pulled stays; the token is forgotten.
    pub fn leave_relay(&self) -> ApiResult<bool> {
        let left = self.store.writer()?.clear_relay_link()?;
        // The retention policy stays as it was, now this computer's own to change.
        self.store.writer()?.release_retention_policy()?;
        match self.secrets.delete_relay_token() {
            Ok(()) | Err(clientele_secrets::SecretError::ReadOnly { .. }) => {}
            Err(e) => tracing::warn!(error = %e, "couldn't forget the relay token"),
        }
        self.set_pull_status(None);
        Ok(left)
    }

    /// Where the relay link stands. In a process that pulls, from the puller; elsewhere
    /// (`clientele relay status`) from the link as saved — `check` asks the relay too.
    pub fn relay_status(&self, check: bool) -> ApiResult<RelayStatus> {
        let Some(link) = self.relay_link()? else {
            return Ok(RelayStatus {
                state: RelayState::NotJoined,
                url: None,
                host: None,
                name: None,
                admin: false,
                public_url: None,
                since: None,
                error: None,
                last_pull_at: None,
                last_delivery_at: None,
                received: 0,
            });
        };
        let live = self
            .pulling
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|rx| rx.borrow().clone());
        let live = match (live, check) {
            (Some(live), _) => live,
            (None, false) => PullStatus::default(),
            (None, true) => {
                let checked = self
                    .relay_client()
                    .and_then(|(_, client)| block_on(client.device()).map_err(AppError::from));
                PullStatus {
                    state: match checked {
                        Ok(_) => LinkState::Connected,
                        Err(e) if e.code == ErrorCode::RelayAccessRemoved => {
                            LinkState::Revoked { message: e.message }
                        }
                        Err(e) => LinkState::Unreachable {
                            since: Utc::now(),
                            error: e.message,
                        },
                    },
                    ..PullStatus::default()
                }
            }
        };
        let (state, since, error) = match live.state {
            LinkState::Connecting => (RelayState::Connecting, None, None),
            LinkState::Connected => (RelayState::Connected, None, None),
            LinkState::Unreachable { since, error } => {
                (RelayState::Unreachable, Some(iso(since)), Some(error))
            }
            LinkState::Revoked { message } => (RelayState::Revoked, None, Some(message)),
        };
        Ok(RelayStatus {
            state,
            host: host_of(&link.url),
            url: Some(link.url),
            name: Some(link.device_name),
            admin: link.admin,
            public_url: Some(link.public_url),
            since,
            error,
            last_pull_at: live.last_pull_at.max(link.last_pull_at).map(iso),
            last_delivery_at: live.last_delivery_at.map(iso),
            received: link.received,
        })
    }

    /// Changes of the puller's status while this process pulls, for the window and the tray
    /// (`None` when it doesn't pull).
    pub fn watch_pull_status(&self) -> Option<watch::Receiver<PullStatus>> {
        self.pulling
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The puller's status, while this process pulls (set by the engine).
    pub(crate) fn set_pull_status(&self, status: Option<watch::Receiver<PullStatus>>) {
        *self.pulling.write().unwrap_or_else(|p| p.into_inner()) = status;
    }
}
