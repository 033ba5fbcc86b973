//! Finding and reading people the way front-desk staff do: by the number the profile shows,
//! by an address the customer had before, with the date they joined, their businesses by name,
//! and the Activity list saying who each message was about.

use crate::testing::{connect, delivery, temp_store};
use crate::{ActivityFilter, ActivityRow, IngestOutcome, Store, Writer};
use clientele_core::Provider;
use serde_json::{Value, json};

fn store_body(w: &mut Writer, connection_id: i64, key: &str, body: &Value) -> i64 {
    let body = serde_json::to_vec(body).unwrap();
    match w
        .ingest(&[delivery(connection_id, key, &body)], &[])
        .unwrap()[0]
    {
        IngestOutcome::Stored { id } => id,
        other => panic!("expected a new delivery, got {other:?}"),
    }
}

/// A Vagaro customer snapshot; `extra` adds or replaces payload fields.
fn vagaro(id: &str, at: &str, customer: &str, extra: Value) -> Value {
    let mut payload = json!({"customerId": customer, "customerFirstName": "Jo",
        "customerLastName": customer, "businessIds": ["b1"]});
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    json!({"id": id, "createdDate": at, "type": "customer", "action": "updated", "payload": payload})
}

fn found(store: &Store, query: &str) -> Vec<i64> {
    store
        .reader()
        .unwrap()
        .people(Some(query), None, 0)
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect()
}

/// Ofcom's drama range (07700 900xxx) is no valid number to libphonenumber: it links nobody,
/// but every way of writing what the profile shows finds the customer.
#[test]
fn a_number_the_phone_rules_refuse_is_found_as_the_profile_shows_it() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    w.set_default_country("GB").unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    for (key, customer) in [("1", "A"), ("2", "B")] {
        let body = vagaro(
            key,
            "2024-03-15T09:00:00Z",
            customer,
            json!({"mobilePhone": "+447700900123", "email": format!("{customer}@x.example.com")}),
        );
        store_body(&mut w, c, key, &body);
    }
    w.derive_all().unwrap();
    let people = store.reader().unwrap().people(None, None, 0).unwrap();
    assert_eq!(
        people.len(),
        2,
        "linking stays strict: an invalid number links nobody"
    );
    let mut both: Vec<i64> = people.iter().map(|p| p.id).collect();
    both.sort();
    for query in [
        "+447700900123",
        "+44 7700 900123",
        "447700900123",
        "07700 900123",
        "07700900123",
        "7700 900123",
        "900123",
    ] {
        let mut ids = found(&store, query);
        ids.sort();
        assert_eq!(ids, both, "{query:?} finds both customers");
    }
    let person = store.reader().unwrap().person(both[0]).unwrap();
    assert_eq!(person.profile["phone"], json!("+447700900123"));
    assert_eq!(person.phone_country.as_deref(), Some("GB"));
}

#[test]
fn people_are_found_by_the_addresses_and_numbers_they_had_before() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    let first = vagaro(
        "1",
        "2024-03-15T09:00:00Z",
        "A",
        json!({"email": "ana.old@x.example.com", "mobilePhone": "+44 7911 123456", "countryCode": "GB"}),
    );
    let later = vagaro(
        "2",
        "2024-03-16T09:00:00Z",
        "A",
        json!({"email": "ana.new@x.example.com", "mobilePhone": "+44 7911 654321", "countryCode": "GB"}),
    );
    store_body(&mut w, c, "1", &first);
    store_body(&mut w, c, "2", &later);
    w.derive_all().unwrap();
    let id = store.reader().unwrap().people(None, None, 0).unwrap()[0].id;
    for query in [
        "ana.old@x.example.com",
        "ana.old",
        "ana.new@x.example.com",
        "07911 123456",
        "07911 654321",
    ] {
        assert_eq!(found(&store, query), vec![id], "{query:?}");
    }
    let person = store.reader().unwrap().person(id).unwrap();
    assert_eq!(person.emails, vec!["ana.new@x.example.com"]);
    assert_eq!(person.earlier_emails, vec!["ana.old@x.example.com"]);
    assert_eq!(person.earlier_phones, vec!["+44 7911 123456"]);
    // Rebuilding from the deliveries finds the same.
    w.reprocess(|_, _| {}).unwrap();
    assert_eq!(found(&store, "ana.old@x.example.com"), vec![id]);
}

#[test]
fn a_person_joined_when_their_first_record_was_created() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let vagaro_c = connect(&mut w, Provider::Vagaro, "main");
    let tiquo_c = connect(&mut w, Provider::Tiquo, "main");
    // Vagaro knew her first (2021); Tiquo's record is from 2023 and says so later, so the
    // latest-value rule of other fields would show Tiquo's date.
    let v = vagaro(
        "1",
        "2024-03-15T09:00:00Z",
        "A",
        json!({"email": "ana@x.example.com", "createdDate": "2021-02-01T10:00:00Z"}),
    );
    store_body(&mut w, vagaro_c, "1", &v);
    let t = json!({"id": "evt_1", "type": "customer.updated", "created": "2024-03-16T09:00:00Z",
        "data": {"id": "cust_ana", "firstName": "Ana", "email": "ana@x.example.com",
                 "createdAt": "2023-07-10T08:50:00Z"}});
    store_body(&mut w, tiquo_c, "evt_1", &t);
    w.derive_all().unwrap();
    let r = store.reader().unwrap();
    let people = r.people(None, None, 0).unwrap();
    assert_eq!(people.len(), 1, "linked by email");
    let person = r.person(people[0].id).unwrap();
    assert_eq!(person.profile["created_at"], json!("2021-02-01T10:00:00Z"));
    assert_eq!(
        person.profile_sources["created_at"].provider,
        Provider::Vagaro
    );
    assert_eq!(
        person.profile["first_name"],
        json!("Ana"),
        "other fields: the latest"
    );
}

