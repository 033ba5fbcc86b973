//! Vagaro: `{id, createdDate, type, action, payload}` with `type` ∈ customer | appointment |
//! formResponse | transaction.
//!
//! Why it looks the way it does:
//! * `X-Vagaro-Signature` is a **static verification token**, not an HMAC: it proves only that
//!   the sender knows the token. It is compared in constant time — over SHA-256 digests of both
//!   sides, so not even the token's length leaks. There is no replay window (Vagaro sends no
//!   signed time); its event `id` makes every retry a duplicate instead. The optional address
//!   allow-list (Vagaro publishes its sending addresses) is enforced by the caller.
//! * Customer events are **full snapshots without a diff** (`changes: None`): the store diffs
//!   them against the state as of the event's time, because Vagaro delivers out of order.
//!   There is no delete: leaving a business shows up as a shorter `businessIds`.
//! * Vagaro sends `""` for "no value" (`dayPhone`): read as `null`.

use super::{
    Conv, FieldMap, Fields, deleted_fields, details_without, event, first, header_values, id_text,
    missing_signature, object, required_id, required_time, text,
};
use crate::event::{EventKind, ParseError, SourceEvent};
use crate::time::to_rfc3339;
use crate::{Inbound, Provider, Rejection, Sensitive};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(super) const TOKEN_HEADER: &str = "x-vagaro-signature";

const CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Vagaro,
    table: &[
        ("customerFirstName", "first_name", Conv::Text),
        ("customerLastName", "last_name", Conv::Text),
        ("email", "email", Conv::Text),
        ("mobilePhone", "phone", Conv::Text),
        ("streetAddress", "street_address", Conv::Text),
        ("city", "city", Conv::Text),
        ("regionCode", "region_code", Conv::Text),
        ("regionName", "region_name", Conv::Text),
        ("countryCode", "country_code", Conv::Text),
        ("countryName", "country_name", Conv::Text),
        ("postalCode", "postal_code", Conv::Text),
        ("createdDate", "created_at", Conv::Time),
        ("modifiedDate", "updated_at", Conv::Time),
    ],
    skip: &["customerId"],
};

/// The token header must equal the saved verification token (surrounding spaces ignored on both
/// sides: they are never part of a token, and pasting often adds them).
pub(super) fn check(secret: &Sensitive<String>, i: &Inbound<'_>) -> Result<String, Rejection> {
    let tokens = header_values(i.headers, TOKEN_HEADER);
    if tokens.is_empty() {
        return Err(missing_signature(Provider::Vagaro));
    }
    let want = Sha256::digest(secret.expose().trim().as_bytes());
    let matched = tokens
        .iter()
        .any(|t| super::ct_eq(&Sha256::digest(t.as_bytes()), &want));
    if matched {
        Ok("Checked: Vagaro sent the verification token saved for this connection.".to_string())
    } else {
        Err(super::bad_signature(Provider::Vagaro))
    }
}

pub(super) fn parse(json: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let kind_of = text(json, "type").ok_or(ParseError::Missing("event type (type)"))?;
    let action = text(json, "action").unwrap_or("");
    let at = required_time(
        first(json, &["createdDate", "createdAt"]),
        "event time (createdDate)",
    )?;
    let event_type = if action.is_empty() {
        kind_of.to_string()
    } else {
        format!("{kind_of}/{action}")
    };
    let payload = json.get("payload");
    let customer_id = payload.and_then(|p| p.get("customerId"));
    let event = match kind_of {
        "customer" => {
            let customer_ref = required_id(customer_id, "customer id (payload.customerId)")?;
            Some(customer(customer_ref, at, action, event_type, payload))
        }
        "appointment" => {
            let customer_ref = required_id(customer_id, "customer id (payload.customerId)")?;
            Some(activity(
                customer_ref,
                at,
                EventKind::Appointment,
                event_type,
                payload,
                action,
            ))
        }
        other => id_text(customer_id).map(|customer_ref| {
            let kind = match other {
                "transaction" => EventKind::Payment,
                _ => EventKind::Other,
            };
            activity(customer_ref, at, kind, event_type, payload, action)
        }),
    };
    Ok(event.into_iter().collect())
}

