//! Plain (support platform): `{id, type, timestamp, workspaceId, payload{eventType, …},
//! webhookMetadata{…}}`.
//!
//! Why it looks the way it does:
//! * `Plain-Request-Signature` is HMAC-SHA256(secret, body) in hex. Plain's replay protection is
//!   the delivery attempt time **inside the signed body**
//!   (`webhookMetadata.webhookDeliveryAttemptTimestamp`), so the body is read during
//!   verification — after the signature matched. A signed body without that time (or that isn't
//!   JSON) is refused as having no time stamp: it can't be told apart from a replay.
//! * `customer_updated` sends the whole customer before and after: the diff of the two is
//!   Plain's own diff (`changes`), field by field, including bookkeeping such as `updatedAt`
//!   (the sentence ignores those; the expanded view shows them).
//! * Plain's customer has no phone, address, consent or loyalty. `fullName` is the full name and
//!   `shortName` — what Plain greets the customer by, normally the first name — is read as
//!   `first_name`. `email` is an object: its address is `email`; the rest stays under
//!   `plain.email.*`. Anything else, including fields added by newer payload versions, is kept
//!   under `plain.<key>` — never rejected.
//! * Events about no customer (most thread events) read as no events.

use super::{
    Conv, FieldMap, Fields, REPLAY_WINDOW_SECS, Supplied, clean, deleted_fields, details, diff,
    event, header_values, hex_signature, hmac_sha256, id_text, match_any, missing_signature,
    object, required_id, required_time, text, update_kind, within_window,
};
use crate::event::{EventKind, ParseError, SourceEvent};
use crate::time::{parse_provider_time, to_rfc3339};
use crate::{Inbound, Provider, Rejection, Sensitive};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub(super) const SIGNATURE_HEADER: &str = "plain-request-signature";
pub(super) const EVENT_ID_HEADER: &str = "plain-event-id";

const ATTEMPT_TIME: &str = "/webhookMetadata/webhookDeliveryAttemptTimestamp";

const CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Plain,
    table: &[
        ("fullName", "full_name", Conv::Text),
        ("shortName", "first_name", Conv::Text),
        ("createdAt", "created_at", Conv::Time),
        ("updatedAt", "updated_at", Conv::Time),
    ],
    skip: &["id", "email"],
};

