//! The desktop app's backend, without Tauri: every screen's data and every action, as plain
//! blocking methods returning view types that ts-rs turns into the UI's TypeScript types. The
//! Tauri commands are one-line adapters to these, so all of it is testable without a window.

use crate::connections::ConnectionRegistry;
use crate::ingest::IngestHandle;
use chrono::{DateTime, Duration, Local, SecondsFormat, TimeZone, Utc};
use clientele_core::{Provider, Sensitive, fields, providers};
use clientele_store::{
    ActivityFilter, ActivityRow, DeliveryStatus, NewConnection, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use ts_rs::TS;

/// The one error shape the UI sees: a code from a closed list, and a message safe to show.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AppError {
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        AppError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Sqlite(_) | StoreError::Corrupt(_)) {
            tracing::error!(error = %e, "store error");
            return AppError::new(
                e.code(),
                "Clientele couldn't read or save its data. Try again; if it keeps happening, copy the details for support.",
            );
        }
        AppError::new(e.code(), e.to_string())
    }
}

impl From<clientele_secrets::SecretError> for AppError {
    fn from(e: clientele_secrets::SecretError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}

pub type ApiResult<T> = Result<T, AppError>;

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub secret_word: String,
    pub where_to_find_secret: String,
    pub where_to_paste: String,
    pub events_to_tick: Vec<String>,
    pub checks: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RejectionView {
    pub received_at: String,
    pub reason: String,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectionHealth {
    pub last_delivery_at: Option<String>,
    pub deliveries_today: u32,
    pub rejections_today: u32,
    pub recent_rejections: Vec<RejectionView>,
    pub quiet_warning: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectionView {
    pub provider: String,
    pub provider_name: String,
    pub name: String,
    pub webhook_url: String,
    pub requires_secret: bool,
    pub secret_set: bool,
    pub paused: bool,
    pub created_at: String,
    pub health: ConnectionHealth,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct NewConnectionRequest {
    pub provider: String,
    pub name: String,
    /// `None` only when the user chose "this provider can't sign messages".
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TestEventResult {
    pub ok: bool,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct ActivityQuery {
    /// "all" | "deliveries" | "rejections"
    pub kind: String,
    pub provider: Option<String>,
    pub status: Option<String>,
    pub since_hours: Option<u32>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ActivityItem {
    /// "delivery" | "rejection"
    pub kind: String,
    #[ts(type = "number")]
    pub id: i64,
    pub provider: String,
    pub provider_name: String,
    pub connection: String,
    pub received_at: String,
    pub status: Option<String>,
    #[ts(type = "number")]
    pub duplicates: i64,
    pub summary: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct EventLine {
    pub occurred_at: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DeliveryDetailView {
    #[ts(type = "number")]
    pub id: i64,
    pub provider: String,
    pub provider_name: String,
    pub connection: String,
    pub received_at: String,
    pub status: String,
    #[ts(type = "number")]
    pub duplicates: i64,
    pub dedupe_key: String,
    pub verification: String,
    pub headers: Vec<(String, String)>,
    pub body_pretty: String,
    pub body_is_json: bool,
    pub error: Option<String>,
    pub events: Vec<EventLine>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SourceRef {
    pub provider: String,
    pub provider_name: String,
    pub connection: String,
    pub customer_ref: String,
    pub deleted_at: Option<String>,
    pub linked_because: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PersonSummary {
    #[ts(type = "number")]
    pub id: i64,
    pub display_name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub sources: Vec<SourceRef>,
    pub first_event_at: Option<String>,
    pub last_event_at: Option<String>,
    pub deleted: bool,
}

pub use clientele_store::SEARCH_COUNT_LIMIT;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PeoplePage {
    /// All people without a search; with one, how many match, up to [`SEARCH_COUNT_LIMIT`].
    #[ts(type = "number")]
    pub total: i64,
    /// More people match the search than `total` says: the list shows the first `total`.
    pub more: bool,
    pub items: Vec<PersonSummary>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ChangeView {
    pub field: String,
    pub label: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TimelineEntry {
    pub occurred_at: String,
    pub provider: String,
    pub provider_name: String,
    pub connection: String,
    pub kind: String,
    pub summary: String,
    pub changes: Vec<ChangeView>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProfileFieldView {
    pub field: String,
    pub label: String,
    pub value: String,
    /// "text" | "date" (value is RFC 3339: show it in the user's format) | "yes_no" | "number"
    pub value_kind: String,
    pub provider_name: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PersonDetail {
    #[ts(type = "number")]
    pub id: i64,
    pub display_name: String,
    pub deleted: bool,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub profile: Vec<ProfileFieldView>,
    pub sources: Vec<SourceRef>,
    /// Newest first.
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, Serialize, TS)]
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

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LiveUpdate {
    pub deliveries: u32,
    pub rejections: u32,
    #[ts(type = "Array<number>")]
    pub people: Vec<i64>,
}

/// Stored listener preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerPrefs {
    pub port: u16,
    pub allow_network: bool,
    pub start_at_login: bool,
    pub keep_in_tray: bool,
}

pub const DEFAULT_PORT: u16 = 8787;
/// Header carrying this process's test-event token: a test event takes the real path but is
/// marked as a test, and only this process can mark one.
pub const TEST_HEADER: &str = "x-clientele-test";

/// The app's backend.
#[derive(Debug)]
pub struct Api {
    pub store: Store,
    pub registry: Arc<ConnectionRegistry>,
    pub ingest: IngestHandle,
    pub data_dir: PathBuf,
    pub test_token: Arc<Sensitive<String>>,
    pub listener: RwLock<ListenerStatus>,
}

fn provider(id: &str) -> ApiResult<Provider> {
    id.parse()
        .map_err(|e: clientele_core::provider::UnknownProvider| {
            AppError::new("unknown_provider", e.to_string())
        })
}

fn provider_name(id: &str) -> String {
    id.parse::<Provider>()
        .map_or_else(|_| id.to_string(), |p| p.display_name().to_string())
}

/// Setup help per provider, in the provider's own words.
fn provider_info(p: Provider) -> ProviderInfo {
    let (find, paste, events): (&str, &str, &[&str]) = match p {
        Provider::Tiquo => (
            "In Tiquo, open Settings → Webhooks and copy the endpoint's signing secret.",
            "Tiquo → Settings → Webhooks → Add endpoint",
            &["customer.created", "customer.updated", "customer.deleted"],
        ),
        Provider::Resdiary => (
            "In ResDiary, open the customer webhook settings and copy the signing key (optional in ResDiary, but recommended).",
            "ResDiary → Settings → Integrations → Customer webhooks",
            &[
                "Customer Created",
                "Customer Deleted",
                "Contact Details Changed",
                "Marketing Opt-ins Changed",
            ],
        ),
        Provider::Vagaro => (
            "In Vagaro, open Settings → Developers → Webhooks and copy the verification token.",
            "Vagaro → Settings → Developers → Webhooks",
            &["Customer"],
        ),
        Provider::Plain => (
            "In Plain, open Settings → Webhooks, and copy the request signing secret.",
            "Plain → Settings → Webhooks → Add webhook target",
            &[
                "Customer created",
                "Customer updated",
                "Customer deleted",
                "Customer group membership changed",
            ],
        ),
        Provider::Zupy => (
            "In Zupy's admin panel, open the webhook settings and copy the signing secret.",
            "Zupy admin → Integrations → Webhooks",
            &["customer.*", "tier.*", "points.*"],
        ),
        Provider::Standard => (
            "Copy the secret that starts with whsec_ from the sending system's webhook settings.",
            "The sending system's webhook settings",
            &["Any customer events"],
        ),
    };
    let checks = match p {
        Provider::Vagaro => {
            "Clientele checks that each message carries your Vagaro verification token."
        }
        Provider::Resdiary => {
            "Clientele checks each message's signature with your ResDiary signing key."
        }
        _ => {
            "Clientele checks each message's signature with your signing secret, and refuses old messages replayed later."
        }
    };
    ProviderInfo {
        id: p.id().into(),
        name: p.display_name().into(),
        secret_word: p.secret_word().into(),
        where_to_find_secret: find.into(),
        where_to_paste: paste.into(),
        events_to_tick: events.iter().map(|e| e.to_string()).collect(),
        checks: checks.into(),
    }
}

/// How the UI should show a value.
fn value_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Bool(_) => "yes_no",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => "date",
        _ => "text",
    }
}

/// Dates written the way providers send them (RFC 3339, with or without fractions), normalized so
/// the UI can format them.
fn date_text(s: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| iso(t.with_timezone(&Utc)))
}

fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(true) => Some("Yes".into()),
        serde_json::Value::Bool(false) => Some("No".into()),
        serde_json::Value::String(s) if date_text(s).is_some() => date_text(s),
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(items) => Some(
            items
                .iter()
                .map(|i| value_text(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Some(other.to_string()),
    }
}

fn source_view(s: clientele_store::SourceRef) -> SourceRef {
    SourceRef {
        provider_name: provider_name(&s.provider),
        provider: s.provider,
        connection: s.connection,
        customer_ref: s.customer_ref,
        deleted_at: s.deleted_at.map(iso),
        linked_because: s.linked_because,
    }
}

fn person_summary(p: clientele_store::PersonSummary) -> PersonSummary {
    PersonSummary {
        id: p.id,
        display_name: p.display_name,
        emails: p.emails,
        phones: p.phones,
        sources: p.sources.into_iter().map(source_view).collect(),
        first_event_at: p.first_event_at.map(iso),
        last_event_at: p.last_event_at.map(iso),
        deleted: p.deleted,
    }
}

impl Api {
    pub fn providers(&self) -> Vec<ProviderInfo> {
        Provider::ALL.into_iter().map(provider_info).collect()
    }

    /// The listener's base URL as providers should use it.
    fn base_url(&self) -> String {
        let status = self.listener.read().unwrap_or_else(|p| p.into_inner());
        status.address.clone().map_or_else(
            || format!("http://127.0.0.1:{DEFAULT_PORT}"),
            |a| format!("http://{a}"),
        )
    }

    pub fn connections(&self, now: DateTime<Utc>) -> ApiResult<Vec<ConnectionView>> {
        let reader = self.store.reader()?;
        let start_of_day = Local
            .from_local_datetime(
                &now.with_timezone(&Local)
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default(),
            )
            .earliest()
            .map_or(now - Duration::hours(24), |t| t.with_timezone(&Utc));
        let base = self.base_url();
        reader
            .connections()?
            .into_iter()
            .map(|c| {
                let stats =
                    reader.connection_stats(c.id, c.provider.id(), &c.name, start_of_day)?;
                let rejections = reader.rejections_for(c.provider.id(), &c.name, 5)?;
                let secret_set = !c.requires_secret
                    || self
                        .registry
                        .secrets()
                        .is_set(c.provider, &c.name)
                        .unwrap_or(false);
                Ok(ConnectionView {
                    provider: c.provider.id().into(),
                    provider_name: c.provider.display_name().into(),
                    webhook_url: format!("{base}{}", crate::cli::webhook_path(c.provider, &c.name)),
                    requires_secret: c.requires_secret,
                    secret_set,
                    paused: c.paused,
                    created_at: iso(c.created_at),
                    health: ConnectionHealth {
                        last_delivery_at: stats.last_delivery_at.map(iso),
                        deliveries_today: stats.deliveries_since as u32,
                        rejections_today: stats.rejections_since as u32,
                        recent_rejections: rejections
                            .into_iter()
                            .map(|r| RejectionView {
                                received_at: iso(r.received_at),
                                reason: r.reason,
                                code: r.code,
                            })
                            .collect(),
                        quiet_warning: quiet_warning(c.provider, &stats.recent_arrivals, now),
                    },
                    name: c.name,
                })
            })
            .collect()
    }

    pub fn add_connection(
        &self,
        request: NewConnectionRequest,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        let p = provider(&request.provider)?;
        let name = request.name.trim().to_string();
        clientele_store::validate_connection_name(&name)?;
        let reader = self.store.reader()?;
        if reader.connection(p, &name)?.is_some() {
            return Err(AppError::new(
                "invalid",
                format!(
                    "There is already a {} connection called '{name}'.",
                    p.display_name()
                ),
            ));
        }
        let secret = request.secret.map(Sensitive::new);
        if let Some(secret) = &secret {
            if secret.expose().trim().is_empty() {
                return Err(AppError::new(
                    "secret_empty",
                    format!(
                        "Paste the {} from {} first.",
                        p.secret_word(),
                        p.display_name()
                    ),
                ));
            }
            self.registry.secrets().set(p, &name, secret)?;
        }
        let added = self.store.writer()?.add_connection(
            &NewConnection {
                provider: p,
                name: name.clone(),
                settings: Default::default(),
                requires_secret: secret.is_some(),
            },
            now,
        );
        if let Err(e) = added {
            if secret.is_some() {
                let _ = self.registry.secrets().delete(p, &name);
            }
            return Err(e.into());
        }
        self.registry.reload()?;
        self.connection_view(p, &name, now)
    }

    fn connection_view(
        &self,
        p: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        self.connections(now)?
            .into_iter()
            .find(|c| c.provider == p.id() && c.name == name)
            .ok_or_else(|| {
                AppError::new(
                    "not_found",
                    format!(
                        "There is no {} connection called '{name}'.",
                        p.display_name()
                    ),
                )
            })
    }

    pub fn replace_secret(&self, provider_id: &str, name: &str, secret: String) -> ApiResult<()> {
        let p = provider(provider_id)?;
        if self.store.reader()?.connection(p, name)?.is_none() {
            return Err(AppError::new(
                "not_found",
                format!(
                    "There is no {} connection called '{name}'.",
                    p.display_name()
                ),
            ));
        }
        self.registry
            .secrets()
            .set(p, name, &Sensitive::new(secret))?;
        self.registry.reload()?;
        Ok(())
    }

    pub fn remove_connection(
        &self,
        provider_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let p = provider(provider_id)?;
        self.store.writer()?.remove_connection(p, name, now)?;
        if let Err(e) = self.registry.secrets().delete(p, name) {
            tracing::warn!(error = %e, "couldn't delete a removed connection's secret");
        }
        self.registry.reload()?;
        Ok(())
    }

    pub fn set_paused(
        &self,
        provider_id: &str,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        let p = provider(provider_id)?;
        self.store.writer()?.set_paused(p, name, paused)?;
        self.registry.reload()?;
        self.connection_view(p, name, now)
    }

    /// Sends a correctly signed sample through the running listener — the real path — marked as
    /// a test so it shows in Activity but never makes a customer.
    pub fn send_test_event(
        &self,
        provider_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<TestEventResult> {
        let p = provider(provider_id)?;
        let live = self.registry.get(p, name).ok_or_else(|| {
            AppError::new(
                "not_found",
                format!(
                    "There is no {} connection called '{name}'.",
                    p.display_name()
                ),
            )
        })?;
        let status = self
            .listener
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(address) = status.address.filter(|_| status.running) else {
            return Ok(TestEventResult { ok: false, message: "Clientele isn't receiving messages right now, so the test couldn't be sent. Check Settings → Listener.".into() });
        };
        let body = providers::sample_body(
            p,
            &format!("clientele-test-{}", now.timestamp_millis()),
            "test@example.com",
            now,
        );
        let mut headers = match &live.secret {
            Some(secret) => providers::sign(p, secret, &body, now),
            None => Vec::new(),
        };
        headers.push((TEST_HEADER.into(), self.test_token.expose().clone()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("http://{address}{}", crate::cli::webhook_path(p, name));
        let mut request = agent.post(&url).header("content-type", "application/json");
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        Ok(match request.send(&body[..]) {
            Ok(mut response) => {
                let code = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                let said = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_default();
                match code {
                    200 => TestEventResult {
                        ok: true,
                        message: format!(
                            "It works: Clientele received a test message for {} '{name}' and checked it. It shows in Activity and won't appear among your customers.",
                            p.display_name()
                        ),
                    },
                    _ => TestEventResult {
                        ok: false,
                        message: format!("The test message was refused: {said}"),
                    },
                }
            }
            Err(e) => TestEventResult {
                ok: false,
                message: format!("The test message couldn't be sent: {e}"),
            },
        })
    }

    pub fn activity(
        &self,
        query: ActivityQuery,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<ActivityItem>> {
        let status = match query.status.as_deref() {
            None | Some("") => None,
            Some("pending") => Some(DeliveryStatus::Pending),
            Some("processed") => Some(DeliveryStatus::Processed),
            Some("needs_attention") => Some(DeliveryStatus::NeedsAttention),
            Some("test") => Some(DeliveryStatus::Test),
            Some(other) => {
                return Err(AppError::new(
                    "invalid",
                    format!("Unknown status '{other}'."),
                ));
            }
        };
        let filter = ActivityFilter {
            deliveries: query.kind != "rejections",
            rejections: query.kind != "deliveries",
            provider: query.provider.filter(|p| !p.is_empty()),
            status,
            since: query.since_hours.map(|h| now - Duration::hours(h.into())),
            limit: query.limit.clamp(1, 1_000) as usize,
        };
        Ok(self
            .store
            .reader()?
            .activity(&filter)?
            .into_iter()
            .map(|row| match row {
                ActivityRow::Delivery { id, provider, connection, received_at, status, duplicates, is_test, summary, error } => {
                    let summary = match (status, summary, is_test) {
                        (_, _, true) => "Test message: checked and kept, no customer created".to_string(),
                        (DeliveryStatus::NeedsAttention, _, _) => format!(
                            "Couldn't read this message; it is kept and can be read again after an update{}",
                            error.map(|e| format!(" ({e})")).unwrap_or_default()
                        ),
                        (DeliveryStatus::Pending, _, _) => "Received, not read yet".into(),
                        (_, Some(s), _) if !s.is_empty() => s,
                        _ => "Received; nothing about a customer in it".into(),
                    };
                    ActivityItem {
                        kind: "delivery".into(),
                        id,
                        provider_name: provider_name(&provider),
                        provider,
                        connection,
                        received_at: iso(received_at),
                        status: Some(status.as_str().into()),
                        duplicates,
                        summary,
                        reason: None,
                    }
                }
                ActivityRow::Rejection { id, provider, connection, received_at, reason, .. } => ActivityItem {
                    kind: "rejection".into(),
                    id,
                    provider_name: provider_name(&provider),
                    provider,
                    connection,
                    received_at: iso(received_at),
                    status: None,
                    duplicates: 0,
                    summary: "Refused".into(),
                    reason: Some(reason),
                },
            })
            .collect())
    }

    pub fn delivery_detail(&self, id: i64) -> ApiResult<DeliveryDetailView> {
        let reader = self.store.reader()?;
        let d = reader.delivery(id)?;
        let parsed = serde_json::from_slice::<serde_json::Value>(&d.body).ok();
        let body_pretty = match &parsed {
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => String::from_utf8_lossy(&d.body).into_owned(),
        };
        Ok(DeliveryDetailView {
            id: d.row.id,
            provider_name: provider_name(&d.row.provider),
            provider: d.row.provider,
            connection: d.row.connection,
            received_at: iso(d.row.received_at),
            status: d.row.status.as_str().into(),
            duplicates: d.row.duplicates,
            dedupe_key: d.row.dedupe_key,
            verification: d.verification,
            // Only the kept headers are stored, and they never include a signature or token.
            headers: d.headers,
            body_pretty,
            body_is_json: parsed.is_some(),
            error: d.row.error,
            events: reader
                .delivery_events(id)?
                .into_iter()
                .map(|(at, summary)| EventLine {
                    occurred_at: iso(at),
                    summary,
                })
                .collect(),
        })
    }

    pub fn reprocess_delivery(&self, id: i64) -> ApiResult<DeliveryDetailView> {
        self.store.writer()?.reprocess_delivery(id)?;
        self.delivery_detail(id)
    }

    pub fn search_people(&self, query: &str, offset: u32, limit: u32) -> ApiResult<PeoplePage> {
        let reader = self.store.reader()?;
        let search = Some(query).filter(|q| !q.trim().is_empty());
        let page = reader.people_page(search, limit.clamp(1, 500) as usize, offset as usize)?;
        Ok(PeoplePage {
            total: page.total,
            more: page.more,
            items: page.items.into_iter().map(person_summary).collect(),
        })
    }

    pub fn person_detail(&self, id: i64) -> ApiResult<PersonDetail> {
        let p = self.store.reader()?.person(id)?;
        let mut timeline: Vec<TimelineEntry> = p
            .timeline
            .into_iter()
            .map(|e| TimelineEntry {
                occurred_at: iso(e.occurred_at),
                provider_name: provider_name(&e.provider),
                provider: e.provider,
                connection: e.connection,
                kind: e.kind,
                summary: e.summary,
                changes: e
                    .changes
                    .into_iter()
                    .filter(|c| !fields::is_sensitive(&c.field))
                    .map(|c| ChangeView {
                        label: fields::label(&c.field),
                        old: value_text(&c.old),
                        new: value_text(&c.new),
                        field: c.field,
                    })
                    .collect(),
            })
            .collect();
        timeline.reverse();
        Ok(PersonDetail {
            id: p.id,
            display_name: p.display_name,
            deleted: p.deleted,
            emails: p.emails,
            phones: p.phones,
            profile: p
                .profile_sources
                .into_iter()
                .filter(|(field, _)| !fields::is_sensitive(field))
                .map(|(field, v)| ProfileFieldView {
                    label: fields::label(&field),
                    value_kind: value_kind(&v.value).into(),
                    value: value_text(&v.value).unwrap_or_default(),
                    provider_name: provider_name(&v.provider),
                    at: iso(v.at),
                    field,
                })
                .collect(),
            sources: p.sources.into_iter().map(source_view).collect(),
            timeline,
        })
    }

    pub fn prefs(&self) -> ApiResult<ListenerPrefs> {
        let reader = self.store.reader()?;
        let flag = |key: &str, default: bool| -> ApiResult<bool> {
            Ok(reader.setting(key)?.map_or(default, |v| v == "true"))
        };
        Ok(ListenerPrefs {
            port: reader
                .setting("listener_port")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_PORT),
            allow_network: flag("listener_allow_network", false)?,
            start_at_login: flag("start_at_login", false)?,
            keep_in_tray: flag("keep_in_tray", true)?,
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
            listener: self
                .listener
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })
    }

    /// Saves settings; the caller restarts the listener when its address changed.
    pub fn save_settings(&self, update: &SettingsUpdate) -> ApiResult<ListenerPrefs> {
        if update.port < 1024 {
            return Err(AppError::new(
                "invalid",
                "Choose a port number from 1024 to 65535.",
            ));
        }
        let mut w = self.store.writer()?;
        w.set_setting("listener_port", &update.port.to_string())?;
        w.set_setting("listener_allow_network", &update.allow_network.to_string())?;
        w.set_setting("start_at_login", &update.start_at_login.to_string())?;
        w.set_setting("keep_in_tray", &update.keep_in_tray.to_string())?;
        self.prefs()
    }

    pub fn set_listener_status(&self, status: ListenerStatus) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// "Nothing for longer than usual": more than three times the typical gap between the latest
/// messages, and at least a day.
fn quiet_warning(p: Provider, arrivals: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<String> {
    let last = *arrivals.first()?;
    if arrivals.len() < 3 {
        return None;
    }
    let mut gaps: Vec<i64> = arrivals
        .windows(2)
        .map(|w| (w[0] - w[1]).num_seconds().max(0))
        .collect();
    gaps.sort_unstable();
    let typical = gaps[gaps.len() / 2];
    let silent = (now - last).num_seconds();
    (silent > (typical * 3).max(24 * 3600)).then(|| {
        format!(
            "Nothing from {} for {} — usually every {}. Check the connection in {}.",
            p.display_name(),
            human_duration(silent),
            human_duration(typical.max(60)),
            p.display_name()
        )
    })
}

fn human_duration(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "days")
    } else if secs >= 2 * 3_600 {
        (secs / 3_600, "hours")
    } else {
        ((secs / 60).max(1), "minutes")
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_warning_only_when_unusually_long() {
        let now = Utc::now();
        let hourly: Vec<_> = (0..10).map(|h| now - Duration::hours(h + 1)).collect();
        assert_eq!(quiet_warning(Provider::Vagaro, &hourly, now), None);
        let stale: Vec<_> = (0..10)
            .map(|h| now - Duration::days(3) - Duration::hours(h))
            .collect();
        let warning = quiet_warning(Provider::Vagaro, &stale, now)
            .expect("three days of silence after hourly messages");
        assert!(
            warning.contains("Nothing from Vagaro for 3 days"),
            "{warning}"
        );
    }
}