fn customer(
    customer_ref: String,
    at: DateTime<Utc>,
    action: &str,
    event_type: String,
    payload: Option<&Value>,
) -> SourceEvent {
    let fields = CUSTOMER.map(object(payload));
    match action {
        "created" => event(customer_ref, at, EventKind::Created, event_type, fields),
        "deleted" => event(
            customer_ref,
            at,
            EventKind::Deleted,
            event_type,
            deleted_fields(Value::String(to_rfc3339(at))),
        ),
        "updated" => event(customer_ref, at, EventKind::Updated, event_type, fields),
        _ => event(customer_ref, at, EventKind::Other, event_type, fields),
    }
}

/// Appointments, transactions and form responses: no profile fields, everything in `details`.
fn activity(
    customer_ref: String,
    at: DateTime<Utc>,
    kind: EventKind,
    event_type: String,
    payload: Option<&Value>,
    action: &str,
) -> SourceEvent {
    let mut ev = event(customer_ref, at, kind, event_type, Fields::new());
    let mut details = details_without(payload, &["customerId"]);
    if !action.is_empty() {
        if details.is_null() {
            details = json!({});
        }
        if let Some(map) = details.as_object_mut() {
            map.insert("action".to_string(), Value::from(action));
        }
    }
    ev.details = details;
    ev
}

pub(super) fn sign(secret: &Sensitive<String>) -> Vec<(String, String)> {
    vec![(
        "X-Vagaro-Signature".to_string(),
        secret.expose().trim().to_string(),
    )]
}

