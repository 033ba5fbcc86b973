//! Any sender following the Standard Webhooks spec (Svix and the many services built on it).
//!
//! * Signature: `webhook-signature: v1,<base64> [v1,<base64> …]` — a space-separated list (several
//!   during a secret rotation; any `v1` match passes, other versions such as the asymmetric
//!   `v1a` are skipped) — of base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")).
//! * Key: the secret without its `whsec_` prefix, base64-decoded, as the spec says. Some senders
//!   hand out secrets that are not base64 at all and sign with the text itself, and a pasted
//!   secret can't tell us which it is; so when the secret decodes, both the decoded bytes and the
//!   text are tried (both need the secret, so this doesn't weaken the check) and the check says
//!   which matched; when it doesn't decode, the text is the key.
//! * Replay window: five minutes either way on `webhook-timestamp`, which is signed.
//! * The payload has no fixed shape: the customer id is found with the connection's JSON pointer
//!   (default `/data/id`); the customer's fields are read from the object holding that id, by
//!   matching keys to canonical names (`email`, `first_name`/`firstName`, `phone`, …) and keeping
//!   everything else under `standard.<key>`.

use super::{
    Fields, REPLAY_WINDOW_SECS, Supplied, clean, clean_time, deleted_fields, event, header,
    header_epoch, header_values, hmac_sha256, match_any, missing_signature, object, required_id,
    text, with_full_name, with_split_name, within_window,
};
use crate::event::{EventKind, ParseError, SourceEvent};
use crate::fields::CANONICAL;
use crate::time::{parse_provider_time, to_rfc3339};
use crate::{ConnectionSettings, Inbound, Provider, Rejection, Sensitive};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub(super) const ID_HEADER: &str = "webhook-id";
pub(super) const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub(super) const SIGNATURE_HEADER: &str = "webhook-signature";

/// Standard base64, padding optional (senders differ).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const DECODED: &str = "";
const AS_TEXT: &str = " (the secret was used as text, not base64)";

/// The keys a secret may stand for, labelled for the check sentence (see the module docs).
fn keys(secret: &Sensitive<String>) -> Vec<(&'static str, Vec<u8>)> {
    let text = secret.expose().trim();
    let text = text.strip_prefix("whsec_").unwrap_or(text);
    let mut keys = Vec::with_capacity(2);
    if let Ok(decoded) = B64.decode(text)
        && !decoded.is_empty()
    {
        keys.push((DECODED, decoded));
    }
    keys.push((AS_TEXT, text.as_bytes().to_vec()));
    keys
}

pub(super) fn check(
    secret: &Sensitive<String>,
    i: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<String, Rejection> {
    let p = Provider::Standard;
    let values = header_values(i.headers, SIGNATURE_HEADER);
    if values.is_empty() {
        return Err(missing_signature(p));
    }
    let stamp = header(i.headers, TIMESTAMP_HEADER).ok_or(Rejection::MissingTimestamp {
        provider: p.display_name(),
    })?;
    let id = header(i.headers, ID_HEADER).ok_or_else(|| {
        Rejection::MalformedSignature(
            "no webhook-id header was sent, and the signature covers it".to_string(),
        )
    })?;
    let supplied = supplied_signatures(&values)?;
    let macs: Vec<(&str, Vec<u8>)> = keys(secret)
        .into_iter()
        .map(|(label, key)| {
            let mac = hmac_sha256(&key, &[id.as_bytes(), b".", stamp.as_bytes(), b".", i.body]);
            (label, mac)
        })
        .collect();
    let expected: Vec<(&str, &[u8])> = macs.iter().map(|(l, m)| (*l, m.as_slice())).collect();
    let matched = match_any(p, &supplied, &expected)?;
    within_window(
        header_epoch(stamp, "webhook-timestamp")?,
        now,
        REPLAY_WINDOW_SECS,
    )?;
    Ok(format!(
        "Checked: signed with the signing secret (Standard Webhooks){matched}, and sent within 5 minutes."
    ))
}

/// Every `v1,<base64>` entry across every copy of the header. Other versions are skipped; an
/// entry that isn't `version,signature` is unreadable.
fn supplied_signatures(values: &[String]) -> Result<Vec<Supplied>, Rejection> {
    let mut supplied = Vec::new();
    for entry in values.iter().flat_map(|v| v.split_whitespace()) {
        match entry.split_once(',') {
            Some(("v1", sig)) => supplied.push(
                B64.decode(sig)
                    .ok()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| "a webhook-signature entry isn't valid base64".to_string()),
            ),
            Some(_) => {}
            None => supplied.push(Err(
                "a webhook-signature entry isn't in the form v1,<signature>".to_string(),
            )),
        }
    }
    if supplied.is_empty() {
        return Err(Rejection::MalformedSignature(
            "no v1 signature was sent, only kinds Clientele can't check".to_string(),
        ));
    }
    Ok(supplied)
}

