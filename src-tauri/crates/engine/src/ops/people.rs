//! The Customers screen and `clientele customers`: people found by name, email or phone, and
//! one person in full — their profile (which provider said what, and when), their linked
//! records with why each belongs, and their timeline.

use super::{Operations, iso};
use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use clientele_core::{EventKind, Provider, fields};
use serde::Serialize;
use ts_rs::TS;

pub use clientele_store::SEARCH_COUNT_LIMIT;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SourceRef {
    pub provider: Provider,
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
    pub provider: Provider,
    pub provider_name: String,
    pub connection: String,
    pub kind: EventKind,
    pub summary: String,
    pub changes: Vec<ChangeView>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProfileFieldView {
    pub field: String,
    pub label: String,
    pub value: String,
    pub value_kind: ValueKind,
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

/// How the UI should show a profile value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ValueKind {
    Text,
    /// The value is RFC 3339: show it in the user's format.
    Date,
    YesNo,
    Number,
}

fn value_kind(v: &serde_json::Value) -> ValueKind {
    match v {
        serde_json::Value::Bool(_) => ValueKind::YesNo,
        serde_json::Value::Number(_) => ValueKind::Number,
        serde_json::Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => ValueKind::Date,
        _ => ValueKind::Text,
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
        provider_name: s.provider.display_name().into(),
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

impl Operations {
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
                provider_name: e.provider.display_name().into(),
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
                    value_kind: value_kind(&v.value),
                    value: value_text(&v.value).unwrap_or_default(),
                    provider_name: v.provider.display_name().into(),
                    at: iso(v.at),
                    field,
                })
                .collect(),
            sources: p.sources.into_iter().map(source_view).collect(),
            timeline,
        })
    }
}
