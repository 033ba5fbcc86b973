//! Derivation against a real SQLite file, through the real adapters.

use crate::testing::{delivery, temp_store};
use crate::{IngestOutcome, NewDelivery, Store, Writer};
use chrono::{DateTime, Duration, TimeZone, Utc};
use clientele_core::Provider;
use serde_json::{Value, json};

fn connect(w: &mut Writer, provider: Provider) -> i64 {
    crate::testing::connect(w, provider, "main")
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 15, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

fn store_body(w: &mut Writer, connection_id: i64, key: &str, body: &Value) -> i64 {
    let body = serde_json::to_vec(body).unwrap();
    let out = w
        .ingest(&[delivery(connection_id, key, &body)], &[])
        .unwrap();
    match out[0] {
        IngestOutcome::Stored { id } => id,
        other => panic!("expected a new delivery, got {other:?}"),
    }
}

fn vagaro(id: &str, at: DateTime<Utc>, customer: &str, email: &str) -> Value {
    json!({"id": id, "createdDate": at.to_rfc3339(), "type": "customer", "action": "updated",
           "payload": {"customerId": customer, "customerFirstName": "Jo", "customerLastName": customer,
                       "email": email, "mobilePhone": "", "countryCode": "US", "businessIds": ["b1"]}})
}

/// Everything derived, in a comparable form.
fn snapshot(store: &Store) -> Vec<Value> {
    let r = store.reader().unwrap();
    r.people(None, None, 0)
        .unwrap()
        .into_iter()
        .map(|p| serde_json::to_value(r.person(p.id).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_late_snapshot_refolds_the_profile_in_event_order() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    store_body(&mut w, c, "1", &vagaro("1", t(1), "V1", "a@x.example.com"));
    store_body(&mut w, c, "3", &vagaro("3", t(3), "V1", "c@x.example.com"));
    w.derive_all().unwrap();
    store_body(&mut w, c, "2", &vagaro("2", t(2), "V1", "b@x.example.com"));
    let report = w.derive_all().unwrap();
    assert_eq!(
        report.refolded_profiles, 1,
        "the late event triggers one re-fold"
    );
    let people = store.reader().unwrap().people(None, None, 0).unwrap();
    let person = store.reader().unwrap().person(people[0].id).unwrap();
    let email_changes: Vec<(Value, Value)> = person
        .timeline
        .iter()
        .map(|e| {
            let c = e
                .changes
                .iter()
                .find(|c| c.field == "email")
                .expect("email change");
            (c.old.clone(), c.new.clone())
        })
        .collect();
    assert_eq!(
        email_changes,
        vec![
            (Value::Null, json!("a@x.example.com")),
            (json!("a@x.example.com"), json!("b@x.example.com")),
            (json!("b@x.example.com"), json!("c@x.example.com")),
        ]
    );
    assert_eq!(person.profile["email"], json!("c@x.example.com"));
}

#[test]
fn shared_email_links_and_a_changed_email_splits_again() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    store_body(
        &mut w,
        c,
        "1",
        &vagaro("1", t(1), "A", "same@x.example.com"),
    );
    store_body(
        &mut w,
        c,
        "2",
        &vagaro("2", t(2), "B", "SAME@x.example.com "),
    );
    w.derive_all().unwrap();
    let people = store.reader().unwrap().people(None, None, 0).unwrap();
    assert_eq!(people.len(), 1, "{people:#?}");
    assert_eq!(people[0].sources.len(), 2);
    let linked = people[0]
        .sources
        .iter()
        .find_map(|s| s.linked_because.clone())
        .unwrap();
    assert!(linked.contains("same@x.example.com"), "{linked}");
    let first_id = people[0].id;

    store_body(
        &mut w,
        c,
        "3",
        &vagaro("3", t(3), "B", "other@x.example.com"),
    );
    let report = w.derive_all().unwrap();
    let people = store.reader().unwrap().people(None, None, 0).unwrap();
    assert_eq!(people.len(), 2, "B moved away: {people:#?}");
    assert!(
        people.iter().any(|p| p.id == first_id),
        "the smaller record keeps the person id"
    );
    assert!(
        report.people_changed.len() >= 2,
        "both people are reported changed: {report:?}"
    );
}

#[test]
fn an_email_shared_by_implausibly_many_records_links_nobody() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    let n = crate::people::MAX_PROFILES_PER_KEY + 1;
    for i in 0..n {
        store_body(
            &mut w,
            c,
            &i.to_string(),
            &vagaro(
                &i.to_string(),
                t(i),
                &format!("C{i}"),
                "frontdesk@salon.example.com",
            ),
        );
    }
    w.derive_all().unwrap();
    let r = store.reader().unwrap();
    assert_eq!(
        r.people_count().unwrap(),
        n,
        "nobody is linked through the front-desk address"
    );
    let shared = r.shared_keys().unwrap();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].profiles, n);
}

