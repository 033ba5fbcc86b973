//! Rows as the store hands them over, and a compiled profile that turns each into cells.
//!
//! The store streams [`PersonRow`]s or [`EventRow`]s (with the event's person when the profile
//! needs one); [`CompiledProfile::keeps`] applies the filters that look at the current profile
//! (tier, tags, marketing consent), and [`CompiledProfile::cells`] produces the typed cells that
//! both the CSV and the XLSX writer write — and that the preview shows — so every output of a
//! profile comes from one function.
//!
//! # Whose consent
//!
//! A person's current profile takes each field from whichever of their records said it last, so
//! their email can come from Vagaro and their email-marketing answer from Tiquo — an answer
//! Tiquo recorded for a different address. A consent is about an address, so an export writes
//! (and filters on) the answer that belongs to the address it exports: the email-marketing
//! answer from a record holding the person's current email, the SMS answer from a record
//! holding their current phone number ([`CompiledProfile::pair_consents`]). When none of the
//! records with that address ever answered, the answer is unknown (empty), never borrowed from
//! another address.

use crate::event::Change;
use crate::export::cell::{Cell, Protection};
use crate::export::profile::{ExportProfile, Format, Preset, ProfileError, RowKind};
use crate::export::source::{ColumnKind, EventFact, PersonFact, Side, Source};
use crate::export::transform::{ColumnPlan, Raw, yes_no_of};
use crate::fields::{is_sensitive, label};
use crate::identity::{CountryId, parse_country, parse_phone};
use crate::profile::FieldValue;
use crate::provider::Provider;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// A person as an export reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonRow {
    pub id: i64,
    pub display_name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// Canonical field → current value (merged across providers).
    pub profile: BTreeMap<String, Value>,
    /// Canonical field → the record (source profile id) its current value came from.
    pub field_records: BTreeMap<String, i64>,
    /// The person's records, oldest first.
    pub records: Vec<RecordRow>,
}

/// One of a person's records at a provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordRow {
    /// The source profile's id.
    pub id: i64,
    pub provider: String,
    pub connection: String,
    pub customer_ref: String,
    /// The record's fields; filled only when the profile has provider-path columns.
    pub fields: BTreeMap<String, FieldValue>,
}

/// A timeline event as an export reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow {
    pub delivery_id: i64,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub event_type: String,
    pub summary: String,
    pub provider: String,
    pub connection: String,
    pub customer_ref: String,
    pub changes: Vec<Change>,
    /// Filled only when the profile has `details.*` columns.
    pub details: Value,
}

/// A row to map.
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    Person(&'a PersonRow),
    Event {
        event: &'a EventRow,
        /// The person the event belongs to, when the profile needs them.
        person: Option<&'a PersonRow>,
    },
}

impl<'a> RowRef<'a> {
    fn person(&self) -> Option<&'a PersonRow> {
        match self {
            RowRef::Person(p) => Some(p),
            RowRef::Event { person, .. } => *person,
        }
    }

    /// A key that names the same row across runs (and across `reprocess`, for events): the
    /// person id, or the event's delivery and position in it.
    pub fn key(&self) -> String {
        match self {
            RowRef::Person(p) => format!("p{}", p.id),
            RowRef::Event { event, .. } => format!("e{}:{}", event.delivery_id, event.seq),
        }
    }
}

/// What the store must load for this profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Event rows: load each event's person.
    pub person: bool,
    /// Load the person's records (providers, connections, customer ids, provider paths).
    pub records: bool,
    /// Load records' fields too (provider-path columns).
    pub record_fields: bool,
    /// Event rows: load each event's details.
    pub details: bool,
    /// Event rows: read each event's field changes.
    pub changes: bool,
    /// The person's lists of email addresses and phone numbers (`emails`, `phones`): most
    /// profiles don't show them, and reading them for every person was a cost of its own.
    pub lists: bool,
}

/// How the file is written, after defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Csv(crate::export::profile::CsvSettings),
    Xlsx { header: bool, neutralize: bool },
}

impl Output {
    pub fn header(&self) -> bool {
        match self {
            Output::Csv(s) => s.header,
            Output::Xlsx { header, .. } => *header,
        }
    }

    pub fn neutralize(&self) -> bool {
        match self {
            Output::Csv(s) => s.neutralize,
            Output::Xlsx { neutralize, .. } => *neutralize,
        }
    }
}