#[test]
fn businesses_are_listed_and_named_and_names_outlive_reprocessing() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    let id = "U2FsdGVkX18zUptown";
    store_body(
        &mut w,
        c,
        "1",
        &vagaro(
            "1",
            "2024-03-15T09:00:00Z",
            "A",
            json!({"businessIds": [id, "biz-2"]}),
        ),
    );
    store_body(
        &mut w,
        c,
        "2",
        &vagaro(
            "2",
            "2024-03-15T09:00:00Z",
            "B",
            json!({"businessIds": [id]}),
        ),
    );
    w.derive_all().unwrap();
    let listed = |store: &Store| {
        store
            .reader()
            .unwrap()
            .businesses(Provider::Vagaro)
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.name, b.customers))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(&store),
        vec![(id.to_string(), None, 2), ("biz-2".to_string(), None, 1)]
    );
    w.set_business_name(Provider::Vagaro, "biz-2", "  Salon Uptown ")
        .unwrap();
    w.set_business_name(Provider::Vagaro, "biz-gone", "Old branch")
        .unwrap();
    assert_eq!(
        listed(&store),
        vec![
            ("biz-2".to_string(), Some("Salon Uptown".to_string()), 1),
            ("biz-gone".to_string(), Some("Old branch".to_string()), 0),
            (id.to_string(), None, 2),
        ]
    );
    w.reprocess(|_, _| {}).unwrap();
    let names = store
        .reader()
        .unwrap()
        .business_names(Provider::Vagaro)
        .unwrap();
    assert_eq!(names.get("biz-2").map(String::as_str), Some("Salon Uptown"));
    w.set_business_name(Provider::Vagaro, "biz-gone", " ")
        .unwrap();
    let names = store
        .reader()
        .unwrap()
        .business_names(Provider::Vagaro)
        .unwrap();
    assert!(!names.contains_key("biz-gone"), "an empty name forgets it");
    assert!(
        w.set_business_name(Provider::Vagaro, "x", &"n".repeat(81))
            .is_err()
    );
}

/// Setting the default country and re-reading the phone numbers in small batches gives exactly
/// what re-reading every delivery gives.
#[test]
fn rekeying_phones_after_a_country_change_matches_reprocessing() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    for i in 0..6 {
        // Three pairs sharing a national number written without a country code.
        let body = vagaro(
            &i.to_string(),
            "2024-03-15T09:00:00Z",
            &format!("C{i}"),
            json!({"mobilePhone": format!("07911 12345{}", i / 2), "email": format!("c{i}@x.example.com")}),
        );
        store_body(&mut w, c, &i.to_string(), &body);
    }
    w.derive_all().unwrap();
    assert_eq!(
        store.reader().unwrap().people_count().unwrap(),
        6,
        "no country: no links"
    );
    assert!(
        found(&store, "07911 123450").len() == 2,
        "found by digits all the same"
    );

    w.set_default_country("GB").unwrap();
    let mut after = 0;
    let mut changed = std::collections::BTreeSet::new();
    loop {
        let step = w.rekey_phones(after, 4).unwrap();
        changed.extend(step.people_changed);
        match step.last {
            Some(last) if step.profiles == 4 => after = last,
            _ => break,
        }
    }
    assert_eq!(
        store.reader().unwrap().people_count().unwrap(),
        3,
        "pairs linked"
    );
    assert!(!changed.is_empty());
    let rekeyed = snapshot(&store);
    w.reprocess(|_, _| {}).unwrap();
    assert_eq!(
        snapshot(&store),
        rekeyed,
        "the same people as re-reading everything"
    );
}

fn snapshot(store: &Store) -> Vec<Value> {
    let r = store.reader().unwrap();
    r.people(None, None, 0)
        .unwrap()
        .into_iter()
        .map(|p| {
            let mut terms: Vec<String> = store
                .connect()
                .unwrap()
                .prepare("SELECT term FROM person_terms WHERE person_id = ?1 ORDER BY term")
                .unwrap()
                .query_map([p.id], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            terms.sort();
            json!({"person": serde_json::to_value(r.person(p.id).unwrap()).unwrap(), "terms": terms})
        })
        .collect()
}

#[test]
fn activity_rows_name_the_person_each_message_was_about() {
    let (_dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let c = connect(&mut w, Provider::Vagaro, "main");
    let about_ana = store_body(
        &mut w,
        c,
        "1",
        &vagaro(
            "1",
            "2024-03-15T09:00:00Z",
            "A",
            json!({"customerFirstName": "Ana", "customerLastName": "Silva"}),
        ),
    );
    let broken = store_body(&mut w, c, "2", &json!({"id": "2"}));
    w.derive_all().unwrap();
    let rows = store
        .reader()
        .unwrap()
        .activity(&ActivityFilter {
            deliveries: true,
            rejections: true,
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let person_of = |id: i64| {
        rows.iter()
            .find_map(|r| match r {
                ActivityRow::Delivery { id: d, person, .. } if *d == id => Some(person.clone()),
                _ => None,
            })
            .unwrap()
    };
    let (person_id, name) = person_of(about_ana).expect("Ana's delivery names her");
    assert_eq!(name, "Ana Silva");
    assert_eq!(person_of(broken), None);
    let r = store.reader().unwrap();
    assert_eq!(
        r.delivery_people(about_ana).unwrap(),
        vec![(person_id, name)]
    );
    assert!(r.delivery_people(broken).unwrap().is_empty());
}
