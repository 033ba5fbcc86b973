//! Where a column's value comes from.
//!
//! A source is named by a string in the profile:
//! - a canonical field (`email`, `loyalty_tier`, … — [`crate::fields::CANONICAL`]): the person's
//!   current value, merged across providers (latest by event time);
//! - a person fact: `id`, `display_name`, `first_seen`, `last_seen`, `providers`, `connections`,
//!   `customer_refs`, `emails`, `phones`, `deleted`;
//! - an event fact (timeline rows only): `kind`, `occurred_at`, `summary`, `provider`,
//!   `connection`, `event_type`, `customer_ref`, `changed_fields`, `changes`;
//! - one change of the event: `change.FIELD.old` / `change.FIELD.new` (`change.email.old`);
//! - a detail the event carried beyond the profile: `details.KEY` (`details.amount`);
//! - a provider-specific path `PROVIDER.KEY` (`zupy.cpf`, `vagaro.businessIds`): the latest value
//!   among the person's records at that provider.
//!
//! There are no wildcards: a sensitive field such as `zupy.cpf` reaches a file only when a
//! column names it. The one source that lists several fields' values, `changes`, leaves
//! sensitive fields' values out.

use crate::export::profile::RowKind;
use crate::fields::{CANONICAL, consent, is_canonical};
use crate::provider::Provider;

/// Facts about a person that are not profile fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonFact {
    Id,
    DisplayName,
    FirstSeen,
    LastSeen,
    Providers,
    Connections,
    CustomerRefs,
    Emails,
    Phones,
    Deleted,
}

/// Facts about one timeline event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFact {
    Kind,
    OccurredAt,
    Summary,
    Provider,
    Connection,
    EventType,
    CustomerRef,
    ChangedFields,
    Changes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Old,
    New,
}

/// What kind of value a column holds: decides which ways of writing it make sense (a phone
/// format for phone numbers, a date format for dates, yes/no words for yes/no answers) and
/// whether a phone number may go into a CSV for other software without a `'`. The window shows
/// a column's choices by this kind; it comes from here, so the screen and the file agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ColumnKind {
    /// Words: a name, an email address, a city.
    Text,
    /// One phone number.
    Phone,
    /// Several phone numbers (all of a person's numbers).
    PhoneList,
    /// A point in time or a calendar date.
    Date,
    /// A yes/no answer (marketing consent, deleted everywhere).
    YesNo,
    /// A number (loyalty points).
    Number,
    /// Several values (tags, providers, email addresses).
    List,
    /// A provider's own field or an event detail whose kind isn't known in advance.
    Other,
}

/// A parsed column source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Field(String),
    Person(PersonFact),
    Event(EventFact),
    Change { field: String, side: Side },
    Detail(String),
    ProviderPath(String),
}

/// Person facts: name in a profile, label, what it is.
pub const PERSON_FACTS: &[(&str, PersonFact, &str)] = &[
    ("id", PersonFact::Id, "Clientele's id for the person"),
    (
        "display_name",
        PersonFact::DisplayName,
        "Name as shown in Clientele",
    ),
    ("first_seen", PersonFact::FirstSeen, "First seen"),
    ("last_seen", PersonFact::LastSeen, "Last activity"),
    ("providers", PersonFact::Providers, "Providers"),
    ("connections", PersonFact::Connections, "Connections"),
    (
        "customer_refs",
        PersonFact::CustomerRefs,
        "Customer IDs at the providers",
    ),
    ("emails", PersonFact::Emails, "All email addresses"),
    ("phones", PersonFact::Phones, "All phone numbers"),
    ("deleted", PersonFact::Deleted, "Deleted everywhere"),
];

