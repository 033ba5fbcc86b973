//! Zupy (loyalty): two generations on one connection.
//!
//! * **Current (2026)**: `{event, webhook_id, timestamp, data}` with `X-Webhook-Signature:
//!   sha256=<hex>`, `X-Webhook-Id`, `X-Webhook-Event`; events `customer.enrolled`,
//!   `customer.tier_changed`, `points.earned|spent`, `reward.redeemed`, `coupon.*`.
//! * **Legacy (2025, the seed sample)**: `{event, timestamp, company_id, customer{…}, …}` with
//!   `X-Zupy-Signature: sha256=<hex>`, `X-Zupy-Event`; events `customer.registered`,
//!   `tier.upgraded`.
//!
//! A shop may still be on the old generation while another is on the new one, and Zupy may
//! migrate a shop without telling it, so one connection accepts both: the signature header says
//! which generation signed, and the envelope (`data`/`webhook_id` vs `customer`/`company_id`) —
//! which survives storage, unlike the signature header — says how to read it.
//!
//! Both use HMAC-SHA256 over the body with a **required** `sha256=` prefix. Neither has a replay
//! window: legacy retries resend the identical body for an hour, so a window on its `timestamp`
//! would refuse genuine retries; dedupe (`webhook_id`, else the body hash) stops replays instead.
//!
//! `name` is a single field: kept as `full_name`, split into first/last only as a best effort.
//! `cpf` (a Brazilian tax id) is kept as `zupy.cpf`, which [`crate::fields::is_sensitive`] marks
//! so it never appears in a sentence or a default export.

use super::{
    Conv, FieldMap, Fields, Supplied, details, details_without, event, first, header,
    header_values, hex_signature, hmac_sha256, id_text, match_any, missing_signature, object,
    required_id, required_time, text, with_split_name,
};
use crate::event::{Change, EventKind, ParseError, SourceEvent};
use crate::time::to_rfc3339;
use crate::{Inbound, Provider, Rejection, Sensitive};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Value, json};

pub(super) const SIGNATURE_HEADER: &str = "x-webhook-signature";
pub(super) const ID_HEADER: &str = "x-webhook-id";
pub(super) const EVENT_HEADER: &str = "x-webhook-event";
pub(super) const LEGACY_SIGNATURE_HEADER: &str = "x-zupy-signature";
pub(super) const LEGACY_EVENT_HEADER: &str = "x-zupy-event";

const CURRENT_CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Zupy,
    table: &[
        ("name", "full_name", Conv::Text),
        ("phone", "phone", Conv::Text),
        ("email", "email", Conv::Text),
        ("tier", "loyalty_tier", Conv::Text),
        ("enrolled_at", "created_at", Conv::Time),
    ],
    skip: &["customer_id"],
};

