//! Forgetting on real database files: what goes, what stays, and that the bytes are gone.

use super::*;
use crate::testing::{connect, delivery, temp_store};
use crate::{DeliveryStatus, IngestOutcome, Store};
use clientele_core::Provider;
use serde_json::{Value, json};

const NAME: &str = "Quixotic";
const EMAIL: &str = "zelda.quixotic@example.org";
const PHONE_DIGITS: &str = "7911123456";

fn tiquo(
    event: &str,
    customer: &str,
    first: &str,
    last: &str,
    email: &str,
    phone: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event, "type": "customer.created", "created": "2025-01-02T10:00:00Z",
        "data": {"id": customer, "firstName": first, "lastName": last, "email": email,
                 "phone": phone}
    }))
    .unwrap()
}

fn vagaro(event: &str, customer: &str, last: &str, email: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event, "createdDate": "2025-01-03T10:00:00Z", "type": "customer",
        "action": "updated",
        "payload": {"customerId": customer, "customerFirstName": "Zelda",
                    "customerLastName": last, "email": email}
    }))
    .unwrap()
}

fn stored(out: &[IngestOutcome]) -> i64 {
    match out[0] {
        IngestOutcome::Stored { id } => id,
        other => panic!("expected a stored delivery, got {other:?}"),
    }
}

/// Zelda at Tiquo and Vagaro (linked by email), and Bob at Tiquo. Returns the connection ids.
fn two_people(store: &Store) -> (i64, i64) {
    let mut w = store.writer().unwrap();
    let t = connect(&mut w, Provider::Tiquo, "main");
    let v = connect(&mut w, Provider::Vagaro, "main");
    let body = tiquo("evt_z1", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    stored(&w.ingest(&[delivery(t, "evt_z1", &body)], &[]).unwrap());
    let body = vagaro("vz1", "va_z", NAME, EMAIL);
    stored(&w.ingest(&[delivery(v, "vz1", &body)], &[]).unwrap());
    let body = tiquo(
        "evt_b1",
        "cus_b",
        "Bob",
        "Other",
        "bob@example.net",
        "+447700900555",
    );
    stored(&w.ingest(&[delivery(t, "evt_b1", &body)], &[]).unwrap());
    w.derive_all().unwrap();
    (t, v)
}

fn record(r: &str) -> RecordRef {
    r.parse().unwrap()
}

fn request(uid: &str, records: &[&str], keep_forgetting: bool) -> ForgetRequest {
    let salt = b"0123456789abcdef".to_vec();
    ForgetRequest {
        uid: uid.into(),
        at: Utc::now(),
        computer: "Front desk".into(),
        reason: ErasureReason::Request,
        record_hashes: records
            .iter()
            .map(|r| record_hash(&salt, &record(r)))
            .collect(),
        salt,
        keep_forgetting,
    }
}

const ZELDA: [&str; 2] = ["tiquo/main/cus_z", "vagaro/main/va_z"];

fn person_of(store: &Store, search: &str) -> Option<i64> {
    let found = store
        .reader()
        .unwrap()
        .people(Some(search), None, 0)
        .unwrap();
    found.first().map(|p| p.id)
}

/// A person as `customers show --json` prints it, without the ids `reprocess` may renumber.
fn shown(store: &Store, id: i64) -> Value {
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
    let mut v = serde_json::to_value(store.reader().unwrap().person(id).unwrap()).unwrap();
    strip(&mut v);
    v
}

/// Every file of the data folder, lower-cased, searched for each needle as `grep -ai` would —
/// and what is packed in them, unpacked: every packed value SQLite holds in a database file, and
/// every zstd frame anywhere in a file's bytes (the WAL, free pages). Compression must not hide
/// anything from this search.
fn findable(dir: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut texts = vec![("", bytes.to_ascii_lowercase())];
        for value in crate::pack::unpacked_frames_in(&bytes) {
            texts.push((" (packed)", value.to_ascii_lowercase()));
        }
        if bytes.starts_with(b"SQLite format 3\0") {
            for value in crate::pack::packed_values_in_database(&path).unwrap() {
                texts.push((" (packed)", value.to_ascii_lowercase()));
            }
        }
        for needle in needles {
            let needle = needle.to_ascii_lowercase();
            for (how, text) in &texts {
                if text.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(format!("{needle} in {}{how}", path.display()));
                    break;
                }
            }
        }
    }
    found
}

