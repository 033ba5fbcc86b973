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
//! * Header names: Svix, the largest sender, sends `svix-id`, `svix-timestamp` and
//!   `svix-signature` unless a customer pays for the unbranded `webhook-*` names; the values and
//!   the signature are the same. Svix's own verifier takes each of the three from `svix-*` when
//!   sent, else from `webhook-*`, one header at a time. Clientele reads all three from one
//!   family, never a mix (see [`Family::of`]), so the id that is signed is always the id the
//!   delivery is deduplicated on; a request that mixes them is refused and says so.
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
pub(super) const SVIX_ID_HEADER: &str = "svix-id";
pub(super) const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";
pub(super) const SVIX_SIGNATURE_HEADER: &str = "svix-signature";

/// One set of names for the three headers: the spec's `webhook-*` or Svix's `svix-*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Family {
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
}

const WEBHOOK: Family = Family {
    id: ID_HEADER,
    timestamp: TIMESTAMP_HEADER,
    signature: SIGNATURE_HEADER,
};

const SVIX: Family = Family {
    id: SVIX_ID_HEADER,
    timestamp: SVIX_TIMESTAMP_HEADER,
    signature: SVIX_SIGNATURE_HEADER,
};

impl Family {
    /// The family a request's id, time stamp and signature are all read from: the one whose id
    /// header was sent (`webhook-id` first, as the spec names it); with no id header at all, the
    /// one with any of its headers sent (`webhook-*` first). Keying on the id makes the choice
    /// for a delivery that passed the check the same on its stored [`super::KEPT_HEADERS`]
    /// (which hold both ids, never a signature) as on the request, and makes a request that sends both families whole (with the same
    /// values) read exactly as it did when only `webhook-*` was understood.
    pub(super) fn of(h: &HeaderMap) -> Family {
        if sent(h, WEBHOOK.id) {
            WEBHOOK
        } else if sent(h, SVIX.id) || (!WEBHOOK.any_sent(h) && SVIX.any_sent(h)) {
            SVIX
        } else {
            WEBHOOK
        }
    }

    fn other(self) -> Family {
        if self == WEBHOOK { SVIX } else { WEBHOOK }
    }

    fn names(self) -> [&'static str; 3] {
        [self.id, self.timestamp, self.signature]
    }

    fn any_sent(self, h: &HeaderMap) -> bool {
        self.names().into_iter().any(|name| sent(h, name))
    }

    /// Refuses a request that left out this family's `missing` header but sent the other
    /// family's: the headers would have to be mixed, which no sender does.
    fn mixed(self, h: &HeaderMap, missing: &'static str, instead: &'static str) -> Rejection {
        let ours = self
            .names()
            .into_iter()
            .find(|name| sent(h, name))
            .unwrap_or(missing);
        Rejection::MalformedSignature(format!(
            "the headers mix two naming schemes ({ours} with {instead}, but no {missing}); \
             Clientele reads the id, time stamp and signature all from webhook-* headers or all \
             from svix-* headers"
        ))
    }
}

/// Whether header `name` was sent with a non-blank value (readable or not).
fn sent(h: &HeaderMap, name: &str) -> bool {
    h.get_all(name)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().is_empty())
}

