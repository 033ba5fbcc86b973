//! The Activity screen: every delivery and every refusal as it arrives, one delivery in full,
//! and reading one again after an update.

use super::{Operations, iso};
use crate::error::ApiResult;
use chrono::{DateTime, Duration, Utc};
use clientele_core::Provider;
use clientele_store::{ActivityFilter, ActivityRow, DeliveryStatus};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Which rows the Activity screen lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ActivityKind {
    All,
    Deliveries,
    Rejections,
}

/// What one Activity row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ActivityItemKind {
    Delivery,
    Rejection,
}

#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct ActivityQuery {
    pub kind: ActivityKind,
    /// Only this provider's deliveries and refusals; `None` for every provider's.
    pub provider: Option<Provider>,
    pub status: Option<DeliveryStatus>,
    pub since_hours: Option<u32>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ActivityItem {
    pub kind: ActivityItemKind,
    #[ts(type = "number")]
    pub id: i64,
    /// A provider id; a refused request may name one Clientele doesn't know.
    pub provider: String,
    pub provider_name: String,
    pub connection: String,
    pub received_at: String,
    pub status: Option<DeliveryStatus>,
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
    pub provider: Provider,
    pub provider_name: String,
    pub connection: String,
    pub received_at: String,
    pub status: DeliveryStatus,
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

impl Operations {
    pub fn activity(
        &self,
        query: ActivityQuery,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<ActivityItem>> {
        let filter = ActivityFilter {
            deliveries: query.kind != ActivityKind::Rejections,
            rejections: query.kind != ActivityKind::Deliveries,
            provider: query.provider,
            status: query.status,
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
                        kind: ActivityItemKind::Delivery,
                        id,
                        provider_name: provider.display_name().into(),
                        provider: provider.id().into(),
                        connection,
                        received_at: iso(received_at),
                        status: Some(status),
                        duplicates,
                        summary,
                        reason: None,
                    }
                }
                ActivityRow::Rejection { id, provider, connection, received_at, reason, .. } => ActivityItem {
                    kind: ActivityItemKind::Rejection,
                    id,
                    provider_name: Provider::name_for_id(&provider),
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
            provider_name: d.row.provider.display_name().into(),
            provider: d.row.provider,
            connection: d.row.connection,
            received_at: iso(d.row.received_at),
            status: d.row.status,
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
}