/// Canonical fields by key, compared without case, `_`, `-` or spaces; first the canonical
/// names themselves, then common synonyms.
const SYNONYMS: &[(&str, &str)] = &[
    ("givenname", "first_name"),
    ("surname", "last_name"),
    ("familyname", "last_name"),
    ("name", "full_name"),
    ("displayname", "full_name"),
    ("emailaddress", "email"),
    ("phonenumber", "phone"),
    ("mobile", "phone"),
    ("mobilephone", "phone"),
    ("mobilenumber", "phone"),
    ("telephone", "phone"),
    ("companyname", "company"),
    ("organization", "company"),
    ("organisation", "company"),
    ("address1", "street_address"),
    ("addressline1", "street_address"),
    ("street", "street_address"),
    ("statecode", "region_code"),
    ("state", "region_name"),
    ("province", "region_name"),
    ("postcode", "postal_code"),
    ("zip", "postal_code"),
    ("zipcode", "postal_code"),
    ("marketingconsent", "email_marketing_opt_in"),
    ("acceptsmarketing", "email_marketing_opt_in"),
    ("emailoptin", "email_marketing_opt_in"),
    ("smsoptin", "sms_marketing_opt_in"),
    ("points", "loyalty_points"),
    ("tier", "loyalty_tier"),
];

fn squash(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn canonical_for(key: &str, with_synonyms: bool) -> Option<&'static str> {
    let k = squash(key);
    CANONICAL
        .iter()
        .copied()
        .find(|c| squash(c) == k)
        .or_else(|| {
            with_synonyms
                .then(|| SYNONYMS.iter().find(|(s, _)| *s == k).map(|(_, c)| *c))
                .flatten()
        })
}

/// Fields from a free-form customer object: exact canonical names win over synonyms, a second
/// key for the same field stays under `standard.<key>`.
fn fields_from(obj: &Map<String, Value>, skip: Option<&str>) -> Fields {
    let mut fields = Fields::new();
    let keys: Vec<&String> = obj.keys().filter(|k| Some(k.as_str()) != skip).collect();
    let mut leftover = Vec::new();
    for pass_synonyms in [false, true] {
        for key in &keys {
            let Some(canonical) = canonical_for(key, pass_synonyms) else {
                if pass_synonyms {
                    leftover.push(*key);
                }
                continue;
            };
            if fields.contains_key(canonical) {
                if pass_synonyms && canonical_for(key, false).is_none() {
                    leftover.push(*key);
                }
                continue;
            }
            let v = &obj[key.as_str()];
            let value = if canonical.ends_with("_at") {
                clean_time(v)
            } else {
                clean(v)
            };
            fields.insert(canonical.to_string(), value);
        }
    }
    for key in leftover {
        fields.insert(format!("standard.{key}"), clean(&obj[key.as_str()]));
    }
    with_full_name(&mut fields);
    with_split_name(&mut fields);
    fields
}

/// A pointer as configured; `data.customer.id` is accepted as `/data/customer/id`.
fn pointer(settings: &ConnectionSettings) -> String {
    let p = settings.customer_ref_pointer().trim();
    if p.starts_with('/') || p.is_empty() {
        p.to_string()
    } else {
        format!("/{}", p.replace('.', "/"))
    }
}

pub(super) fn parse(
    settings: &ConnectionSettings,
    headers: &HeaderMap,
    json: &Value,
) -> Result<Vec<SourceEvent>, ParseError> {
    let pointer = pointer(settings);
    let customer_ref = required_id(
        json.pointer(&pointer),
        "customer id (at the place set for this connection)",
    )?;
    // The payload's own `timestamp` is when the event happened; `webhook-timestamp` is when this
    // attempt was sent and moves with every retry, so it is only the fallback.
    let at = json
        .get("timestamp")
        .and_then(parse_provider_time)
        .or_else(|| header(headers, TIMESTAMP_HEADER).and_then(crate::time::parse_time_str))
        .ok_or(ParseError::Missing(
            "event time (timestamp or webhook-timestamp)",
        ))?;
    let event_type = text(json, "type").unwrap_or("(no type)");
    let kind = match event_type
        .rsplit(['.', '_', ':', '/'])
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("created") => EventKind::Created,
        Some("updated") => EventKind::Updated,
        Some("deleted") => EventKind::Deleted,
        _ => EventKind::Other,
    };
    let fields = if kind == EventKind::Deleted {
        deleted_fields(Value::String(to_rfc3339(at)))
    } else {
        customer_fields(json, &pointer)
    };
    Ok(vec![event(customer_ref, at, kind, event_type, fields)])
}

