//! Deriving gives exactly the same result however the deliveries are batched: as the listener
//! derives them (a group at a time, late arrivals re-folded), and as `reprocess` derives them all
//! again in one pass. Compared table by table — every derived row, with packed values unpacked —
//! and person by person as `customers show --json` reads them, on a data set with late
//! snapshots, duplicates, people linked across providers by email and phone, and deletions (some
//! arriving late).

use chrono::{Duration, TimeZone, Utc};
use clientele_core::Provider;
use clientele_store::pack::{Dict, unpack};
use clientele_store::{NewDelivery, Store};
use clientele_tests::bench_data;
use rusqlite::types::ValueRef;
use serde_json::{Value, json};

/// Every derived table, rows in key order, each value as text (packed values unpacked).
fn derived_tables(store: &Store) -> Vec<(String, Vec<Vec<String>>)> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let tables = [
        ("delivery_outcomes", "delivery_id"),
        ("source_profiles", "id"),
        ("events", "id"),
        ("identity_keys", "source_profile_id, kind, value"),
        ("people", "id"),
        ("person_terms", "term, person_id"),
        ("people_count", "id"),
    ];
    tables
        .iter()
        .map(|(table, order)| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .unwrap();
            let columns: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
            let rows = stmt
                .query_map([], |r| {
                    Ok((0..columns.len())
                        .map(|i| {
                            let text = match r.get_ref(i).unwrap() {
                                ValueRef::Null => "NULL".to_string(),
                                ValueRef::Integer(n) => n.to_string(),
                                ValueRef::Real(f) => f.to_string(),
                                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                                ValueRef::Blob(b) => {
                                    let dict = if *table == "people" {
                                        Dict::Profiles
                                    } else {
                                        Dict::States
                                    };
                                    let raw = unpack(dict, b).expect("a packed value unpacks");
                                    String::from_utf8(raw).unwrap()
                                }
                            };
                            format!("{}={text}", columns[i])
                        })
                        .collect::<Vec<_>>())
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (table.to_string(), rows)
        })
        .collect()
}

/// Every person as the window and `customers show --json` read them.
fn everyone(store: &Store) -> Vec<Value> {
    let r = store.reader().unwrap();
    let count = r.people_count().unwrap() as usize;
    let people = r.people(None, Some(count + 1), 0).unwrap();
    assert_eq!(people.len(), count);
    people
        .into_iter()
        .map(|p| serde_json::to_value(r.person(p.id).unwrap()).unwrap())
        .collect()
}

/// Tiquo deletions of the records of `people`, each at `when(last event of the record)`.
fn deletions(
    store: &Store,
    people: impl Iterator<Item = usize>,
    when: impl Fn(i64) -> i64,
) -> Vec<NewDelivery> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let tiquo: i64 = conn
        .query_row(
            "SELECT id FROM connections WHERE provider = 'tiquo'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    people
        .filter_map(|k| {
            let customer = format!("cus_{k:07}");
            let last: Option<i64> = conn
                .query_row(
                    "SELECT last_event_at FROM source_profiles
                     WHERE connection_id = ?1 AND customer_ref = ?2",
                    rusqlite::params![tiquo, customer],
                    |r| r.get(0),
                )
                .ok();
            let at = Utc.timestamp_millis_opt(when(last?)).single().unwrap();
            let body = json!({
                "id": format!("evt_delete_{k}"),
                "type": "customer.deleted",
                "created": at.to_rfc3339(),
                "data": {"id": customer, "deletedAt": at.to_rfc3339()}
            });
            Some(NewDelivery {
                connection_id: tiquo,
                received_at: Utc::now(),
                dedupe_key: format!("evt_delete_{k}"),
                headers: vec![("content-type".into(), "application/json".into())],
                body: serde_json::to_vec(&body).unwrap(),
                verification: "test".into(),
                is_test: false,
            })
        })
        .collect()
}

#[test]
fn deriving_in_groups_as_it_arrives_and_reprocessing_all_at_once_give_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    // The bench's generator: five providers, people linked by email and phone across them,
    // about 10 % of updates arriving after later ones, 5 % of deliveries sent twice; stored in
    // groups of 1,000 and derived after each, as the listener does.
    let built = bench_data::build("derive_same", &store, 400, 3_000);
    assert!(built.duplicates > 0, "the data set has duplicates");

    // Deletions: half in order (after the record's last event), half arriving late (before it);
    // derived one delivery at a time, as a quiet listener does.
    let mut w = store.writer().unwrap();
    let mut late_deletions = deletions(&store, (0..400).step_by(5), |last| {
        last + Duration::minutes(5).num_milliseconds()
    });
    late_deletions.extend(deletions(&store, (2..400).step_by(7), |last| {
        last - Duration::days(1).num_milliseconds()
    }));
    assert!(late_deletions.len() > 20, "{}", late_deletions.len());
    let mut refolded = 0;
    for d in &late_deletions {
        w.ingest(std::slice::from_ref(d), &[]).unwrap();
        refolded += w.derive_pending(1).unwrap().refolded_profiles;
    }
    assert!(refolded > 0, "late deletions re-fold their records");

    let live_tables = derived_tables(&store);
    let live_people = everyone(&store);
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert!(count("SELECT COUNT(*) FROM source_profiles WHERE deleted_at IS NOT NULL") > 20);
    assert!(
        count(
            "SELECT COUNT(*) FROM (SELECT person_id FROM source_profiles sp
               JOIN connections c ON c.id = sp.connection_id
             GROUP BY person_id HAVING COUNT(DISTINCT c.provider) > 1)"
        ) > 50,
        "people linked across providers"
    );
    assert!(
        live_people
            .iter()
            .any(|p| p["timeline"].as_array().unwrap().len() > 3)
    );

    let report = w.reprocess(|_, _| {}).unwrap();
    assert_eq!(
        report.deliveries as i64,
        count("SELECT COUNT(*) FROM deliveries")
    );
    let again_tables = derived_tables(&store);
    for ((table, live), (_, again)) in live_tables.iter().zip(&again_tables) {
        assert_eq!(live.len(), again.len(), "{table}: as many rows");
        for (a, b) in live.iter().zip(again) {
            assert_eq!(a, b, "{table}: the same rows");
        }
    }
    assert_eq!(everyone(&store), live_people, "every person reads the same");
    // And the provider names show who is who.
    assert!(
        live_people
            .iter()
            .any(|p| p["sources"].to_string().contains(Provider::Zupy.id()))
    );
}