/// Event facts: name in a profile, label.
pub const EVENT_FACTS: &[(&str, EventFact, &str)] = &[
    ("kind", EventFact::Kind, "What happened"),
    ("occurred_at", EventFact::OccurredAt, "When"),
    ("summary", EventFact::Summary, "Summary"),
    ("provider", EventFact::Provider, "Provider"),
    ("connection", EventFact::Connection, "Connection"),
    ("event_type", EventFact::EventType, "Provider's event type"),
    (
        "customer_ref",
        EventFact::CustomerRef,
        "Customer ID at the provider",
    ),
    ("changed_fields", EventFact::ChangedFields, "Changed fields"),
    ("changes", EventFact::Changes, "Changes"),
];

impl Source {
    /// Parses a profile's `source` string for rows of `rows`. The error is a plain sentence.
    pub fn parse(s: &str, rows: RowKind) -> Result<Source, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the source is empty; name a field such as email".into());
        }
        if is_canonical(s) {
            return Ok(Source::Field(s.to_string()));
        }
        if let Some((_, fact, _)) = PERSON_FACTS.iter().find(|(n, _, _)| *n == s) {
            return Ok(Source::Person(*fact));
        }
        let event_only = |what: &str| {
            format!(
                "`{s}` is {what} of a timeline event, but this profile's rows are people; set \"rows\": \"events\" to export events"
            )
        };
        if let Some((_, fact, _)) = EVENT_FACTS.iter().find(|(n, _, _)| *n == s) {
            if rows == RowKind::People {
                return Err(event_only("a fact"));
            }
            return Ok(Source::Event(*fact));
        }
        if let Some(rest) = s.strip_prefix("change.") {
            let (field, side) = rest
                .rsplit_once('.')
                .and_then(|(f, side)| match side {
                    "old" => Some((f, Side::Old)),
                    "new" => Some((f, Side::New)),
                    _ => None,
                })
                .filter(|(f, _)| !f.is_empty())
                .ok_or_else(|| {
                    format!("write a change as change.FIELD.old or change.FIELD.new, for example change.email.old (got `{s}`)")
                })?;
            if rows == RowKind::People {
                return Err(event_only("a change"));
            }
            return Ok(Source::Change {
                field: field.to_string(),
                side,
            });
        }
        if let Some(key) = s.strip_prefix("details.") {
            if key.is_empty() {
                return Err("write details.KEY, for example details.amount".into());
            }
            if rows == RowKind::People {
                return Err(event_only("a detail"));
            }
            return Ok(Source::Detail(key.to_string()));
        }
        if let Some((provider, key)) = s.split_once('.')
            && provider.parse::<Provider>().is_ok()
            && provider == provider.to_lowercase()
        {
            if key.is_empty() || key.contains('*') {
                return Err(format!(
                    "name one field after `{provider}.` (wildcards are not allowed, so sensitive fields are never exported by accident)"
                ));
            }
            return Ok(Source::ProviderPath(s.to_string()));
        }
        Err(format!(
            "`{s}` is not a field Clientele knows. Use a customer field ({}), a person fact ({}), an event fact ({}), change.FIELD.old|new, details.KEY, or a provider's own field such as zupy.cpf",
            CANONICAL.join(", "),
            PERSON_FACTS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            EVENT_FACTS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }

    /// The key whose name decides the hints below.
    fn key(&self) -> Option<&str> {
        match self {
            Source::Field(f) => Some(f),
            Source::Change { field, .. } => Some(field),
            Source::Detail(k) => Some(k),
            Source::ProviderPath(p) => Some(p),
            Source::Person(_) | Source::Event(_) => None,
        }
    }

    /// Values that must stay text even when sent as numbers: phone numbers, postal codes and ids
    /// (leading zeros and long digit runs survive).
    pub fn is_text_only(&self) -> bool {
        match self {
            Source::Person(f) => !matches!(
                f,
                PersonFact::FirstSeen | PersonFact::LastSeen | PersonFact::Deleted
            ),
            Source::Event(f) => !matches!(f, EventFact::OccurredAt),
            _ => self.key().is_some_and(key_is_text_only),
        }
    }

    /// Values that are points in time (written as dates when they read as one).
    pub fn is_date(&self) -> bool {
        match self {
            Source::Person(f) => matches!(f, PersonFact::FirstSeen | PersonFact::LastSeen),
            Source::Event(f) => matches!(f, EventFact::OccurredAt),
            _ => self.key().is_some_and(key_is_date),
        }
    }

    /// What kind of value the column holds.
    pub fn kind(&self) -> ColumnKind {
        match self {
            Source::Person(fact) => match fact {
                PersonFact::Id | PersonFact::DisplayName => ColumnKind::Text,
                PersonFact::FirstSeen | PersonFact::LastSeen => ColumnKind::Date,
                PersonFact::Providers
                | PersonFact::Connections
                | PersonFact::CustomerRefs
                | PersonFact::Emails => ColumnKind::List,
                PersonFact::Phones => ColumnKind::PhoneList,
                PersonFact::Deleted => ColumnKind::YesNo,
            },
            Source::Event(fact) => match fact {
                EventFact::OccurredAt => ColumnKind::Date,
                EventFact::ChangedFields => ColumnKind::List,
                _ => ColumnKind::Text,
            },
            Source::Field(f) | Source::Change { field: f, .. } => match f.as_str() {
                "tags" => ColumnKind::List,
                "loyalty_points" => ColumnKind::Number,
                _ => key_kind(f).unwrap_or(ColumnKind::Text),
            },
            Source::Detail(key) | Source::ProviderPath(key) => {
                key_kind(key).unwrap_or(ColumnKind::Other)
            }
        }
    }

    /// Whether the value needs the person (for event rows).
    pub fn needs_person(&self) -> bool {
        matches!(
            self,
            Source::Field(_) | Source::Person(_) | Source::ProviderPath(_)
        )
    }
}