const LEGACY_CUSTOMER: FieldMap = FieldMap {
    provider: Provider::Zupy,
    table: &[
        ("name", "full_name", Conv::Text),
        ("whatsapp", "phone", Conv::Text),
        ("email", "email", Conv::Text),
        ("tier", "loyalty_tier", Conv::Text),
        ("created_at", "created_at", Conv::Time),
    ],
    skip: &["member_id"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generation {
    Current,
    Legacy,
}

/// Which generation a stored delivery is, from its envelope first (it is always stored), then
/// the event headers.
fn generation(headers: &HeaderMap, json: &Value) -> Generation {
    if json.get("data").is_some_and(Value::is_object) || json.get("webhook_id").is_some() {
        Generation::Current
    } else if json.get("customer").is_some_and(Value::is_object)
        || json.get("company_id").is_some()
        || header(headers, LEGACY_EVENT_HEADER).is_some()
    {
        Generation::Legacy
    } else {
        Generation::Current
    }
}

/// The current generation's webhook id (body first: it is signed), else none (legacy).
pub(super) fn event_id(headers: &HeaderMap, webhook_id: Option<String>) -> Option<String> {
    webhook_id.or_else(|| header(headers, ID_HEADER).map(str::to_string))
}

pub(super) fn check(secret: &Sensitive<String>, i: &Inbound<'_>) -> Result<String, Rejection> {
    let read = |name: &str, shown: &str| -> Vec<Supplied> {
        header_values(i.headers, name)
            .iter()
            .map(|s| hex_signature(s, shown, "sha256=", true))
            .collect()
    };
    let current = read(SIGNATURE_HEADER, "X-Webhook-Signature");
    let legacy = read(LEGACY_SIGNATURE_HEADER, "X-Zupy-Signature");
    if current.is_empty() && legacy.is_empty() {
        return Err(missing_signature(Provider::Zupy));
    }
    let mac = hmac_sha256(secret.expose().as_bytes(), &[i.body]);
    let expected: [(&str, &[u8]); 1] = [("", &mac)];
    if match_any(Provider::Zupy, &current, &expected).is_ok() {
        return Ok("Checked: signed by Zupy with the signing secret.".to_string());
    }
    if match_any(Provider::Zupy, &legacy, &expected).is_ok() {
        return Ok(
            "Checked: signed by Zupy with the signing secret (older Zupy webhooks).".to_string(),
        );
    }
    // Neither matched: report bad vs unreadable over all the copies together.
    let all: Vec<Supplied> = current.into_iter().chain(legacy).collect();
    Err(match_any(Provider::Zupy, &all, &expected)
        .err()
        .unwrap_or_else(|| super::bad_signature(Provider::Zupy)))
}

pub(super) fn parse(headers: &HeaderMap, json: &Value) -> Result<Vec<SourceEvent>, ParseError> {
    let generation = generation(headers, json);
    let event_type = text(json, "event")
        .or_else(|| match generation {
            Generation::Current => header(headers, EVENT_HEADER),
            Generation::Legacy => header(headers, LEGACY_EVENT_HEADER),
        })
        .ok_or(ParseError::Missing("event type (event)"))?;
    let at = required_time(json.get("timestamp"), "event time (timestamp)")?;
    let ev = match generation {
        Generation::Current => current(event_type, at, json)?,
        Generation::Legacy => legacy(event_type, at, json)?,
    };
    Ok(vec![ev])
}

fn current(event_type: &str, at: DateTime<Utc>, json: &Value) -> Result<SourceEvent, ParseError> {
    let data = json.get("data");
    let customer_ref = required_id(
        data.and_then(|d| d.get("customer_id")),
        "customer id (data.customer_id)",
    )?;
    let get = |k: &str| data.and_then(|d| d.get(k));
    let mut fields = Fields::new();
    let mut changes = None;
    let kind = match event_type {
        "customer.enrolled" => {
            fields = CURRENT_CUSTOMER.map(object(data));
            with_split_name(&mut fields);
            EventKind::Created
        }
        "customer.tier_changed" => {
            if let Some(new) = get("new_tier") {
                fields.insert("loyalty_tier".to_string(), new.clone());
                changes = Some(vec![tier_change(get("old_tier"), new)]);
            }
            EventKind::TierChanged
        }
        t if t.starts_with("points.") => {
            put_balance(&mut fields, data);
            EventKind::Points
        }
        t if t.starts_with("reward.") => {
            put_balance(&mut fields, data);
            EventKind::Reward
        }
        t if t.starts_with("coupon.") => EventKind::Coupon,
        _ => EventKind::Other,
    };
    let mut ev = event(customer_ref, at, kind, event_type, fields);
    ev.changes = changes;
    if kind != EventKind::Created {
        ev.details = details_without(data, &["customer_id", "old_tier", "new_tier"]);
    }
    Ok(ev)
}

/// Points and rewards assert the new balance; the store diffs it against the stored one.
fn put_balance(fields: &mut Fields, data: Option<&Value>) {
    if let Some(balance) = data.and_then(|d| first(d, &["new_balance", "balance"])) {
        fields.insert("loyalty_points".to_string(), balance.clone());
    }
}

fn tier_change(old: Option<&Value>, new: &Value) -> Change {
    Change {
        field: "loyalty_tier".to_string(),
        old: old.cloned().unwrap_or(Value::Null),
        new: new.clone(),
    }
}

fn legacy(event_type: &str, at: DateTime<Utc>, json: &Value) -> Result<SourceEvent, ParseError> {
    let customer = json.get("customer");
    let customer_ref = required_id(
        customer.and_then(|c| c.get("member_id")),
        "member id (customer.member_id)",
    )?;
    let mut fields = LEGACY_CUSTOMER.map(object(customer));
    with_split_name(&mut fields);
    let company = json.get("company_id");
    let mut ev = match event_type {
        "customer.registered" => {
            let mut ev = event(customer_ref, at, EventKind::Created, event_type, fields);
            ev.details = details(&[
                ("welcome_reward", json.get("welcome_reward")),
                ("company_id", company),
            ]);
            ev
        }
        "tier.upgraded" | "tier.downgraded" | "tier.changed" => {
            let change = json.get("tier_change");
            let get = |k: &str| change.and_then(|c| c.get(k));
            let mut ev = event(customer_ref, at, EventKind::TierChanged, event_type, fields);
            if let Some(new) = get("new_tier") {
                ev.fields.insert("loyalty_tier".to_string(), new.clone());
                ev.changes = Some(vec![tier_change(get("previous_tier"), new)]);
            }
            ev.details = details(&[
                ("qualification_metric", get("qualification_metric")),
                ("qualification_value", get("qualification_value")),
                ("next_tier_requirements", get("next_tier_requirements")),
                ("company_id", company),
            ]);
            ev
        }
        _ => {
            let mut ev = event(customer_ref, at, EventKind::Other, event_type, fields);
            ev.details = details_without(Some(json), &["event", "timestamp", "customer"]);
            ev
        }
    };
    if ev.details.is_null() {
        ev.details = details(&[("company_id", company)]);
    }
    Ok(ev)
}

pub(super) fn sign(
    secret: &Sensitive<String>,
    body: &[u8],
    json: Option<&Value>,
) -> Vec<(String, String)> {
    let signature = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.expose().as_bytes(), &[body]))
    );
    let event_name = json.and_then(|j| text(j, "event")).map(str::to_string);
    let signed_as = json.map_or(Generation::Current, |j| generation(&HeaderMap::new(), j));
    let mut headers = Vec::new();
    match signed_as {
        Generation::Current => {
            headers.push(("X-Webhook-Signature".to_string(), signature));
            if let Some(id) = json.and_then(|j| id_text(j.get("webhook_id"))) {
                headers.push(("X-Webhook-Id".to_string(), id));
            }
            if let Some(e) = event_name {
                headers.push(("X-Webhook-Event".to_string(), e));
            }
        }
        Generation::Legacy => {
            headers.push(("X-Zupy-Signature".to_string(), signature));
            if let Some(e) = event_name {
                headers.push(("X-Zupy-Event".to_string(), e));
            }
        }
    }
    headers
}