/// The object holding the customer id (e.g. `data` for `/data/id`), without the id itself.
fn customer_fields(json: &Value, pointer: &str) -> Fields {
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let holder = if parent.is_empty() {
        Some(json)
    } else {
        json.pointer(parent)
    };
    match holder.and_then(Value::as_object) {
        Some(obj) => fields_from(obj, Some(&last.replace("~1", "/").replace("~0", "~"))),
        None => fields_from(object(json.get("data")), None),
    }
}

/// The key `sign` uses: the decoded secret when it is base64, else its text.
fn signing_key(secret: &Sensitive<String>) -> Vec<u8> {
    keys(secret)
        .into_iter()
        .next()
        .map(|(_, k)| k)
        .unwrap_or_default()
}

pub(super) fn sign(
    secret: &Sensitive<String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let id = format!("msg_{}", &hex::encode(Sha256::digest(body))[..24]);
    let stamp = now.timestamp().to_string();
    let mac = hmac_sha256(
        &signing_key(secret),
        &[id.as_bytes(), b".", stamp.as_bytes(), b".", body],
    );
    vec![
        ("webhook-id".to_string(), id),
        ("webhook-timestamp".to_string(), stamp),
        (
            "webhook-signature".to_string(),
            format!("v1,{}", B64.encode(mac)),
        ),
    ]
}

