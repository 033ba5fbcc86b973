//! The Customers screen and `clientele customers`: people found by name, email or phone, and
//! one person in full — their profile (which provider said what, and when), their linked
//! records with why each belongs, and their timeline.

use super::businesses::{BUSINESS_IDS_FIELD, BusinessNames, BusinessView};
use super::{Operations, iso};
use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use clientele_core::identity::{KeyKind, PhoneCheck, check_phone, parse_country};
use clientele_core::{EventKind, Provider, fields};
use clientele_store::MAX_PROFILES_PER_KEY;
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
    /// The record as merges, splits and the command line name it.
    pub record: clientele_core::hand::RecordRef,
    /// It belongs to this person because staff merged it by hand.
    pub by_hand: bool,
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
    /// Which part of the profile it belongs to; fields come in this order, and in a fixed order
    /// within each.
    pub group: FieldGroup,
    /// For the phone number: whether it links this customer's records, and why not.
    pub phone_link: Option<PhoneLink>,
}

/// The parts of a profile, in the order the Person screen shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum FieldGroup {
    /// Name, email and phone: who this is and how to reach them.
    Main,
    Contact,
    Address,
    Marketing,
    Loyalty,
    Dates,
    Other,
}

/// Whether a phone number links records with the same number, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum PhoneLink {
    /// A valid number: records that share it are this person.
    Linked,
    /// Valid, but held by so many records (a shop's number, a placeholder) that it links nobody.
    Shared {
        #[ts(type = "number")]
        records: i64,
    },
    /// Too few digits to be a phone number.
    TooShort,
    /// No country code, and no default country to read it in (Settings).
    NoCountry,
    /// The phone rules of `country` (an ISO code, when known) say no such number exists.
    Invalid { country: Option<String> },
}

/// Canonical fields in the order the Person screen shows them, with their group. Anything else
/// comes last, by label.
const FIELD_ORDER: &[(&str, FieldGroup)] = &[
    ("full_name", FieldGroup::Main),
    ("title", FieldGroup::Main),
    ("first_name", FieldGroup::Main),
    ("last_name", FieldGroup::Main),
    ("email", FieldGroup::Main),
    ("phone", FieldGroup::Main),
    ("company", FieldGroup::Contact),
    ("street_address", FieldGroup::Address),
    ("city", FieldGroup::Address),
    ("region_name", FieldGroup::Address),
    ("region_code", FieldGroup::Address),
    ("postal_code", FieldGroup::Address),
    ("country_name", FieldGroup::Address),
    ("country_code", FieldGroup::Address),
    ("email_marketing_opt_in", FieldGroup::Marketing),
    ("sms_marketing_opt_in", FieldGroup::Marketing),
    ("loyalty_tier", FieldGroup::Loyalty),
    ("loyalty_points", FieldGroup::Loyalty),
    ("tags", FieldGroup::Loyalty),
    ("created_at", FieldGroup::Dates),
    ("updated_at", FieldGroup::Dates),
    ("deleted_at", FieldGroup::Dates),
];

/// Where `field` goes: its group and its place.
fn field_place(field: &str) -> (FieldGroup, usize) {
    FIELD_ORDER
        .iter()
        .position(|(f, _)| *f == field)
        .map_or((FieldGroup::Other, usize::MAX), |i| (FIELD_ORDER[i].1, i))
}

