//! The Activity screen: every delivery and every refusal as it arrives, one delivery in full,
//! and reading one again after an update.

use super::businesses::BusinessNames;
use super::{Operations, iso};
use crate::error::ApiResult;
use chrono::{DateTime, Duration, Utc};
use clientele_core::Provider;
use clientele_core::verify::refusal_words;
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
    /// A message about a customer kept forgotten: acknowledged, not kept (its `id` is the
    /// count's, not a delivery's).
    Withheld,
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
    /// Why a request was refused, in plain words.
    pub reason: Option<String>,
    /// The customer the message was about, when it was about one: their page's id…
    #[ts(type = "number | null")]
    pub person_id: Option<i64>,
    /// …and their name (else email or phone; "Unknown customer" when a customer was read but
    /// can't be found).
    pub person_name: Option<String>,
    /// The technical side of a refusal (what a parser or a signature check said), for "Show
    /// technical details" and support; never on the list.
    pub technical: Option<String>,
}

/// A customer a message was about, for a link to their page.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PersonLink {
    #[ts(type = "number")]
    pub id: i64,
    pub name: String,
}

/// What a row says for a message about a customer kept forgotten.
pub const WITHHELD: &str = "A message about a forgotten customer arrived and wasn't kept";

/// What a row says for a customer it read but can't find (never expected: every profile has a
/// person once derived).
pub const UNKNOWN_CUSTOMER: &str = "Unknown customer";

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
    /// What the reader said when it couldn't read the message (technical).
    pub error: Option<String>,
    /// The same in plain words.
    pub error_plain: Option<String>,
    pub events: Vec<EventLine>,
    /// The customers it was about, in the order it named them.
    pub people: Vec<PersonLink>,
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
        let reader = self.store.reader()?;
        let names = BusinessNames::load(&reader)?;
        Ok(reader
            .activity(&filter)?
            .into_iter()
            .map(|row| match row {
                ActivityRow::Delivery {
                    id,
                    provider,
                    connection,
                    received_at,
                    status,
                    duplicates,
                    is_test,
                    summary,
                    error,
                    person,
                } => {
                    let read_a_customer = summary.is_some();
                    let summary = match (status, summary, is_test) {
                        (_, _, true) => {
                            "Test message: checked and kept, no customer created".to_string()
                        }
                        (DeliveryStatus::NeedsAttention, _, _) => format!(
                            "{}; it is kept and can be read again after an update",
                            error.as_deref().map_or(
                                "Couldn't read this message",
                                clientele_core::event::plain_parse_error
                            )
                        ),
                        (DeliveryStatus::Pending, _, _) => "Received, not read yet".into(),
                        (DeliveryStatus::Erased, _, _) => {
                            "Forgotten: this message was about a customer who was forgotten".into()
                        }
                        (_, Some(s), _) if !s.is_empty() => names.in_sentence(provider, &s),
                        _ => "Received; nothing about a customer in it".into(),
                    };
                    let named = status == DeliveryStatus::Processed && !is_test;
                    let (person_id, person_name) = match person {
                        Some((id, name)) if named => (Some(id), Some(name)),
                        None if named && read_a_customer => {
                            (None, Some(UNKNOWN_CUSTOMER.to_string()))
                        }
                        _ => (None, None),
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
                        person_id,
                        person_name,
                        technical: error,
                    }
                }
                ActivityRow::Rejection {
                    id,
                    provider,
                    connection,
                    received_at,
                    code,
                    reason,
                } => {
                    let provider_name = Provider::name_for_id(&provider);
                    let words = refusal_words(&code, &provider_name, &reason);
                    ActivityItem {
                        kind: ActivityItemKind::Rejection,
                        id,
                        provider_name,
                        provider,
                        connection,
                        received_at: iso(received_at),
                        status: None,
                        duplicates: 0,
                        summary: "Refused".into(),
                        reason: Some(words.plain),
                        person_id: None,
                        person_name: None,
                        technical: words.technical,
                    }
                }
                ActivityRow::Withheld {
                    id,
                    provider,
                    connection,
                    received_at,
                } => ActivityItem {
                    kind: ActivityItemKind::Withheld,
                    id,
                    provider_name: provider.display_name().into(),
                    provider: provider.id().into(),
                    connection,
                    received_at: iso(received_at),
                    status: None,
                    duplicates: 0,
                    summary: WITHHELD.into(),
                    reason: None,
                    person_id: None,
                    person_name: None,
                    technical: None,
                },
            })
            .collect())
    }

    pub fn delivery_detail(&self, id: i64) -> ApiResult<DeliveryDetailView> {
        let reader = self.store.reader()?;
        let d = reader.delivery(id)?;
        let names = BusinessNames::load(&reader)?;
        let provider = d.row.provider;
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
            error_plain: d
                .row
                .error
                .as_deref()
                .map(|e| clientele_core::event::plain_parse_error(e).to_string()),
            error: d.row.error,
            events: reader
                .delivery_events(id)?
                .into_iter()
                .map(|(at, summary)| EventLine {
                    occurred_at: iso(at),
                    summary: names.in_sentence(provider, &summary),
                })
                .collect(),
            people: reader
                .delivery_people(id)?
                .into_iter()
                .map(|(id, name)| PersonLink { id, name })
                .collect(),
        })
    }

    pub fn reprocess_delivery(&self, id: i64) -> ApiResult<DeliveryDetailView> {
        self.store.writer()?.reprocess_delivery(id)?;
        self.delivery_detail(id)
    }
}
