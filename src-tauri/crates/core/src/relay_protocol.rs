//! What a relay and a desk say to each other: the JSON of the relay's API, shared by both ends so
//! they can't drift apart. How the API works, and why, is in `docs/relay.md`.
//!
//! - `POST /pair` `{code, name?}` → [`Paired`]: the one call without a token (the code is the
//!   credential, good once, for 15 minutes).
//! - `GET /v1/deliveries?after=CURSOR&limit=N&wait=SECONDS` → [`Page`]: deliveries after the
//!   cursor, oldest first; when there are none, the request waits up to `wait` seconds (at most
//!   [`MAX_WAIT_SECONDS`]) for one to arrive. The desk saves `next` once it has stored the page.
//! - `POST /v1/ack` [`Ack`]: the desk has stored everything up to a cursor (the relay may then
//!   delete old deliveries under `--keep-days`, and shows how far behind each desk is).
//! - `GET /v1/device` → [`DeviceInfo`]: who this token is.
//! - Admin desks only: `GET /v1/connections` → `[RemoteConnection]`, `POST /v1/connections`
//!   [`AddRemoteConnection`] → [`RemoteConnection`], `DELETE /v1/connections/{provider}/{name}`,
//!   `GET /v1/rejections?after=ID&limit=N` → `[RemoteRejection]` (oldest first),
//!   `POST /v1/connections/{provider}/{name}/test` → [`TestOutcome`] (the relay sends a signed
//!   test event over HTTP(S) to its own public address — where providers post — and its desks
//!   then pull it as a test), `PATCH /v1/connections/{provider}/{name}` [`UpdateRemoteConnection`]
//!   → [`RemoteConnection`] (new settings, such as when deleted customers are forgotten).
//! - Hand changes (any paired desk): `POST /v1/changes` [`HandChange`] → [`ChangeAccepted`]
//!   (idempotent by the change's uid; a forget is carried out on the relay's own copy before it
//!   answers), `GET /v1/changes?after=ID&limit=N` → [`ChangesPage`], oldest first.
//! - The retention policy: `GET /v1/policy` → [`Policy`] (any desk), `PUT /v1/policy` [`Policy`]
//!   (admin desks only).
//!
//! Every `/v1/` call carries `Authorization: Bearer <token>`; without a valid one it is answered
//! `401`. Errors are [`ApiErrorBody`] `{code, message}` with a message fit to show.

use crate::hand::HandChange;
use crate::{ConnectionSettings, Provider};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of this API, in its paths (`/v1/`).
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest a pull waits for something new. Under the idle timeouts of common proxies and
/// NAT gateways (30-60 s), so a waiting request isn't cut by something in between.
pub const MAX_WAIT_SECONDS: u64 = 25;
/// The most deliveries one page holds.
pub const MAX_PAGE: usize = 1_000;

/// `POST /pair`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairRequest {
    pub code: String,
    /// The name this desk wants on the relay (default: the name the code was made for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The answer to a good pairing code.
#[derive(Clone, Serialize, Deserialize)]
pub struct Paired {
    /// The device token: shown once, never again.
    pub token: String,
    pub device: DeviceInfo,
    /// Where providers post to (`<public_url>/hooks/<provider>/<connection>`).
    pub public_url: String,
}

impl std::fmt::Debug for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paired")
            .field("token", &"<redacted>")
            .field("device", &self.device)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// A paired device as the relay knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub admin: bool,
    /// Deliveries the device hasn't acknowledged.
    #[serde(default)]
    pub behind: i64,
    /// Where providers post to.
    #[serde(default)]
    pub public_url: String,
}

/// One page of `GET /v1/deliveries`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    pub deliveries: Vec<PulledDelivery>,
    /// The connections the deliveries came in on, with the settings needed to read them.
    pub connections: Vec<FeedConnectionInfo>,
    /// Where the next pull starts: save it once the page is stored.
    pub next: String,
    /// More are waiting: pull again at once.
    pub more: bool,
}

/// A delivery exactly as the relay stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PulledDelivery {
    pub provider: Provider,
    pub connection: String,
    pub received_at: DateTime<Utc>,
    pub dedupe_key: String,
    /// The headers the adapters need (never a signature or token).
    pub headers: Vec<(String, String)>,
    /// The raw body, base64 (standard alphabet, padded).
    pub body: String,
    /// What the relay's verification checked.
    pub verification: String,
    #[serde(default)]
    pub is_test: bool,
}

/// A connection as a desk needs it to read its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedConnectionInfo {
    pub provider: Provider,
    pub name: String,
    pub settings: ConnectionSettings,
}

/// `POST /v1/ack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    pub cursor: String,
}

/// A relay connection, for admin desks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteConnection {
    pub provider: Provider,
    pub name: String,
    /// Where the provider posts to.
    pub address: String,
    pub settings: ConnectionSettings,
    pub requires_secret: bool,
    pub secret_set: bool,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub last_delivery_at: Option<DateTime<Utc>>,
    pub deliveries: i64,
    pub rejections: i64,
}

