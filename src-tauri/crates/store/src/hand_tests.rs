//! Decisions made by hand: a merge joins records the rules missed, a split keeps a record apart
//! from everyone its email or phone would link it to — and both survive `reprocess` and later
//! deliveries, can be undone, and leave people nobody decided about alone.

use crate::testing::{connect, delivery, temp_store};
use crate::{Store, Writer};
use chrono::{DateTime, TimeZone, Utc};
use clientele_core::Provider;
use clientele_core::hand::{Decision, RecordRef};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 9, minute, 0).unwrap()
}

/// A Vagaro customer snapshot with an email.
fn vagaro(key: &str, customer: &str, email: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": key, "createdDate": "2024-03-15T09:00:00Z",
        "type": "customer", "action": "updated",
        "payload": {"customerId": customer, "customerFirstName": "Jo", "customerLastName": customer,
                    "email": email, "businessIds": ["b1"]}}))
    .unwrap()
}

fn receive(w: &mut Writer, connection: i64, key: &str, customer: &str, email: &str) {
    w.ingest(
        &[delivery(connection, key, &vagaro(key, customer, email))],
        &[],
    )
    .unwrap();
    w.derive_all().unwrap();
}

fn record(customer: &str) -> RecordRef {
    RecordRef {
        provider: Provider::Vagaro,
        connection: "main".into(),
        customer_ref: customer.into(),
    }
}

/// Who is with whom: each person's customer ids, by person id.
fn people(store: &Store) -> BTreeMap<i64, Vec<String>> {
    let reader = store.reader().unwrap();
    reader
        .people(None, None, 0)
        .unwrap()
        .into_iter()
        .map(|p| {
            let mut refs: Vec<String> = p.sources.iter().map(|s| s.customer_ref.clone()).collect();
            refs.sort();
            (p.id, refs)
        })
        .collect()
}

fn groups(store: &Store) -> Vec<Vec<String>> {
    let mut g: Vec<Vec<String>> = people(store).into_values().collect();
    g.sort();
    g
}

fn person_of(store: &Store, customer: &str) -> i64 {
    *people(store)
        .iter()
        .find(|(_, refs)| refs.iter().any(|r| r == customer))
        .unwrap_or_else(|| panic!("{customer} belongs to somebody"))
        .0
}

/// Everything a person screen shows, for comparing before and after `reprocess`.
fn snapshot(store: &Store) -> Vec<Value> {
    let reader = store.reader().unwrap();
    people(store)
        .keys()
        .map(|id| serde_json::to_value(reader.person(*id).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_split_record_stays_apart_through_new_deliveries_and_reprocess_until_undone() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    // A family sharing one email: three records, one person by the rules.
    receive(&mut w, c, "1", "MUM", "family@home.example");
    receive(&mut w, c, "2", "KID", "family@home.example");
    receive(&mut w, c, "3", "DAD", "dad@work.example");
    assert_eq!(groups(&store), vec![vec!["DAD"], vec!["KID", "MUM"]]);
    let dad = person_of(&store, "DAD");

    let changed = w
        .add_decision(
            "split-kid",
            &Decision::Split {
                record: record("KID"),
            },
            at(0),
            "Front desk",
        )
        .unwrap();
    assert!(!changed.is_empty(), "the split changes people");
    assert_eq!(groups(&store), vec![vec!["DAD"], vec!["KID"], vec!["MUM"]]);
    assert_eq!(
        person_of(&store, "DAD"),
        dad,
        "untouched people keep their id"
    );

    // A later delivery about the kid, still with the family email, and a new record sharing it.
    receive(&mut w, c, "4", "KID", "family@home.example");
    receive(&mut w, c, "5", "GRAN", "family@home.example");
    assert_eq!(
        groups(&store),
        vec![vec!["DAD"], vec!["GRAN", "MUM"], vec!["KID"]],
        "the split record stays apart; others still link by the email"
    );
    let before = snapshot(&store);
    w.reprocess(|_, _| {}).unwrap();
    assert_eq!(snapshot(&store), before, "reprocess gives the same people");

    // Applying it again (as a desk pulling it from the relay would) changes nothing.
    assert!(
        w.add_decision(
            "split-kid",
            &Decision::Split {
                record: record("KID")
            },
            at(0),
            "Front desk"
        )
        .unwrap()
        .is_empty()
    );
    w.undo_decision("split-kid", at(5), "Back office").unwrap();
    assert_eq!(
        groups(&store),
        vec![vec!["DAD"], vec!["GRAN", "KID", "MUM"]]
    );
    let decisions = store.reader().unwrap().decisions().unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].undone_by.as_deref(), Some("Back office"));
}