/// The kind a field's name tells: a consent flag, a date, a phone number.
fn key_kind(key: &str) -> Option<ColumnKind> {
    if consent(key).is_some() {
        return Some(ColumnKind::YesNo);
    }
    if key_is_date(key) {
        return Some(ColumnKind::Date);
    }
    let lower = last_segment(key).to_lowercase();
    if ["phone", "mobile", "whatsapp"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Some(ColumnKind::Phone);
    }
    None
}

fn last_segment(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// Phone numbers, postal codes, ids, references, codes and national ids.
fn key_is_text_only(key: &str) -> bool {
    let last = last_segment(key);
    let lower = last.to_lowercase();
    if [
        "phone", "mobile", "whatsapp", "zip", "postal", "postcode", "cpf", "cnpj", "ssn", "code",
        "ref", "number",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        return true;
    }
    // `id`, `customer_id`, `customerId`, `businessIds`, `RelatedProviderId` — but not `paid`.
    lower == "id"
        || lower == "ids"
        || lower.ends_with("_id")
        || lower.ends_with("_ids")
        || last.ends_with("Id")
        || last.ends_with("Ids")
        || last.ends_with("ID")
}

/// `created_at`, `enrolled_at`, `markedAsSpamAt`, `createdDate`, `OptInDateTime`, `startTime`.
fn key_is_date(key: &str) -> bool {
    let last = last_segment(key);
    let lower = last.to_lowercase();
    lower.ends_with("_at")
        || last.ends_with("At")
        || lower.ends_with("date")
        || lower.ends_with("datetime")
        || last.ends_with("Time")
        || lower.ends_with("_time")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(s: &str) -> Result<Source, String> {
        Source::parse(s, RowKind::People)
    }

    fn events(s: &str) -> Result<Source, String> {
        Source::parse(s, RowKind::Events)
    }

    #[test]
    fn every_kind_of_source_parses() {
        assert_eq!(people("email"), Ok(Source::Field("email".into())));
        assert_eq!(
            people("first_seen"),
            Ok(Source::Person(PersonFact::FirstSeen))
        );
        assert_eq!(events("summary"), Ok(Source::Event(EventFact::Summary)));
        assert_eq!(events("email"), Ok(Source::Field("email".into())));
        assert_eq!(
            events("change.email.old"),
            Ok(Source::Change {
                field: "email".into(),
                side: Side::Old
            })
        );
        assert_eq!(
            events("change.zupy.cpf.new"),
            Ok(Source::Change {
                field: "zupy.cpf".into(),
                side: Side::New
            })
        );
        assert_eq!(
            events("details.amount"),
            Ok(Source::Detail("amount".into()))
        );
        assert_eq!(
            people("zupy.cpf"),
            Ok(Source::ProviderPath("zupy.cpf".into()))
        );
        assert_eq!(
            people("plain.email.isVerified"),
            Ok(Source::ProviderPath("plain.email.isVerified".into()))
        );
    }

    #[test]
    fn unknown_event_only_and_wildcard_sources_are_refused() {
        assert!(people("emial").unwrap_err().contains("emial"));
        assert!(people("summary").unwrap_err().contains("events"));
        assert!(people("change.email.old").unwrap_err().contains("events"));
        assert!(events("change.email").is_err());
        assert!(events("change..old").is_err());
        assert!(people("zupy.*").unwrap_err().contains("wildcard"));
        assert!(people("zupy.").is_err());
        assert!(people("acme.thing").is_err(), "unknown provider");
        assert!(people("").is_err());
    }

    #[test]
    fn hints_keep_ids_phones_and_postal_codes_as_text() {
        for s in [
            "phone",
            "postal_code",
            "id",
            "customer_refs",
            "vagaro.businessIds",
            "resdiary.RelatedProviderId",
            "zupy.cpf",
            "zupy.program_id",
            "vagaro.dayPhone",
        ] {
            assert!(people(s).unwrap().is_text_only(), "{s}");
        }
        for s in ["loyalty_points", "first_seen", "zupy.qualification_value"] {
            assert!(!people(s).unwrap().is_text_only(), "{s}");
        }
        assert!(!events("details.amount").unwrap().is_text_only());
        assert!(!events("details.paid").unwrap().is_text_only());
    }

    #[test]
    fn kinds_follow_the_field() {
        use ColumnKind::*;
        for (s, kind) in [
            ("phone", Phone),
            ("phones", PhoneList),
            ("vagaro.dayPhone", Phone),
            ("resdiary.MobileNumber", Phone),
            ("email", Text),
            ("full_name", Text),
            ("postal_code", Text),
            ("email_marketing_opt_in", YesNo),
            ("sms_marketing_opt_in", YesNo),
            ("resdiary.ReceiveGroupEmailMarketing", YesNo),
            ("deleted", YesNo),
            ("created_at", Date),
            ("first_seen", Date),
            ("zupy.enrolled_at", Date),
            ("loyalty_points", Number),
            ("tags", List),
            ("emails", List),
            ("providers", List),
            ("vagaro.businessIds", Other),
            ("zupy.cpf", Other),
        ] {
            assert_eq!(people(s).unwrap().kind(), kind, "{s}");
        }
        assert_eq!(events("occurred_at").unwrap().kind(), Date);
        assert_eq!(events("summary").unwrap().kind(), Text);
        assert_eq!(events("change.phone.new").unwrap().kind(), Phone);
        assert_eq!(events("change.created_at.old").unwrap().kind(), Date);
        assert_eq!(events("details.amount").unwrap().kind(), Other);
        assert_eq!(events("details.startTime").unwrap().kind(), Date);
    }

    #[test]
    fn hints_find_dates() {
        for s in [
            "created_at",
            "first_seen",
            "plain.markedAsSpamAt",
            "vagaro.createdDate",
            "resdiary.GroupEmailMarketingOptInDateTime",
            "zupy.enrolled_at",
        ] {
            assert!(people(s).unwrap().is_date(), "{s}");
        }
        assert!(events("occurred_at").unwrap().is_date());
        assert!(events("details.startTime").unwrap().is_date());
        assert!(!people("email").unwrap().is_date());
        assert!(!people("loyalty_tier").unwrap().is_date());
    }
}