/// A profile ready to run.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    pub profile: ExportProfile,
    columns: Vec<ColumnPlan>,
    country: Option<CountryId>,
    pub needs: Needs,
    pub output: Output,
    /// The event-time filter's bounds.
    pub event_from: Option<DateTime<Utc>>,
    pub event_to: Option<DateTime<Utc>>,
    tiers: Vec<String>,
    tags: Vec<String>,
    /// The fields of a person's current profile that the rows read.
    profile_fields: BTreeSet<String>,
    /// Whether a column formats phone numbers (and so reads the person's country).
    reads_country: bool,
    /// How each CSV column guards against formulas.
    protections: Vec<Protection>,
    /// The consents a column or a filter reads, each with the address it is about.
    consents: Vec<(&'static str, &'static str)>,
}

/// Each marketing consent and the field holding the address it is about.
pub const CONSENT_ADDRESSES: [(&str, &str); 2] = [
    ("email_marketing_opt_in", "email"),
    ("sms_marketing_opt_in", "phone"),
];

/// The profile field holding a person's country: the default country of their phone numbers.
const COUNTRY_FIELD: &str = "country_code";

impl CompiledProfile {
    /// Compiles `profile`; `business_country` is the default-country setting, used when the
    /// profile sets none.
    pub fn new(
        profile: ExportProfile,
        business_country: Option<CountryId>,
    ) -> Result<CompiledProfile, ProfileError> {
        profile.validate()?;
        let zone = profile.zone();
        let yes_no = profile.format.default_yes_no();
        let mut columns = Vec::with_capacity(profile.columns.len());
        for (i, c) in profile.columns.iter().enumerate() {
            let source = Source::parse(&c.source, profile.rows)
                .map_err(|m| ProfileError::new(format!("columns[{i}].source"), m))?;
            columns.push(ColumnPlan::new(
                source,
                c.transform.clone(),
                c.cell_type,
                zone,
                yes_no,
            ));
        }
        let f = &profile.filters;
        let person_filters = !f.tiers.is_empty()
            || !f.tags.is_empty()
            || f.email_marketing_opt_in.is_some()
            || f.sms_marketing_opt_in.is_some();
        let needs = Needs {
            person: profile.rows == RowKind::Events
                && (person_filters || columns.iter().any(|c| c.source.needs_person())),
            records: columns.iter().any(|c| {
                matches!(
                    c.source,
                    Source::ProviderPath(_)
                        | Source::Person(
                            PersonFact::Providers
                                | PersonFact::Connections
                                | PersonFact::CustomerRefs
                        )
                )
            }),
            record_fields: columns
                .iter()
                .any(|c| matches!(c.source, Source::ProviderPath(_))),
            details: columns
                .iter()
                .any(|c| matches!(c.source, Source::Detail(_))),
            changes: columns.iter().any(|c| {
                matches!(
                    c.source,
                    Source::Change { .. }
                        | Source::Event(EventFact::ChangedFields | EventFact::Changes)
                )
            }),
            lists: columns.iter().any(|c| {
                matches!(
                    c.source,
                    Source::Person(PersonFact::Emails | PersonFact::Phones)
                )
            }),
        };
        let output = match &profile.format {
            Format::Csv(csv) => Output::Csv(csv.settings()),
            Format::Xlsx(x) => Output::Xlsx {
                header: x.header(),
                neutralize: x.neutralize(),
            },
        };
        let (event_from, event_to) = match &f.event_time {
            Some(range) => range.bounds()?,
            None => (None, None),
        };
        // Only the fields something reads: a store may then leave the others out, or read these
        // from somewhere cheaper than the whole merged profile (the store's plain columns).
        let mut profile_fields: BTreeSet<String> = columns
            .iter()
            .filter_map(|c| match &c.source {
                Source::Field(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        if !f.tiers.is_empty() {
            profile_fields.insert("loyalty_tier".into());
        }
        if !f.tags.is_empty() {
            profile_fields.insert("tags".into());
        }
        let consents: Vec<_> = CONSENT_ADDRESSES
            .into_iter()
            .filter(|(consent, _)| {
                let filtered = match *consent {
                    "email_marketing_opt_in" => f.email_marketing_opt_in.is_some(),
                    _ => f.sms_marketing_opt_in.is_some(),
                };
                filtered
                    || columns
                        .iter()
                        .any(|c| matches!(&c.source, Source::Field(s) if s == consent))
            })
            .collect();
        profile_fields.extend(
            consents
                .iter()
                .flat_map(|(consent, address)| [consent.to_string(), address.to_string()]),
        );
        // The person's country: for a column that formats phone numbers, and for pairing a
        // consent with its address (`pair_consents` reads phone numbers in it).
        let reads_country = columns.iter().any(ColumnPlan::formats_phones);
        if reads_country || !consents.is_empty() {
            profile_fields.insert(COUNTRY_FIELD.into());
        }
        let protections = columns
            .iter()
            .map(|c| protection(&profile.format, c.kind()))
            .collect();
        Ok(CompiledProfile {
            profile_fields,
            reads_country,
            protections,
            consents,
            country: profile.country().or(business_country),
            tiers: f.tiers.iter().map(|t| t.trim().to_lowercase()).collect(),
            tags: f.tags.iter().map(|t| t.trim().to_lowercase()).collect(),
            profile,
            columns,
            needs,
            output,
            event_from,
            event_to,
        })
    }

    /// The fields of a person's current profile that [`Self::keeps`] and [`Self::cells`] read:
    /// a store loading people for this profile may leave the others out.
    pub fn profile_fields(&self) -> &BTreeSet<String> {
        &self.profile_fields
    }

    pub fn rows(&self) -> RowKind {
        self.profile.rows
    }

    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.profile.columns.iter().map(|c| c.header.as_str())
    }

    pub fn column_count(&self) -> usize {
        self.columns.len()
    }

    /// How each column of a CSV file guards against formulas, in column order.
    pub fn protections(&self) -> &[Protection] {
        &self.protections
    }

    /// Whether a column or a filter reads a marketing consent: only then does the store need to
    /// know which record each of a person's values came from ([`PersonRow::field_records`]).
    pub fn reads_consent(&self) -> bool {
        !self.consents.is_empty()
    }

    /// Whether `person`'s consent answers may belong to another address than the one exported
    /// (the answer and the address came from different records): then the store loads their
    /// records' fields and calls [`Self::pair_consents`]. Usually false, so most people cost
    /// nothing more.
    pub fn needs_consent_records(&self, person: &PersonRow) -> bool {
        self.consents.iter().any(|(consent, address)| {
            person.profile.get(*consent).is_some_and(|v| !v.is_null())
                && person.field_records.get(*consent) != person.field_records.get(*address)
        })
    }

    /// Replaces each consent answer the profile reads with the one given for the address
    /// exported (see the module's "Whose consent"); `person.records` must hold their fields.
    pub fn pair_consents(&self, person: &mut PersonRow) {
        let country = person
            .profile
            .get(COUNTRY_FIELD)
            .and_then(Value::as_str)
            .and_then(parse_country)
            .or(self.country);
        for (consent, address) in &self.consents {
            if person.field_records.get(*consent) == person.field_records.get(*address) {
                continue;
            }
            let exported = person
                .profile
                .get(*address)
                .and_then(|v| address_key(address, v, country));
            let answer = exported.and_then(|exported| {
                person
                    .records
                    .iter()
                    .filter(|r| {
                        r.fields
                            .get(*address)
                            .and_then(|fv| address_key(address, &fv.value, country))
                            .is_some_and(|key| same_address(&key, &exported))
                    })
                    .filter_map(|r| r.fields.get(*consent))
                    .filter(|fv| !fv.value.is_null() && fv.value != "")
                    .max_by_key(|fv| fv.at)
                    .map(|fv| fv.value.clone())
            });
            person
                .profile
                .insert(consent.to_string(), answer.unwrap_or(Value::Null));
        }
    }

    /// Whether a filter looks at the person's current profile (tier, tags, marketing consent):
    /// then only reading each row tells whether it is exported.
    pub fn filters_on_profile(&self) -> bool {
        let f = &self.profile.filters;
        !self.tiers.is_empty()
            || !self.tags.is_empty()
            || f.email_marketing_opt_in.is_some()
            || f.sms_marketing_opt_in.is_some()
    }

    /// The filters on the person's current profile: tier, tags, marketing consent. (Providers,
    /// connections, event time and kinds are applied by the store's query.)
    pub fn keeps(&self, row: RowRef<'_>) -> bool {
        let f = &self.profile.filters;
        if !self.filters_on_profile() {
            return true;
        }
        let Some(person) = row.person() else {
            return false;
        };
        let value = |field: &str| person.profile.get(field).unwrap_or(&Value::Null);
        if !self.tiers.is_empty() {
            let tier = match value("loyalty_tier") {
                Value::String(s) => s.trim().to_lowercase(),
                Value::Number(n) => n.to_string(),
                _ => return false,
            };
            if !self.tiers.contains(&tier) {
                return false;
            }
        }
        if !self.tags.is_empty() {
            let has = tags_of(value("tags")).any(|t| self.tags.contains(&t));
            if !has {
                return false;
            }
        }
        for (wanted, field) in [
            (f.email_marketing_opt_in, "email_marketing_opt_in"),
            (f.sms_marketing_opt_in, "sms_marketing_opt_in"),
        ] {
            if let Some(wanted) = wanted
                && truthy(value(field)) != wanted
            {
                return false;
            }
        }
        true
    }

    /// The row's cells, in column order, into `out` (cleared first).
    pub fn cells(&self, row: RowRef<'_>, out: &mut Vec<Cell>) {
        out.clear();
        // Read (and parsed) only when a column formats phone numbers.
        let country = if self.reads_country {
            row.person()
                .and_then(|p| p.profile.get(COUNTRY_FIELD))
                .and_then(Value::as_str)
                .and_then(parse_country)
                .or(self.country)
        } else {
            None
        };
        for column in &self.columns {
            let raw = resolve(&column.source, row);
            out.push(column.cell(&raw, country));
        }
    }
}

/// How a CSV column of `kind` guards against formulas in `format`: phone numbers go as they are
/// only into a CSV for other software (Excel would turn `+447700900123` into a number).
fn protection(format: &Format, kind: ColumnKind) -> Protection {
    match format {
        Format::Csv(csv) => {
            let s = csv.settings();
            if !s.neutralize {
                Protection::Off
            } else if csv.preset == Some(Preset::Other)
                && matches!(kind, ColumnKind::Phone | ColumnKind::PhoneList)
            {
                Protection::ExceptPhoneNumbers
            } else {
                Protection::Formulas
            }
        }
        Format::Xlsx(x) => {
            if x.neutralize() {
                Protection::Formulas
            } else {
                Protection::Off
            }
        }
    }
}

/// An address as compared between records.
#[derive(Debug, PartialEq, Eq)]
enum AddressKey {
    /// Trimmed and lower-cased.
    Email(String),
    /// The national significant digits of a valid number (`7911123456`); else the number's
    /// digits without leading zeros.
    Phone(String),
}

fn address_key(field: &str, v: &Value, country: Option<CountryId>) -> Option<AddressKey> {
    let raw = v.as_str()?.trim();
    if raw.is_empty() {
        return None;
    }
    Some(if field == "email" {
        AddressKey::Email(raw.to_lowercase())
    } else {
        AddressKey::Phone(match parse_phone(raw, country) {
            Some(phone) => phone.national_digits,
            None => raw
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .trim_start_matches('0')
                .to_string(),
        })
    })
}

/// Whether two records hold the same address: equal emails; phone numbers whose digits are
/// equal, or where one's (at least seven digits) ends the other's — `07911 123456` written
/// without its country and `+447911123456` are one number.
fn same_address(a: &AddressKey, b: &AddressKey) -> bool {
    match (a, b) {
        (AddressKey::Email(a), AddressKey::Email(b)) => a == b,
        (AddressKey::Phone(a), AddressKey::Phone(b)) => {
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            short == long || (short.len() >= 7 && long.ends_with(short.as_str()))
        }
        _ => false,
    }
}

/// A fingerprint of a row's cells as written: equal cells, equal fingerprint.
pub fn fingerprint(cells: &[Cell]) -> [u8; 16] {
    let mut h = Sha256::new();
    for c in cells {
        h.update([c.kind() as u8]);
        let text = c.csv_text(false);
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn tags_of(v: &Value) -> Box<dyn Iterator<Item = String> + '_> {
    match v {
        Value::Array(items) => Box::new(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|t| t.trim().to_lowercase()),
        ),
        Value::String(s) => Box::new(
            s.split([',', ';'])
                .map(|t| t.trim().to_lowercase())
                .filter(|t| !t.is_empty()),
        ),
        _ => Box::new(std::iter::empty()),
    }
}

/// Consent values arrive as booleans, `"true"`/`"yes"` or 1/0; anything else is not a yes.
fn truthy(v: &Value) -> bool {
    yes_no_of(v) == Some(true)
}

fn provider_display(id: &str) -> String {
    id.parse::<Provider>()
        .map_or_else(|_| id.to_string(), |p| p.display_name().to_string())
}

fn owned(v: Value) -> Raw<'static> {
    Raw::Value(Cow::Owned(v))
}

const NULL: Raw<'static> = Raw::Value(Cow::Owned(Value::Null));

fn resolve<'a>(source: &Source, row: RowRef<'a>) -> Raw<'a> {
    match source {
        Source::Field(f) => match row.person().and_then(|p| p.profile.get(f)) {
            Some(v) => Raw::Value(Cow::Borrowed(v)),
            None => NULL,
        },
        Source::Person(fact) => {
            let Some(p) = row.person() else {
                return NULL;
            };
            match fact {
                PersonFact::Id => owned(Value::from(p.id)),
                PersonFact::DisplayName => owned(Value::from(p.display_name.clone())),
                PersonFact::FirstSeen => p.first_seen.map_or(NULL, Raw::Time),
                PersonFact::LastSeen => p.last_seen.map_or(NULL, Raw::Time),
                PersonFact::Providers => {
                    let mut names: Vec<String> = Vec::new();
                    for r in &p.records {
                        let name = provider_display(&r.provider);
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                    owned(Value::from(names))
                }
                PersonFact::Connections => owned(Value::from(
                    p.records
                        .iter()
                        .map(|r| format!("{}/{}", r.provider, r.connection))
                        .collect::<Vec<_>>(),
                )),
                PersonFact::CustomerRefs => owned(Value::from(
                    p.records
                        .iter()
                        .map(|r| r.customer_ref.clone())
                        .collect::<Vec<_>>(),
                )),
                PersonFact::Emails => owned(Value::from(p.emails.clone())),
                PersonFact::Phones => owned(Value::from(p.phones.clone())),
                PersonFact::Deleted => owned(Value::Bool(p.deleted)),
            }
        }
        Source::Event(fact) => {
            let RowRef::Event { event: e, .. } = row else {
                return NULL;
            };
            match fact {
                EventFact::Kind => owned(Value::from(e.kind.clone())),
                EventFact::OccurredAt => Raw::Time(e.occurred_at),
                EventFact::Summary => owned(Value::from(e.summary.clone())),
                EventFact::Provider => owned(Value::from(provider_display(&e.provider))),
                EventFact::Connection => owned(Value::from(e.connection.clone())),
                EventFact::EventType => owned(Value::from(e.event_type.clone())),
                EventFact::CustomerRef => owned(Value::from(e.customer_ref.clone())),
                EventFact::ChangedFields => owned(Value::from(
                    e.changes
                        .iter()
                        .map(|c| label(&c.field))
                        .collect::<Vec<_>>(),
                )),
                EventFact::Changes => owned(Value::from(changes_text(&e.changes))),
            }
        }
        Source::Change { field, side } => {
            let RowRef::Event { event: e, .. } = row else {
                return NULL;
            };
            match e.changes.iter().find(|c| &c.field == field) {
                Some(c) => Raw::Value(Cow::Borrowed(match side {
                    Side::Old => &c.old,
                    Side::New => &c.new,
                })),
                None => NULL,
            }
        }
        Source::Detail(key) => {
            let RowRef::Event { event: e, .. } = row else {
                return NULL;
            };
            match detail(&e.details, key) {
                Some(v) => Raw::Value(Cow::Borrowed(v)),
                None => NULL,
            }
        }
        Source::ProviderPath(path) => {
            let Some(p) = row.person() else {
                return NULL;
            };
            let provider = path.split('.').next().unwrap_or_default();
            // The latest value among the person's records at that provider.
            let best = p
                .records
                .iter()
                .filter(|r| r.provider == provider)
                .filter_map(|r| r.fields.get(path))
                .filter(|fv| !fv.value.is_null())
                .max_by_key(|fv| fv.at);
            match best {
                Some(fv) => Raw::Value(Cow::Borrowed(&fv.value)),
                None => NULL,
            }
        }
    }
}

/// `details.KEY`: the key as a whole first (`details["a.b"]`), else a dotted path.
fn detail<'v>(details: &'v Value, key: &str) -> Option<&'v Value> {
    if let Some(v) = details.get(key) {
        return Some(v);
    }
    key.split('.').try_fold(details, |v, part| match v {
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(part),
    })
}

/// "Email: a@x.com → b@x.com; Loyalty tier: Silver → Gold". A sensitive field's values are left
/// out ("CPF (tax ID) changed"): this source lists fields the profile did not name one by one.
fn changes_text(changes: &[Change]) -> String {
    let value = |v: &Value| match v {
        Value::Null => "(empty)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    changes
        .iter()
        .map(|c| {
            if is_sensitive(&c.field) {
                format!("{} changed", label(&c.field))
            } else {
                format!("{}: {} → {}", label(&c.field), value(&c.old), value(&c.new))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests;
