//! The listener and the command line, end to end: the real `clientele` binary, real HTTP on
//! 127.0.0.1, a real SQLite file in a temporary data folder.

use chrono::{Duration, SecondsFormat, Utc};
use clientele_core::{Provider, providers};
use clientele_tests::{Workspace, agent, post, signed, test_secret};
use serde_json::{Value, json};

fn send(
    server: &clientele_tests::Server,
    p: Provider,
    body: &[u8],
    at: chrono::DateTime<Utc>,
) -> (u16, String) {
    let headers = signed(p, &test_secret(p), body, at);
    post(
        &agent(),
        &server.url(&format!("/hooks/{}/main", p.id())),
        &headers,
        body,
    )
}

fn iso(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn people(ws: &Workspace) -> Vec<Value> {
    ws.json(&["customers", "list"])
        .as_array()
        .cloned()
        .expect("array of people")
}

fn person(ws: &Workspace, id: &Value) -> Value {
    ws.json(&["customers", "show", &id.to_string()])
}

fn find_person<'a>(people: &'a [Value], email: &str) -> &'a Value {
    people
        .iter()
        .find(|p| {
            p["emails"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == email))
        })
        .unwrap_or_else(|| panic!("no person with {email} in {people:#?}"))
}

#[test]
fn every_provider_accepts_signed_and_refuses_forged_unsigned_and_stale() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let now = Utc::now();
    for p in Provider::ALL {
        let body = providers::sample_body(
            p,
            &format!("{}-c1", p.id()),
            &format!("c1@{}.example.com", p.id()),
            now,
        );
        let (status, text) = send(&server, p, &body, now);
        assert_eq!(
            status, 200,
            "{p}: a correctly signed delivery must be accepted: {text}"
        );
        assert!(text.contains("stored"), "{p}: {text}");

        let (status, text) = send(&server, p, &body, now);
        assert_eq!(status, 200, "{p}: a duplicate is acknowledged: {text}");
        assert!(text.contains("duplicate"), "{p}: {text}");

        let forged = signed(p, "not-the-secret-at-all", &body, now);
        let url = server.url(&format!("/hooks/{}/main", p.id()));
        let (status, text) = post(&agent(), &url, &forged, &body);
        assert_eq!(status, 401, "{p}: forged must be refused: {text}");

        let (status, text) = post(&agent(), &url, &[], &body);
        assert_eq!(
            status, 401,
            "{p}: unsigned must be refused when a secret is set: {text}"
        );

        // Vagaro's token is static and does not cover the body, so only signing providers can
        // notice a tampered body.
        if p != Provider::Vagaro {
            let mut tampered = body.clone();
            tampered.extend_from_slice(b" ");
            let headers = signed(p, &test_secret(p), &body, now);
            let (status, _) = post(&agent(), &url, &headers, &tampered);
            assert_eq!(
                status, 401,
                "{p}: one extra byte after signing must be refused"
            );
        }
    }
    // Stale: the providers with replay windows.
    for p in [Provider::Tiquo, Provider::Plain, Provider::Standard] {
        let old = now - Duration::minutes(10);
        let body = providers::sample_body(p, &format!("{}-old", p.id()), "old@example.com", old);
        let (status, text) = send(&server, p, &body, old);
        assert_eq!(
            status, 401,
            "{p}: a 10-minute-old delivery must be refused: {text}"
        );
    }

    let deliveries = ws.json(&["deliveries", "list"]);
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        Provider::ALL.len(),
        "one stored copy per provider: {deliveries:#?}"
    );
    for d in deliveries {
        assert_eq!(d["duplicates"], 1, "{d}");
        assert_eq!(d["status"], "processed", "{d}");
        for key in ["id", "provider", "connection", "received_at", "dedupe_key"] {
            assert!(!d[key].is_null(), "deliveries list must have {key}: {d}");
        }
    }
    // Refusals are logged without making the refusal wait: the last may still be on its way to
    // the database for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut rejected = ws.json(&["deliveries", "list", "--rejected"]);
    while rejected.as_array().unwrap().len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        rejected = ws.json(&["deliveries", "list", "--rejected"]);
    }
    let codes: Vec<&str> = rejected
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    // 6 forged + 6 unsigned + 5 tampered + 3 stale.
    assert_eq!(codes.len(), 20, "{rejected:#}");
    assert!(codes.contains(&"bad_signature"));
    assert!(codes.contains(&"missing_signature"));
    assert_eq!(codes.iter().filter(|c| **c == "stale_timestamp").count(), 3);
    for r in rejected.as_array().unwrap() {
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.len() > 20 && !reason.contains("HMAC"),
            "reasons are plain sentences: {reason}"
        );
    }
    // Every provider's customer exists.
    assert_eq!(people(&ws).len(), Provider::ALL.len());
    let limited = ws.json(&["deliveries", "list", "--limit", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);
}

