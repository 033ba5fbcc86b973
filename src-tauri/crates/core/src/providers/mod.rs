//! Provider adapters: for each provider, how to tell a genuine delivery from a forged or replayed
//! one ([`verify`]), how to read it into normalized [`SourceEvent`]s ([`parse`]), and how to make
//! a genuine one ([`sign`], [`sample_body`]) for "Send a test event", tests and benchmarks.
//!
//! Each provider's module holds only what is particular to it (`docs/providers.md` is the
//! contract); everything they share lives here, once: header lookup, HMAC and constant-time
//! comparison, replay windows, JSON getters and the field-mapping machinery. Verification and
//! parsing are deliberately separate steps: a delivery is stored as soon as it is verified, even
//! when it cannot be read yet, so an adapter fix can re-read it later (`parse` only gets the
//! stored [`KEPT_HEADERS`], never a signature).

mod plain;
mod resdiary;
mod standard;
mod tiquo;
mod vagaro;
mod zupy;

#[cfg(test)]
mod tests;

use crate::event::Change;
use crate::time::{parse_provider_time, to_rfc3339};
use crate::{
    ConnectionSettings, Inbound, ParseError, ParsedDelivery, Provider, Rejection, Sensitive,
    SourceEvent, Verified,
};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Lower-case names of the headers stored with each delivery and handed back to [`parse`] when a
/// delivery is re-read: what identifies the sender's software, and every non-secret header an
/// adapter reads or dedupes on. Never a signature header and never Vagaro's token.
pub const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    tiquo::EVENT_HEADER,
    tiquo::TIMESTAMP_HEADER,
    plain::EVENT_ID_HEADER,
    zupy::ID_HEADER,
    zupy::EVENT_HEADER,
    zupy::LEGACY_EVENT_HEADER,
    standard::ID_HEADER,
    standard::TIMESTAMP_HEADER,
    standard::SVIX_ID_HEADER,
    standard::SVIX_TIMESTAMP_HEADER,
];

/// The [`KEPT_HEADERS`] of a request, as stored with its delivery (values that aren't text are
/// left out).
pub fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .flat_map(|name| {
            headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_string()))
        })
        .collect()
}

