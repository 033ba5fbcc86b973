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
mod tests;
