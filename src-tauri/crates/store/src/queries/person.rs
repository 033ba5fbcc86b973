//! Everything about one person: profile, records and timeline.

use crate::stored;
use crate::time::from_millis;
use crate::{Reader, StoreError};
use chrono::{DateTime, Utc};
use clientele_core::{Change, EventKind, Provider};
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::SourceRef;

/// A current profile value and who said it when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileValue {
    pub value: Value,
    pub provider: Provider,
    pub connection: String,
    pub at: DateTime<Utc>,
}

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub occurred_at: DateTime<Utc>,
    pub provider: Provider,
    pub connection: String,
    pub customer_ref: String,
    pub kind: EventKind,
    pub event_type: String,
    pub summary: String,
    pub changes: Vec<Change>,
    pub delivery_id: i64,
}

/// A person with everything known about them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonDetail {
    pub id: i64,
    pub display_name: String,
    pub deleted: bool,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    /// Canonical field → current value.
    pub profile: BTreeMap<String, Value>,
    /// Canonical field → which provider said it and when.
    pub profile_sources: BTreeMap<String, ProfileValue>,
    pub sources: Vec<SourceRef>,
    /// Oldest first.
    pub timeline: Vec<TimelineEntry>,
}

impl Reader {
    /// Everything about one person, timeline oldest first.
    pub fn person(&self, id: i64) -> Result<PersonDetail, StoreError> {
        let row: Option<(String, String, String, String, bool)> = self
            .conn
            .prepare_cached(
                "SELECT display_name, emails, phones, profile, deleted FROM people WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let (display_name, emails, phones, profile_json, deleted) =
            row.ok_or_else(|| StoreError::NotFound(format!("There is no customer with id {id}.")))?;
        let merged: BTreeMap<String, Value> = serde_json::from_str(&profile_json)?;
        let mut profile = BTreeMap::new();
        let mut profile_sources = BTreeMap::new();
        for (field, v) in merged {
            profile.insert(field.clone(), v["value"].clone());
            let at = v["at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            profile_sources.insert(
                field,
                ProfileValue {
                    value: v["value"].clone(),
                    provider: stored::provider(v["provider"].as_str().unwrap_or_default())?,
                    connection: v["connection"].as_str().unwrap_or_default().to_string(),
                    at,
                },
            );
        }
        let timeline = self
            .conn
            .prepare_cached(
                "SELECT e.occurred_at, c.provider, c.name, sp.customer_ref, e.kind, e.event_type,
                        e.summary, e.changes, e.delivery_id
                 FROM source_profiles sp
                 JOIN events e ON e.source_profile_id = sp.id
                 JOIN connections c ON c.id = sp.connection_id
                 WHERE sp.person_id = ?1
                 ORDER BY e.occurred_at, e.delivery_id, e.seq",
            )?
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    stored::column(r, 1, stored::provider)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    stored::column(r, 4, stored::event_kind)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })?
            .map(|row| {
                let (
                    at,
                    provider,
                    connection,
                    customer_ref,
                    kind,
                    event_type,
                    summary,
                    changes,
                    delivery_id,
                ) = row?;
                Ok(TimelineEntry {
                    occurred_at: from_millis(at),
                    provider,
                    connection,
                    customer_ref,
                    kind,
                    event_type,
                    summary,
                    changes: serde_json::from_str(&changes)?,
                    delivery_id,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(PersonDetail {
            id,
            display_name,
            deleted,
            emails: serde_json::from_str(&emails)?,
            phones: serde_json::from_str(&phones)?,
            profile,
            profile_sources,
            sources: self.sources_of(&[id])?.remove(&id).unwrap_or_default(),
            timeline,
        })
    }
}