pub(super) fn sample(customer_ref: &str, email: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "customer.created",
        "timestamp": to_rfc3339(at),
        "data": {
            "id": customer_ref,
            "email": email,
            "first_name": "Test",
            "last_name": "Customer",
            "phone": "+447700900123"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use super::*;
    use serde_json::json;

    const P: Provider = Provider::Standard;
    // The example secret from the Standard Webhooks spec.
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn body() -> String {
        json!({"type": "customer.updated", "timestamp": "2024-01-20T14:59:00Z",
            "data": {"id": "cust_1", "email": "ana@example.com", "firstName": "Ana", "lastName": "Lima",
                "mobile": "+351 912 345 678", "phone": "+351 21 000 0000", "vipLevel": 3}})
        .to_string()
    }

    #[test]
    fn the_spec_example_verifies() {
        // From the Standard Webhooks reference implementation's tests.
        let body = br#"{"test": 2432232314}"#;
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let at = utc("2021-02-25T15:02:10Z");
        let ok = verify_with(P, Some(WHSEC), &h, body, at).expect("spec example");
        assert_eq!(ok.dedupe_key, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert!(!ok.check.contains("as text"));
    }

    #[test]
    fn signature_checks() {
        let body = body();
        let ok = verify_signed(P, body.as_bytes()).expect("signed");
        assert!(ok.dedupe_key.starts_with("msg_"));
        assert_common_refusals(P, body.as_bytes());
        assert_window_enforced(P, |_| body.clone().into_bytes(), 300);
    }

    #[test]
    fn any_v1_entry_may_match_and_other_versions_are_skipped() {
        let body = body();
        let good = signed_headers(P, WHSEC, body.as_bytes(), now());
        let sig = good
            .get("webhook-signature")
            .and_then(|v| v.to_str().ok())
            .expect("signed")
            .to_string();
        let id = good
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .expect("id");
        let stamp = now().timestamp().to_string();
        let listed = format!("v1a,AAAA v1,{} {sig}", B64.encode([7u8; 32]));
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", &listed),
        ]);
        assert!(verify_with(P, Some(WHSEC), &h, body.as_bytes(), now()).is_ok());

        let only_v1a = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", "v1a,AAAA"),
        ]);
        assert!(matches!(
            verify_with(P, Some(WHSEC), &only_v1a, body.as_bytes(), now()),
            Err(Rejection::MalformedSignature(_))
        ));
        let garbage = headers(&[
            ("webhook-id", id),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", "v1,!!!! nocomma"),
        ]);
        assert!(matches!(
            verify_with(P, Some(WHSEC), &garbage, body.as_bytes(), now()),
            Err(Rejection::MalformedSignature(_))
        ));
    }

    #[test]
    fn missing_time_stamp_or_id() {
        let body = body();
        let mut h = signed_headers(P, WHSEC, body.as_bytes(), now());
        h.remove("webhook-timestamp");
        assert_eq!(
            verify_with(P, Some(WHSEC), &h, body.as_bytes(), now()),
            Err(Rejection::MissingTimestamp {
                provider: "Standard Webhooks"
            })
        );
        let mut h = signed_headers(P, WHSEC, body.as_bytes(), now());
        h.remove("webhook-id");
        assert!(matches!(
            verify_with(P, Some(WHSEC), &h, body.as_bytes(), now()),
            Err(Rejection::MalformedSignature(_))
        ));
    }

    #[test]
    fn text_secrets_work_too() {
        let body = body();
        let text_secret = "not base64!";
        assert!(verify_signed(P, body.as_bytes()).is_ok());
        let h = signed_headers(P, text_secret, body.as_bytes(), now());
        assert!(verify_with(P, Some(text_secret), &h, body.as_bytes(), now()).is_ok());
        // A secret that happens to decode, but which the sender used as text.
        let stamp = now().timestamp().to_string();
        let mac = hmac_sha256(
            b"abcd1234",
            &[b"msg_1.", stamp.as_bytes(), b".", body.as_bytes()],
        );
        let h = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &stamp),
            ("webhook-signature", &format!("v1,{}", B64.encode(mac))),
        ]);
        let ok = verify_with(P, Some("abcd1234"), &h, body.as_bytes(), now()).expect("text key");
        assert!(ok.check.contains("as text"), "{}", ok.check);
    }

    #[test]
    fn fields_from_the_object_holding_the_id() {
        let body = body();
        let h = signed_headers(P, SECRET, body.as_bytes(), now());
        let parsed = super::super::parse(P, &ConnectionSettings::default(), &h, body.as_bytes())
            .expect("reads");
        let ev = &parsed.events[0];
        assert_eq!(ev.customer_ref, "cust_1");
        assert_eq!(ev.kind, EventKind::Updated);
        assert_eq!(ev.event_type, "customer.updated");
        assert_eq!(
            ev.occurred_at,
            utc("2024-01-20T14:59:00Z"),
            "the payload's event time, not the attempt time"
        );
        assert_eq!(ev.changes, None);
        assert_eq!(ev.fields["email"], json!("ana@example.com"));
        assert_eq!(ev.fields["first_name"], json!("Ana"));
        assert_eq!(ev.fields["last_name"], json!("Lima"));
        assert_eq!(ev.fields["full_name"], json!("Ana Lima"));
        assert_eq!(
            ev.fields["phone"],
            json!("+351 21 000 0000"),
            "exact name wins"
        );
        assert_eq!(ev.fields["standard.mobile"], json!("+351 912 345 678"));
        assert_eq!(ev.fields["standard.vipLevel"], json!(3));
        assert!(!ev.fields.contains_key("standard.id"));

        // Without a payload timestamp, the attempt's.
        let bare = json!({"type": "customer.updated", "data": {"id": "cust_2"}}).to_string();
        let h = signed_headers(P, SECRET, bare.as_bytes(), now());
        let parsed = super::super::parse(P, &ConnectionSettings::default(), &h, bare.as_bytes())
            .expect("reads");
        assert_eq!(parsed.events[0].occurred_at, now());
    }

    #[test]
    fn configured_pointer_and_kinds() {
        let body = json!({"type": "member.deleted", "timestamp": 1_705_762_800,
            "data": {"member": {"uid": 42, "email": "x@example.com"}}});
        for pointer in ["/data/member/uid", "data.member.uid"] {
            let settings = ConnectionSettings {
                customer_ref_pointer: Some(pointer.to_string()),
                ..Default::default()
            };
            let parsed =
                super::super::parse(P, &settings, &HeaderMap::new(), body.to_string().as_bytes())
                    .expect("reads");
            let ev = &parsed.events[0];
            assert_eq!(ev.customer_ref, "42");
            assert_eq!(ev.kind, EventKind::Deleted);
            assert_eq!(ev.fields["deleted_at"], json!("2024-01-20T15:00:00Z"));
        }
        let ping =
            json!({"type": "ping", "timestamp": "2024-01-20T15:00:00Z", "data": {"id": "c"}});
        assert_eq!(
            only_event(P, ping.to_string().as_bytes()).kind,
            EventKind::Other
        );
    }

    #[test]
    fn missing_parts_are_parse_errors() {
        let no_ref =
            json!({"type": "customer.created", "timestamp": "2024-01-20T15:00:00Z", "data": {}});
        assert_eq!(
            parse_body(P, no_ref.to_string().as_bytes()),
            Err(ParseError::Missing(
                "customer id (at the place set for this connection)"
            ))
        );
        let no_time = json!({"type": "customer.created", "data": {"id": "c"}});
        assert_eq!(
            parse_body(P, no_time.to_string().as_bytes()),
            Err(ParseError::Missing(
                "event time (timestamp or webhook-timestamp)"
            ))
        );
    }

    #[test]
    fn odd_whitespace_still_verifies_and_parses() {
        assert_reformatted_bodies_work(
            P,
            &serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body()).expect("json"))
                .expect("pretty"),
        );
    }
}