/// Signature over the body, then the 300-second window on the attempt time in the body.
pub(super) fn check(
    secret: &Sensitive<String>,
    i: &Inbound<'_>,
    json: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<String, Rejection> {
    let sigs = header_values(i.headers, SIGNATURE_HEADER);
    if sigs.is_empty() {
        return Err(missing_signature(Provider::Plain));
    }
    let supplied: Vec<Supplied> = sigs
        .iter()
        .map(|s| hex_signature(s, "Plain-Request-Signature", "sha256=", false))
        .collect();
    let mac = hmac_sha256(secret.expose().as_bytes(), &[i.body]);
    match_any(Provider::Plain, &supplied, &[("", &mac)])?;

    let sent = json
        .and_then(|j| j.pointer(ATTEMPT_TIME))
        .filter(|v| !v.is_null())
        .ok_or(Rejection::MissingTimestamp { provider: "Plain" })?;
    let sent = parse_provider_time(sent).ok_or_else(|| {
        Rejection::MalformedSignature(
            "the delivery time inside the message can't be read".to_string(),
        )
    })?;
    within_window(sent, now, REPLAY_WINDOW_SECS)?;
    Ok(
        "Checked: signed by Plain with the signing secret, and sent within the last 5 minutes."
            .to_string(),
    )
}

pub(super) fn parse(json: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let payload = json.get("payload");
    let event_type = text(json, "type")
        .or_else(|| payload.and_then(|p| text(p, "eventType")))
        .ok_or(ParseError::Missing("event type (type)"))?;
    let at = required_time(json.get("timestamp"), "event time (timestamp)")?;
    let customer = payload.and_then(|p| p.get("customer"));
    let previous = payload.and_then(|p| p.get("previousCustomer"));
    let customer_id = || {
        required_id(
            customer.and_then(|c| c.get("id")),
            "customer id (payload.customer.id)",
        )
    };

    let ev = match event_type {
        "customer.customer_created" => {
            let fields = customer_fields(object(customer));
            event(customer_id()?, at, EventKind::Created, event_type, fields)
        }
        "customer.customer_updated" => {
            let (fields, changes) = before_and_after(customer, previous);
            let kind = changes.as_deref().map_or(EventKind::Updated, update_kind);
            let mut ev = event(customer_id()?, at, kind, event_type, fields);
            ev.changes = changes;
            ev
        }
        "customer.customer_deleted" => {
            let customer_ref = required_id(
                previous.or(customer).and_then(|c| c.get("id")),
                "customer id (payload.previousCustomer.id)",
            )?;
            let fields = deleted_fields(Value::String(to_rfc3339(at)));
            event(customer_ref, at, EventKind::Deleted, event_type, fields)
        }
        "customer.customer_group_memberships_changed" => {
            let (fields, changes) = before_and_after(customer, previous);
            let mut ev = event(
                customer_id()?,
                at,
                EventKind::GroupMembership,
                event_type,
                fields,
            );
            ev.changes = changes;
            ev.details = details(&[("changeType", payload.and_then(|p| p.get("changeType")))]);
            ev
        }
        _ => match other_event(payload, at, event_type) {
            Some(ev) => ev,
            None => return Ok(Vec::new()),
        },
    };
    Ok(vec![ev])
}

/// The customer after the event, and the diff from the customer before (when Plain sent one).
fn before_and_after(
    customer: Option<&Value>,
    previous: Option<&Value>,
) -> (Fields, Option<Vec<super::Change>>) {
    let fields = customer_fields(object(customer));
    let changes = previous
        .and_then(Value::as_object)
        .map(|prev| diff(&customer_fields(prev), &fields));
    (fields, changes)
}

/// Thread and other events: on the customer's timeline when they name a customer.
fn other_event(
    payload: Option<&Value>,
    at: DateTime<Utc>,
    event_type: &str,
) -> Option<SourceEvent> {
    let payload = payload?;
    let thread = payload.get("thread");
    let customer_ref = [
        payload.pointer("/customer/id"),
        payload.pointer("/thread/customer/id"),
        payload.pointer("/previousCustomer/id"),
        payload.get("customerId"),
    ]
    .into_iter()
    .find_map(id_text)?;
    let mut ev = event(
        customer_ref,
        at,
        EventKind::Other,
        event_type,
        Fields::new(),
    );
    ev.details = details(&[
        ("thread_id", thread.and_then(|t| t.get("id"))),
        ("title", thread.and_then(|t| t.get("title"))),
        ("status", thread.and_then(|t| t.get("status"))),
    ]);
    Some(ev)
}

/// Plain's customer as fields (see the module docs).
fn customer_fields(c: &Map<String, Value>) -> Fields {
    let mut fields = CUSTOMER.map(c);
    match c.get("email") {
        Some(Value::Object(email)) => {
            let address = email.get("email").map_or(Value::Null, clean);
            fields.insert("email".to_string(), address);
            for (k, v) in email.iter().filter(|(k, _)| k.as_str() != "email") {
                fields.insert(format!("plain.email.{k}"), clean(v));
            }
        }
        Some(other) => {
            fields.insert("email".to_string(), clean(other));
        }
        None => {}
    }
    fields
}

pub(super) fn sign(
    secret: &Sensitive<String>,
    body: &[u8],
    json: Option<&Value>,
) -> Vec<(String, String)> {
    let mac = hmac_sha256(secret.expose().as_bytes(), &[body]);
    let mut headers = vec![("Plain-Request-Signature".to_string(), hex::encode(mac))];
    if let Some(id) = json.and_then(|j| text(j, "id")) {
        headers.push(("Plain-Event-Id".to_string(), id.to_string()));
    }
    headers
}

pub(super) fn sample(id: &str, customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    let at = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let upper = id.to_uppercase();
    let actor = json!({"actorType": "system", "system": "clientele_test"});
    json!({
        "timestamp": at,
        "workspaceId": "w_01CLIENTELETESTWORKSPACE00",
        "payload": {
            "eventType": "customer.customer_created",
            "customer": {
                "id": customer_ref,
                "email": {"email": email, "isVerified": false, "verifiedAt": null},
                "externalId": null,
                "fullName": "Test Customer",
                "shortName": "Test",
                "markedAsSpamAt": null,
                "markedAsSpamBy": null,
                "customerGroupMemberships": [],
                "createdAt": at,
                "createdBy": actor,
                "updatedAt": at,
                "updatedBy": actor
            }
        },
        "id": format!("pEv_{upper}"),
        "webhookMetadata": {
            "webhookTargetId": "whTarget_01CLIENTELETEST0000000000",
            "webhookTargetVersion": "2024-09-18",
            "webhookDeliveryAttemptId": format!("whAttempt_{upper}"),
            "webhookDeliveryAttemptNumber": 1,
            "webhookDeliveryAttemptTimestamp": at
        },
        "type": "customer.customer_created"
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use serde_json::json;

    const UPDATED: &str = include_str!("../../tests/fixtures/plain-customer-updated.json");
    const P: Provider = Provider::Plain;

    fn body_sent_at(t: DateTime<Utc>) -> Vec<u8> {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["webhookMetadata"]["webhookDeliveryAttemptTimestamp"] = json!(to_rfc3339(t));
        serde_json::to_vec_pretty(&body).expect("json")
    }

    #[test]
    fn signature_checks() {
        let ok = verify_signed(P, UPDATED.as_bytes()).expect("signed");
        assert_eq!(ok.dedupe_key, "pEv_01HD450JT0RPBT7RRKS1ZQJYBA");
        assert_common_refusals(P, UPDATED.as_bytes());
    }

    #[test]
    fn replay_window_on_the_attempt_time() {
        assert_window_enforced(P, body_sent_at, 300);
    }

    #[test]
    fn attempt_time_is_required_when_signed() {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["webhookMetadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("webhookDeliveryAttemptTimestamp");
        let body = body.to_string();
        let h = signed_headers(P, SECRET, body.as_bytes(), now());
        assert_eq!(
            verify_with(P, Some(SECRET), &h, body.as_bytes(), now()),
            Err(Rejection::MissingTimestamp { provider: "Plain" })
        );
        // …but a forged one learns nothing about it: the signature is checked first.
        let forged = signed_headers(P, "guess", body.as_bytes(), now());
        assert!(matches!(
            verify_with(P, Some(SECRET), &forged, body.as_bytes(), now()),
            Err(Rejection::BadSignature { .. })
        ));
        // Epoch milliseconds are read too.
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["webhookMetadata"]["webhookDeliveryAttemptTimestamp"] =
            json!(now().timestamp_millis());
        let body = body.to_string();
        let h = signed_headers(P, SECRET, body.as_bytes(), now());
        assert!(verify_with(P, Some(SECRET), &h, body.as_bytes(), now()).is_ok());
    }

    #[test]
    fn dedupe_falls_back_to_the_event_id_header() {
        let body = br#"{"type": "thread.thread_created"}"#;
        let h = headers(&[("Plain-Event-Id", "pEv_HEADER")]);
        let ok = verify_with(P, None, &h, body, now()).expect("unchecked");
        assert_eq!(ok.dedupe_key, "pEv_HEADER");
    }

    #[test]
    fn customer_updated_is_diffed_field_by_field() {
        let ev = only_event(P, UPDATED.as_bytes());
        assert_eq!(ev.customer_ref, "c_01HD44FHDPG82VQ4QNHDR4N2T0");
        assert_eq!(ev.kind, EventKind::Updated);
        assert_eq!(ev.event_type, "customer.customer_updated");
        assert_eq!(ev.occurred_at, utc("2023-10-19T14:21:43.616Z"));
        assert_eq!(ev.fields["email"], json!("peter@example.com"));
        assert_eq!(ev.fields["full_name"], json!("Peter Santos"));
        assert_eq!(ev.fields["first_name"], json!("Peter"));
        assert_eq!(ev.fields["plain.email.isVerified"], json!(false));
        assert_eq!(ev.fields["plain.externalId"], Value::Null);
        assert_eq!(
            ev.fields["plain.markedAsSpamAt"],
            json!("2023-10-19T14:21:43.616Z")
        );
        let changes = ev.changes.clone().expect("diff of previousCustomer");
        let spam = changes
            .iter()
            .find(|c| c.field == "plain.markedAsSpamAt")
            .expect("spam change");
        assert_eq!(spam.old, Value::Null);
        assert_eq!(spam.new, json!("2023-10-19T14:21:43.616Z"));
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "plain.markedAsSpamAt",
                "plain.markedAsSpamBy",
                "plain.updatedBy",
                "updated_at"
            ]
        );
        assert!(
            !fields.contains(&"email"),
            "unchanged fields are not changes"
        );
    }

    #[test]
    fn created_deleted_and_group_memberships() {
        let created = sample("abc", "c_1", "ana@example.com", now());
        let ev = only_event(P, created.to_string().as_bytes());
        assert_eq!((ev.kind, ev.changes.clone()), (EventKind::Created, None));

        let deleted = json!({"id": "pEv_2", "type": "customer.customer_deleted", "timestamp": "2024-01-20T15:00:00Z",
            "payload": {"eventType": "customer.customer_deleted", "previousCustomer": {"id": "c_1"}}});
        let ev = only_event(P, deleted.to_string().as_bytes());
        assert_eq!(
            (ev.kind, ev.customer_ref.as_str()),
            (EventKind::Deleted, "c_1")
        );
        assert_eq!(ev.fields["deleted_at"], json!("2024-01-20T15:00:00Z"));

        let group = json!({"id": "pEv_3", "type": "customer.customer_group_memberships_changed",
            "timestamp": "2024-01-20T15:00:00Z",
            "payload": {"changeType": "ADDED",
                "customer": {"id": "c_1", "customerGroupMemberships": [{"customerGroup": {"name": "VIP"}}]},
                "previousCustomer": {"id": "c_1", "customerGroupMemberships": []}}});
        let ev = only_event(P, group.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::GroupMembership);
        assert_eq!(ev.details, json!({"changeType": "ADDED"}));
        assert_eq!(
            ev.changes,
            Some(vec![change(
                "plain.customerGroupMemberships",
                json!([]),
                json!([{"customerGroup": {"name": "VIP"}}])
            )])
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_thread_events_need_a_customer() {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["payload"]["customer"]["loyaltyStatus"] = json!("gold");
        let ev = only_event(P, body.to_string().as_bytes());
        assert_eq!(ev.fields["plain.loyaltyStatus"], json!("gold"));

        let thread = json!({"id": "pEv_4", "type": "thread.thread_created", "timestamp": "2024-01-20T15:00:00Z",
            "payload": {"thread": {"id": "th_1", "title": "Refund", "customer": {"id": "c_9"}}}});
        let ev = only_event(P, thread.to_string().as_bytes());
        assert_eq!(
            (ev.kind, ev.customer_ref.as_str()),
            (EventKind::Other, "c_9")
        );
        assert_eq!(ev.details["title"], json!("Refund"));

        let nobody = json!({"id": "pEv_5", "type": "thread.thread_created", "timestamp": "2024-01-20T15:00:00Z",
            "payload": {"thread": {"id": "th_1"}}});
        assert!(
            parse_body(P, nobody.to_string().as_bytes())
                .expect("reads")
                .events
                .is_empty()
        );
    }

    #[test]
    fn missing_parts_are_parse_errors() {
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body["payload"]["customer"]
            .as_object_mut()
            .expect("customer")
            .remove("id");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("customer id (payload.customer.id)"))
        );
        let mut body: Value = serde_json::from_str(UPDATED).expect("fixture");
        body.as_object_mut().expect("root").remove("timestamp");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("event time (timestamp)"))
        );
    }

    #[test]
    fn odd_whitespace_still_verifies_and_parses() {
        assert_reformatted_bodies_work(P, UPDATED);
    }
}