/// A legacy `customer.registered` (the generation whose customer carries an email address).
pub(super) fn sample(customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    let at = to_rfc3339(at);
    json!({
        "event": "customer.registered",
        "timestamp": at,
        "company_id": "comp_clientele_test",
        "customer": {
            "member_id": customer_ref,
            "whatsapp": "+5511900000000",
            "email": email,
            "name": "Test Customer",
            "tier": "bronze",
            "created_at": at
        },
        "welcome_reward": {"enabled": true, "type": "points", "points_awarded": 100}
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use serde_json::json;

    const REGISTERED: &str =
        include_str!("../../tests/fixtures/zupy-legacy-customer-registered.json");
    const UPGRADED: &str = include_str!("../../tests/fixtures/zupy-legacy-tier-upgraded.json");
    const ENROLLED: &str = include_str!("../../tests/fixtures/zupy-customer-enrolled.json");
    const TIER_CHANGED: &str = include_str!("../../tests/fixtures/zupy-customer-tier-changed.json");
    const POINTS: &str = include_str!("../../tests/fixtures/zupy-points-earned.json");
    const P: Provider = Provider::Zupy;

    #[test]
    fn both_generations_verify() {
        let ok = verify_signed(P, ENROLLED.as_bytes()).expect("current");
        assert_eq!(ok.dedupe_key, "wh_01J9ZK3N6Q8R2T4V6X8Z0B2D4F");
        assert!(!ok.check.contains("older"));
        let ok = verify_signed(P, REGISTERED.as_bytes()).expect("legacy");
        assert!(ok.dedupe_key.starts_with("sha256:"), "legacy has no id");
        assert!(ok.check.contains("older"));
        assert_common_refusals(P, ENROLLED.as_bytes());
        assert_common_refusals(P, UPGRADED.as_bytes());
    }

    #[test]
    fn prefix_is_required_and_any_copy_may_match() {
        let body = REGISTERED.as_bytes();
        let hex_sig = hex::encode(hmac_sha256(SECRET.as_bytes(), &[body]));
        let h = headers(&[("X-Zupy-Signature", &hex_sig)]);
        assert!(matches!(
            verify_with(P, Some(SECRET), &h, body, now()),
            Err(Rejection::MalformedSignature(_))
        ));
        let h = headers(&[
            ("X-Webhook-Signature", "sha256=00"),
            ("X-Zupy-Signature", "sha256=nothex"),
            (
                "X-Zupy-Signature",
                &format!("SHA256={}", hex_sig.to_uppercase()),
            ),
        ]);
        assert!(verify_with(P, Some(SECRET), &h, body, now()).is_ok());
        // No replay window for either generation.
        let h = signed_headers(P, SECRET, body, now());
        let later = now() + chrono::Duration::hours(2);
        assert!(verify_with(P, Some(SECRET), &h, body, later).is_ok());
    }

    #[test]
    fn legacy_registered() {
        let ev = only_event(P, REGISTERED.as_bytes());
        assert_eq!(ev.customer_ref, "ZP-8B23CD41");
        assert_eq!(ev.kind, EventKind::Created);
        assert_eq!(ev.event_type, "customer.registered");
        assert_eq!(ev.occurred_at, utc("2025-08-26T15:30:00Z"));
        assert_eq!(ev.changes, None);
        let f = &ev.fields;
        assert_eq!(f["full_name"], json!("João Silva"));
        assert_eq!(f["first_name"], json!("João"));
        assert_eq!(f["last_name"], json!("Silva"));
        assert_eq!(f["phone"], json!("+5511965958122"));
        assert_eq!(f["email"], json!("joao.silva@example.com"));
        assert_eq!(f["zupy.cpf"], json!("12345678901"));
        assert_eq!(f["loyalty_tier"], json!("bronze"));
        assert_eq!(f["created_at"], json!("2025-08-26T15:30:00Z"));
        assert_eq!(
            ev.details["welcome_reward"],
            json!({"enabled": true, "type": "points", "points_awarded": 100})
        );
        assert_eq!(ev.details["company_id"], json!("comp_bella_vista"));
    }

    #[test]
    fn legacy_tier_upgraded() {
        let ev = only_event(P, UPGRADED.as_bytes());
        assert_eq!(ev.customer_ref, "ZP-4F95FB0A");
        assert_eq!(ev.kind, EventKind::TierChanged);
        assert_eq!(
            ev.changes,
            Some(vec![change(
                "loyalty_tier",
                json!("bronze"),
                json!("silver")
            )])
        );
        assert_eq!(ev.fields["loyalty_tier"], json!("silver"));
        assert_eq!(ev.details["qualification_value"], json!(2500));
        assert_eq!(ev.details["qualification_metric"], json!("points_balance"));
    }

    #[test]
    fn current_enrolled_tier_and_points() {
        let ev = only_event(P, ENROLLED.as_bytes());
        assert_eq!(ev.customer_ref, "cus_5f2a9c");
        assert_eq!(ev.kind, EventKind::Created);
        assert_eq!(ev.occurred_at, utc("2026-02-10T09:15:00Z"));
        assert_eq!(ev.fields["full_name"], json!("Maria Clara Souza"));
        assert_eq!(ev.fields["first_name"], json!("Maria"));
        assert_eq!(ev.fields["last_name"], json!("Clara Souza"));
        assert_eq!(ev.fields["phone"], json!("+5521987654321"));
        assert_eq!(ev.fields["zupy.program_id"], json!("prog_cafe_aurora"));
        assert_eq!(ev.fields["created_at"], json!("2026-02-10T09:14:58Z"));

        let ev = only_event(P, TIER_CHANGED.as_bytes());
        assert_eq!(ev.kind, EventKind::TierChanged);
        assert_eq!(
            ev.changes,
            Some(vec![change(
                "loyalty_tier",
                json!("bronze"),
                json!("silver")
            )])
        );

        let ev = only_event(P, POINTS.as_bytes());
        assert_eq!(ev.kind, EventKind::Points);
        assert_eq!(ev.changes, None, "the store diffs the balance");
        assert_eq!(ev.fields["loyalty_points"], json!(1250));
        assert_eq!(ev.details["points_added"], json!(50));
        assert_eq!(ev.details["source"], json!("purchase"));
    }

    #[test]
    fn rewards_coupons_and_unknown_events() {
        let make = |event: &str| {
            json!({"event": event, "webhook_id": format!("wh_{event}"), "timestamp": "2026-03-01T10:00:00Z",
                "data": {"customer_id": 77, "coupon_code": "CAFE10", "reward_name": "Free coffee"}})
            .to_string()
        };
        let kind = |event: &str| only_event(P, make(event).as_bytes());
        assert_eq!(kind("reward.redeemed").kind, EventKind::Reward);
        assert_eq!(kind("coupon.used").kind, EventKind::Coupon);
        assert_eq!(
            kind("coupon.expiring").details["coupon_code"],
            json!("CAFE10")
        );
        let other = kind("customer.birthday");
        assert_eq!(
            (other.kind, other.customer_ref.as_str()),
            (EventKind::Other, "77")
        );

        let legacy_other = json!({"event": "customer.updated", "timestamp": "2025-08-26T15:30:00Z",
            "company_id": "c", "customer": {"member_id": "ZP-1", "email": "a@example.com"}});
        let ev = only_event(P, legacy_other.to_string().as_bytes());
        assert_eq!(ev.kind, EventKind::Other);
        assert_eq!(ev.fields["email"], json!("a@example.com"));
    }

    #[test]
    fn generation_is_read_from_the_envelope_or_headers() {
        let bare = json!({"timestamp": "2025-08-26T15:30:00Z", "customer": {"member_id": "ZP-1"}})
            .to_string();
        let h = headers(&[("x-zupy-event", "customer.registered")]);
        let parsed =
            super::super::parse(P, &Default::default(), &h, bare.as_bytes()).expect("reads");
        assert_eq!(parsed.events[0].kind, EventKind::Created);
        assert_eq!(
            parse_body(P, bare.as_bytes()),
            Err(ParseError::Missing("event type (event)"))
        );
    }

    #[test]
    fn missing_parts_are_parse_errors() {
        let mut body: Value = serde_json::from_str(ENROLLED).expect("fixture");
        body["data"]
            .as_object_mut()
            .expect("data")
            .remove("customer_id");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("customer id (data.customer_id)"))
        );
        let mut body: Value = serde_json::from_str(REGISTERED).expect("fixture");
        body["customer"]
            .as_object_mut()
            .expect("customer")
            .remove("member_id");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("member id (customer.member_id)"))
        );
        let mut body: Value = serde_json::from_str(UPGRADED).expect("fixture");
        body.as_object_mut().expect("root").remove("timestamp");
        assert_eq!(
            parse_body(P, body.to_string().as_bytes()),
            Err(ParseError::Missing("event time (timestamp)"))
        );
    }

    #[test]
    fn odd_whitespace_still_verifies_and_parses() {
        assert_reformatted_bodies_work(P, REGISTERED);
        assert_reformatted_bodies_work(P, POINTS);
    }
}