#[test]
fn unreadable_deliveries_need_attention_and_test_deliveries_make_no_customers() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    let bad = w
        .ingest(
            &[
                NewDelivery {
                    connection_id: c,
                    received_at: Utc::now(),
                    dedupe_key: "bad".into(),
                    headers: vec![],
                    body: b"{not json".to_vec(),
                    verification: "test".into(),
                    is_test: false,
                },
                NewDelivery {
                    connection_id: c,
                    received_at: Utc::now(),
                    dedupe_key: "test".into(),
                    headers: vec![],
                    body: serde_json::to_vec(&vagaro("t", t(1), "T", "t@x.example.com")).unwrap(),
                    verification: "test".into(),
                    is_test: true,
                },
            ],
            &[],
        )
        .unwrap();
    let report = w.derive_all().unwrap();
    assert_eq!(report.needs_attention, 1);
    let r = store.reader().unwrap();
    assert_eq!(r.people_count().unwrap(), 0);
    let IngestOutcome::Stored { id } = bad[0] else {
        panic!()
    };
    let d = r.delivery(id).unwrap();
    assert_eq!(d.row.status, crate::DeliveryStatus::NeedsAttention);
    assert!(d.row.error.unwrap().contains("JSON"));
    let statuses: Vec<_> = r
        .deliveries(None)
        .unwrap()
        .into_iter()
        .map(|d| d.status)
        .collect();
    assert!(statuses.contains(&crate::DeliveryStatus::Test));
}

#[test]
fn reprocess_gives_the_same_result_as_live_ingest_in_any_arrival_order() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    // A shuffled, interleaved history: 8 customers, shared emails, late arrivals.
    let mut order: Vec<i64> = (0..60).collect();
    order.sort_by_key(|i| (i * 37) % 61);
    for (n, i) in order.iter().enumerate() {
        let body = vagaro(
            &format!("e{i}"),
            t(*i),
            &format!("C{}", i % 8),
            &format!("p{}@x.example.com", (i / 3) % 5),
        );
        store_body(&mut w, c, &format!("e{i}"), &body);
        if n % 7 == 0 {
            w.derive_all().unwrap();
        }
    }
    w.derive_all().unwrap();
    let live = snapshot(&store);
    assert!(!live.is_empty());
    for person in &live {
        let times: Vec<&str> = person["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["occurred_at"].as_str().unwrap())
            .collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "timelines are in event order");
    }
    let report = w.reprocess(|_, _| {}).unwrap();
    assert_eq!(report.deliveries, 60);
    assert_eq!(
        snapshot(&store),
        live,
        "reprocess must reproduce live ingest exactly"
    );
}

/// `people_count()` (kept by triggers) and a count of the rows themselves.
fn people_counts(store: &Store) -> (i64, i64) {
    let kept = store.reader().unwrap().people_count().unwrap();
    let rows = store
        .connect()
        .unwrap()
        .query_row("SELECT COUNT(*) FROM people", [], |r| r.get(0))
        .unwrap();
    (kept, rows)
}

#[test]
fn the_kept_people_count_follows_links_splits_and_reprocessing() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    assert_eq!(people_counts(&store), (0, 0));
    // Customers who share and then change emails: people are created, merged and split.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40_i64 {
        let body = vagaro(
            &format!("e{i}"),
            t((i * 37) % 41),
            &format!("C{}", i % 9),
            &format!("p{}@x.example.com", (i / 2) % 4),
        );
        store_body(&mut w, c, &format!("e{i}"), &body);
        w.derive_all().unwrap();
        let (kept, rows) = people_counts(&store);
        assert_eq!(kept, rows, "after delivery {i}");
        seen.insert(rows);
    }
    assert!(
        seen.len() > 2,
        "the history should make the number of people go up and down: {seen:?}"
    );
    w.reprocess(|_, _| {}).unwrap();
    let (kept, rows) = people_counts(&store);
    assert_eq!(kept, rows, "after reprocessing");
    assert!(rows > 0);
}

