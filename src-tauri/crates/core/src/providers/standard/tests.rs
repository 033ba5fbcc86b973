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
    let parsed =
        super::super::parse(P, &ConnectionSettings::default(), &h, body.as_bytes()).expect("reads");
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
    let parsed =
        super::super::parse(P, &ConnectionSettings::default(), &h, bare.as_bytes()).expect("reads");
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
    let ping = json!({"type": "ping", "timestamp": "2024-01-20T15:00:00Z", "data": {"id": "c"}});
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
const PUBLISHED: &str = include_str!("../../../tests/fixtures/standard/published-libraries.json");

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
