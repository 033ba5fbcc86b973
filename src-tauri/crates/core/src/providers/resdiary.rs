//! ResDiary: `{ChangeDateTime, Customer{…}, Changes[{ChangeType, OldValue, NewValue}]}`.
//!
//! ResDiary names neither the event nor its id, and publishes only part of its list of change
//! types, so this adapter infers more than any other — and says so in `details.inferred`, which
//! the UI shows:
//! * **Kind.** A delivery whose `Changes` is empty is read as *Customer Created* (ResDiary's
//!   created notification has nothing to list; a change always lists what changed). A change
//!   type ending in `Created`/`Deleted` is taken at its word. Only marketing opt-in changes →
//!   *Marketing Opt-ins Changed* (`ConsentChanged`); only email/mobile/name changes → *Contact
//!   Details Changed* (`Updated`); a mixture → `Updated` (`CustomerChanged`).
//! * **Change types.** `CustomerSmsChanged` is the mobile number, anything else ending in
//!   `EmailChanged` that isn't about marketing is the email address, and the documented marketing
//!   changes map onto the matching `resdiary.<Customer key>`. Any other change type is kept
//!   verbatim as `resdiary.<ChangeType>` with its old and new values — never dropped.
//! * **Consent.** ResDiary keeps four opt-ins (group/restaurant × email/SMS). The canonical
//!   `email_marketing_opt_in` is *group OR restaurant* email opt-in (the customer hears from this
//!   business by email through at least one of them); the same for SMS. The four originals stay
//!   under their own paths, so nothing is lost.
//! * **Times** come with seven fractional digits and sometimes without an offset: read as UTC,
//!   noted in `details.time_note`.
//! * `MobileNumber` is free text (the sample's is `"3"`): kept exactly as sent.

use super::{
    Conv, FieldMap, Fields, Supplied, clean, deleted_fields, event, header_values, hex_signature,
    hmac_sha1, match_any, missing_signature, object, required_id, required_time,
};
use crate::event::{Change, EventKind, ParseError, SourceEvent};
use crate::fields::{Channel, consent};
use crate::time::{has_explicit_offset, to_rfc3339};
use crate::{Inbound, Provider, Rejection, Sensitive};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub(super) const SIGNATURE_HEADER: &str = "x-resdiary-signature";

const CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Resdiary,
    table: &[
        ("Title", "title", Conv::Text),
        ("FirstName", "first_name", Conv::Text),
        ("Surname", "last_name", Conv::Text),
        ("MobileNumber", "phone", Conv::Text),
        ("Company", "company", Conv::Text),
        ("Email", "email", Conv::Text),
    ],
    skip: &["Id"],
};

const SCOPES: [&str; 2] = ["Group", "Restaurant"];

/// `sha1=<hex>` = HMAC-SHA1(secret, body).
pub(super) fn check(secret: &Sensitive<String>, i: &Inbound<'_>) -> Result<String, Rejection> {
    let sigs = header_values(i.headers, SIGNATURE_HEADER);
    if sigs.is_empty() {
        return Err(missing_signature(Provider::Resdiary));
    }
    let supplied: Vec<Supplied> = sigs
        .iter()
        .map(|s| hex_signature(s, "X-ResDiary-Signature", "sha1=", true))
        .collect();
    let mac = hmac_sha1(secret.expose().as_bytes(), &[i.body]);
    match_any(Provider::Resdiary, &supplied, &[("", &mac)])?;
    Ok("Checked: signed by ResDiary with the signing secret.".to_string())
}