/// Checks one delivery for `p`: the signature or token first, then the replay window, so a forger
/// learns nothing about the clock. With no secret (or a blank one) nothing can be checked: the
/// delivery is accepted and [`Verified::check`] says so in plain words.
pub fn verify(
    p: Provider,
    s: &ConnectionSettings,
    secret: Option<&Sensitive<String>>,
    i: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<Verified, Rejection> {
    // The address allow-list is checked here, and only here: `crate::verify::verify` hands
    // everything to this function.
    if let Some(ip) = i.remote_ip
        && !s.allowed_ips.is_empty()
        && !s.allowed_ips.contains(&ip)
    {
        return Err(Rejection::AddressNotAllowed(ip));
    }
    // Only Plain's replay window needs the body's whole JSON (its delivery time is inside it);
    // the other dedupe keys read just the top-level ids they need (see `TopIds`).
    let json = match p {
        Provider::Plain => read_json(i.body).ok(),
        _ => None,
    };
    let check = match secret.filter(|k| !k.expose().trim().is_empty()) {
        None => not_checked(p, secret.is_some()),
        Some(secret) => match p {
            Provider::Tiquo => tiquo::check(secret, i, now)?,
            Provider::Resdiary => resdiary::check(secret, i)?,
            Provider::Vagaro => vagaro::check(secret, i)?,
            Provider::Plain => plain::check(secret, i, json.as_ref(), now)?,
            Provider::Zupy => zupy::check(secret, i)?,
            Provider::Standard => standard::check(secret, i, now)?,
        },
    };
    Ok(Verified {
        dedupe_key: dedupe_key(p, i.headers, i.body, json.as_ref()),
        check,
    })
}

/// Reads a verified delivery into events. `headers` are the stored [`KEPT_HEADERS`]. A delivery
/// that is about no customer at all (a Plain thread event without a customer, a Tiquo guest
/// order) reads as no events: it is stored and processed, it just has no timeline line.
pub fn parse(
    p: Provider,
    s: &ConnectionSettings,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ParsedDelivery, ParseError> {
    let json = read_json(body)?;
    let events = match p {
        Provider::Tiquo => tiquo::parse(headers, &json)?,
        Provider::Resdiary => resdiary::parse(&json)?,
        Provider::Vagaro => vagaro::parse(&json)?,
        Provider::Plain => plain::parse(&json)?,
        Provider::Zupy => zupy::parse(headers, &json)?,
        Provider::Standard => standard::parse(s, headers, &json)?,
    };
    Ok(ParsedDelivery { events })
}

/// Headers that make `body` a correctly signed delivery for `p` at time `now` (used by "Send a
/// test event", tests, load generators and benchmarks). Includes the non-secret headers the
/// provider sends beside the signature (event type, ids, time stamps); the caller sets the
/// content type, so it is never sent twice.
pub fn sign(
    p: Provider,
    secret: &Sensitive<String>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let json = read_json(body).ok();
    let mut headers = match p {
        Provider::Tiquo => tiquo::sign(secret, body, json.as_ref(), now),
        Provider::Resdiary => resdiary::sign(secret, body),
        Provider::Vagaro => vagaro::sign(secret),
        Provider::Plain => plain::sign(secret, body, json.as_ref()),
        Provider::Zupy => zupy::sign(secret, body, json.as_ref()),
        Provider::Standard => standard::sign(secret, body, now),
    };
    // Ids and event names copied from an odd body may not be sendable as headers: leave those
    // out rather than hand back a request that can't be built.
    headers.retain(|(_, v)| header_safe(v));
    headers
}

/// Whether `v` can be sent as an HTTP header value as it is.
fn header_safe(v: &str) -> bool {
    !v.is_empty() && v.trim() == v && v.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// A realistic "customer created" body for `p` about `customer_ref` with `email`, happening at
/// `at` (for Plain, `at` is also the delivery attempt time, so pass "now" to pass its replay
/// window). The event id is derived from the inputs, so the same inputs make a duplicate.
pub fn sample_body(p: Provider, customer_ref: &str, email: &str, at: DateTime<Utc>) -> Vec<u8> {
    let seed = format!("{}|{customer_ref}|{email}|{}", p.id(), to_rfc3339(at));
    let id = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    let value = match p {
        Provider::Tiquo => tiquo::sample(&id, customer_ref, email, at),
        Provider::Resdiary => resdiary::sample(customer_ref, email, at),
        Provider::Vagaro => vagaro::sample(&id, customer_ref, email, at),
        Provider::Plain => plain::sample(&id, customer_ref, email, at),
        Provider::Zupy => zupy::sample(customer_ref, email, at),
        Provider::Standard => standard::sample(customer_ref, email, at),
    };
    serde_json::to_vec_pretty(&value).unwrap_or_default()
}

/// The provider's event id where it has one, else `sha256:<hex of body>`. Works on bodies that
/// are not JSON (they still need a key to be stored once). `plain_json` is the body's JSON for
/// Plain (read for its replay window anyway); the others' ids are read with [`TopIds`].
fn dedupe_key(p: Provider, headers: &HeaderMap, body: &[u8], plain_json: Option<&Value>) -> String {
    let id = match p {
        Provider::Tiquo | Provider::Vagaro => TopIds::read(body).id,
        Provider::Plain => plain_json
            .and_then(|j| id_text(j.get("id")))
            .or_else(|| header(headers, plain::EVENT_ID_HEADER).map(str::to_string)),
        Provider::Zupy => zupy::event_id(headers, TopIds::read(body).webhook_id),
        Provider::Standard => standard::message_id(headers).map(str::to_string),
        Provider::Resdiary => None,
    };
    id.filter(|id| usable_id(id))
        .unwrap_or_else(|| body_hash_key(body))
}

/// The top-level `id` and `webhook_id` of a JSON object body, each as [`id_text`] would read it
/// from the body's `Value` (a later duplicate key wins, as there).
///
/// Every delivery needs its event id for the dedupe key before it is stored, and building the
/// whole document as a `Value` for it took an eighth of the listener's CPU time under load
/// (`make bench`, perf): this reads the same ids while checking the rest as strictly but without
/// building it. A body that is not a JSON object has no ids.
#[derive(Debug, Default, PartialEq, Eq)]
struct TopIds {
    id: Option<String>,
    webhook_id: Option<String>,
}

impl TopIds {
    fn read(body: &[u8]) -> TopIds {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        serde_json::from_slice(body).unwrap_or_default()
    }
}

impl<'de> serde::Deserialize<'de> for TopIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = TopIds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopIds, A::Error> {
                let mut ids = TopIds::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id" => ids.id = map.next_value::<IdText>()?.0,
                        "webhook_id" => ids.webhook_id = map.next_value::<IdText>()?.0,
                        _ => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(ids)
            }
        }
        d.deserialize_map(Object)
    }
}

/// One JSON value read as [`id_text`] reads it: a non-empty trimmed string or an integer; any
/// other value is no id.
struct IdText(Option<String>);

