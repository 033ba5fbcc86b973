//! Tiquo: customer, order, payment and loyalty events in a Stripe-like envelope
//! `{id, type, created, data, previousAttributes?}`.
//!
//! Why it looks the way it does:
//! * Tiquo's documentation names `X-Tiquo-Signature` but its stored code sample is cut off, so the
//!   exact HMAC construction is unknown. Both plausible ones (HMAC-SHA256 over the raw body, or
//!   over `"{X-Tiquo-Timestamp}.{body}"`, hex, `sha256=` optional) are accepted; both need the
//!   secret, and [`Verified::check`](crate::Verified) records which one matched so the guess can
//!   be confirmed from real traffic.
//! * `customer.updated` carries a partial customer plus `previousAttributes` with **only** the
//!   changed keys: that is Tiquo's own diff, so it becomes `changes` (absent keys in `data` mean
//!   "unknown", not "cleared").
//! * A newer API generation sends epoch-millisecond times; [`crate::time`] reads both.

use super::{
    Conv, FieldMap, Fields, REPLAY_WINDOW_SECS, Supplied, clean_time, details, details_without,
    event, first, header, header_epoch, header_values, hex_signature, hmac_sha256, id_text,
    match_any, missing_signature, object, required_id, required_time, text, update_kind,
    with_full_name, within_window,
};
use crate::event::{Change, EventKind, ParseError, SourceEvent};
use crate::time::to_rfc3339;
use crate::{Inbound, Provider, Rejection, Sensitive};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Value, json};

pub(super) const SIGNATURE_HEADER: &str = "x-tiquo-signature";
pub(super) const TIMESTAMP_HEADER: &str = "x-tiquo-timestamp";
pub(super) const EVENT_HEADER: &str = "x-tiquo-event";

const STAMPED: &str = "signature over the time and the message";
const BODY_ONLY: &str = "signature over the message only";

const CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Tiquo,
    table: &[
        ("firstName", "first_name", Conv::Text),
        ("lastName", "last_name", Conv::Text),
        ("fullName", "full_name", Conv::Text),
        ("email", "email", Conv::Text),
        ("phone", "phone", Conv::Text),
        ("company", "company", Conv::Text),
        ("loyaltyPoints", "loyalty_points", Conv::Text),
        ("loyaltyTier", "loyalty_tier", Conv::Text),
        ("tags", "tags", Conv::Text),
        ("marketingConsent", "email_marketing_opt_in", Conv::Text),
        ("createdAt", "created_at", Conv::Time),
        ("updatedAt", "updated_at", Conv::Time),
        ("deletedAt", "deleted_at", Conv::Time),
    ],
    skip: &["id", "source"],
};