/// What a change type is about.
#[derive(Debug, Clone, PartialEq)]
enum Mapped {
    /// Email, mobile, name, title or company.
    Contact(&'static str),
    /// One of the twelve consent keys (`resdiary.<Customer key>`).
    Consent(String),
    Lifecycle(EventKind),
    /// Not known: kept as `resdiary.<ChangeType>`.
    Unknown,
}

fn map_change_type(change_type: &str) -> Mapped {
    let core = change_type
        .strip_prefix("Customer")
        .unwrap_or(change_type)
        .strip_suffix("Changed");
    if change_type.ends_with("Created") {
        return Mapped::Lifecycle(EventKind::Created);
    }
    if change_type.ends_with("Deleted") {
        return Mapped::Lifecycle(EventKind::Deleted);
    }
    let Some(core) = core else {
        return Mapped::Unknown;
    };
    if let Some(key) = consent_key(core) {
        return Mapped::Consent(key);
    }
    match core.to_ascii_lowercase().as_str() {
        "sms" | "mobile" | "mobilenumber" | "phone" | "phonenumber" => Mapped::Contact("phone"),
        "firstname" => Mapped::Contact("first_name"),
        "surname" | "lastname" => Mapped::Contact("last_name"),
        "title" => Mapped::Contact("title"),
        "company" => Mapped::Contact("company"),
        lower if lower.ends_with("email") || lower == "emailaddress" => Mapped::Contact("email"),
        _ => Mapped::Unknown,
    }
}

/// `GroupEmailMarketingOptin` → `ReceiveGroupEmailMarketing`, `…MarketingText` →
/// `…MarketingOptInText`, `…MarketingDate` → `…MarketingOptInDateTime`.
fn consent_key(core: &str) -> Option<String> {
    let (subject, part) = core.split_once("Marketing")?;
    let scoped = SCOPES.iter().any(|s| {
        subject
            .strip_prefix(s)
            .is_some_and(|c| c == "Email" || c == "Sms")
    });
    if !scoped {
        return None;
    }
    let key = match part.to_ascii_lowercase().as_str() {
        "optin" | "" => format!("Receive{subject}Marketing"),
        "text" | "optintext" => format!("{subject}MarketingOptInText"),
        "date" | "datetime" | "optindate" | "optindatetime" => {
            format!("{subject}MarketingOptInDateTime")
        }
        _ => return None,
    };
    Some(format!("resdiary.{key}"))
}

pub(super) fn parse(json: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let customer = json.get("Customer");
    let customer_ref = required_id(
        customer.and_then(|c| c.get("Id")),
        "customer id (Customer.Id)",
    )?;
    let raw_time = json.get("ChangeDateTime");
    let at = required_time(raw_time, "change time (ChangeDateTime)")?;
    let listed = listed_changes(json)?;
    let customer = object(customer);
    let mut fields = CUSTOMER.map(customer);
    fields.extend(canonical_consents(customer));

    let mut changes = Vec::new();
    let mut lifecycle = None;
    for (change_type, old, new) in &listed {
        match map_change_type(change_type) {
            // `EventKind` orders Deleted after Created: a delivery listing both is a deletion.
            Mapped::Lifecycle(kind) => lifecycle = lifecycle.max(Some(kind)),
            mapped => changes.push(Change {
                field: field_of(&mapped, change_type),
                old: clean(old),
                new: clean(new),
            }),
        }
    }
    let (kind, event_type, why) = infer_kind(&changes, lifecycle, listed.is_empty());
    changes.extend(canonical_consent_changes(customer, &changes));

    let mut ev = match kind {
        EventKind::Deleted => event(
            customer_ref,
            at,
            kind,
            event_type,
            deleted_fields(Value::String(to_rfc3339(at))),
        ),
        EventKind::Created => event(customer_ref, at, kind, event_type, fields),
        _ => {
            let mut ev = event(customer_ref, at, kind, event_type, fields);
            ev.changes = Some(changes);
            ev
        }
    };
    ev.details = inference_details(why, raw_time);
    Ok(vec![ev])
}

/// `Changes` as `(ChangeType, OldValue, NewValue)`; absent or null is an empty list.
fn listed_changes(json: &Value) -> Result<Vec<(String, Value, Value)>, ParseError> {
    let items = match json.get("Changes") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ParseError::Invalid {
                field: "Changes",
                detail: format!("expected a list, got {other}"),
            });
        }
    };
    items
        .iter()
        .map(|c| {
            let change_type = c
                .get("ChangeType")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or(ParseError::Missing("change type (Changes[].ChangeType)"))?;
            let old = c.get("OldValue").cloned().unwrap_or(Value::Null);
            let new = c.get("NewValue").cloned().unwrap_or(Value::Null);
            Ok((change_type.to_string(), old, new))
        })
        .collect()
}

fn field_of(mapped: &Mapped, change_type: &str) -> String {
    match mapped {
        Mapped::Contact(f) => (*f).to_string(),
        Mapped::Consent(key) => key.clone(),
        Mapped::Lifecycle(_) | Mapped::Unknown => format!("resdiary.{change_type}"),
    }
}

fn infer_kind(
    changes: &[Change],
    lifecycle: Option<EventKind>,
    nothing_listed: bool,
) -> (EventKind, &'static str, &'static str) {
    const NAMED: &str = "ResDiary named this change itself.";
    const FROM_CHANGES: &str = "ResDiary doesn't say what kind of change this is; Clientele read it from the listed changes.";
    if lifecycle == Some(EventKind::Deleted) {
        return (EventKind::Deleted, "CustomerDeleted", NAMED);
    }
    if lifecycle == Some(EventKind::Created) {
        return (EventKind::Created, "CustomerCreated", NAMED);
    }
    if nothing_listed {
        return (
            EventKind::Created,
            "CustomerCreated",
            "ResDiary doesn't say what kind of change this is; the message listed no changes, so Clientele read it as a new customer.",
        );
    }
    let consent_only = super::all_consent(changes);
    let contact_only = changes.iter().all(|c| {
        matches!(
            c.field.as_str(),
            "email" | "phone" | "first_name" | "last_name" | "title" | "company"
        )
    });
    if consent_only {
        (
            EventKind::ConsentChanged,
            "CustomerMarketingOptInsChanged",
            FROM_CHANGES,
        )
    } else if contact_only {
        (
            EventKind::Updated,
            "CustomerContactDetailsChanged",
            FROM_CHANGES,
        )
    } else {
        (EventKind::Updated, "CustomerChanged", FROM_CHANGES)
    }
}

