//! Forgetting a customer for good, end to end: the real `clientele` binary and listener, real
//! HTTP, a real data folder searched byte by byte afterwards (what `grep -a` would find).

use chrono::Utc;
use clientele_core::{Provider, providers};
use clientele_tests::{Server, Workspace, agent, findable, post, signed, test_secret};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NAME: &str = "Quixotic";
const EMAIL: &str = "zelda.quixotic@example.org";
const PHONE: &str = "+447911123456";
/// The phone as any of its stored forms would contain it.
const PHONE_DIGITS: &str = "7911123456";

fn send(server: &Server, p: Provider, body: &[u8]) -> (u16, String) {
    let now = Utc::now();
    let headers = signed(p, &test_secret(p), body, now);
    post(
        &agent(),
        &server.url(&format!("/hooks/{}/main", p.id())),
        &headers,
        body,
    )
}

fn tiquo(
    event: &str,
    customer: &str,
    first: &str,
    last: &str,
    email: &str,
    phone: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event, "type": "customer.created", "created": Utc::now().to_rfc3339(),
        "data": {"id": customer, "firstName": first, "lastName": last, "email": email,
                 "phone": phone}
    }))
    .unwrap()
}

/// A provider's own sample body about `customer`, with the name (and phone) changed.
fn sample(p: Provider, customer: &str, email: &str, last: &str, phone: &str) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&providers::sample_body(p, customer, email, Utc::now())).unwrap();
    match p {
        Provider::Vagaro => {
            v["payload"]["customerLastName"] = json!(last);
            v["payload"]["mobilePhone"] = json!(phone);
        }
        Provider::Plain => {
            v["payload"]["customer"]["fullName"] = json!(format!("Zelda {last}"));
        }
        _ => unreachable!("only Vagaro and Plain are used"),
    }
    serde_json::to_vec(&v).unwrap()
}

fn people(ws: &Workspace) -> Vec<Value> {
    ws.json(&["customers", "list"])
        .as_array()
        .cloned()
        .expect("an array of people")
}

fn id_with_email(ws: &Workspace, email: &str) -> Option<i64> {
    people(ws)
        .iter()
        .find(|p| {
            p["emails"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x == email))
        })
        .map(|p| p["id"].as_i64().expect("an id"))
}

/// Waits until `done` holds, for a debug build on a busy machine.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A person as `customers show --json` prints them, without the ids `reprocess` renumbers.
fn shown(ws: &Workspace, id: i64) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !["id", "source_profile", "person_id"].contains(&k.as_str()));
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = ws.json(&["customers", "show", &id.to_string()]);
    strip(&mut v);
    v
}

