//! Makes `tests/fixtures/store-vN/`: a small but rich data folder written by *this* build of
//! `clientele` (schema N), and what this build's commands print about it. The upgrade test
//! (`tests/tests/upgrade.rs`) opens a copy with a later build — which migrates it — and expects
//! the same customers, timelines, activity and connections.
//!
//! Everything goes through the real `clientele` binary beside this program (`connection add`,
//! `serve` and signed deliveries over HTTP, `customers merge|split|forget`, `settings`,
//! `export-profile import`, `export`, `connection test`), so the file is exactly what a user's
//! folder looks like. Run it only at the commit the fixture's README names (the last one of
//! schema N; the output folder's name says N, and a file of another schema is refused): a later
//! build would write a later schema.
//!
//! ```text
//! cargo build -p clientele-cli --bin clientele -p clientele-tests --bin make_store_fixture
//! $CARGO_TARGET_DIR/debug/make_store_fixture tests/fixtures/store-v7
//! ```

use chrono::{DateTime, Duration, TimeZone, Utc};
use clientele_core::{Provider, providers};
use clientele_tests::{Server, Workspace, agent, post, signed, test_secret};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const FIRST: &[&str] = &[
    "Ana", "Bruno", "Carla", "Daniel", "Eva", "Filipe", "Grace", "Hugo", "Ines", "Joao", "Karen",
    "Luis", "Maria", "Nuno", "Olivia", "Pedro",
];
const LAST: &[&str] = &[
    "Silva", "Santos", "Smith", "Jones", "Taylor", "Brown", "Patel", "Khan", "O'Brien", "Rossi",
    "Garcia", "Novak", "Dubois",
];
const PEOPLE: usize = 40;
/// The Vagaro business id its sample carries; the fixture names it.
const BUSINESS: &str = "U2FsdGVkX18zRbwyUxRZaHNTYGwjKCpDdAkKP4eUDsE=";

#[derive(Clone)]
struct Person {
    first: &'static str,
    last: &'static str,
    email: String,
    /// +44 7900 NNNNNN
    mobile: u32,
    points: i64,
}

impl Person {
    fn new(k: usize) -> Person {
        let first = FIRST[k % FIRST.len()];
        let last = LAST[(k * 7) % LAST.len()];
        let local: String = format!("{first}.{last}")
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        Person {
            first,
            last,
            email: format!("{local}{k}@example.com"),
            mobile: 100_000 + k as u32 * 37,
            points: 0,
        }
    }
    fn e164(&self) -> String {
        format!("+447900{:06}", self.mobile)
    }
    fn national(&self) -> String {
        format!("07900 {:06}", self.mobile)
    }
}

fn customer_ref(p: Provider, k: usize) -> String {
    match p {
        Provider::Tiquo => format!("cus_{k:05}"),
        Provider::Resdiary => format!("{}", 4_000_000 + k),
        Provider::Vagaro => format!("VG{k:06}"),
        Provider::Plain => format!("c_01FIXTURE{k:06}"),
        Provider::Zupy => format!("ZP-{k:05}"),
        Provider::Standard => format!("std_{k}"),
    }
}

/// One event about one record: a snapshot or change at `at`, `seq` 0 being "created".
struct Planned {
    p: Provider,
    k: usize,
    seq: usize,
    at: DateTime<Utc>,
    deleted: bool,
    person: Person,
    before: Person,
    /// Linked to the person by phone only: a different email, the number written nationally.
    phone_only: bool,
}