#[test]
fn out_of_order_snapshots_are_ordered_and_diffed_by_event_time() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let t = |h: i64| Utc::now() - Duration::hours(10 - h);
    let snapshot = |id: &str, at: chrono::DateTime<Utc>, email: &str| {
        serde_json::to_vec(&json!({
            "id": id, "createdDate": iso(at), "type": "customer", "action": "updated",
            "payload": {
                "customerId": "V1", "businessIds": ["B1"], "customerFirstName": "Johnny",
                "customerLastName": "Smith", "email": email, "mobilePhone": "9145551212",
                "dayPhone": "", "countryCode": "US", "city": "New York", "postalCode": "10030",
                "modifiedDate": iso(at)
            }
        }))
        .unwrap()
    };
    // Sent 1, 3, 2: the middle one arrives last.
    for (id, at, email) in [
        ("e1", t(1), "a@x.example.com"),
        ("e3", t(3), "c@x.example.com"),
        ("e2", t(2), "b@x.example.com"),
    ] {
        let (status, text) = send(
            &server,
            Provider::Vagaro,
            &snapshot(id, at, email),
            Utc::now(),
        );
        assert_eq!(status, 200, "{text}");
    }
    let list = people(&ws);
    assert_eq!(list.len(), 1, "{list:#?}");
    let p = person(&ws, &list[0]["id"]);
    assert_eq!(
        p["profile"]["email"], "c@x.example.com",
        "latest by event time wins: {p:#}"
    );
    let timeline = p["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 3);
    let emails: Vec<(Value, Value)> = timeline
        .iter()
        .map(|e| {
            let c = e["changes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["field"] == "email")
                .cloned()
                .unwrap_or(json!({}));
            (c["old"].clone(), c["new"].clone())
        })
        .collect();
    assert_eq!(
        emails,
        vec![
            (Value::Null, json!("a@x.example.com")),
            (json!("a@x.example.com"), json!("b@x.example.com")),
            (json!("b@x.example.com"), json!("c@x.example.com")),
        ],
        "diffs recomputed as if the late one had arrived in time: {timeline:#?}"
    );
    let times: Vec<&str> = timeline
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "timeline oldest first");
    for e in timeline {
        assert!(!e["summary"].as_str().unwrap().is_empty());
        for key in ["provider", "connection", "kind"] {
            assert!(e[key].is_string(), "timeline entries have {key}: {e}");
        }
    }
}

