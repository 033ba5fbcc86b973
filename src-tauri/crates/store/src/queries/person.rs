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
use clientele_core::identity::{KeyKind, normalize_email, parse_country};
use clientele_core::profile::ProfileState;
use std::collections::BTreeSet;

/// A number's digits without leading zeros: the same number written two ways compares equal.
fn phone_digits(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').to_string()
}

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
    /// Addresses the records had before (normalized), which search still finds them by.
    pub earlier_emails: Vec<String>,
    /// Numbers the records had before, as sent.
    pub earlier_phones: Vec<String>,
    /// The country the profile's phone number is read in: that record's own, else the
    /// business's default; `None` when neither is known.
    pub phone_country: Option<String>,
    /// The Vagaro business ids the person's records list now.
    pub business_ids: Vec<String>,
}

/// What a person's records had before, how their phone reads, and which businesses list them
/// ([`Reader::person`]).
struct MemberFacts {
    emails: Vec<String>,
    phones: Vec<String>,
    phone_country: Option<String>,
    business_ids: Vec<String>,
}

impl Reader {
    /// Every email and phone the person's records ever had that they don't have now, the
    /// country the phone of record `phone_source` reads in, and the businesses listing them.
    fn member_facts(
        &self,
        person: i64,
        emails: &[String],
        phone_source: Option<i64>,
    ) -> Result<MemberFacts, StoreError> {
        let states: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT id, state FROM source_profiles WHERE person_id = ?1 ORDER BY id",
            )?
            .query_map([person], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let default_country = self.setting("default_country")?;
        let mut earlier = MemberFacts {
            emails: Vec::new(),
            phones: Vec::new(),
            phone_country: None,
            business_ids: Vec::new(),
        };
        let mut current_phones = BTreeSet::new();
        let mut seen_phones = BTreeSet::new();
        for (id, state) in states {
            let state: ProfileState = stored::state(&state)?;
            let country = state
                .value("country_code")
                .as_str()
                .filter(|c| parse_country(c).is_some())
                .map(str::to_uppercase)
                .or_else(|| default_country.clone());
            if Some(id) == phone_source {
                earlier.phone_country = country.clone();
            }
            for email in state.seen("email").filter_map(normalize_email) {
                if !emails.contains(&email) && !earlier.emails.contains(&email) {
                    earlier.emails.push(email);
                }
            }
            if let Some(phone) = state.value("phone").as_str() {
                current_phones.insert(phone_digits(phone));
            }
            seen_phones.extend(state.seen("phone").map(str::to_string));
            if let Some(ids) = state.value("vagaro.businessIds").as_array() {
                for id in ids.iter().filter_map(|v| v.as_str()) {
                    if !earlier.business_ids.iter().any(|b| b == id) {
                        earlier.business_ids.push(id.to_string());
                    }
                }
            }
        }
        // The same number written with and without its country code is not an earlier one.
        let same = |a: &str, b: &str| {
            a == b || (a.len().min(b.len()) >= 6 && (a.ends_with(b) || b.ends_with(a)))
        };
        earlier.phones = seen_phones
            .into_iter()
            .filter(|p| {
                let digits = phone_digits(p);
                !current_phones.iter().any(|c: &String| same(c, &digits))
            })
            .collect();
        earlier.emails.sort();
        Ok(earlier)
    }

    /// How many source profiles hold an identity key, counted up to `at_most` (a key held by too
    /// many links nobody).
    pub fn key_holders(&self, kind: KeyKind, value: &str, at_most: i64) -> Result<i64, StoreError> {
        Ok(self.conn.prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM identity_keys WHERE kind = ?1 AND value = ?2 LIMIT ?3)",
        )?
        .query_row(rusqlite::params![kind.as_str(), value, at_most], |r| r.get(0))?)
    }

    /// Everything about one person, timeline oldest first.
    pub fn person(&self, id: i64) -> Result<PersonDetail, StoreError> {
        let row: Option<(String, String, String, Vec<u8>, bool)> = self
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
        let merged: BTreeMap<String, Value> =
            serde_json::from_slice(&stored::profile_json(&profile_json)?)?;
        let mut profile = BTreeMap::new();
        let mut profile_sources = BTreeMap::new();
        for (field, v) in &merged {
            let field = field.clone();
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
                    changes: stored::changes(&changes)?,
                    delivery_id,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let emails: Vec<String> = serde_json::from_str(&emails)?;
        let phones: Vec<String> = serde_json::from_str(&phones)?;
        let phone_source = merged
            .get("phone")
            .and_then(|v| v["source_profile"].as_i64());
        let earlier = self.member_facts(id, &emails, phone_source)?;
        Ok(PersonDetail {
            id,
            display_name,
            deleted,
            emails,
            phones,
            earlier_emails: earlier.emails,
            earlier_phones: earlier.phones,
            phone_country: earlier.phone_country,
            business_ids: earlier.business_ids,
            profile,
            profile_sources,
            sources: self.sources_of(&[id])?.remove(&id).unwrap_or_default(),
            timeline,
        })
    }
}