pub(super) fn sample(id: &str, customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    let at = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    // Vagaro's ids look like upper-case UUIDs.
    let hex = id.to_uppercase();
    let part = |from: usize, to: usize| hex.get(from..to.min(hex.len())).unwrap_or_default();
    let id = [
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32),
    ]
    .join("-");
    json!({
        "id": id,
        "createdDate": at,
        "type": "customer",
        "action": "created",
        "payload": {
            "customerId": customer_ref,
            "businessIds": ["U2FsdGVkX18zRbwyUxRZaHNTYGwjKCpDdAkKP4eUDsE="],
            "customerFirstName": "Test",
            "customerLastName": "Customer",
            "businessGroupId": "tYKEZF-L445YEDnCx0TIfA==",
            "email": email,
            "mobilePhone": "9145551212",
            "dayPhone": "",
            "nightPhone": "",
            "streetAddress": "498 Edgecombe Avenue",
            "city": "New York",
            "regionCode": "NY",
            "regionName": "New York",
            "countryCode": "US",
            "countryName": "United States of America",
            "postalCode": "10030",
            "createdDate": at,
            "createdBy": "Clientele test",
            "modifiedDate": at,
            "modifiedBy": "Clientele test"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use serde_json::json;

    const UPDATED: &str = include_str!("../../tests/fixtures/vagaro-customer-updated.json");
    const P: Provider = Provider::Vagaro;

    #[test]
    fn token_checks() {
        let ok = verify_signed(P, UPDATED.as_bytes()).expect("token matches");
        assert_eq!(ok.dedupe_key, "254FA623-D2B0-4785-A07D-A1A7059C74FF");
        assert!(ok.check.contains("verification token"));
        assert_common_refusals(P, UPDATED.as_bytes());
    }

    #[test]
    fn token_compares_exactly_but_ignores_surrounding_spaces() {
        let body = UPDATED.as_bytes();
        let h = headers(&[("X-Vagaro-Signature", &format!("{SECRET}x"))]);
        assert!(matches!(
            verify_with(P, Some(SECRET), &h, body, now()),
            Err(Rejection::BadSignature { .. })
        ));
        let h = headers(&[("X-Vagaro-Signature", &SECRET.to_uppercase())]);
        assert!(verify_with(P, Some(SECRET), &h, body, now()).is_err());
        let h = headers(&[
            ("X-Vagaro-Signature", "wrong"),
            ("X-Vagaro-Signature", SECRET),
        ]);
        assert!(verify_with(P, Some(&format!(" {SECRET}\n")), &h, body, now()).is_ok());
        // No replay window.
        let h = headers(&[("X-Vagaro-Signature", SECRET)]);
        let later = now() + chrono::Duration::days(30);
        assert!(verify_with(P, Some(SECRET), &h, body, later).is_ok());
    }

    #[test]
    fn customer_snapshot() {
        let ev = only_event(P, UPDATED.as_bytes());
        assert_eq!(ev.customer_ref, "4CB231BAD3B26B7DE53FE5832A54A7B1");
        assert_eq!(ev.kind, EventKind::Updated);
        assert_eq!(ev.event_type, "customer/updated");
        assert_eq!(ev.occurred_at, utc("2024-03-15T00:00:00Z"));
        assert_eq!(ev.changes, None, "snapshot: the store diffs it");
        let f = &ev.fields;
        assert_eq!(f["first_name"], json!("Johnny"));
        assert_eq!(f["last_name"], json!("Smith"));
        assert_eq!(f["full_name"], json!("Johnny Smith"));
        assert_eq!(f["email"], json!("johnny.smith@example.com"));
        assert_eq!(f["phone"], json!("9145551212"));
        assert_eq!(f["vagaro.dayPhone"], Value::Null);
        assert_eq!(f["vagaro.nightPhone"], Value::Null);
        assert_eq!(f["street_address"], json!("498 Edgecombe Avenue Manhattan"));
        assert_eq!(f["city"], json!("New York"));
        assert_eq!(f["region_code"], json!("NY"));
        assert_eq!(f["region_name"], json!("New York"));
        assert_eq!(f["country_code"], json!("US"));
        assert_eq!(f["country_name"], json!("United States of America"));
        assert_eq!(f["postal_code"], json!("10030"));
        assert_eq!(f["created_at"], json!("2023-07-10T08:50:00Z"));
        assert_eq!(f["updated_at"], json!("2023-08-10T08:50:00Z"));
        assert_eq!(
            f["vagaro.businessIds"],
            json!(["U2FsdGVkX18zRbwyUxRZaHNTYGwjKCpDdAkKP4eUDsE="])
        );
        assert_eq!(
            f["vagaro.businessGroupId"],
            json!("tYKEZF-L445YEDnCx0TIfA==")
        );
        assert_eq!(f["vagaro.modifiedBy"], json!("GVkX18zRbwyUxRZaHNTYGwjK"));
        assert!(!f.contains_key("vagaro.customerId"));
    }

    #[test]
    fn created_at_is_accepted_instead_of_created_date() {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        let root = body.as_object_mut().expect("root");
        root.remove("createdDate");
        root.insert("createdAt".into(), json!("2024-03-15T01:02:03.456Z"));
        let ev = only_event(P, body.to_string().as_bytes());
        assert_eq!(ev.occurred_at, utc("2024-03-15T01:02:03.456Z"));
    }

    #[test]
    fn appointments_and_transactions() {
        let body = json!({
            "id": "A1", "createdDate": "2024-03-01T09:00:00Z", "type": "appointment", "action": "created",
            "payload": {"customerId": "C1", "appointmentId": "AP9", "startTime": "2024-03-03T10:00:00Z",
                "endTime": "2024-03-03T11:00:00Z", "bookingStatus": "Booked", "serviceTitle": "Haircut", "amount": 45}
        });
        let ev = only_event(P, body.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::Appointment);
        assert_eq!(ev.event_type, "appointment/created");
        assert!(ev.fields.is_empty());
        assert_eq!(ev.details["serviceTitle"], json!("Haircut"));
        assert_eq!(ev.details["startTime"], json!("2024-03-03T10:00:00Z"));
        assert_eq!(ev.details["amount"], json!(45));
        assert_eq!(ev.details["action"], json!("created"));
        assert!(ev.details.get("customerId").is_none());

        let tx = json!({"id": "T1", "createdDate": "2024-03-01T09:00:00Z", "type": "transaction",
            "action": "created", "payload": {"customerId": "C1", "amount": 45.5}});
        assert_eq!(
            only_event(P, tx.to_string().as_bytes()).kind,
            EventKind::Payment
        );

        let walk_in = json!({"id": "T2", "createdDate": "2024-03-01T09:00:00Z", "type": "transaction",
            "action": "created", "payload": {"amount": 12}});
        assert!(
            parse_body(P, walk_in.to_string().as_bytes())
                .expect("reads")
                .events
                .is_empty()
        );

        let form = json!({"id": "F1", "createdDate": "2024-03-01T09:00:00Z", "type": "formResponse",
            "action": "created", "payload": {"customerId": "C1", "formTitle": "Consultation"}});
        assert_eq!(
            only_event(P, form.to_string().as_bytes()).kind,
            EventKind::Other
        );
    }

    #[test]
    fn missing_parts_are_parse_errors() {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["payload"]
            .as_object_mut()
            .expect("payload")
            .remove("customerId");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("customer id (payload.customerId)"))
        );
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body.as_object_mut().expect("root").remove("createdDate");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("event time (createdDate)"))
        );
    }

    #[test]
    fn odd_whitespace_still_verifies_and_parses() {
        assert_reformatted_bodies_work(P, UPDATED);
    }
}