/// The message id a delivery is deduplicated on: the id of the [`Family`] that is checked.
pub(super) fn message_id(h: &HeaderMap) -> Option<&str> {
    header(h, Family::of(h).id)
}

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
    let h = i.headers;
    let f = Family::of(h);
    let other = f.other();
    let values = header_values(h, f.signature);
    if values.is_empty() {
        return Err(if sent(h, other.signature) {
            f.mixed(h, f.signature, other.signature)
        } else {
            missing_signature(p)
        });
    }
    let stamp = match header(h, f.timestamp) {
        Some(stamp) => stamp,
        None if sent(h, other.timestamp) => return Err(f.mixed(h, f.timestamp, other.timestamp)),
        None => {
            return Err(Rejection::MissingTimestamp {
                provider: p.display_name(),
            });
        }
    };
    let id = header(h, f.id).ok_or_else(|| {
        Rejection::MalformedSignature(format!(
            "no {} header was sent, and the signature covers it",
            f.id
        ))
    })?;
    let supplied = supplied_signatures(&values, f.signature)?;
    let macs: Vec<(&str, Vec<u8>)> = keys(secret)
        .into_iter()
        .map(|(label, key)| {
            let mac = hmac_sha256(&key, &[id.as_bytes(), b".", stamp.as_bytes(), b".", i.body]);
            (label, mac)
        })
        .collect();
    let expected: Vec<(&str, &[u8])> = macs.iter().map(|(l, m)| (*l, m.as_slice())).collect();
    let matched = match_any(p, &supplied, &expected)?;
    within_window(header_epoch(stamp, f.timestamp)?, now, REPLAY_WINDOW_SECS)?;
    Ok(format!(
        "Checked: signed with the signing secret (Standard Webhooks){matched}, and sent within 5 minutes."
    ))
}