/// The search sees through packing: a body stored packed (and not derived, so nothing else holds
/// it) whose name zstd writes as a repeat of earlier bytes doesn't show the name in the file's
/// bytes, and `findable` still finds it.
#[test]
fn the_search_finds_what_is_packed() {
    const TWICE: &str = "QuixoticQuixotic";
    let (dir, store) = temp_store();
    let mut w = store.writer().unwrap();
    let t = connect(&mut w, Provider::Tiquo, "main");
    let body = tiquo("evt_z1", "cus_z", "Zelda", TWICE, EMAIL, "+447911123456");
    stored(&w.ingest(&[delivery(t, "evt_z1", &body)], &[]).unwrap());
    drop(w);
    drop(store);
    let literally = std::fs::read_dir(dir.path()).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path())
            .unwrap()
            .to_ascii_lowercase();
        bytes
            .windows(TWICE.len())
            .any(|w| w == TWICE.to_ascii_lowercase().as_bytes())
    });
    assert!(!literally, "the body is stored packed");
    let found = findable(dir.path(), &[TWICE]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("(packed)"), "{found:?}");
}

#[test]
fn forgetting_erases_every_trace_of_the_records_and_leaves_everyone_else() {
    let (dir, store) = temp_store();
    two_people(&store);
    let zelda = person_of(&store, "zelda").expect("Zelda is a person");
    let bob = person_of(&store, "bob").expect("Bob is a person");
    assert_ne!(zelda, bob);
    assert_eq!(
        store
            .reader()
            .unwrap()
            .forget_scope(zelda)
            .unwrap()
            .records
            .len(),
        2,
        "both of Zelda's records are one person"
    );
    let bob_before = shown(&store, bob);
    assert!(
        !findable(dir.path(), &[NAME, EMAIL, PHONE_DIGITS]).is_empty(),
        "the test must be able to find her before"
    );

    let mut w = store.writer().unwrap();
    let report = w.forget(&request("f1", &ZELDA, false)).unwrap();
    assert_eq!(
        (
            report.people,
            report.records,
            report.deliveries,
            report.repeated
        ),
        (1, 2, 2, false)
    );
    let wipe = w.wipe_forgotten(Duration::from_secs(10)).unwrap();
    assert!(wipe.checkpointed, "nobody else holds the database");
    assert!(
        !wipe.vacuumed,
        "a database created with secure_delete needs no VACUUM"
    );

    assert_eq!(person_of(&store, "zelda"), None);
    assert_eq!(person_of(&store, "quixotic"), None);
    assert!(store.reader().unwrap().person(zelda).is_err());
    assert_eq!(shown(&store, bob), bob_before, "Bob is untouched");
    // The rows stay (counts and ids hold), without their content.
    let deliveries = store.reader().unwrap().deliveries(None).unwrap();
    assert_eq!(deliveries.len(), 3);
    let erased: Vec<_> = deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Erased)
        .collect();
    assert_eq!(erased.len(), 2);
    let detail = store.reader().unwrap().delivery(erased[0].id).unwrap();
    assert!(detail.body.is_empty() && detail.headers.is_empty());
    assert!(
        detail.row.dedupe_key.starts_with('#'),
        "{}",
        detail.row.dedupe_key
    );
    drop(w);
    drop(store);
    assert_eq!(
        findable(dir.path(), &[NAME, EMAIL, PHONE_DIGITS, "cus_z", "va_z"]),
        Vec::<String>::new()
    );

    // Rebuilding gives the same: erased deliveries derive to nothing.
    let store = Store::open_dir(dir.path()).unwrap();
    store.writer().unwrap().reprocess(|_, _| {}).unwrap();
    let bob = person_of(&store, "bob").unwrap();
    assert_eq!(shown(&store, bob), bob_before);
    assert_eq!(person_of(&store, "zelda"), None);
    let log = store.reader().unwrap().erasures().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].people,
            log[0].records,
            log[0].deliveries,
            log[0].computer.as_str()
        ),
        (1, 2, 2, "Front desk")
    );
}

#[test]
fn a_forget_is_carried_out_once() {
    let (_dir, store) = temp_store();
    two_people(&store);
    let mut w = store.writer().unwrap();
    let first = w.forget(&request("f1", &ZELDA, false)).unwrap();
    let again = w.forget(&request("f1", &ZELDA, false)).unwrap();
    assert!(again.repeated);
    assert_eq!(again.erasure_id, first.erasure_id);
    assert_eq!(store.reader().unwrap().erasures().unwrap().len(), 1);
}

