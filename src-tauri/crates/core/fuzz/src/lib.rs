//! What the fuzz targets run: one adapter's `verify`, then — for what it accepts — `parse`,
//! exactly as the listener and derivation call them, on input shaped by the fuzzer.
//!
//! An input is one mode byte, then the request:
//! - mode bit 0 set: the rest is the body, correctly signed with the connection's secret (so the
//!   fuzzer's bodies get past verification and into the parser);
//! - bit 0 clear: the rest is header lines (`name: value`) up to an empty line, then the body,
//!   sent as they are (forged, malformed or missing signatures);
//! - bit 1 set: the connection has no secret (nothing is checked, everything is parsed);
//! - bit 2 set: a Standard Webhooks connection reads the customer id from `/data/customer/id`.
//!
//! Besides "never panics", it checks what must hold whatever the input: a delivery signed with
//! the right secret is accepted (except by Plain, whose replay window reads the delivery time
//! from the body), and a dedupe key is never empty or unbounded.

use chrono::{DateTime, TimeZone, Utc};
use clientele_core::{ConnectionSettings, Inbound, Provider, Sensitive, providers};
use http::{HeaderMap, HeaderName, HeaderValue};

/// A fixed clock, so a crash replays exactly.
fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0)
        .single()
        .unwrap_or_default()
}

fn secret(p: Provider) -> Sensitive<String> {
    Sensitive::new(match p {
        Provider::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        other => format!("{}-fuzz-secret", other.id()),
    })
}

fn append(headers: &mut HeaderMap, name: &[u8], value: &[u8]) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        headers.append(name, value);
    }
}

/// Splits `name: value` lines (up to an empty line) from the body.
fn split_headers(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = data;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => return (headers, &[]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return (headers, rest);
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            append(&mut headers, &line[..colon], value);
        }
    }
}

pub fn verify_and_parse(p: Provider, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signed = mode & 1 == 1;
    let unchecked = mode & 2 == 2;
    let key = secret(p);
    let (mut headers, body) = if signed {
        (HeaderMap::new(), rest)
    } else {
        split_headers(rest)
    };
    if signed {
        for (name, value) in providers::sign(p, &key, body, now()) {
            append(&mut headers, name.as_bytes(), value.as_bytes());
        }
    }
    let settings = ConnectionSettings {
        customer_ref_pointer: (mode & 4 == 4).then(|| "/data/customer/id".to_string()),
        ..ConnectionSettings::default()
    };
    let inbound = Inbound {
        headers: &headers,
        body,
        remote_ip: None,
    };
    let secret = (!unchecked).then_some(&key);
    match providers::verify(p, &settings, secret, &inbound, now()) {
        Ok(verified) => {
            assert!(
                !verified.dedupe_key.is_empty() && verified.dedupe_key.len() <= 256,
                "dedupe key of {} bytes",
                verified.dedupe_key.len()
            );
            // Derivation sees only the kept headers, never a signature.
            let mut kept = HeaderMap::new();
            for name in providers::KEPT_HEADERS {
                for value in headers.get_all(*name) {
                    append(&mut kept, name.as_bytes(), value.as_bytes());
                }
            }
            if let Ok(parsed) = providers::parse(p, &settings, &kept, body) {
                for event in &parsed.events {
                    assert!(!event.customer_ref.is_empty(), "an event about no customer");
                }
            }
        }
        Err(rejection) => {
            assert!(
                !(signed && p != Provider::Plain),
                "{p}: a correctly signed delivery was refused: {rejection}"
            );
            let _ = rejection.to_string();
        }
    }
}