#[test]
fn a_database_from_before_the_kept_count_gets_it_on_opening() {
    let (dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    for i in 0..5 {
        let body = vagaro(
            &i.to_string(),
            t(i),
            &format!("C{i}"),
            &format!("{i}@x.example.com"),
        );
        store_body(&mut w, c, &i.to_string(), &body);
    }
    w.derive_all().unwrap();
    drop(w);
    // Back to schema 2, as a database written by an earlier version is.
    let conn = store.connect().unwrap();
    conn.execute_batch(
        "DROP TABLE hand_decision_records; DROP TABLE hand_decisions; DROP TABLE erasures;
         DROP TABLE suppressions; DROP TABLE withheld; DROP TABLE relay_outbox;
         DROP TABLE relay_changes; ALTER TABLE deliveries DROP COLUMN erased_at;
         ALTER TABLE deliveries DROP COLUMN body_codec;
         DROP TRIGGER people_count_insert; DROP TRIGGER people_count_delete;
         DROP TABLE people_count;
         DROP TABLE relay_devices; DROP TABLE relay_pairing_codes; DROP TABLE sealed_secrets;
         DROP TABLE relay_link; ALTER TABLE connections DROP COLUMN via_relay;
         DROP TABLE business_names;
         ALTER TABLE events ADD COLUMN input TEXT NOT NULL DEFAULT '{}';
         UPDATE source_profiles SET state = '{\"fields\":{}}';
         UPDATE people SET profile = '{}'; ALTER TABLE people DROP COLUMN plain_fields;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(conn);
    drop(store);
    let store = Store::open_dir(dir.path()).unwrap();
    assert_eq!(people_counts(&store), (5, 5));
}

#[test]
fn reprocessing_one_delivery_changes_nothing_when_nothing_changed() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    let first = store_body(&mut w, c, "1", &vagaro("1", t(1), "A", "a@x.example.com"));
    store_body(&mut w, c, "2", &vagaro("2", t(2), "A", "b@x.example.com"));
    store_body(&mut w, c, "3", &vagaro("3", t(3), "B", "b@x.example.com"));
    w.derive_all().unwrap();
    let before = snapshot(&store);
    let report = w.reprocess_delivery(first).unwrap();
    assert_eq!(report.deliveries, 1);
    assert_eq!(report.refolded_profiles, 1);
    assert_eq!(snapshot(&store), before);
    assert!(matches!(
        w.reprocess_delivery(999),
        Err(crate::StoreError::NotFound(_))
    ));
}

#[test]
fn search_counts_match_search_results() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    for i in 0..12 {
        let email = if i % 3 == 0 {
            format!("ana{i}@x.example.com")
        } else {
            format!("bo{i}@y.example.com")
        };
        store_body(
            &mut w,
            c,
            &i.to_string(),
            &vagaro(&i.to_string(), t(i), &format!("C{i}"), &email),
        );
    }
    // Found by "ana" three ways (name, whole email, email before the @): counted once.
    store_body(
        &mut w,
        c,
        "12",
        &vagaro("12", t(12), "Ana", "ana.m@x.example.com"),
    );
    w.derive_all().unwrap();
    let r = store.reader().unwrap();
    for query in [
        None,
        Some("ana"),
        Some("x.example.com"),
        Some("jo c1"),
        Some("nobody"),
        Some("  "),
    ] {
        let listed = r.people(query, None, 0).unwrap().len() as i64;
        assert_eq!(
            r.people_total(query, i64::MAX).unwrap(),
            listed,
            "count for {query:?}"
        );
    }
    assert_eq!(r.people_total(Some("ana"), i64::MAX).unwrap(), 5);
    // A search stops counting at the limit; all people are counted exactly either way.
    assert_eq!(r.people_total(Some("ana"), 5).unwrap(), 5);
    assert_eq!(r.people_total(Some("ana"), 3).unwrap(), 3);
    assert_eq!(r.people_total(Some("jo"), 10).unwrap(), 10);
    assert_eq!(r.people_total(Some("jo c1"), 2).unwrap(), 2);
    assert_eq!(r.people_total(None, 3).unwrap(), 13);
    // A page's total is the same whether the page was full (counted) or not (its own length).
    for query in [None, Some("ana"), Some("jo c1"), Some("nobody")] {
        let exact = r.people_total(query, i64::MAX).unwrap();
        for (limit, offset) in [(2, 0), (50, 0), (2, 2), (50, 1)] {
            let page = r.people_page(query, limit, offset).unwrap();
            assert_eq!(
                (page.total, page.more),
                (exact, false),
                "{query:?} limit {limit} offset {offset}"
            );
            assert_eq!(
                page.items,
                r.people(query, Some(limit), offset).unwrap(),
                "{query:?} limit {limit} offset {offset}"
            );
        }
    }
}