#[test]
fn the_same_person_is_linked_across_providers_and_placeholders_link_nobody() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let now = Utc::now();
    let tiquo = json!({
        "id": "evt_link1", "type": "customer.created", "created": iso(now - Duration::hours(3)),
        "data": {"id": "cust_ana", "firstName": "Ana", "lastName": "Silva", "email": "Ana.Silva@Example.com",
                 "phone": "+5511965958122", "loyaltyPoints": 0, "tags": [], "marketingConsent": true,
                 "createdAt": iso(now - Duration::hours(3)), "source": "booking_portal"}
    });
    let zupy = json!({
        "event": "customer.registered", "timestamp": iso(now - Duration::hours(2)), "company_id": "comp_1",
        "customer": {"member_id": "ZP-1", "whatsapp": "+55 11 96595-8122", "email": "ana.silva@example.com",
                     "name": "Ana Silva", "cpf": "12345678901", "tier": "bronze", "created_at": iso(now - Duration::hours(2))},
        "welcome_reward": {"enabled": true, "type": "points", "points_awarded": 100}
    });
    // ResDiary's own sample: MobileNumber "3" must never link anyone.
    let resdiary = |id: i64, email: &str| {
        json!({
            "ChangeDateTime": "2018-11-16T10:46:20.7741026Z",
            "Customer": {"Id": id, "Title": "", "FirstName": "Aardvark", "Surname": "Anderson", "RelatedProviderId": 1044,
                         "MobileNumber": "3", "Company": "Animalania", "Email": email,
                         "ReceiveGroupEmailMarketing": false, "ReceiveGroupSmsMarketing": true,
                         "ReceiveRestaurantEmailMarketing": false, "ReceiveRestaurantSmsMarketing": true},
            "Changes": [{"ChangeType": "CustomerSmsChanged", "OldValue": "2", "NewValue": "3"}]
        })
    };
    for (p, body) in [
        (Provider::Tiquo, tiquo),
        (Provider::Zupy, zupy),
        (
            Provider::Resdiary,
            resdiary(862, "aardvark@animalania.example.com"),
        ),
        (
            Provider::Resdiary,
            resdiary(863, "other@animalania.example.com"),
        ),
    ] {
        let (status, text) = send(&server, p, &serde_json::to_vec(&body).unwrap(), now);
        assert_eq!(status, 200, "{p}: {text}");
    }
    let list = people(&ws);
    assert_eq!(
        list.len(),
        3,
        "Ana once, two separate ResDiary customers: {list:#?}"
    );
    let ana = find_person(&list, "ana.silva@example.com");
    let sources: Vec<&str> = ana["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["provider"].as_str().unwrap())
        .collect();
    assert_eq!(sources, vec!["tiquo", "zupy"], "{ana:#}");
    assert_eq!(ana["phones"], json!(["+5511965958122"]));
    let detail = person(&ws, &ana["id"]);
    let zupy_source = detail["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "zupy")
        .unwrap();
    assert!(
        zupy_source["linked_because"]
            .as_str()
            .unwrap_or_default()
            .contains("ana.silva@example.com")
            || zupy_source["linked_because"]
                .as_str()
                .unwrap_or_default()
                .contains("+5511965958122"),
        "each link says why: {zupy_source}"
    );
    for r in list
        .iter()
        .filter(|p| p["sources"][0]["provider"] == "resdiary")
    {
        assert_eq!(r["phones"], json!([]), "'3' is not a phone number: {r}");
    }
    // Search: name, email, phone, case-insensitive.
    for query in [
        "ana",
        "SILVA",
        "ana.silva@",
        "example.com",
        "96595",
        "+55 11 9659",
    ] {
        let found = ws.json(&["customers", "list", "--search", query]);
        let found = found.as_array().unwrap();
        assert!(
            found.iter().any(|p| p["id"] == ana["id"]),
            "search {query:?} must find Ana: {found:#?}"
        );
    }
    let none = ws.json(&["customers", "list", "--search", "zzzz-nobody"]);
    assert_eq!(none.as_array().unwrap().len(), 0);
}

#[test]
fn every_provider_reads_as_readable_diffs() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let now = Utc::now();
    let at = |m: i64| iso(now - Duration::minutes(m));
    let plain_customer = |name: &str, spam: Value| {
        json!({
            "id": "c_01HD44FHDPG82VQ4QNHDR4N2T0", "email": {"email": "peter@example.com", "isVerified": false, "verifiedAt": null},
            "externalId": null, "fullName": name, "shortName": "Peter", "markedAsSpamAt": spam, "markedAsSpamBy": null,
            "customerGroupMemberships": [], "createdAt": "2023-10-04T14:17:41.991Z",
            "createdBy": {"actorType": "system", "system": "email_inbound_handler"},
            "updatedAt": "2023-10-19T14:21:43.616Z", "updatedBy": {"actorType": "system", "system": "x"}
        })
    };
    let cases: Vec<(Provider, Value, &str)> = vec![
        (
            Provider::Tiquo,
            json!({
                "id": "evt_def456", "type": "customer.updated", "created": at(5),
                "data": {"id": "cust_xyz789", "firstName": "John", "lastName": "Doe", "email": "john.new@example.com",
                         "phone": "+14155550123", "loyaltyPoints": 150, "tags": ["VIP"], "updatedAt": at(5)},
                "previousAttributes": {"email": "john@example.com", "loyaltyPoints": 100, "tags": []}
            }),
            "email",
        ),
        (
            Provider::Plain,
            json!({
                "timestamp": at(4), "workspaceId": "w_1", "id": "pEv_01HD450JT0RPBT7RRKS1ZQJYBA", "type": "customer.customer_updated",
                "payload": {"eventType": "customer.customer_updated",
                            "customer": plain_customer("Peter Santos", json!(at(4))),
                            "previousCustomer": plain_customer("Peter Santos", Value::Null)},
                "webhookMetadata": {"webhookTargetId": "wh_1", "webhookTargetVersion": "2024-09-18",
                                    "webhookDeliveryAttemptId": "a1", "webhookDeliveryAttemptNumber": "1",
                                    "webhookDeliveryAttemptTimestamp": iso(now)}
            }),
            "plain.markedAsSpamAt",
        ),
        (
            Provider::Resdiary,
            json!({
                "ChangeDateTime": at(3),
                "Customer": {"Id": 9, "FirstName": "Rui", "Surname": "Costa", "MobileNumber": "07911 123456", "Email": "rui@example.com",
                             "ReceiveGroupEmailMarketing": false},
                "Changes": [{"ChangeType": "CustomerGroupEmailMarketingOptinChanged", "OldValue": true, "NewValue": false},
                            {"ChangeType": "CustomerSomethingNewChanged", "OldValue": "x", "NewValue": "y"}]
            }),
            "resdiary.CustomerSomethingNewChanged",
        ),
        (
            Provider::Zupy,
            json!({
                "event": "tier.upgraded", "timestamp": at(2), "company_id": "comp_bella_vista",
                "customer": {"member_id": "ZP-4F95FB0A", "name": "João Silva", "whatsapp": "+5511965958123",
                             "email": "joao@example.com", "tier": "silver"},
                "tier_change": {"previous_tier": "bronze", "new_tier": "silver", "qualification_metric": "points_balance",
                                "qualification_value": 2500, "next_tier_requirements": null}
            }),
            "loyalty_tier",
        ),
    ];
    for (p, body, field) in cases {
        let (status, text) = send(&server, p, &serde_json::to_vec(&body).unwrap(), now);
        assert_eq!(status, 200, "{p}: {text}");
        let list = ws.json(&["customers", "list"]);
        let all: Vec<Value> = list.as_array().unwrap().clone();
        let entry = all
            .iter()
            .flat_map(|p| {
                person(&ws, &p["id"])["timeline"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|e| {
                e["provider"] == p.id()
                    && e["changes"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["field"] == field))
            })
            .unwrap_or_else(|| panic!("{p}: no timeline entry changing {field}"));
        let summary = entry["summary"].as_str().unwrap();
        assert!(
            summary.len() > 5 && summary.chars().next().unwrap().is_uppercase(),
            "{p}: a sentence: {summary:?}"
        );
        if p == Provider::Zupy {
            assert_eq!(entry["kind"], "tier_changed", "{entry}");
            assert!(summary.contains("Silver"), "{summary}");
        }
    }
}

#[test]
fn unknown_too_large_unparseable_and_deleted_are_handled() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve_with(&["--body-limit", "2048"]);
    let now = Utc::now();
    let body = providers::sample_body(Provider::Tiquo, "cust_1", "a@example.com", now);
    let headers = signed(Provider::Tiquo, &test_secret(Provider::Tiquo), &body, now);
    let (status, _) = post(&agent(), &server.url("/hooks/tiquo/nope"), &headers, &body);
    assert_eq!(status, 404, "unknown connection");
    let (status, _) = post(&agent(), &server.url("/hooks/stripe/main"), &headers, &body);
    assert_eq!(status, 404, "unknown provider");

    let big = vec![b'x'; 4096];
    let (status, text) = send(&server, Provider::Resdiary, &big, now);
    assert_eq!(status, 413, "{text}");

    // Genuine but not JSON: kept, acknowledged, marked.
    let garbage = b"\xff\xfe not json {".to_vec();
    let (status, text) = send(&server, Provider::Resdiary, &garbage, now);
    assert_eq!(
        status, 200,
        "genuine but unreadable is still acknowledged: {text}"
    );

    // Created then deleted: stays listed, marked deleted, with history.
    let created = json!({"id": "evt_c", "type": "customer.created", "created": iso(now - Duration::hours(1)),
        "data": {"id": "cust_del", "firstName": "Dee", "lastName": "Leted", "email": "dee@example.com"}});
    let deleted = json!({"id": "evt_d", "type": "customer.deleted", "created": iso(now),
        "data": {"id": "cust_del", "deletedAt": iso(now)}});
    for body in [created, deleted] {
        let (status, text) = send(
            &server,
            Provider::Tiquo,
            &serde_json::to_vec(&body).unwrap(),
            now,
        );
        assert_eq!(status, 200, "{text}");
    }
    let health = agent()
        .get(server.url("/health"))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(health, 200);

    let deliveries = ws.json(&["deliveries", "list"]);
    let marked: Vec<&Value> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "needs_attention")
        .collect();
    assert_eq!(marked.len(), 1, "{deliveries:#}");
    assert_eq!(marked[0]["provider"], "resdiary");
    let rejected = ws.json(&["deliveries", "list", "--rejected"]);
    let codes: Vec<&str> = rejected
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    for code in ["unknown_connection", "unknown_provider", "too_large"] {
        assert!(codes.contains(&code), "{code} logged: {codes:?}");
    }
    let list = people(&ws);
    let dee = find_person(&list, "dee@example.com");
    assert_eq!(dee["deleted"], true);
    let detail = person(&ws, &dee["id"]);
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["created", "deleted"]);
    assert_eq!(
        detail["profile"]["email"], "dee@example.com",
        "history and profile are kept"
    );
}