#[test]
fn a_forgotten_customer_is_gone_from_every_file_while_the_listener_runs() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    let exports = tempfile::tempdir().unwrap();

    // Zelda at three providers, linked by her email; Bob and Carol besides.
    let zelda_tiquo = tiquo("evt_z1", "cus_z", "Zelda", NAME, EMAIL, PHONE);
    for (p, body) in [
        (Provider::Tiquo, zelda_tiquo.clone()),
        (
            Provider::Vagaro,
            sample(Provider::Vagaro, "va_z", EMAIL, NAME, PHONE),
        ),
        (
            Provider::Plain,
            sample(Provider::Plain, "c_zelda", EMAIL, NAME, ""),
        ),
        (
            Provider::Tiquo,
            tiquo(
                "evt_b1",
                "cus_b",
                "Bob",
                "Other",
                "bob@example.net",
                "+447700900555",
            ),
        ),
        (
            Provider::Vagaro,
            sample(
                Provider::Vagaro,
                "va_c",
                "carol@example.net",
                "Carolsson",
                "",
            ),
        ),
    ] {
        let (status, text) = send(&server, p, &body);
        assert_eq!(
            (status, text.contains("stored")),
            (200, true),
            "{p}: {text}"
        );
    }
    // A forged request carrying her data is refused (and its body is never kept).
    let forged = signed(Provider::Tiquo, "not-the-secret", &zelda_tiquo, Utc::now());
    let url = server.url("/hooks/tiquo/main");
    assert_eq!(post(&agent(), &url, &forged, &zelda_tiquo).0, 401);

    wait_for("Zelda's three records to be one person", || {
        id_with_email(&ws, EMAIL).is_some_and(|id| {
            ws.json(&["customers", "show", &id.to_string()])["sources"]
                .as_array()
                .is_some_and(|s| s.len() == 3)
        })
    });
    let zelda = id_with_email(&ws, EMAIL).unwrap();
    let bob = id_with_email(&ws, "bob@example.net").expect("Bob");
    let carol = id_with_email(&ws, "carol@example.net").expect("Carol");

    // An incremental export includes her (its file is outside the data folder, and Clientele's
    // reach).
    let profile = exports.path().join("sync.json");
    std::fs::write(
        &profile,
        serde_json::to_vec(
            &json!({"name": "sync", "rows": "people", "incremental": true,
            "columns": [{"header": "Email", "source": "email"},
                        {"header": "Name", "source": "display_name"}],
            "format": {"type": "csv", "preset": "other"}}),
        )
        .unwrap(),
    )
    .unwrap();
    ws.ok(&["export-profile", "import", profile.to_str().unwrap()]);
    let file = exports.path().join("1.csv");
    ws.ok(&[
        "export",
        "--profile",
        "sync",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&std::fs::read(&file).unwrap()).contains(EMAIL));
    assert!(
        !findable(ws.path(), &[NAME, EMAIL, PHONE_DIGITS]).is_empty(),
        "the search must find her before she is forgotten"
    );
    let bob_before = shown(&ws, bob);
    let carol_before = shown(&ws, carol);

    // Without a terminal and without --yes: refused, nothing changed.
    let refused = ws.run(&["customers", "forget", &zelda.to_string()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("--yes") && said.contains("Nothing was changed"),
        "{said}"
    );
    assert_eq!(id_with_email(&ws, EMAIL), Some(zelda));

    // Forgotten while `clientele serve` runs on the same folder.
    let outcome = ws.json(&[
        "customers",
        "forget",
        &zelda.to_string(),
        "--yes",
        "--keep-forgetting",
    ]);
    assert_eq!(
        (
            &outcome["people"],
            &outcome["records"],
            &outcome["deliveries"],
            &outcome["relay"]["state"]
        ),
        (&json!(1), &json!(3), &json!(3), &json!("not_joined")),
        "{outcome}"
    );
    assert_eq!(id_with_email(&ws, EMAIL), None);
    assert!(
        ws.json(&["customers", "list", "--search", "quixotic"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The provider retries the old delivery: acknowledged, not stored again.
    let (status, text) = send(&server, Provider::Tiquo, &zelda_tiquo);
    assert_eq!((status, text.contains("duplicate")), (200, true), "{text}");
    // A new message about her: acknowledged, not kept, counted.
    let (status, text) = send(
        &server,
        Provider::Tiquo,
        &tiquo("evt_z2", "cus_z", "Zelda", NAME, EMAIL, PHONE),
    );
    assert_eq!((status, text.contains("withheld")), (200, true), "{text}");
    let kept = ws.json(&["customers", "keep-forgetting"]);
    assert_eq!(kept[0]["withheld"], 1, "{kept}");
    assert_eq!(kept[0]["records"], 3, "{kept}");

    let log = ws.json(&["customers", "erasures"]);
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["reason"], "request");
    let log_text = log.to_string().to_lowercase();
    for needle in [NAME, EMAIL, PHONE_DIGITS, "cus_z", "va_z", "c_zelda"] {
        assert!(
            !log_text.contains(&needle.to_lowercase()),
            "{needle} in the erasure log"
        );
    }

    // Gone from every file of the data folder, listener still running…
    assert_eq!(
        findable(ws.path(), &[NAME, EMAIL, PHONE_DIGITS]),
        Vec::<String>::new()
    );
    assert_eq!(shown(&ws, bob), bob_before, "Bob untouched");
    assert_eq!(shown(&ws, carol), carol_before, "Carol untouched");
    server.stop();
    // …and after it stopped (its last checkpoint and shutdown wrote nothing of hers back).
    assert_eq!(
        findable(ws.path(), &[NAME, EMAIL, PHONE_DIGITS]),
        Vec::<String>::new()
    );

    // Rebuilding gives the others as they were, and doesn't bring her back.
    ws.ok(&["reprocess"]);
    assert_eq!(id_with_email(&ws, EMAIL), None);
    let bob = id_with_email(&ws, "bob@example.net").expect("Bob after reprocess");
    let carol = id_with_email(&ws, "carol@example.net").expect("Carol after reprocess");
    assert_eq!(shown(&ws, bob), bob_before);
    assert_eq!(shown(&ws, carol), carol_before);
}