/// A person's search terms, straight from the table.
fn terms_of(store: &Store, person: i64) -> Vec<String> {
    let r = store.reader().unwrap();
    let mut stmt = r
        .conn
        .prepare("SELECT term FROM person_terms WHERE person_id = ?1 ORDER BY term")
        .unwrap();
    stmt.query_map([person], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn search_terms_follow_changes_term_by_term() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro);
    store_body(
        &mut w,
        c,
        "1",
        &vagaro("1", t(1), "Okafor", "ada@old.example.com"),
    );
    w.derive_all().unwrap();
    let person = store.reader().unwrap().people(None, None, 0).unwrap()[0].id;
    let first = terms_of(&store, person);
    for term in ["ada@old.example.com", "old.example.com", "okafor", "jo"] {
        assert!(first.contains(&term.to_string()), "{term} in {first:?}");
    }

    // A later update that changes nothing searchable leaves the terms as they were.
    store_body(
        &mut w,
        c,
        "2",
        &vagaro("2", t(2), "Okafor", "ada@old.example.com"),
    );
    w.derive_all().unwrap();
    assert_eq!(terms_of(&store, person), first);

    // A new email adds its terms; the old one's stay (staff still find her by the address she
    // had), and so do the name's.
    store_body(
        &mut w,
        c,
        "3",
        &vagaro("3", t(3), "Okafor", "ada@new.example.com"),
    );
    w.derive_all().unwrap();
    let now = terms_of(&store, person);
    assert!(now.contains(&"ada@new.example.com".to_string()), "{now:?}");
    assert!(now.contains(&"new.example.com".to_string()), "{now:?}");
    assert!(now.contains(&"ada@old.example.com".to_string()), "{now:?}");
    assert!(now.contains(&"okafor".to_string()), "{now:?}");
    let r = store.reader().unwrap();
    assert_eq!(r.people_total(Some("ada@old"), i64::MAX).unwrap(), 1);
    assert_eq!(r.people_total(Some("ada@new"), i64::MAX).unwrap(), 1);

    // And the same terms as a rebuild from scratch.
    w.reprocess(|_, _| {}).unwrap();
    let person = store.reader().unwrap().people(None, None, 0).unwrap()[0].id;
    assert_eq!(terms_of(&store, person), now);
}

#[test]
fn a_person_row_is_written_only_when_it_changes() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    w.conn
        .execute_batch(
            "CREATE TEMP TABLE person_writes (id INTEGER);
             CREATE TEMP TRIGGER person_written AFTER UPDATE ON main.people
             BEGIN INSERT INTO person_writes VALUES (new.id); END;",
        )
        .unwrap();
    let writes = |w: &Writer| -> i64 {
        w.conn
            .query_row("SELECT COUNT(*) FROM person_writes", [], |r| r.get(0))
            .unwrap()
    };
    let c = connect(&mut w, Provider::Vagaro);
    store_body(&mut w, c, "1", &vagaro("1", t(1), "V1", "a@x.example.com"));
    w.derive_all().unwrap();
    let before = snapshot(&store);
    let written = writes(&w);

    // The provider sends the same update again under a new event id: nothing about the person
    // changes, so their row isn't rewritten.
    store_body(&mut w, c, "2", &vagaro("2", t(1), "V1", "a@x.example.com"));
    w.derive_all().unwrap();
    assert_eq!(writes(&w), written, "an unchanged person was rewritten");
    assert_eq!(before[0]["profile"]["email"], json!("a@x.example.com"));
    assert_eq!(snapshot(&store)[0]["profile"], before[0]["profile"]);

    // A later update moves their last event: the row is written.
    store_body(&mut w, c, "3", &vagaro("3", t(2), "V1", "a@x.example.com"));
    w.derive_all().unwrap();
    assert_eq!(writes(&w), written + 1);
}