fn body(e: &Planned, serial: usize, now: DateTime<Utc>) -> Vec<u8> {
    let (person, before, p) = (&e.person, &e.before, e.p);
    let customer = customer_ref(p, e.k);
    let email = if e.phone_only {
        format!("other.{}", person.email)
    } else {
        person.email.clone()
    };
    let phone = if e.phone_only {
        person.national()
    } else {
        person.e164()
    };
    let sample = providers::sample_body(p, &customer, &email, e.at);
    let mut v: Value = serde_json::from_slice(&sample).expect("samples are JSON");
    let created = e.seq == 0;
    match p {
        Provider::Tiquo => {
            v["id"] = json!(format!("evt_fixture_{serial:05}"));
            let d = &mut v["data"];
            d["firstName"] = json!(person.first);
            d["lastName"] = json!(person.last);
            d["phone"] = json!(phone);
            d["loyaltyPoints"] = json!(person.points);
            if e.deleted {
                v["type"] = json!("customer.deleted");
                v["data"]["deletedAt"] = v["created"].clone();
            } else if !created {
                v["type"] = json!("customer.updated");
                v["data"]["updatedAt"] = v["created"].clone();
                v["previousAttributes"] = json!({"loyaltyPoints": before.points});
            }
        }
        Provider::Resdiary => {
            let c = &mut v["Customer"];
            c["FirstName"] = json!(person.first);
            c["Surname"] = json!(person.last);
            c["MobileNumber"] = json!(person.national());
            c["Email"] = json!(email.to_uppercase());
            c["ReceiveRestaurantEmailMarketing"] = json!(e.seq % 2 == 1);
            if e.deleted {
                v["Changes"] =
                    json!([{"ChangeType": "CustomerDeleted", "OldValue": null, "NewValue": null}]);
            } else if !created {
                v["Changes"] = json!([{"ChangeType": "ReceiveRestaurantEmailMarketingChanged",
                    "OldValue": e.seq.is_multiple_of(2), "NewValue": e.seq % 2 == 1}]);
            }
        }
        Provider::Vagaro => {
            v["id"] = json!(format!("0B1C2D3E-0000-4000-8000-{serial:012}"));
            if !created {
                v["action"] = json!("updated");
            }
            let c = &mut v["payload"];
            c["customerFirstName"] = json!(person.first);
            c["customerLastName"] = json!(person.last);
            c["mobilePhone"] = json!(phone);
            c["countryCode"] = json!("GB");
            c["points"] = json!(person.points);
        }
        Provider::Plain => {
            v["id"] = json!(format!("pEv_FIXTURE{serial:05}"));
            // Plain's replay window is on the delivery attempt, which is now.
            v["webhookMetadata"]["webhookDeliveryAttemptId"] =
                json!(format!("whAttempt_{serial:05}"));
            v["webhookMetadata"]["webhookDeliveryAttemptTimestamp"] =
                json!(now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            let c = &mut v["payload"]["customer"];
            c["fullName"] = json!(format!("{} {}", person.first, person.last));
            c["shortName"] = json!(person.first);
            if e.deleted {
                let previous = v["payload"]["customer"].clone();
                v["type"] = json!("customer.customer_deleted");
                v["payload"] = json!({"eventType": "customer.customer_deleted",
                    "previousCustomer": previous});
            } else if !created {
                let mut previous = c.clone();
                previous["fullName"] = json!(format!("{} {}", before.first, before.last));
                v["type"] = json!("customer.customer_updated");
                v["payload"]["eventType"] = json!("customer.customer_updated");
                v["payload"]["previousCustomer"] = previous;
            }
        }
        Provider::Zupy => {
            if created {
                let c = &mut v["customer"];
                c["name"] = json!(format!("{} {}", person.first, person.last));
                c["whatsapp"] = json!(phone);
            } else {
                v = json!({
                    "event": "points.earned",
                    "webhook_id": format!("wh_fixture_{serial:05}"),
                    "timestamp": v["timestamp"],
                    "data": {
                        "customer_id": customer,
                        "points_added": person.points - before.points,
                        "new_balance": person.points,
                        "source": "purchase",
                        "reference_id": format!("sale_{serial}"),
                    }
                });
            }
        }
        Provider::Standard => {
            v["data"]["first_name"] = json!(person.first);
            v["data"]["last_name"] = json!(person.last);
            v["data"]["phone"] = json!(phone);
            v["data"]["loyalty_points"] = json!(person.points);
            if e.deleted {
                v["type"] = json!("customer.deleted");
            } else if !created {
                v["type"] = json!("customer.updated");
            }
        }
    }
    serde_json::to_vec(&v).expect("serialize")
}

/// Every event, in the order it is sent: mostly in time order, but some records' last two
/// updates swapped (an older snapshot arriving after a newer one).
fn plan() -> Vec<Planned> {
    let start = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
    let mut records: Vec<Vec<Planned>> = Vec::new();
    for k in 0..PEOPLE {
        let mut person = Person::new(k);
        let mut providers = vec![(Provider::ALL[k % 6], false)];
        if k % 3 == 0 {
            providers.push((Provider::ALL[(k + 2) % 6], false)); // linked by email
        }
        if k % 4 == 1 {
            providers.push((Provider::ALL[(k + 3) % 6], true)); // linked by phone only
        }
        for (i, (p, phone_only)) in providers.into_iter().enumerate() {
            let mut events = Vec::new();
            let mut at = start + Duration::hours(k as i64 * 5 + i as i64);
            let updates = 1 + (k + i) % 4;
            for seq in 0..=updates {
                let before = person.clone();
                if seq > 0 {
                    person.points += 10 * (seq as i64 + k as i64 % 5);
                    if (k + seq) % 9 == 0 {
                        person.last = LAST[(k + seq) % LAST.len()];
                    }
                }
                events.push(Planned {
                    p,
                    k,
                    seq,
                    at,
                    deleted: false,
                    person: person.clone(),
                    before,
                    phone_only,
                });
                at += Duration::hours(7 + (seq as i64 * 13) % 50);
            }
            let deletable = matches!(
                p,
                Provider::Tiquo | Provider::Plain | Provider::Resdiary | Provider::Standard
            );
            if deletable && k % 10 == 5 {
                events.push(Planned {
                    p,
                    k,
                    seq: updates + 1,
                    at: at + Duration::days(3),
                    deleted: true,
                    person: person.clone(),
                    before: person.clone(),
                    phone_only,
                });
            }
            let n = events.len();
            if k % 5 == 2 && n >= 3 && !events[n - 1].deleted {
                events.swap(n - 1, n - 2);
            }
            records.push(events);
        }
    }
    // Interleave the records as a day's traffic would.
    let mut out = Vec::new();
    let mut round = 0;
    loop {
        let mut any = false;
        for r in &mut records {
            if round < r.len() {
                any = true;
                out.push(std::mem::replace(
                    &mut r[round],
                    Planned {
                        p: Provider::Tiquo,
                        k: 0,
                        seq: 0,
                        at: start,
                        deleted: false,
                        person: Person::new(0),
                        before: Person::new(0),
                        phone_only: false,
                    },
                ));
            }
        }
        if !any {
            break;
        }
        round += 1;
    }
    out
}

fn send(server: &Server, p: Provider, body: &[u8]) -> Value {
    let headers = signed(p, &test_secret(p), body, Utc::now());
    let (status, text) = post(
        &agent(),
        &server.url(&format!("/hooks/{}/main", p.id())),
        &headers,
        body,
    );
    assert_eq!(status, 200, "{p:?}: {text}");
    serde_json::from_str(&text).expect("a JSON answer")
}

/// The id of the person holding `provider`'s record `customer`.
fn person_with(ws: &Workspace, p: Provider, customer: &str) -> i64 {
    ws.json(&["customers", "list", "--limit", "1000"])
        .as_array()
        .unwrap()
        .iter()
        .find(|person| {
            person["sources"].as_array().unwrap().iter().any(|s| {
                s["provider"] == p.id()
                    && s["customer_ref"] == customer
                    && s["connection"] == "main"
            })
        })
        .and_then(|person| person["id"].as_i64())
        .unwrap_or_else(|| panic!("nobody holds {p:?} {customer}"))
}

/// Starts the app's engine on `dir` with the Tiquo secret, listens, sends a test event through
/// "main", and stops.
fn send_test_event(dir: &Path) {
    use clientele_secrets::SecretStore;
    let secrets = clientele_secrets::MemoryStore::new();
    secrets
        .set(
            Provider::Tiquo,
            "main",
            &clientele_core::Sensitive::new(test_secret(Provider::Tiquo)),
        )
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let engine = clientele_engine::Engine::start(dir, std::sync::Arc::new(secrets)).unwrap();
        engine.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let api = engine.operations().clone();
        let sent =
            tokio::task::spawn_blocking(move || api.send_test_event("tiquo", "main", Utc::now()))
                .await
                .unwrap()
                .unwrap();
        assert!(sent.ok, "{}", sent.message);
        engine.flush().await.unwrap();
        engine.shutdown().await;
    });
}