#[test]
fn reprocess_rebuilds_the_same_result_and_cli_errors_are_plain() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let now = Utc::now();
    for i in 0..20 {
        let p = Provider::ALL[i % Provider::ALL.len()];
        // Shared emails across providers, events out of order.
        // (Plain's sample carries its delivery-attempt time, which must be current.)
        let at = if p == Provider::Plain {
            now
        } else {
            now - Duration::minutes(((i * 7) % 13) as i64)
        };
        let body = providers::sample_body(
            p,
            &format!("c{}", i % 7),
            &format!("p{}@example.com", i % 5),
            at,
        );
        let (status, text) = send(&server, p, &body, now);
        assert_eq!(status, 200, "{p}: {text}");
    }
    drop(server);
    let snapshot = |ws: &Workspace| {
        let list = people(ws);
        let details: Vec<Value> = list.iter().map(|p| person(ws, &p["id"])).collect();
        (list, details)
    };
    let before = snapshot(&ws);
    assert!(!before.0.is_empty());
    let out = ws.ok(&["reprocess"]);
    assert!(out.contains("Re-processed 20 messages"), "{out}");
    assert_eq!(
        snapshot(&ws),
        before,
        "reprocess must give the same people and timelines"
    );

    let out = ws.run(&["customers", "show", "99999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no customer with id 99999"));
    let out = ws.run(&["connection", "add", "stripe", "x", "--no-secret"]);
    assert!(!out.status.success());
    let out = ws.run(&["connection", "add", "tiquo", "second"]);
    assert!(
        !out.status.success(),
        "env mode without the variable must fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLIENTELE_SECRET_TIQUO_SECOND"));
    let out = ws.run(&["connection", "add", "tiquo", "MAIN", "--no-secret"]);
    assert!(
        !out.status.success(),
        "a name differing only by case is refused"
    );
    // Global options after the subcommand work too.
    let out = std::process::Command::new(clientele_tests::clientele_bin())
        .args([
            "connection",
            "list",
            "--json",
            "--secrets",
            "env",
            "--data-dir",
        ])
        .arg(ws.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), Provider::ALL.len());
}