/// Checks the signature (either construction), then the 5-minute window on the time stamp
/// header when Tiquo sent one.
pub(super) fn check(
    secret: &Sensitive<String>,
    i: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<String, Rejection> {
    let sigs = header_values(i.headers, SIGNATURE_HEADER);
    if sigs.is_empty() {
        return Err(missing_signature(Provider::Tiquo));
    }
    let supplied: Vec<Supplied> = sigs
        .iter()
        .map(|s| hex_signature(s, "X-Tiquo-Signature", "sha256=", false))
        .collect();
    let key = secret.expose().as_bytes();
    let stamp = header(i.headers, TIMESTAMP_HEADER);
    let over_body = hmac_sha256(key, &[i.body]);
    let over_stamp = stamp.map(|t| hmac_sha256(key, &[t.as_bytes(), b".", i.body]));
    let mut expected: Vec<(&str, &[u8])> = Vec::with_capacity(2);
    if let Some(mac) = &over_stamp {
        expected.push((STAMPED, mac));
    }
    expected.push((BODY_ONLY, &over_body));
    let matched = match_any(Provider::Tiquo, &supplied, &expected)?;
    if let Some(t) = stamp {
        within_window(
            header_epoch(t, "X-Tiquo-Timestamp")?,
            now,
            REPLAY_WINDOW_SECS,
        )?;
    }
    Ok(format!(
        "Checked: signed by Tiquo with the signing secret ({matched})."
    ))
}

pub(super) fn parse(headers: &HeaderMap, json: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let event_type = text(json, "type")
        .or_else(|| header(headers, EVENT_HEADER))
        .ok_or(ParseError::Missing("event type (type)"))?;
    let at = required_time(
        first(json, &["created", "createdAt", "timestamp"]),
        "event time (created)",
    )?;
    let (group, action) = event_type.split_once('.').unwrap_or((event_type, ""));
    let event = match group {
        "customer" => Some(customer(event_type, action, at, json)?),
        "order" => activity(EventKind::Order, event_type, at, json),
        "payment" => activity(EventKind::Payment, event_type, at, json),
        "loyalty" => loyalty(event_type, action, at, json),
        _ => activity(EventKind::Other, event_type, at, json),
    };
    Ok(event.into_iter().collect())
}

fn customer(
    event_type: &str,
    action: &str,
    at: DateTime<Utc>,
    json: &Value,
) -> Result<SourceEvent, ParseError> {
    let data = json.get("data");
    let customer_ref = required_id(data.and_then(|d| d.get("id")), "customer id (data.id)")?;
    let data = object(data);
    let mut fields = CUSTOMER.map(data);
    let ev = match action {
        "created" => {
            let mut ev = event(customer_ref, at, EventKind::Created, event_type, fields);
            ev.details = details(&[("source", data.get("source"))]);
            ev
        }
        "updated" => {
            let changes = json
                .get("previousAttributes")
                .and_then(Value::as_object)
                .map(|prev| previous_attribute_changes(prev, data, &mut fields));
            let kind = changes.as_deref().map_or(EventKind::Updated, update_kind);
            let mut ev = event(customer_ref, at, kind, event_type, fields);
            ev.changes = changes;
            ev
        }
        "deleted" => {
            let when = data
                .get("deletedAt")
                .filter(|v| !v.is_null())
                .map_or_else(|| Value::String(to_rfc3339(at)), clean_time);
            let fields = super::deleted_fields(when);
            event(customer_ref, at, EventKind::Deleted, event_type, fields)
        }
        _ => event(customer_ref, at, EventKind::Other, event_type, fields),
    };
    Ok(ev)
}

/// Tiquo's own diff: each key of `previousAttributes` is a change from its old value to the value
/// in `data` (`null` when `data` doesn't have it, which then also clears the field). A change to
/// a first or last name also changes the full name.
fn previous_attribute_changes(
    prev: &serde_json::Map<String, Value>,
    data: &serde_json::Map<String, Value>,
    fields: &mut Fields,
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut old_fields = Fields::new();
    for (key, old) in prev
        .iter()
        .filter(|(k, _)| !CUSTOMER.skip.contains(&k.as_str()))
    {
        let (field, old) = CUSTOMER.value(key, old);
        let new = match data.get(key) {
            Some(v) => CUSTOMER.value(key, v).1,
            None => {
                fields.insert(field.clone(), Value::Null);
                Value::Null
            }
        };
        old_fields.insert(field.clone(), old.clone());
        if old != new {
            changes.push(Change { field, old, new });
        }
    }
    if let Some(change) = full_name_change(&old_fields, fields) {
        changes.push(change);
    }
    changes
}

fn full_name_change(old_fields: &Fields, fields: &Fields) -> Option<Change> {
    let name_changed = ["first_name", "last_name"]
        .iter()
        .any(|f| old_fields.contains_key(*f));
    if !name_changed || old_fields.contains_key("full_name") {
        return None;
    }
    let new = fields.get("full_name")?.clone();
    let mut old = Fields::new();
    for f in ["first_name", "last_name"] {
        let v = old_fields.get(f).or_else(|| fields.get(f))?;
        old.insert(f.to_string(), v.clone());
    }
    with_full_name(&mut old);
    let old = old.remove("full_name")?;
    (old != new).then(|| Change {
        field: "full_name".to_string(),
        old,
        new,
    })
}

/// The customer an order, payment or other activity is about, if any (guest orders have none).
fn activity_customer(data: Option<&Value>) -> Option<(String, &'static str)> {
    let data = data?;
    if let Some(id) = id_text(data.get("customerId")) {
        return Some((id, "customerId"));
    }
    if let Some(id) = id_text(data.get("customer_id")) {
        return Some((id, "customer_id"));
    }
    id_text(data.get("customer").and_then(|c| c.get("id"))).map(|id| (id, "customer"))
}

fn activity(
    kind: EventKind,
    event_type: &str,
    at: DateTime<Utc>,
    json: &Value,
) -> Option<SourceEvent> {
    let data = json.get("data");
    let (customer_ref, used) = activity_customer(data)?;
    let mut ev = event(customer_ref, at, kind, event_type, Fields::new());
    ev.details = details_without(data, &[used]);
    Some(ev)
}

/// `loyalty.points_earned|points_redeemed|tier_changed`: the customer is `customerId`,
/// `customer_id` or (when neither is sent) `data.id`.
fn loyalty(event_type: &str, action: &str, at: DateTime<Utc>, json: &Value) -> Option<SourceEvent> {
    let data = json.get("data")?;
    let (customer_ref, used) =
        activity_customer(Some(data)).or_else(|| id_text(data.get("id")).map(|id| (id, "id")))?;
    let (kind, fields, changes) = if action == "tier_changed" {
        let (fields, changes) = tier_change(data);
        (EventKind::TierChanged, fields, changes)
    } else {
        (EventKind::Points, balance(data), None)
    };
    let mut ev = event(customer_ref, at, kind, event_type, fields);
    ev.changes = changes;
    ev.details = details_without(Some(data), &[used]);
    Some(ev)
}

/// The new tier as a field, and Tiquo's own diff when it names the old tier too.
fn tier_change(data: &Value) -> (Fields, Option<Vec<Change>>) {
    let old = first(
        data,
        &["previousTier", "oldTier", "previous_tier", "old_tier"],
    );
    let Some(new) = first(data, &["newTier", "new_tier", "tier", "loyaltyTier"]) else {
        return (Fields::new(), None);
    };
    let fields = Fields::from([("loyalty_tier".to_string(), new.clone())]);
    let changes = old.map(|old| {
        vec![Change {
            field: "loyalty_tier".to_string(),
            old: old.clone(),
            new: new.clone(),
        }]
    });
    (fields, changes)
}

/// The points balance after the event, when Tiquo says it (the store diffs it).
fn balance(data: &Value) -> Fields {
    first(
        data,
        &["balance", "newBalance", "new_balance", "loyaltyPoints"],
    )
    .map(|b| Fields::from([("loyalty_points".to_string(), b.clone())]))
    .unwrap_or_default()
}

pub(super) fn sign(
    secret: &Sensitive<String>,
    body: &[u8],
    json: Option<&Value>,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let stamp = now.timestamp().to_string();
    let mac = hmac_sha256(secret.expose().as_bytes(), &[stamp.as_bytes(), b".", body]);
    let mut headers = vec![
        ("X-Tiquo-Timestamp".to_string(), stamp),
        (
            "X-Tiquo-Signature".to_string(),
            format!("sha256={}", hex::encode(mac)),
        ),
    ];
    if let Some(t) = json.and_then(|j| text(j, "type")) {
        headers.push(("X-Tiquo-Event".to_string(), t.to_string()));
    }
    headers
}

pub(super) fn sample(id: &str, customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    let at = to_rfc3339(at);
    json!({
        "id": format!("evt_{id}"),
        "type": "customer.created",
        "created": at,
        "data": {
            "id": customer_ref,
            "firstName": "Test",
            "lastName": "Customer",
            "email": email,
            "phone": "+447700900123",
            "loyaltyPoints": 0,
            "tags": [],
            "marketingConsent": true,
            "createdAt": at,
            "source": "booking_portal"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use serde_json::json;

    const CREATED: &str = include_str!("../../tests/fixtures/tiquo-customer-created.json");
    const UPDATED: &str = include_str!("../../tests/fixtures/tiquo-customer-updated.json");
    const DELETED: &str = include_str!("../../tests/fixtures/tiquo-customer-deleted.json");

    const P: Provider = Provider::Tiquo;

    fn body_only_sig(secret: &str, body: &[u8]) -> String {
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    }

    #[test]
    fn signed_over_time_and_body_passes() {
        let ok = verify_signed(P, CREATED.as_bytes()).expect("valid signature");
        assert_eq!(ok.dedupe_key, "evt_abc123");
        assert!(ok.check.contains(STAMPED), "{}", ok.check);
    }

    #[test]
    fn signed_over_body_only_passes_with_or_without_prefix_and_in_upper_case() {
        let body = UPDATED.as_bytes();
        let sig = body_only_sig(SECRET, body);
        for value in [
            sig.clone(),
            format!("sha256={sig}"),
            format!("SHA256={}", sig.to_uppercase()),
        ] {
            let h = headers(&[("X-Tiquo-Signature", &value)]);
            let ok = verify_with(P, Some(SECRET), &h, body, now()).expect("body-only form");
            assert!(ok.check.contains(BODY_ONLY), "{}", ok.check);
            assert_eq!(ok.dedupe_key, "evt_def456");
        }
    }

    #[test]
    fn body_only_with_time_stamp_still_checks_the_window() {
        let body = UPDATED.as_bytes();
        let sig = body_only_sig(SECRET, body);
        let old = (now() - chrono::Duration::minutes(10))
            .timestamp()
            .to_string();
        let h = headers(&[("X-Tiquo-Signature", &sig), ("X-Tiquo-Timestamp", &old)]);
        assert_eq!(
            verify_with(P, Some(SECRET), &h, body, now()),
            Err(Rejection::StaleTimestamp { skew_secs: 600 })
        );
    }

    #[test]
    fn common_refusals() {
        assert_common_refusals(P, CREATED.as_bytes());
    }

    #[test]
    fn stale_and_future_time_stamps_are_refused() {
        assert_window_enforced(P, |_| CREATED.as_bytes().to_vec(), 300);
    }

    #[test]
    fn one_good_signature_among_several_copies_passes() {
        let body = CREATED.as_bytes();
        let good = body_only_sig(SECRET, body);
        let h = headers(&[
            ("X-Tiquo-Signature", "sha256=zz-not-hex"),
            ("X-Tiquo-Signature", &"ab".repeat(32)),
            ("X-Tiquo-Signature", &good),
        ]);
        assert!(verify_with(P, Some(SECRET), &h, body, now()).is_ok());
    }

    #[test]
    fn unreadable_headers_are_malformed() {
        let body = CREATED.as_bytes();
        let h = headers(&[("X-Tiquo-Signature", "sha256=not hex at all")]);
        assert!(matches!(
            verify_with(P, Some(SECRET), &h, body, now()),
            Err(Rejection::MalformedSignature(_))
        ));
        let sig = hex::encode(hmac_sha256(SECRET.as_bytes(), &[b"soon.", body]));
        let h = headers(&[("X-Tiquo-Signature", &sig), ("X-Tiquo-Timestamp", "soon")]);
        assert!(matches!(
            verify_with(P, Some(SECRET), &h, body, now()),
            Err(Rejection::MalformedSignature(_))
        ));
    }

    #[test]
    fn created_reads_the_snapshot_and_the_source() {
        let ev = only_event(P, CREATED.as_bytes());
        assert_eq!(ev.customer_ref, "cust_xyz789");
        assert_eq!(ev.kind, EventKind::Created);
        assert_eq!(ev.event_type, "customer.created");
        assert_eq!(ev.occurred_at, utc("2024-01-20T14:30:00Z"));
        assert_eq!(ev.changes, None);
        assert_eq!(ev.fields["first_name"], json!("John"));
        assert_eq!(ev.fields["last_name"], json!("Doe"));
        assert_eq!(ev.fields["full_name"], json!("John Doe"));
        assert_eq!(ev.fields["email"], json!("john.doe@example.com"));
        assert_eq!(ev.fields["phone"], json!("+1234567890"));
        assert_eq!(ev.fields["loyalty_points"], json!(0));
        assert_eq!(ev.fields["tags"], json!([]));
        assert_eq!(ev.fields["email_marketing_opt_in"], json!(true));
        assert_eq!(ev.fields["created_at"], json!("2024-01-20T14:30:00Z"));
        assert!(!ev.fields.contains_key("tiquo.source"));
        assert_eq!(ev.details, json!({"source": "web_app"}));
    }

    #[test]
    fn updated_uses_previous_attributes_as_the_diff() {
        let ev = only_event(P, UPDATED.as_bytes());
        assert_eq!(ev.kind, EventKind::Updated);
        assert_eq!(ev.occurred_at, utc("2024-01-20T15:00:00Z"));
        let changes = ev.changes.clone().expect("Tiquo sends its own diff");
        assert_eq!(
            changes,
            vec![
                change(
                    "email",
                    json!("john@example.com"),
                    json!("john.doe@example.com")
                ),
                change("loyalty_points", json!(100), json!(150)),
                change("tags", json!([]), json!(["VIP"])),
            ]
        );
        assert_eq!(ev.fields["loyalty_points"], json!(150));
        assert_eq!(ev.fields["updated_at"], json!("2024-01-20T15:00:00Z"));
    }

    #[test]
    fn updated_name_and_consent_changes() {
        let body = json!({
            "id": "evt_1", "type": "customer.updated", "created": 1_705_762_800_000_i64,
            "data": {"id": "k123", "firstName": "Jon", "lastName": "Doe", "marketingConsent": false},
            "previousAttributes": {"firstName": "John", "nickname": "JD"}
        });
        let ev = only_event(P, body.to_string().as_bytes());
        assert_eq!(ev.customer_ref, "k123");
        assert_eq!(ev.occurred_at, utc("2024-01-20T15:00:00Z"));
        assert_eq!(
            ev.changes.clone().expect("diff"),
            vec![
                change("first_name", json!("John"), json!("Jon")),
                change("tiquo.nickname", json!("JD"), Value::Null),
                change("full_name", json!("John Doe"), json!("Jon Doe")),
            ]
        );
        assert_eq!(ev.fields["tiquo.nickname"], Value::Null);

        let consent = json!({
            "id": "evt_2", "type": "customer.updated", "created": "2024-01-20T15:00:00Z",
            "data": {"id": "cust_1", "marketingConsent": false},
            "previousAttributes": {"marketingConsent": true}
        });
        let ev = only_event(P, consent.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::ConsentChanged);
    }

    #[test]
    fn deleted_records_when() {
        let ev = only_event(P, DELETED.as_bytes());
        assert_eq!(ev.kind, EventKind::Deleted);
        assert_eq!(ev.customer_ref, "cust_xyz789");
        assert_eq!(
            ev.fields,
            Fields::from([("deleted_at".to_string(), json!("2024-01-20T16:00:00Z"))])
        );
    }

    #[test]
    fn orders_payments_and_loyalty() {
        let order = json!({"id": "evt_o", "type": "order.completed", "created": "2024-02-01T10:00:00Z",
            "data": {"id": "ord_1", "customerId": "cust_1", "total": 45.5, "currency": "EUR"}});
        let ev = only_event(P, order.to_string().as_bytes());
        assert_eq!(
            (ev.kind, ev.customer_ref.as_str()),
            (EventKind::Order, "cust_1")
        );
        assert_eq!(
            ev.details,
            json!({"id": "ord_1", "total": 45.5, "currency": "EUR"})
        );

        let guest = json!({"id": "evt_g", "type": "payment.succeeded", "created": "2024-02-01T10:00:00Z",
            "data": {"id": "pay_1", "amount": 10}});
        assert!(
            parse_body(P, guest.to_string().as_bytes())
                .expect("reads")
                .events
                .is_empty()
        );

        let points = json!({"id": "evt_p", "type": "loyalty.points_earned", "created": "2024-02-01T10:00:00Z",
            "data": {"customer_id": "cust_1", "points": 50, "balance": 1250}});
        let ev = only_event(P, points.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::Points);
        assert_eq!(ev.fields["loyalty_points"], json!(1250));

        let tier = json!({"id": "evt_t", "type": "loyalty.tier_changed", "created": "2024-02-01T10:00:00Z",
            "data": {"id": "cust_1", "previousTier": "bronze", "newTier": "silver"}});
        let ev = only_event(P, tier.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::TierChanged);
        assert_eq!(ev.customer_ref, "cust_1");
        assert_eq!(
            ev.changes,
            Some(vec![change(
                "loyalty_tier",
                json!("bronze"),
                json!("silver")
            )])
        );
    }

    #[test]
    fn missing_parts_are_parse_errors() {
        let no_id = json!({"id": "e", "type": "customer.created", "created": "2024-01-20T14:30:00Z", "data": {}});
        assert_eq!(
            parse_body(P, no_id.to_string().as_bytes()),
            Err(ParseError::Missing("customer id (data.id)"))
        );
        let no_time = json!({"id": "e", "type": "customer.created", "data": {"id": "c"}});
        assert_eq!(
            parse_body(P, no_time.to_string().as_bytes()),
            Err(ParseError::Missing("event time (created)"))
        );
        let bad_time =
            json!({"id": "e", "type": "customer.created", "created": "soon", "data": {"id": "c"}});
        assert!(matches!(
            parse_body(P, bad_time.to_string().as_bytes()),
            Err(ParseError::Invalid { .. })
        ));
        let no_type = json!({"id": "e", "created": "2024-01-20T14:30:00Z", "data": {"id": "c"}});
        assert_eq!(
            parse_body(P, no_type.to_string().as_bytes()),
            Err(ParseError::Missing("event type (type)"))
        );
        // The event header stands in for a missing body type.
        let h = headers(&[("x-tiquo-event", "customer.created")]);
        let parsed =
            super::super::parse(P, &Default::default(), &h, no_type.to_string().as_bytes())
                .expect("type from header");
        assert_eq!(parsed.events[0].kind, EventKind::Created);
    }

    #[test]
    fn odd_whitespace_still_verifies_and_parses() {
        assert_reformatted_bodies_work(P, UPDATED);
    }
}