fn write_json(path: &Path, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .expect("usage: make_store_fixture OUT_DIR (tests/fixtures/store-vN)");
    // The schema the fixture is of, from its folder's name: `store-v7` holds a schema-7 file.
    let schema: i64 = out
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("store-v"))
        .and_then(|n| n.parse().ok())
        .expect("the output folder is named store-vN, N the schema the fixture is of");
    let mut ws = Workspace::new();
    for p in Provider::ALL {
        ws.add_connection(p, "main", Some(&test_secret(p)));
    }
    // Numbers written without a country code are read as British.
    ws.ok(&["settings", "default-country", "GB"]);
    let server = ws.serve();
    let now = Utc::now();
    let mut stored = 0;
    let mut duplicates = 0;
    for (serial, e) in plan().iter().enumerate() {
        let bytes = body(e, serial, now);
        let answer = send(&server, e.p, &bytes);
        assert_eq!(answer["status"], "stored", "{answer}");
        stored += 1;
        if serial % 7 == 3 {
            // The provider sends it again: the same dedupe key.
            let again = send(&server, e.p, &bytes);
            assert_eq!(again["status"], "duplicate", "{again}");
            duplicates += 1;
        }
    }
    // A delivery that needs attention: correctly signed, but its body is cut short.
    let broken =
        br#"{"id": "evt_fixture_broken", "type": "customer.updated", "data": {"id": "cus_00001", "#;
    send(&server, Provider::Tiquo, broken);
    stored += 1;

    // Decisions by hand: two different people shown as one, and one record set apart.
    let a = person_with(&ws, Provider::ALL[0], &customer_ref(Provider::ALL[0], 0));
    let b = person_with(&ws, Provider::ALL[2], &customer_ref(Provider::ALL[2], 2));
    ws.ok(&["customers", "merge", &a.to_string(), &b.to_string()]);
    // Person 3 has a Plain record and a Standard Webhooks one, linked by email.
    let family = person_with(&ws, Provider::Plain, &customer_ref(Provider::Plain, 3));
    let record = format!("standard/main/{}", customer_ref(Provider::Standard, 3));
    ws.ok(&[
        "customers",
        "split",
        &family.to_string(),
        "--record",
        &record,
    ]);
    // One person forgotten for good, and kept forgotten.
    let gone = person_with(
        &ws,
        Provider::ALL[7 % 6],
        &customer_ref(Provider::ALL[7 % 6], 7),
    );
    ws.ok(&[
        "customers",
        "forget",
        &gone.to_string(),
        "--keep-forgetting",
        "--yes",
    ]);
    // A later message about them is acknowledged and not kept (counted as withheld).
    let late = Planned {
        p: Provider::ALL[7 % 6],
        k: 7,
        seq: 9,
        at: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap(),
        deleted: false,
        person: Person::new(7),
        before: Person::new(7),
        phone_only: false,
    };
    send(&server, late.p, &body(&late, 9_999, now));
    ws.ok(&["settings", "business-name", BUSINESS, "Downtown Salon"]);
    let profile = ws.path().join("mailing.json");
    std::fs::write(
        &profile,
        serde_json::to_vec(&json!({"name": "mailing", "rows": "people",
            "columns": [
                {"header": "Email", "source": "email"},
                {"header": "Name", "source": "full_name", "transform": {"case": "upper"}},
                {"header": "Phone", "source": "phone"},
                {"header": "Points", "source": "loyalty_points"}
            ],
            "format": {"type": "csv", "preset": "excel"}}))
        .unwrap(),
    )
    .unwrap();
    ws.ok(&["export-profile", "import", profile.to_str().unwrap()]);
    // A timeline export with each event's person's email and name (what
    // `export_bench` runs), written from the fixture into `exports/` with the mailing list.
    let timeline = ws.path().join("timeline.json");
    std::fs::write(
        &timeline,
        serde_json::to_vec(&json!({"name": "timeline", "rows": "events",
            "columns": [
                {"header": "When", "source": "occurred_at"},
                {"header": "Provider", "source": "provider"},
                {"header": "What", "source": "kind"},
                {"header": "Summary", "source": "summary"},
                {"header": "Email", "source": "email"},
                {"header": "Name", "source": "full_name"}
            ],
            "format": {"type": "csv"}}))
        .unwrap(),
    )
    .unwrap();
    ws.ok(&["export-profile", "import", timeline.to_str().unwrap()]);
    let export_dir = tempfile::tempdir().unwrap();
    ws.ok(&[
        "export",
        "--profile",
        "mailing",
        "--out",
        export_dir.path().join("mailing.csv").to_str().unwrap(),
    ]);
    let (status, log) = server.stop_with_log();
    assert!(status.success(), "serve stopped badly: {log}");

    // "Send a test event", as the Connections screen does: only the process that listens can
    // (its token marks the event a test), so an engine in this process, as the app starts one.
    send_test_event(ws.path());

    // Fold the WAL into the file, so the fixture is one file.
    let db = ws.path().join("clientele.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(
            version, schema,
            "this build writes schema {version}: run it at the last commit of schema {schema}"
        );
    }
    let data = out.join("data");
    let expected = out.join("expected");
    let exports = out.join("exports");
    for d in [&data, &expected, &exports] {
        if d.exists() {
            std::fs::remove_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(&db, data.join("clientele.db")).unwrap();
    // What this build prints about it, from the copy (no listener, nothing pending).
    let copy = Workspace {
        dir: tempfile::tempdir().unwrap(),
        secrets: ws.secrets.clone(),
    };
    std::fs::copy(&db, copy.path().join("clientele.db")).unwrap();
    let outputs = clientele_tests::store_fixture::outputs(&copy);
    for (name, value) in &outputs {
        write_json(&expected.join(name), value);
    }
    // The files its export profiles write (the export history of the copy, not the fixture).
    for name in ["mailing", "timeline"] {
        let file = exports.join(format!("{name}.csv"));
        copy.ok(&["export", "--profile", name, "--out", file.to_str().unwrap()]);
    }
    let size = std::fs::metadata(data.join("clientele.db")).unwrap().len();
    println!(
        "make_store_fixture: {stored} deliveries stored, {duplicates} duplicates, {} people, {} files of expected output, clientele.db {size} bytes",
        outputs[1].1.as_array().unwrap().len(),
        outputs.len()
    );
}