#[test]
fn a_merge_joins_records_the_rules_missed_and_says_so() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    receive(&mut w, c, "1", "WORK", "ana@work.example");
    receive(&mut w, c, "2", "HOME", "ana@home.example");
    receive(&mut w, c, "3", "OTHER", "bo@home.example");
    let other = person_of(&store, "OTHER");
    w.add_decision(
        "merge-ana",
        &Decision::Merge {
            records: [record("WORK"), record("HOME")],
        },
        at(0),
        "Front desk",
    )
    .unwrap();
    assert_eq!(groups(&store), vec![vec!["HOME", "WORK"], vec!["OTHER"]]);
    assert_eq!(person_of(&store, "OTHER"), other);
    let ana = person_of(&store, "WORK");
    let person = store.reader().unwrap().person(ana).unwrap();
    let reasons: Vec<(bool, Option<String>)> = person
        .sources
        .iter()
        .map(|s| (s.by_hand, s.linked_because.clone()))
        .collect();
    assert!(
        reasons.contains(&(
            true,
            Some("Linked by hand on Front desk on 3 March 2026".into())
        )),
        "the person screen says the link was made by hand: {reasons:?}"
    );
    // Both emails find the one person.
    let found = store
        .reader()
        .unwrap()
        .people(Some("ana@home.example"), None, 0)
        .unwrap();
    assert_eq!(found.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ana]);

    // New deliveries and reprocess keep it.
    receive(&mut w, c, "4", "HOME", "ana@home.example");
    let before = snapshot(&store);
    w.reprocess(|_, _| {}).unwrap();
    assert_eq!(snapshot(&store), before);

    w.undo_decision("merge-ana", at(9), "Front desk").unwrap();
    assert_eq!(
        groups(&store),
        vec![vec!["HOME"], vec!["OTHER"], vec!["WORK"]]
    );
}

#[test]
fn later_decisions_win_a_split_cancels_earlier_merges_of_its_record_not_later_ones() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    receive(&mut w, c, "1", "A", "a@x.example");
    receive(&mut w, c, "2", "B", "b@x.example");
    receive(&mut w, c, "3", "C", "c@x.example");
    let merge = |records| Decision::Merge { records };
    w.add_decision("m1", &merge([record("A"), record("B")]), at(1), "d")
        .unwrap();
    w.add_decision(
        "s1",
        &Decision::Split {
            record: record("A"),
        },
        at(2),
        "d",
    )
    .unwrap();
    assert_eq!(
        groups(&store),
        vec![vec!["A"], vec!["B"], vec!["C"]],
        "the split came after the merge"
    );
    w.add_decision("m2", &merge([record("A"), record("C")]), at(3), "d")
        .unwrap();
    assert_eq!(
        groups(&store),
        vec![vec!["A", "C"], vec!["B"]],
        "a merge after the split counts"
    );
    // The same decisions arriving in another order (as on a desk pulling them) give the same.
    let (_dir2, other) = temp_store();
    let mut w2 = other.writer().unwrap();
    let c2 = connect(&mut w2, Provider::Vagaro, "main");
    w2.add_decision("m2", &merge([record("A"), record("C")]), at(3), "d")
        .unwrap();
    w2.add_decision(
        "s1",
        &Decision::Split {
            record: record("A"),
        },
        at(2),
        "d",
    )
    .unwrap();
    w2.add_decision("m1", &merge([record("A"), record("B")]), at(1), "d")
        .unwrap();
    // Decisions about records this desk hasn't received yet apply when they arrive.
    receive(&mut w2, c2, "3", "C", "c@x.example");
    receive(&mut w2, c2, "1", "A", "a@x.example");
    receive(&mut w2, c2, "2", "B", "b@x.example");
    assert_eq!(groups(&other), groups(&store));
}