/// Every `v1,<base64>` entry across every copy of the `header` header. Other versions are
/// skipped; an entry that isn't `version,signature` is unreadable.
fn supplied_signatures(values: &[String], header: &str) -> Result<Vec<Supplied>, Rejection> {
    let mut supplied = Vec::new();
    for entry in values.iter().flat_map(|v| v.split_whitespace()) {
        match entry.split_once(',') {
            Some(("v1", sig)) => supplied.push(
                B64.decode(sig)
                    .ok()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| format!("a {header} entry isn't valid base64")),
            ),
            Some(_) => {}
            None => supplied.push(Err(format!(
                "a {header} entry isn't in the form v1,<signature>"
            ))),
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
    // The payload's own `timestamp` is when the event happened; `webhook-timestamp` (or
    // `svix-timestamp`) is when this attempt was sent and moves with every retry, so it is only
    // the fallback.
    let at = json
        .get("timestamp")
        .and_then(parse_provider_time)
        .or_else(|| {
            header(headers, Family::of(headers).timestamp).and_then(crate::time::parse_time_str)
        })
        .ok_or(ParseError::Missing(
            "event time (timestamp, webhook-timestamp or svix-timestamp)",
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
        (ID_HEADER.to_string(), id),
        (TIMESTAMP_HEADER.to_string(), stamp),
        (
            SIGNATURE_HEADER.to_string(),
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
    use super::super::bad_signature;
    use super::super::tests::*;
    use super::*;
    use crate::Verified;
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
                "event time (timestamp, webhook-timestamp or svix-timestamp)"
            ))
        );
    }

    // -----------------------------------------------------------------------------------------
    // Signed by the published libraries (`svix`, `standardwebhooks`), not by `sign` above
    // -----------------------------------------------------------------------------------------

    /// Vectors signed once with the published Python `svix` and `standardwebhooks` packages;
    /// `generated_by` in the file names the versions and holds the code.
    const PUBLISHED: &str = include_str!("../../tests/fixtures/standard/published-libraries.json");

    /// One vector: what was signed, and with what.
    struct Vector {
        secret: String,
        msg_id: String,
        stamp: String,
        body: String,
        signature: String,
        /// The headers as its library's sender sends them.
        sent: Vec<(String, String)>,
        /// Half a minute after it was signed: well inside the replay window.
        now: DateTime<Utc>,
    }

    impl Vector {
        /// The id, time stamp and signature under one family's names.
        fn under(&self, f: Family) -> HeaderMap {
            headers(&[
                (f.id, &self.msg_id),
                (f.timestamp, &self.stamp),
                (f.signature, &self.signature),
            ])
        }

        fn verify(&self, h: &HeaderMap) -> Result<Verified, Rejection> {
            verify_with(P, Some(&self.secret), h, self.body.as_bytes(), self.now)
        }
    }

    fn published() -> Value {
        serde_json::from_str(PUBLISHED).expect("fixture is JSON")
    }

    fn vector(name: &str) -> Vector {
        let all = published();
        let v = all["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
            .clone();
        let text = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{name}: {k}"))
                .to_string()
        };
        let at = v["timestamp"].as_i64().expect("timestamp");
        Vector {
            secret: text("secret"),
            msg_id: text("msg_id"),
            stamp: at.to_string(),
            body: text("body"),
            signature: text("signature"),
            sent: v["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("header").to_string()))
                .collect(),
            now: DateTime::from_timestamp(at + 30, 0).expect("time"),
        }
    }

    fn as_sent(v: &Vector) -> HeaderMap {
        let pairs: Vec<(&str, &str)> = v
            .sent
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers(&pairs)
    }

    const SVIX_VECTORS: [&str; 2] = ["svix-customer-updated", "svix-customer-created-spec-secret"];

    #[test]
    fn published_vectors_are_what_they_say() {
        let all = published();
        let by = &all["generated_by"];
        for library in ["svix", "standardwebhooks"] {
            assert!(by["libraries"][library].is_string(), "{library} version");
            assert!(
                by["code"]
                    .as_str()
                    .is_some_and(|c| c.contains(&format!("{library}.Webhook(key).sign("))),
                "{library} signs"
            );
        }
        for v in all["vectors"].as_array().expect("vectors") {
            let accepted = &v["published_verifiers_accept"];
            assert_eq!(accepted["svix, svix-* headers"], json!(true), "{v}");
            assert_eq!(accepted["svix, webhook-* headers"], json!(true), "{v}");
            assert_eq!(accepted["standardwebhooks, webhook-* headers"], json!(true));
        }
    }

    #[test]
    fn svix_signed_delivery_with_svix_headers_verifies() {
        for name in SVIX_VECTORS {
            let v = vector(name);
            let h = as_sent(&v);
            assert!(
                h.contains_key("svix-signature"),
                "{name} is sent as Svix sends it"
            );
            let ok = v.verify(&h).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ok.dedupe_key, v.msg_id, "{name}");
            assert!(ok.check.starts_with("Checked"), "{name}: {}", ok.check);
            assert!(
                !ok.check.contains("as text"),
                "{name}: the secret is base64"
            );
            // The replay window runs on svix-timestamp as it does on webhook-timestamp.
            let at =
                |secs: i64| v.now - chrono::Duration::seconds(30) + chrono::Duration::seconds(secs);
            let late = verify_with(P, Some(&v.secret), &h, v.body.as_bytes(), at(360));
            assert_eq!(
                late,
                Err(Rejection::StaleTimestamp { skew_secs: 360 }),
                "{name}"
            );
            let early = verify_with(P, Some(&v.secret), &h, v.body.as_bytes(), at(-360));
            assert_eq!(
                early,
                Err(Rejection::StaleTimestamp { skew_secs: -360 }),
                "{name}"
            );
            assert!(verify_with(P, Some(&v.secret), &h, v.body.as_bytes(), at(290)).is_ok());
        }
    }

    #[test]
    fn svix_signed_delivery_with_webhook_headers_verifies() {
        for name in SVIX_VECTORS {
            let v = vector(name);
            let ok = v
                .verify(&v.under(WEBHOOK))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ok.dedupe_key, v.msg_id, "{name}");
            // A white-labelled sender that also sends the svix-* copies: the same delivery.
            let mut both = v.under(WEBHOOK);
            both.extend(v.under(SVIX));
            assert_eq!(v.verify(&both), Ok(ok), "{name}");
        }
    }

    #[test]
    fn standardwebhooks_signed_delivery_verifies_under_either_names() {
        let v = vector("standardwebhooks-customer-updated");
        assert!(as_sent(&v).contains_key("webhook-signature"));
        let ok = v.verify(&as_sent(&v)).expect("as sent");
        assert_eq!(ok.dedupe_key, v.msg_id);
        assert!(ok.check.starts_with("Checked") && !ok.check.contains("as text"));
        // Svix's verifier takes it under its own names too: so does Clientele.
        assert_eq!(v.verify(&v.under(SVIX)), Ok(ok));
        let parsed = super::super::parse(
            P,
            &ConnectionSettings::default(),
            &as_sent(&v),
            v.body.as_bytes(),
        )
        .expect("reads");
        assert_eq!(parsed.events[0].customer_ref, "cus_8843");
        assert_eq!(parsed.events[0].fields["last_name"], json!("Conceição"));
    }

    #[test]
    fn forged_svix_signature_is_refused() {
        let v = vector("svix-customer-updated");
        let other = vector("svix-customer-created-spec-secret");
        let body = v.body.as_bytes();
        let with = |name: &str, value: &str| {
            let mut h = v.under(SVIX);
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
            h
        };
        let bad = Rejection::BadSignature {
            provider: "Standard Webhooks",
            secret_word: P.secret_word(),
        };
        // Another secret's signature, another message's id, a moved time stamp, a changed body.
        let forged = hmac_sha256(
            b"not the secret",
            &[v.msg_id.as_bytes(), b".", v.stamp.as_bytes(), b".", body],
        );
        for h in [
            with("svix-signature", &format!("v1,{}", B64.encode(forged))),
            with("svix-signature", &other.signature),
            with("svix-id", &other.msg_id),
            with("svix-timestamp", &(v.now.timestamp() - 1).to_string()),
        ] {
            assert_eq!(v.verify(&h), Err(bad.clone()), "{h:?}");
        }
        let tampered = v.body.replace("cus_8842", "cus_8843");
        assert_eq!(
            verify_with(
                P,
                Some(&v.secret),
                &v.under(SVIX),
                tampered.as_bytes(),
                v.now
            ),
            Err(bad)
        );
        // Missing and unreadable parts are named by the header actually used.
        let mut h = v.under(SVIX);
        h.remove("svix-signature");
        assert_eq!(
            v.verify(&h),
            Err(Rejection::MissingSignature {
                secret_word: P.secret_word()
            })
        );
        let mut h = v.under(SVIX);
        h.remove("svix-timestamp");
        assert_eq!(
            v.verify(&h),
            Err(Rejection::MissingTimestamp {
                provider: "Standard Webhooks"
            })
        );
        let mut h = v.under(SVIX);
        h.remove("svix-id");
        assert_eq!(
            v.verify(&h),
            Err(Rejection::MalformedSignature(
                "no svix-id header was sent, and the signature covers it".to_string()
            ))
        );
        assert_eq!(
            v.verify(&with("svix-signature", "v1,!!!!")),
            Err(Rejection::MalformedSignature(
                "a svix-signature entry isn't valid base64".to_string()
            ))
        );
        assert_eq!(
            v.verify(&with("svix-timestamp", "soon")),
            Err(bad_signature(P)),
            "the signature is checked before the time stamp is read"
        );
    }

    #[test]
    fn mixed_header_families_are_refused() {
        let v = vector("svix-customer-updated");
        let (id, stamp, sig) = (v.msg_id.as_str(), v.stamp.as_str(), v.signature.as_str());
        let mixed = |ours: &str, instead: &str, missing: &str| {
            Err(Rejection::MalformedSignature(format!(
                "the headers mix two naming schemes ({ours} with {instead}, but no {missing}); \
                 Clientele reads the id, time stamp and signature all from webhook-* headers or \
                 all from svix-* headers"
            )))
        };
        // Svix's own verifier accepts this one (it falls back header by header; the fixture
        // records it); Clientele doesn't combine families.
        let h = headers(&[
            ("webhook-id", id),
            ("svix-timestamp", stamp),
            ("svix-signature", sig),
        ]);
        assert_eq!(
            v.verify(&h),
            mixed("webhook-id", "svix-signature", "webhook-signature")
        );
        let h = headers(&[
            ("svix-id", id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", sig),
        ]);
        assert_eq!(
            v.verify(&h),
            mixed("svix-id", "webhook-signature", "svix-signature")
        );
        let h = headers(&[
            ("webhook-id", id),
            ("webhook-signature", sig),
            ("svix-timestamp", stamp),
        ]);
        assert_eq!(
            v.verify(&h),
            mixed("webhook-id", "svix-timestamp", "webhook-timestamp")
        );
        let h = headers(&[("webhook-timestamp", stamp), ("svix-signature", sig)]);
        assert_eq!(
            v.verify(&h),
            mixed("webhook-timestamp", "svix-signature", "webhook-signature")
        );

        // A genuine svix-* delivery with a made-up webhook-id added (to slip past dedupe as a
        // new message) is refused: the id checked is always the id deduplicated on.
        let mut h = v.under(SVIX);
        h.insert("webhook-id", http::HeaderValue::from_static("msg_replayed"));
        assert!(matches!(
            v.verify(&h),
            Err(Rejection::MalformedSignature(_))
        ));

        // Both families whole: the webhook-* one is read and the other ignored, whatever it holds.
        let mut h = v.under(WEBHOOK);
        h.extend(headers(&[
            ("svix-id", "msg_other"),
            ("svix-signature", "v1,AAAA"),
        ]));
        assert_eq!(v.verify(&h).map(|ok| ok.dedupe_key), Ok(v.msg_id.clone()));
        let mut h = v.under(SVIX);
        h.extend(headers(&[
            ("webhook-id", "msg_other"),
            ("webhook-timestamp", stamp),
            ("webhook-signature", sig),
        ]));
        assert_eq!(v.verify(&h), Err(bad_signature(P)));
    }

    #[test]
    fn svix_and_webhook_names_make_the_same_dedupe_key() {
        for name in SVIX_VECTORS {
            let v = vector(name);
            let svix = v.verify(&v.under(SVIX)).expect("svix-*");
            let webhook = v.verify(&v.under(WEBHOOK)).expect("webhook-*");
            assert_eq!(svix.dedupe_key, webhook.dedupe_key, "{name}");
            assert_eq!(svix.dedupe_key, v.msg_id, "{name}");
            // Unchecked (no secret) too.
            for secret in [None, Some("")] {
                let key = |f| {
                    verify_with(P, secret, &v.under(f), v.body.as_bytes(), v.now)
                        .expect("unchecked")
                        .dedupe_key
                };
                assert_eq!(key(SVIX), v.msg_id, "{name}");
                assert_eq!(key(WEBHOOK), v.msg_id, "{name}");
            }
        }
    }

    #[test]
    fn kept_headers_never_keep_svix_signature() {
        let v = vector("svix-customer-updated");
        let mut h = as_sent(&v);
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        let kept = super::super::kept_headers(&h);
        assert!(
            kept.iter().all(|(name, _)| !name.contains("signature")),
            "{kept:?}"
        );
        assert!(
            kept.iter()
                .all(|(_, value)| !value.contains(&v.signature[3..]))
        );
        assert_eq!(
            kept,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("svix-id".to_string(), v.msg_id.clone()),
                ("svix-timestamp".to_string(), v.stamp.clone()),
            ],
            "the id and time stamp are kept, as their webhook-* twins are"
        );
        let mut both = v.under(WEBHOOK);
        both.extend(v.under(SVIX));
        let kept = super::super::kept_headers(&both);
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(
            kept.iter().all(|(name, _)| !name.contains("signature")),
            "{kept:?}"
        );

        // Re-reading from the kept svix-* headers: svix-timestamp is the fallback event time.
        let bare = json!({"type": "customer.updated", "data": {"id": "cus_8842"}}).to_string();
        let kept = headers(&[("svix-id", &v.msg_id), ("svix-timestamp", &v.stamp)]);
        let parsed = super::super::parse(P, &ConnectionSettings::default(), &kept, bare.as_bytes())
            .expect("reads");
        assert_eq!(
            parsed.events[0].occurred_at.timestamp().to_string(),
            v.stamp
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