#[test]
fn a_retry_of_an_erased_delivery_is_a_duplicate_and_keep_forgetting_withholds_new_ones() {
    let (_dir, store) = temp_store();
    let (t, _) = two_people(&store);
    let mut w = store.writer().unwrap();
    w.forget(&request(
        "f1",
        &["tiquo/main/cus_z", "vagaro/main/va_z"],
        true,
    ))
    .unwrap();

    // The provider retries the old delivery: recognised by its keyed hash, not stored.
    let body = tiquo("evt_z1", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    let out = w.ingest(&[delivery(t, "evt_z1", &body)], &[]).unwrap();
    assert!(
        matches!(out[0], IngestOutcome::Duplicate { duplicates: 1, .. }),
        "{out:?}"
    );
    // A new delivery about her: withheld.
    let body = tiquo("evt_z2", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    let out = w.ingest(&[delivery(t, "evt_z2", &body)], &[]).unwrap();
    assert!(matches!(out[0], IngestOutcome::Withheld { .. }), "{out:?}");
    // Someone else's: stored as ever.
    let body = tiquo(
        "evt_b2",
        "cus_b",
        "Bob",
        "Other",
        "bob@example.net",
        "+447700900555",
    );
    stored(&w.ingest(&[delivery(t, "evt_b2", &body)], &[]).unwrap());
    w.derive_all().unwrap();
    assert_eq!(person_of(&store, "zelda"), None);
    assert_eq!(store.reader().unwrap().deliveries(None).unwrap().len(), 4);

    let kept = store.reader().unwrap().suppressions().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].records, kept[0].withheld), (2, 1));
    assert!(kept[0].lifted_at.is_none());

    // Lifted: the next one is kept again.
    assert!(w.stop_forgetting("f1", Utc::now()).unwrap());
    assert!(!w.stop_forgetting("f1", Utc::now()).unwrap(), "lifted once");
    let body = tiquo("evt_z3", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    stored(&w.ingest(&[delivery(t, "evt_z3", &body)], &[]).unwrap());
    w.derive_all().unwrap();
    assert!(person_of(&store, "zelda").is_some());
}

#[test]
fn a_delivery_stored_but_not_read_yet_is_erased_too() {
    let (_dir, store) = temp_store();
    let (t, _) = two_people(&store);
    let mut w = store.writer().unwrap();
    let body = tiquo("evt_z9", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    let pending = stored(&w.ingest(&[delivery(t, "evt_z9", &body)], &[]).unwrap());
    let report = w.forget(&request("f1", &ZELDA, false)).unwrap();
    assert_eq!(report.deliveries, 3);
    w.derive_all().unwrap();
    assert_eq!(
        person_of(&store, "zelda"),
        None,
        "the pending one brings nobody back"
    );
    let d = store.reader().unwrap().delivery(pending).unwrap();
    assert_eq!(d.row.status, DeliveryStatus::Erased);
}

#[test]
fn a_database_from_before_secure_delete_is_vacuumed_once() {
    let (dir, store) = temp_store();
    two_people(&store);
    // As a database written by an earlier version: no mark.
    rusqlite::Connection::open(dir.path().join(crate::DATABASE_FILE))
        .unwrap()
        .execute("DELETE FROM settings WHERE key = ?1", [SECURE_DELETE_SINCE])
        .unwrap();
    let mut w = store.writer().unwrap();
    w.forget(&request("f1", &ZELDA, false)).unwrap();
    let first = w.wipe_forgotten(Duration::from_secs(10)).unwrap();
    assert!(first.vacuumed && first.checkpointed, "{first:?}");
    w.forget(&request("f2", &["tiquo/main/cus_b"], false))
        .unwrap();
    let second = w.wipe_forgotten(Duration::from_secs(10)).unwrap();
    assert!(!second.vacuumed, "only the first forget vacuums");
}

#[test]
fn matching_by_connection_prefix_is_record_hash() {
    let m = ForgetHashes {
        salt: b"salt".to_vec(),
        records: HashSet::new(),
    };
    let r = record("standard/crm/someone@example.com");
    let mut h = m.prefix("standard", "crm");
    h.update(b"someone@example.com");
    let got: [u8; 32] = h.finalize().into();
    assert_eq!(got, record_hash(b"salt", &r));
}

#[test]
fn activity_shows_a_withheld_message_as_one_line_without_data() {
    let (_dir, store) = temp_store();
    let (t, _) = two_people(&store);
    let mut w = store.writer().unwrap();
    w.forget(&request("f1", &ZELDA, true)).unwrap();
    let body = tiquo("evt_z2", "cus_z", "Zelda", NAME, EMAIL, "+447911123456");
    w.ingest(&[delivery(t, "evt_z2", &body)], &[]).unwrap();
    let rows = store
        .reader()
        .unwrap()
        .activity(&crate::ActivityFilter {
            deliveries: true,
            rejections: true,
            limit: 50,
            ..Default::default()
        })
        .unwrap();
    let withheld: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r, crate::ActivityRow::Withheld { .. }))
        .collect();
    assert_eq!(withheld.len(), 1, "{rows:?}");
    assert!(matches!(
        withheld[0],
        crate::ActivityRow::Withheld { provider: Provider::Tiquo, connection, .. } if connection == "main"
    ));
    let erased = rows
        .iter()
        .filter(|r| {
            matches!(
                r,
                crate::ActivityRow::Delivery {
                    status: DeliveryStatus::Erased,
                    summary: None,
                    person: None,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        erased, 2,
        "the erased deliveries say nothing about whom: {rows:?}"
    );
}