/// `POST /v1/connections`. The secret travels only inside the authenticated TLS channel.
#[derive(Clone, Serialize, Deserialize)]
pub struct AddRemoteConnection {
    pub provider: Provider,
    pub name: String,
    /// None: the connection accepts unsigned deliveries (only where the provider can't sign).
    pub secret: Option<String>,
    #[serde(default)]
    pub settings: ConnectionSettings,
}

impl std::fmt::Debug for AddRemoteConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddRemoteConnection")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("settings", &self.settings)
            .finish()
    }
}

/// A request the relay refused (never its body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteRejection {
    /// Its place in the relay's log: ask for those after it next time.
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub provider: String,
    pub connection: String,
    pub code: String,
    pub reason: String,
    /// The sender's address, as the relay saw it.
    #[serde(default)]
    pub remote_addr: Option<String>,
}

/// What a test event sent at the relay gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub ok: bool,
    /// What was proven, or what went wrong and what to do, in words fit to show.
    pub message: String,
    /// The public address the relay sent the test to (`<public_url>/hooks/…`). Absent from
    /// relays that put the test through in-process, which proved nothing about the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_to: Option<String>,
    /// Why it failed, when it did: one of [`TestProblem`]'s codes (absent from older relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<TestProblem>,
}

/// Why a relay's test failed. Each is something whoever runs the relay must fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestProblem {
    /// The relay doesn't know an address providers can reach (no `--public-url`, and it listens
    /// on a private or loopback address).
    NoPublicUrl,
    /// The request to the public address failed: DNS, the network, a firewall, a proxy, TLS.
    Unreachable,
    /// The public address answered, but not with this relay's acceptance: a refusal, or another
    /// server.
    Refused,
    /// A reason a newer relay gives that this desk doesn't know (its message still says it).
    #[serde(other)]
    Other,
}

/// The most hand changes one page of `GET /v1/changes` holds.
pub const MAX_CHANGES_PAGE: usize = 500;

/// `PATCH /v1/connections/{provider}/{name}`: a relay connection's new settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRemoteConnection {
    pub settings: ConnectionSettings,
}

/// The answer to `POST /v1/changes`: the relay has the change (and, for a forget, has forgotten
/// its own copy of those customers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeAccepted {
    /// Its place in the relay's list of changes.
    pub id: i64,
}

/// One hand change as desks pull it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledChange {
    pub id: i64,
    pub change: HandChange,
}

/// One page of `GET /v1/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesPage {
    /// Oldest first.
    pub changes: Vec<PulledChange>,
    /// Where the next page starts: save it once these are applied.
    pub next: i64,
    /// More are waiting: ask again at once.
    pub more: bool,
}

/// What the relay holds for every desk: how long customers and refused requests are kept
/// (absent: kept). Set from an admin desk; every desk applies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Forget people with no activity for this many months.
    #[serde(default)]
    pub retention_inactive_months: Option<u32>,
    /// Drop refused requests older than this many days.
    #[serde(default)]
    pub retention_rejections_days: Option<u32>,
}

/// Every error the relay's API answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable: `unauthorized`, `not_admin`, `code_unknown`, `code_used`, `code_expired`,
    /// `name_taken`, `too_many_attempts`, `invalid_input`, `not_found`, `unavailable`.
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_tokens_never_show_in_debug() {
        let paired = Paired {
            token: "clt_topsecret".into(),
            device: DeviceInfo {
                name: "desk".into(),
                admin: true,
                behind: 0,
                public_url: String::new(),
            },
            public_url: "https://relay.example.com".into(),
        };
        let add = AddRemoteConnection {
            provider: Provider::Tiquo,
            name: "main".into(),
            secret: Some("whsec_topsecret".into()),
            settings: ConnectionSettings::default(),
        };
        let shown = format!("{paired:?} {add:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
    }

    #[test]
    fn test_outcomes_read_old_and_new_relays_alike() {
        // A relay from before the test went through its public address.
        let old: TestOutcome = serde_json::from_str(r#"{"ok":true,"message":"It works"}"#).unwrap();
        assert_eq!((old.sent_to, old.problem), (None, None));
        // A newer relay's reason this desk doesn't know yet still reads.
        let newer: TestOutcome = serde_json::from_str(
            r#"{"ok":false,"message":"…","sent_to":"https://r.example.com/hooks/tiquo/main","problem":"dns_sinkhole"}"#,
        )
        .unwrap();
        assert_eq!(newer.problem, Some(TestProblem::Other));
        let now = TestOutcome {
            ok: false,
            message: "m".into(),
            sent_to: None,
            problem: Some(TestProblem::NoPublicUrl),
        };
        let text = serde_json::to_string(&now).unwrap();
        assert_eq!(
            text,
            r#"{"ok":false,"message":"m","problem":"no_public_url"}"#
        );
        // Old fields first and unchanged: an older desk reads `ok` and `message` as before.
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["ok"], false);
        assert_eq!(back["message"], "m");
    }
}