fn inference_details(why: &str, raw_time: Option<&Value>) -> Value {
    let mut details = Map::new();
    details.insert("inferred".to_string(), Value::from(why));
    if raw_time
        .and_then(Value::as_str)
        .is_some_and(|t| !has_explicit_offset(t))
    {
        details.insert(
            "time_note".to_string(),
            Value::from("ResDiary sent this time without a time zone; Clientele read it as UTC."),
        );
    }
    Value::Object(details)
}

fn channels() -> [(Channel, &'static str, &'static str); 2] {
    [
        (Channel::Email, "Email", "email_marketing_opt_in"),
        (Channel::Sms, "Sms", "sms_marketing_opt_in"),
    ]
}

/// Group OR restaurant, per channel; `None` when ResDiary sent neither flag.
fn either(values: [Option<bool>; 2]) -> Option<bool> {
    if values.contains(&Some(true)) {
        Some(true)
    } else if values.contains(&Some(false)) {
        Some(false)
    } else {
        None
    }
}

fn flag(customer: &Map<String, Value>, scope: &str, channel: &str) -> Option<bool> {
    customer
        .get(&format!("Receive{scope}{channel}Marketing"))
        .and_then(Value::as_bool)
}

/// The canonical opt-ins derived from the four ResDiary flags (see the module docs).
fn canonical_consents(customer: &Map<String, Value>) -> Fields {
    channels()
        .into_iter()
        .filter_map(|(_, channel, field)| {
            let now = either(SCOPES.map(|s| flag(customer, s, channel)))?;
            Some((field.to_string(), Value::Bool(now)))
        })
        .collect()
}

/// When a ResDiary opt-in changed, the canonical opt-in may have changed too: before = the
/// changed flags' old values OR the unchanged flags' current values.
fn canonical_consent_changes(customer: &Map<String, Value>, changes: &[Change]) -> Vec<Change> {
    let mut out = Vec::new();
    for (channel, word, field) in channels() {
        let touched: Vec<&Change> = changes
            .iter()
            .filter(|c| {
                consent(&c.field).is_some_and(|(ch, scope)| ch == channel && scope.is_some())
            })
            .collect();
        if touched.is_empty() {
            continue;
        }
        let before = SCOPES.map(|scope| {
            let key = format!("resdiary.Receive{scope}{word}Marketing");
            match touched.iter().find(|c| c.field == key) {
                Some(c) => c.old.as_bool(),
                None => flag(customer, scope, word),
            }
        });
        let after = SCOPES.map(|scope| {
            let key = format!("resdiary.Receive{scope}{word}Marketing");
            match touched.iter().find(|c| c.field == key) {
                Some(c) => c.new.as_bool(),
                None => flag(customer, scope, word),
            }
        });
        let (old, new) = (either(before), either(after));
        if old != new {
            out.push(Change {
                field: field.to_string(),
                old: old.map_or(Value::Null, Value::Bool),
                new: new.map_or(Value::Null, Value::Bool),
            });
        }
    }
    out
}

pub(super) fn sign(secret: &Sensitive<String>, body: &[u8]) -> Vec<(String, String)> {
    let mac = hmac_sha1(secret.expose().as_bytes(), &[body]);
    vec![(
        "X-ResDiary-Signature".to_string(),
        format!("sha1={}", hex::encode(mac)),
    )]
}

pub(super) fn sample(customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    let id = customer_ref
        .parse::<i64>()
        .map_or_else(|_| Value::from(customer_ref), Value::from);
    json!({
        // ResDiary writes seven fractional digits.
        "ChangeDateTime": format!(
            "{}.{:07}Z",
            at.format("%Y-%m-%dT%H:%M:%S"),
            at.timestamp_subsec_nanos() / 100
        ),
        "Customer": {
            "Id": id,
            "Title": "",
            "FirstName": "Test",
            "Surname": "Customer",
            "RelatedProviderId": 1044,
            "MobileNumber": "07700900123",
            "Company": "",
            "Email": email,
            "ReceiveGroupEmailMarketing": false,
            "GroupEmailMarketingOptInDateTime": null,
            "GroupEmailMarketingOptInText": null,
            "ReceiveGroupSmsMarketing": false,
            "GroupSmsMarketingOptInDateTime": null,
            "GroupSmsMarketingOptInText": null,
            "ReceiveRestaurantEmailMarketing": false,
            "RestaurantEmailMarketingOptInDateTime": null,
            "RestaurantEmailMarketingOptInText": null,
            "ReceiveRestaurantSmsMarketing": false,
            "RestaurantSmsMarketingOptInDateTime": null,
            "RestaurantSmsMarketingOptInText": null
        },
        "Changes": []
    })
}

#[cfg(test)]
mod tests;