/// Labels the Person screen words differently from exports' column names.
fn profile_label(field: &str) -> String {
    match field {
        // The earliest of the records' creation dates: when the customer joined.
        "created_at" => "Customer since".into(),
        _ => fields::label(field),
    }
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
    /// Name, email and phone first, then contact, address, marketing, loyalty and dates.
    pub profile: Vec<ProfileFieldView>,
    pub sources: Vec<SourceRef>,
    /// Newest first.
    pub timeline: Vec<TimelineEntry>,
    /// Addresses the customer's records had before (search still finds them by these).
    pub earlier_emails: Vec<String>,
    /// Numbers the records had before, as sent.
    pub earlier_phones: Vec<String>,
    /// The businesses (Vagaro's) that list this customer, named where staff named them.
    pub businesses: Vec<BusinessView>,
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
        record: clientele_core::hand::RecordRef {
            provider: s.provider,
            connection: s.connection.clone(),
            customer_ref: s.customer_ref.clone(),
        },
        provider: s.provider,
        connection: s.connection,
        customer_ref: s.customer_ref,
        deleted_at: s.deleted_at.map(iso),
        linked_because: s.linked_because,
        by_hand: s.by_hand,
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
        self.changes_gate.wait();
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
        self.changes_gate.wait();
        let reader = self.store.reader()?;
        let p = reader.person(id)?;
        let names = BusinessNames::load(&reader)?;
        let phone_link = |value: &serde_json::Value| -> ApiResult<Option<PhoneLink>> {
            let Some(raw) = value.as_str() else {
                return Ok(None);
            };
            let country = p.phone_country.as_deref().and_then(parse_country);
            Ok(Some(match check_phone(raw, country) {
                PhoneCheck::Valid(phone) => {
                    let records = reader.key_holders(
                        KeyKind::Phone,
                        &phone.e164,
                        MAX_PROFILES_PER_KEY + 1,
                    )?;
                    if records > MAX_PROFILES_PER_KEY {
                        PhoneLink::Shared { records }
                    } else {
                        PhoneLink::Linked
                    }
                }
                PhoneCheck::TooShort => PhoneLink::TooShort,
                PhoneCheck::NoCountry => PhoneLink::NoCountry,
                PhoneCheck::Invalid { country } => PhoneLink::Invalid {
                    country: country.map(|c| c.as_ref().to_string()),
                },
            }))
        };
        let mut timeline: Vec<TimelineEntry> = p
            .timeline
            .into_iter()
            .map(|e| TimelineEntry {
                occurred_at: iso(e.occurred_at),
                provider_name: e.provider.display_name().into(),
                provider: e.provider,
                connection: e.connection,
                kind: e.kind,
                summary: names.in_sentence(e.provider, &e.summary),
                changes: e
                    .changes
                    .into_iter()
                    .filter(|c| !fields::is_sensitive(&c.field))
                    .map(|c| {
                        let shown = |v: &serde_json::Value| {
                            if c.field == BUSINESS_IDS_FIELD {
                                value_text(&names.in_list(e.provider, v))
                            } else {
                                value_text(v)
                            }
                        };
                        ChangeView {
                            label: fields::label(&c.field),
                            old: shown(&c.old),
                            new: shown(&c.new),
                            field: c.field,
                        }
                    })
                    .collect(),
            })
            .collect();
        timeline.reverse();
        let mut profile = Vec::new();
        for (field, v) in p.profile_sources {
            if fields::is_sensitive(&field) {
                continue;
            }
            profile.push(ProfileFieldView {
                label: profile_label(&field),
                value_kind: value_kind(&v.value),
                value: value_text(&v.value).unwrap_or_default(),
                provider_name: v.provider.display_name().into(),
                at: iso(v.at),
                group: field_place(&field).0,
                phone_link: if field == "phone" {
                    phone_link(&v.value)?
                } else {
                    None
                },
                field,
            });
        }
        profile.sort_by(|a, b| {
            field_place(&a.field)
                .cmp(&field_place(&b.field))
                .then_with(|| a.label.cmp(&b.label))
        });
        let businesses = p
            .business_ids
            .into_iter()
            .map(|id| BusinessView {
                provider: Provider::Vagaro,
                name: names.name(Provider::Vagaro, &id).map(str::to_string),
                id,
                customers: 0,
            })
            .collect();
        Ok(PersonDetail {
            id: p.id,
            display_name: p.display_name,
            deleted: p.deleted,
            emails: p.emails,
            phones: p.phones,
            profile,
            sources: p.sources.into_iter().map(source_view).collect(),
            timeline,
            earlier_emails: p.earlier_emails,
            earlier_phones: p.earlier_phones,
            businesses,
        })
    }
}
