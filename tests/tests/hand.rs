//! People corrected by hand from the command line, while `clientele serve` receives into the
//! same data folder: merge, split, the list of decisions, undo — and both surviving later
//! deliveries that would link again and `reprocess`.

use chrono::{Duration, Utc};
use clientele_core::{Provider, providers};
use clientele_tests::{Server, Workspace, agent, post, signed, test_secret};
use serde_json::Value;
use std::collections::BTreeSet;

fn send(server: &Server, p: Provider, customer: &str, email: &str, seconds_ago: i64) {
    let at = Utc::now() - Duration::seconds(seconds_ago);
    let body = providers::sample_body(p, customer, email, at);
    // Signed now (providers refuse old signatures); the event itself happened earlier.
    let headers = signed(p, &test_secret(p), &body, Utc::now());
    let (status, text) = post(
        &agent(),
        &server.url(&format!("/hooks/{}/main", p.id())),
        &headers,
        &body,
    );
    assert_eq!(status, 200, "{p:?} {customer}: {text}");
}

/// Who is with whom: each person's set of records (`provider/connection/ref`).
fn groups(ws: &Workspace) -> BTreeSet<BTreeSet<String>> {
    ws.json(&["customers", "list"])
        .as_array()
        .expect("people")
        .iter()
        .map(|p| {
            p["sources"]
                .as_array()
                .expect("sources")
                .iter()
                .map(|s| {
                    format!(
                        "{}/{}/{}",
                        s["provider"].as_str().unwrap(),
                        s["connection"].as_str().unwrap(),
                        s["customer_ref"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .collect()
}

fn group(records: &[&str]) -> BTreeSet<String> {
    records.iter().map(|r| r.to_string()).collect()
}

/// The id of the person holding `record`.
fn person_with(ws: &Workspace, record: &str) -> i64 {
    let (provider, rest) = record.split_once('/').unwrap();
    let customer = rest.rsplit('/').next().unwrap();
    ws.json(&["customers", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["provider"] == provider && s["customer_ref"] == customer)
        })
        .and_then(|p| p["id"].as_i64())
        .unwrap_or_else(|| panic!("nobody holds {record}"))
}

#[test]
fn merge_split_and_undo_beside_a_running_listener_survive_deliveries_and_reprocess() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    // A family email shared by two real people, and one customer with two addresses.
    send(&server, Provider::Tiquo, "mum", "family@home.example", 30);
    send(&server, Provider::Vagaro, "kid", "family@home.example", 29);
    send(&server, Provider::Zupy, "ana-work", "ana@work.example", 28);
    send(&server, Provider::Plain, "ana-home", "ana@home.example", 27);
    let (mum, kid, work, home) = (
        "tiquo/main/mum",
        "vagaro/main/kid",
        "zupy/main/ana-work",
        "plain/main/ana-home",
    );
    assert_eq!(
        groups(&ws),
        BTreeSet::from([group(&[mum, kid]), group(&[work]), group(&[home])]),
        "the rules alone get both wrong"
    );

    let family = person_with(&ws, kid);
    let split = ws.json(&["customers", "split", &family.to_string(), "--record", kid]);
    assert_eq!(split["decision"]["kind"], "split");
    assert!(split["decision"]["id"].is_i64(), "{split}");
    assert_eq!(split["relay"]["state"], "not_joined");
    let merged = ws.json(&[
        "customers",
        "merge",
        &person_with(&ws, work).to_string(),
        &person_with(&ws, home).to_string(),
    ]);
    assert_eq!(merged["decision"]["kind"], "merge");
    let expected = BTreeSet::from([group(&[mum]), group(&[kid]), group(&[work, home])]);
    assert_eq!(groups(&ws), expected);
    let ana = merged["person_id"].as_i64().expect("the merged person");
    let shown = ws.json(&["customers", "show", &ana.to_string()]);
    let reasons: Vec<&str> = shown["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["linked_because"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("Linked by hand on ")),
        "the person says the link was made by hand: {reasons:?}"
    );

    // Deliveries that would link them again by the rules don't.
    send(&server, Provider::Vagaro, "kid", "family@home.example", 5);
    send(&server, Provider::Tiquo, "mum", "family@home.example", 4);
    assert_eq!(groups(&ws), expected, "a split record stays apart");

    let decisions = ws.json(&["customers", "decisions"]);
    let listed: Vec<(&str, i64)> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), d["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed.len(), 2, "{decisions:#}");
    assert_eq!(listed[0].0, "merge", "newest first");
    assert_eq!(listed[1].0, "split");

    // Reprocessing needs the folder to itself; the decisions are kept, so the people are too.
    server.stop();
    let out = ws.run(&["reprocess"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        groups(&ws),
        expected,
        "reprocess keeps decisions made by hand"
    );

    let server = ws.serve();
    let undone = ws.json(&["customers", "undo", &listed[1].1.to_string()]);
    assert!(undone["decision"]["undone_at"].is_string(), "{undone}");
    assert_eq!(
        groups(&ws),
        BTreeSet::from([group(&[mum, kid]), group(&[work, home])]),
        "undoing the split links the kid by the shared email again"
    );
    let again = ws.run(&["customers", "undo", &listed[1].1.to_string()]);
    assert!(
        !again.status.success(),
        "an undone change can't be undone twice"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already undone"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    drop(server);
}

#[test]
fn merge_and_split_refuse_what_makes_no_sense_in_plain_words() {
    let ws = Workspace::with_every_provider();
    let server = ws.serve();
    send(&server, Provider::Tiquo, "solo", "solo@example.com", 3);
    let solo = person_with(&ws, "tiquo/main/solo").to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["customers", "merge", &solo, &solo],
            "two different customers",
        ),
        (
            &["customers", "merge", &solo, "999999"],
            "no customer with id 999999",
        ),
        (
            &["customers", "split", &solo, "--record", "tiquo/main/solo"],
            "already on its own",
        ),
        (
            &["customers", "split", &solo, "--record", "tiquo/main"],
            "PROVIDER/CONNECTION/CUSTOMER-ID",
        ),
    ];
    for (args, says) in cases {
        let out = ws.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let none: Value = ws.json(&["customers", "decisions"]);
    assert_eq!(
        none.as_array().map(Vec::len),
        Some(0),
        "nothing was recorded"
    );
    drop(server);
}