impl<'de> serde::Deserialize<'de> for IdText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Id;
        impl<'de> serde::de::Visitor<'de> for Id {
            type Value = IdText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<IdText, E> {
                Ok(IdText(id_of_str(s)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<IdText, E> {
                Ok(IdText(Some(n.to_string())))
            }
            fn visit_u64<E>(self, n: u64) -> Result<IdText, E> {
                Ok(IdText(Some(n.to_string())))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IdText, E> {
                Ok(IdText(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IdText, E> {
                Ok(IdText(None))
            }
            fn visit_unit<E>(self) -> Result<IdText, E> {
                Ok(IdText(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<IdText, A::Error> {
                Skip.visit_seq(seq).map(|Skip| IdText(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<IdText, A::Error> {
                Skip.visit_map(map).map(|Skip| IdText(None))
            }
        }
        d.deserialize_any(Id)
    }
}

/// Any JSON value, read to its end and dropped without allocating. Unlike serde's `IgnoredAny`
/// (which serde_json skips over without looking inside strings or counting depth), strings are
/// checked for UTF-8 and nesting for serde_json's depth limit, so exactly the bodies that parse
/// as a `Value` have ids.
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> serde::de::Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

/// Ids are stored as the dedupe key, so an absurdly long or control-character id (only possible
/// on a connection without a secret) falls back to the body hash instead.
fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control)
}

/// `sha256:<hex>` of the exact bytes.
pub(crate) fn body_hash_key(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

fn not_checked(p: Provider, blank: bool) -> String {
    let why = if blank {
        format!("the {} saved for this connection is empty", p.secret_word())
    } else {
        format!("no {} is set for this connection", p.secret_word())
    };
    format!(
        "Not checked: {why}, so Clientele can't tell whether this message really came from {}.",
        p.display_name()
    )
}

// ---------------------------------------------------------------------------------------------
// Verification helpers
// ---------------------------------------------------------------------------------------------

/// The first value of header `name` (trimmed), if present and readable.
pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .find(|v| !v.is_empty())
}

/// Every non-empty value of header `name` (a sender may repeat a signature header). Values that
/// are not visible ASCII are kept (lossily) so they are reported as unreadable, not as missing.
pub(crate) fn header_values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// HMAC-SHA256 over the concatenated `parts`. HMAC takes keys of any length, so this cannot
/// fail; if it ever did, the result is empty, and [`match_any`] never matches an empty value.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 (ResDiary); see [`hmac_sha256`].
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality (different lengths are unequal).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A signature as sent, decoded to bytes, or why it couldn't be read.
pub(crate) type Supplied = Result<Vec<u8>, String>;

/// Decodes a hex signature (either case), optionally behind a `prefix` such as `sha256=`.
/// `required` says whether the prefix must be there.
pub(crate) fn hex_signature(value: &str, header: &str, prefix: &str, required: bool) -> Supplied {
    let stripped = strip_prefix_ci(value, prefix);
    let hex_part = match (stripped, required) {
        (Some(rest), _) => rest,
        (None, false) => value,
        (None, true) => {
            return Err(format!("the {header} header doesn't start with {prefix}"));
        }
    };
    match hex::decode(hex_part.trim()) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(format!("the {header} header isn't a hexadecimal signature")),
    }
}

fn strip_prefix_ci<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

/// Compares every supplied signature with every accepted construction (labelled). Any match
/// passes; otherwise the refusal is `BadSignature` if at least one supplied signature was
/// readable, else `MalformedSignature` with the first reason.
pub(crate) fn match_any<'l>(
    p: Provider,
    supplied: &[Supplied],
    expected: &[(&'l str, &[u8])],
) -> Result<&'l str, Rejection> {
    for sig in supplied.iter().flatten().filter(|s| !s.is_empty()) {
        let found = expected
            .iter()
            .find(|(_, mac)| !mac.is_empty() && ct_eq(sig, mac));
        if let Some((label, _)) = found {
            return Ok(label);
        }
    }
    if supplied.iter().any(Result::is_ok) {
        return Err(bad_signature(p));
    }
    let reason = supplied
        .iter()
        .find_map(|s| s.as_ref().err().cloned())
        .unwrap_or_else(|| "no signature could be found".to_string());
    Err(Rejection::MalformedSignature(reason))
}

pub(crate) fn missing_signature(p: Provider) -> Rejection {
    Rejection::MissingSignature {
        secret_word: p.secret_word(),
    }
}

pub(crate) fn bad_signature(p: Provider) -> Rejection {
    Rejection::BadSignature {
        provider: p.display_name(),
        secret_word: p.secret_word(),
    }
}

/// Refuses a delivery sent more than `window_secs` before or after `now`. The skew is
/// `now - sent` (positive: the message is old).
pub(crate) fn within_window(
    sent: DateTime<Utc>,
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<(), Rejection> {
    let skew = now.signed_duration_since(sent).num_seconds();
    if skew.abs() > window_secs {
        Err(Rejection::StaleTimestamp { skew_secs: skew })
    } else {
        Ok(())
    }
}

/// A header time stamp in whole epoch seconds (milliseconds tolerated by magnitude).
pub(crate) fn header_epoch(value: &str, header: &str) -> Result<DateTime<Utc>, Rejection> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(crate::time::from_epoch_int)
        .ok_or_else(|| {
            Rejection::MalformedSignature(format!("the {header} time stamp isn't a number"))
        })
}

/// Replay window shared by Tiquo, Plain and Standard Webhooks: five minutes either way.
pub(crate) const REPLAY_WINDOW_SECS: i64 = 300;

/// How many seconds a delivery's signed time may be off before `p`'s check refuses it as a
/// possible replay; `None` when `p` signs no time (Vagaro, ResDiary) or documents no window
/// (Zupy), and only the dedupe key stops a repeat. What the Connect flow tells staff about each
/// provider is worded from this, and a test holds it to what [`verify`] does.
pub fn replay_window_secs(p: Provider) -> Option<i64> {
    match p {
        Provider::Tiquo | Provider::Plain | Provider::Standard => Some(REPLAY_WINDOW_SECS),
        Provider::Resdiary | Provider::Vagaro | Provider::Zupy => None,
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

/// Parses the body, tolerating a UTF-8 byte-order mark.
pub(crate) fn read_json(body: &[u8]) -> Result<Value, ParseError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))
}

/// An id as a string: a non-empty trimmed string, or an integer (ResDiary's `Customer.Id`).
pub(crate) fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => id_of_str(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A string id: trimmed, and none when blank.
fn id_of_str(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A required id (see [`id_text`]); `what` names it for staff.
pub(crate) fn required_id(v: Option<&Value>, what: &'static str) -> Result<String, ParseError> {
    id_text(v).ok_or(ParseError::Missing(what))
}

/// A non-empty trimmed string.
pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The first present, non-null value among `keys`.
pub(crate) fn first<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().filter_map(|k| v.get(*k)).find(|x| !x.is_null())
}

/// A required event time: `Missing(what)` when absent or null, `Invalid` when unreadable.
pub(crate) fn required_time(
    v: Option<&Value>,
    what: &'static str,
) -> Result<DateTime<Utc>, ParseError> {
    let v = v
        .filter(|v| !v.is_null())
        .ok_or(ParseError::Missing(what))?;
    parse_provider_time(v).ok_or_else(|| ParseError::Invalid {
        field: what,
        detail: format!("{v} is not a time Clientele can read"),
    })
}

/// Strings trimmed, empty strings as `null` (providers send `""` for "none").
pub(crate) fn clean(v: &Value) -> Value {
    match v {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(s) => Value::String(s.trim().to_string()),
        other => other.clone(),
    }
}

/// A time value in Clientele's canonical form (RFC 3339, UTC) when readable, else as sent.
pub(crate) fn clean_time(v: &Value) -> Value {
    match parse_provider_time(v) {
        Some(t) => Value::String(to_rfc3339(t)),
        None => clean(v),
    }
}

/// The object at `v`, or an empty one.
pub(crate) fn object(v: Option<&Value>) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v.and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// A copy of the object `v` without `drop` keys and without nulls; `Null` if nothing remains
/// (so `details` is left out when there is nothing to say).
pub(crate) fn details_without(v: Option<&Value>, drop: &[&str]) -> Value {
    let map: Map<String, Value> = object(v)
        .iter()
        .filter(|(k, v)| !drop.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// Builds a `details` object from the present, non-null pairs; `Null` if none.
pub(crate) fn details(pairs: &[(&str, Option<&Value>)]) -> Value {
    let map: Map<String, Value> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_null())
                .map(|v| (k.to_string(), v.clone()))
        })
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// Field mapping
// ---------------------------------------------------------------------------------------------

/// How a provider value becomes a field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// Trimmed; empty string → `null`; other JSON kept as sent.
    Text,
    /// A time, normalized to RFC 3339 UTC when readable.
    Time,
}

/// A provider's mapping from its customer keys to canonical fields. Keys not in `table` (and not
/// in `skip`) land under `"<provider>.<key>"` unchanged, so nothing is lost.
#[derive(Debug)]
pub(crate) struct FieldMap {
    pub provider: Provider,
    /// `(key as sent, canonical field, conversion)`.
    pub table: &'static [(&'static str, &'static str, Conv)],
    /// Keys that are not fields (the customer's own id, which is the event's `customer_ref`).
    pub skip: &'static [&'static str],
}

/// Canonical fields and values an event asserts.
pub(crate) type Fields = BTreeMap<String, Value>;

impl FieldMap {
    /// The field name and conversion for one provider key.
    pub fn field(&self, key: &str) -> (String, Conv) {
        match self.table.iter().find(|(k, _, _)| *k == key) {
            Some((_, canonical, conv)) => ((*canonical).to_string(), *conv),
            None => (format!("{}.{key}", self.provider.id()), Conv::Text),
        }
    }

    /// Converts one provider value for `key`.
    pub fn value(&self, key: &str, v: &Value) -> (String, Value) {
        let (field, conv) = self.field(key);
        let value = match conv {
            Conv::Text => clean(v),
            Conv::Time => clean_time(v),
        };
        (field, value)
    }

    /// Maps every key of `obj` (except `skip`), then derives `full_name` (see [`with_full_name`]).
    pub fn map(&self, obj: &Map<String, Value>) -> Fields {
        let mut out: Fields = obj
            .iter()
            .filter(|(k, _)| !self.skip.contains(&k.as_str()))
            .map(|(k, v)| self.value(k, v))
            .collect();
        with_full_name(&mut out);
        out
    }
}

/// Adds `full_name` from `first_name` and `last_name` when both are said (either may be null) and
/// the provider didn't send a full name itself. With only one of them said, the full name is
/// unknown and left unsaid.
pub(crate) fn with_full_name(fields: &mut Fields) {
    if fields.contains_key("full_name") {
        return;
    }
    if let (Some(first), Some(last)) = (fields.get("first_name"), fields.get("last_name")) {
        let name = join_name(first, last);
        fields.insert("full_name".to_string(), name);
    }
}

fn join_name(first: &Value, last: &Value) -> Value {
    let parts: Vec<&str> = [first, last]
        .into_iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        Value::Null
    } else {
        Value::String(parts.join(" "))
    }
}

/// Adds `first_name`/`last_name` from a single full name as a best effort (first word, the rest),
/// keeping the full name as sent. Only when the provider gave no first/last of its own.
pub(crate) fn with_split_name(fields: &mut Fields) {
    let Some(full) = fields.get("full_name").cloned() else {
        return;
    };
    if fields.contains_key("first_name") || fields.contains_key("last_name") {
        return;
    }
    let (first, last) = match full.as_str().map(str::trim) {
        Some(name) if !name.is_empty() => match name.split_once(char::is_whitespace) {
            Some((f, l)) => (Value::from(f), clean(&Value::from(l))),
            None => (Value::from(name), Value::Null),
        },
        _ => (Value::Null, Value::Null),
    };
    fields.insert("first_name".to_string(), first);
    fields.insert("last_name".to_string(), last);
}

/// The field-level differences between two snapshots (keys absent on one side count as `null`).
pub(crate) fn diff(old: &Fields, new: &Fields) -> Vec<Change> {
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let o = old.get(k).unwrap_or(&Value::Null);
            let n = new.get(k).unwrap_or(&Value::Null);
            (o != n).then(|| Change {
                field: k.clone(),
                old: o.clone(),
                new: n.clone(),
            })
        })
        .collect()
}

/// Whether every change is about marketing consent (wording and dates included), which makes
/// the event a consent change rather than a general update.
pub(crate) fn all_consent(changes: &[Change]) -> bool {
    !changes.is_empty()
        && changes.iter().all(|c| {
            crate::fields::consent(&c.field).is_some()
                || (crate::fields::is_minor(&c.field) && c.field.starts_with("resdiary."))
        })
}

/// The kind for an update: consent-only changes are `ConsentChanged`, the rest `Updated`.
pub(crate) fn update_kind(changes: &[Change]) -> crate::EventKind {
    if all_consent(changes) {
        crate::EventKind::ConsentChanged
    } else {
        crate::EventKind::Updated
    }
}

/// An event with no diff of its own and no details: the common shape.
pub(crate) fn event(
    customer_ref: String,
    occurred_at: DateTime<Utc>,
    kind: crate::EventKind,
    event_type: impl Into<String>,
    fields: Fields,
) -> SourceEvent {
    SourceEvent {
        customer_ref,
        occurred_at,
        kind,
        event_type: event_type.into(),
        fields,
        changes: None,
        details: Value::Null,
    }
}

/// Fields of a deletion: only when it happened.
pub(crate) fn deleted_fields(at: Value) -> Fields {
    Fields::from([("deleted_at".to_string(), at)])
}
