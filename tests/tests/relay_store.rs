//! One relay, two stores: the same checks, written against `&dyn RelayStore`, run on the data
//! folder's SQLite (`SqliteRelayStore`) and on PostgreSQL (`PgStore`, a private cluster), so the
//! relay behaves the same on either.
//!
//! Every check gets two handles on one fresh database — two `Store`s on one file, or two
//! `PgStore`s on one database, as two relay instances would have — and uses the second where
//! another instance's view matters (a pairing code made on one and claimed on the other, a
//! revoke seen by both, the same delivery arriving at both at once).

use chrono::{DateTime, Duration as Span, Utc};
use clientele_core::hand::{
    Decision, ErasureReason, Forget, HandChange, HandChangeKind, RecordRef, record_hash,
};
use clientele_core::relay_protocol::Policy;
use clientele_core::{ConnectionSettings, Provider};
use clientele_relay::store::{RelayStore, SqliteRelayStore};
use clientele_relay_pg::{DatabaseUrl, PgStore};
use clientele_store::{
    ClaimRefused, Connection, IngestOutcome, NewConnection, NewDelivery, NewRejection,
    RETENTION_HELD_BY_RELAY, SealedRow, Store, StoreError, from_millis, to_millis,
};
use clientele_tests::pg::PgCluster;
use std::sync::{Arc, Barrier};
use std::time::Duration;

type Handle = Arc<dyn RelayStore>;

/// Two handles on one fresh database.
struct Pair {
    one: Handle,
    two: Handle,
}

/// Every check, by name.
const CHECKS: &[(&str, fn(&Pair))] = &[
    ("connections, secrets, settings and the policy", connections),
    ("pairing", pairing),
    (
        "the same code claimed on two instances at once",
        pairing_race,
    ),
    ("devices: tokens, revoking, last seen", devices),
    ("the feed: order, limit, erased deliveries left out", feed),
    (
        "acknowledgements and deleting what everyone has",
        acknowledgements,
    ),
    (
        "duplicates, and one delivery at two instances at once",
        duplicates,
    ),
    ("hand changes, forgetting and withholding", changes),
    ("erasing deliveries", erasing),
    ("refusals", rejections),
    ("connection stats", stats),
];

fn run_all(open: &mut dyn FnMut(usize) -> Pair) {
    for (n, (name, check)) in CHECKS.iter().enumerate() {
        eprintln!("check: {name}");
        let pair = open(n);
        check(&pair);
    }
}

#[test]
fn the_sqlite_store_behaves_as_a_relay_store_should() {
    let mut folders = Vec::new();
    run_all(&mut |_| {
        let dir = tempfile::tempdir().unwrap();
        let one = SqliteRelayStore::new(Store::open_dir(dir.path()).unwrap());
        let two = SqliteRelayStore::new(Store::open_dir(dir.path()).unwrap());
        folders.push(dir);
        Pair {
            one: Arc::new(one),
            two: Arc::new(two),
        }
    });
}

#[test]
fn the_postgres_store_behaves_as_the_sqlite_store() {
    let pg = match PgCluster::available() {
        Ok(_) => PgCluster::start(),
        Err(why) => {
            assert!(PgCluster::may_skip(), "CLIENTELE_REQUIRE_PG=1, but {why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    run_all(&mut |n| {
        let database = format!("check{n}");
        pg.create_database(&database);
        let url = DatabaseUrl::parse(&pg.url(&database)).unwrap();
        Pair {
            one: Arc::new(PgStore::connect(&url).unwrap()),
            two: Arc::new(PgStore::connect(&url).unwrap()),
        }
    });
}

// --- Helpers -----------------------------------------------------------------------------------

/// Now, to the millisecond (what both stores keep).
fn now() -> DateTime<Utc> {
    from_millis(to_millis(Utc::now()))
}

fn new_connection(provider: Provider, name: &str) -> NewConnection {
    NewConnection {
        provider,
        name: name.into(),
        settings: ConnectionSettings::default(),
        requires_secret: true,
    }
}

fn connect(s: &dyn RelayStore, provider: Provider, name: &str) -> Connection {
    s.add_connection(&new_connection(provider, name), now())
        .unwrap()
}

fn delivery(connection_id: i64, key: &str, body: &[u8]) -> NewDelivery {
    NewDelivery {
        connection_id,
        received_at: now(),
        dedupe_key: key.into(),
        headers: vec![],
        body: body.to_vec(),
        verification: "test".into(),
        is_test: false,
    }
}

/// A Tiquo delivery about customer `customer`.
fn tiquo(event: &str, customer: &str, email: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": event, "type": "customer.created", "created": "2025-01-02T10:00:00Z",
        "data": {"id": customer, "firstName": "Zelda", "lastName": "Quixotic", "email": email}
    }))
    .unwrap()
}

fn stored(outcome: IngestOutcome) -> i64 {
    match outcome {
        IngestOutcome::Stored { id } => id,
        other => panic!("expected a stored delivery, got {other:?}"),
    }
}

fn rejection(provider: &str, connection: &str, at: DateTime<Utc>) -> NewRejection {
    NewRejection {
        received_at: at,
        provider: provider.into(),
        connection: connection.into(),
        code: "bad_signature".into(),
        reason: "The signature didn't match.".into(),
        remote_addr: Some("127.0.0.1".into()),
        body_bytes: Some(12),
    }
}

fn change(uid: &str, what: HandChangeKind) -> HandChange {
    HandChange {
        uid: uid.into(),
        at: Utc::now(),
        by: "Front desk".into(),
        what,
    }
}

fn record(r: &str) -> RecordRef {
    r.parse().unwrap()
}

fn merge(uid: &str, a: &str, b: &str) -> HandChange {
    change(
        uid,
        HandChangeKind::Decide {
            decision: Decision::Merge {
                records: [record(a), record(b)],
            },
        },
    )
}

fn forget(uid: &str, records: &[&str], keep_forgetting: bool) -> HandChange {
    let salt = b"0123456789abcdef";
    change(
        uid,
        HandChangeKind::Forget {
            forget: Forget {
                salt: hex::encode(salt),
                records: records
                    .iter()
                    .map(|r| hex::encode(record_hash(salt, &record(r))))
                    .collect(),
                keep_forgetting,
                reason: ErasureReason::Request,
            },
        },
    )
}

/// Pairs a device called `name` through `s` and returns its id.
fn pair_device(s: &dyn RelayStore, name: &str, token: &[u8]) -> i64 {
    let code = [token, b"-code"].concat();
    s.add_pairing_code(&code, name, false, now(), now() + Span::minutes(10))
        .unwrap();
    s.claim_pairing_code(&code, token, None, now())
        .unwrap()
        .unwrap()
        .id
}

fn ids(s: &dyn RelayStore) -> Vec<i64> {
    s.feed(0, 1000).unwrap().iter().map(|f| f.id).collect()
}

// --- The checks --------------------------------------------------------------------------------

fn connections(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let main = connect(one, Provider::Tiquo, "main");
    assert_eq!(
        (main.provider, main.name.as_str()),
        (Provider::Tiquo, "main")
    );
    assert!(main.requires_secret && !main.paused && !main.via_relay);
    assert_eq!(
        two.connection(Provider::Tiquo, "main").unwrap(),
        Some(main.clone())
    );
    let taken = one
        .add_connection(&new_connection(Provider::Tiquo, "main"), now())
        .unwrap_err();
    assert!(
        matches!(&taken, StoreError::Invalid(m) if m.contains("already")),
        "{taken:?}"
    );
    let malformed = one
        .add_connection(&new_connection(Provider::Tiquo, "main salon"), now())
        .unwrap_err();
    assert!(matches!(malformed, StoreError::Invalid(_)), "{malformed:?}");
    connect(two, Provider::Vagaro, "main");
    connect(two, Provider::Tiquo, "Alpha_2");
    let listed: Vec<(Provider, String)> = one
        .connections()
        .unwrap()
        .into_iter()
        .map(|c| (c.provider, c.name))
        .collect();
    assert_eq!(
        listed,
        [
            (Provider::Tiquo, "Alpha_2".to_string()),
            (Provider::Tiquo, "main".to_string()),
            (Provider::Vagaro, "main".to_string()),
        ],
        "by provider, then name"
    );

    let settings = ConnectionSettings {
        forget_deleted_after_days: Some(30),
        ..Default::default()
    };
    assert!(
        one.replace_connection_settings(Provider::Tiquo, "main", &settings)
            .unwrap()
    );
    assert!(
        !one.replace_connection_settings(Provider::Tiquo, "nope", &settings)
            .unwrap()
    );
    assert_eq!(
        two.connection(Provider::Tiquo, "main")
            .unwrap()
            .unwrap()
            .settings,
        settings
    );
    let removed = two
        .remove_connection(Provider::Tiquo, "main", now())
        .unwrap();
    assert_eq!(removed.id, main.id);
    assert_eq!(one.connection(Provider::Tiquo, "main").unwrap(), None);
    assert!(matches!(
        one.remove_connection(Provider::Tiquo, "main", now()),
        Err(StoreError::NotFound(m)) if m.contains("no Tiquo connection called 'main'")
    ));
    assert!(
        !one.replace_connection_settings(Provider::Tiquo, "main", &settings)
            .unwrap(),
        "a removed connection's settings stay"
    );
    let back = connect(one, Provider::Tiquo, "main");
    assert_eq!(back.id, main.id, "added back: the same connection");
    assert_eq!(back.settings, ConnectionSettings::default());

    // Sealed secrets.
    assert_eq!(one.sealed_secret("tiquo/main").unwrap(), None);
    let sealed = SealedRow {
        nonce: vec![1; 24],
        ciphertext: vec![0, 1, 2, 255],
    };
    one.put_sealed_secret("tiquo/main", &sealed).unwrap();
    assert_eq!(two.sealed_secret("tiquo/main").unwrap(), Some(sealed));
    let resealed = SealedRow {
        nonce: vec![2; 24],
        ciphertext: vec![9; 40],
    };
    two.put_sealed_secret("tiquo/main", &resealed).unwrap();
    assert_eq!(one.sealed_secret("tiquo/main").unwrap(), Some(resealed));
    one.delete_sealed_secret("tiquo/main").unwrap();
    assert_eq!(two.sealed_secret("tiquo/main").unwrap(), None);

    // Settings.
    assert_eq!(one.setting("public_url").unwrap(), None);
    one.set_setting("public_url", "https://a.example").unwrap();
    two.set_setting("public_url", "https://b.example").unwrap();
    assert_eq!(
        one.setting("public_url").unwrap().as_deref(),
        Some("https://b.example")
    );

    // The retention policy the relay holds for its desks.
    assert_eq!(one.retention_policy().unwrap(), Policy::default());
    let policy = Policy {
        retention_inactive_months: Some(24),
        retention_rejections_days: None,
    };
    one.store_retention_policy(&policy).unwrap();
    assert_eq!(two.retention_policy().unwrap(), policy);
    assert_eq!(
        two.setting(RETENTION_HELD_BY_RELAY).unwrap(),
        None,
        "the relay holds it itself"
    );
    let both = Policy {
        retention_inactive_months: Some(6),
        retention_rejections_days: Some(30),
    };
    two.store_retention_policy(&both).unwrap();
    assert_eq!(one.retention_policy().unwrap(), both);
    one.store_retention_policy(&Policy::default()).unwrap();
    assert_eq!(two.retention_policy().unwrap(), Policy::default());
}

fn pairing(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let t = now();
    one.add_pairing_code(b"code-1", "front", true, t, t + Span::minutes(10))
        .unwrap();
    // Made on one instance, used on the other.
    let front = two
        .claim_pairing_code(b"code-1", b"token-1", None, t)
        .unwrap()
        .unwrap();
    assert_eq!(front.name, "front");
    assert!(front.admin);
    assert_eq!((front.acked, front.behind), (0, 0));
    assert_eq!(front.paired_at, t);
    assert_eq!(front.revoked_at, None);
    assert_eq!(
        one.claim_pairing_code(b"code-1", b"token-x", None, t)
            .unwrap(),
        Err(ClaimRefused::Used)
    );
    assert_eq!(
        one.claim_pairing_code(b"never-made", b"token-x", None, t)
            .unwrap(),
        Err(ClaimRefused::Unknown)
    );
    one.add_pairing_code(b"code-old", "late", false, t - Span::minutes(20), t)
        .unwrap();
    assert_eq!(
        two.claim_pairing_code(b"code-old", b"token-x", None, t)
            .unwrap(),
        Err(ClaimRefused::Expired)
    );
    // Two codes for one name: the second finds it taken.
    one.add_pairing_code(b"code-b1", "back", false, t, t + Span::minutes(10))
        .unwrap();
    two.add_pairing_code(b"code-b2", "back", false, t, t + Span::minutes(10))
        .unwrap();
    one.claim_pairing_code(b"code-b1", b"token-b1", None, t)
        .unwrap()
        .unwrap();
    assert_eq!(
        two.claim_pairing_code(b"code-b2", b"token-b2", None, t)
            .unwrap(),
        Err(ClaimRefused::NameTaken)
    );
    // A code for a paired name isn't made at all.
    let refused = two
        .add_pairing_code(b"code-f", "front", false, t, t + Span::minutes(10))
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Invalid(m) if m.contains("already paired")),
        "{refused:?}"
    );
    // The desk's own name wins over the code's.
    one.add_pairing_code(b"code-r", "tablet", false, t, t + Span::minutes(10))
        .unwrap();
    let renamed = two
        .claim_pairing_code(b"code-r", b"token-r", Some("kiosk"), t)
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "kiosk");
    let names: Vec<String> = one.devices().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["back", "front", "kiosk"]);
}

fn pairing_race(p: &Pair) {
    let t = now();
    for round in 0..10 {
        let code = format!("race-{round}").into_bytes();
        p.one
            .add_pairing_code(
                &code,
                &format!("desk-{round}"),
                false,
                t,
                t + Span::minutes(10),
            )
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let claims: Vec<_> = [p.one.clone(), p.two.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let barrier = barrier.clone();
                let code = code.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    s.claim_pairing_code(&code, format!("token-{round}-{i}").as_bytes(), None, t)
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<_> = claims.into_iter().map(|c| c.join().unwrap()).collect();
        let paired = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(paired, 1, "one device per code: {outcomes:?}");
        assert!(outcomes.contains(&Err(ClaimRefused::Used)), "{outcomes:?}");
    }
    assert_eq!(p.two.devices().unwrap().len(), 10);
}

fn devices(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let t = now();
    let id = pair_device(one, "front", b"token-front");
    pair_device(two, "back", b"token-back");
    let found = two.device_by_token(b"token-front").unwrap().unwrap();
    assert_eq!((found.id, found.name.as_str()), (id, "front"));
    assert_eq!(two.device_by_token(b"token-none").unwrap(), None);
    assert!(two.device_active(id).unwrap());
    assert!(!two.device_active(id + 1000).unwrap());

    // Last seen: written at most every half minute.
    let seen = |s: &dyn RelayStore| {
        s.devices()
            .unwrap()
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
            .last_seen
            .unwrap()
    };
    let first_seen = seen(one);
    one.touch_device(id, first_seen + Span::seconds(10))
        .unwrap();
    assert_eq!(seen(two), first_seen);
    one.touch_device(id, first_seen + Span::seconds(60))
        .unwrap();
    assert_eq!(seen(two), first_seen + Span::seconds(60));

    // Revoked on one instance: refused on both.
    assert!(one.revoke_device("front", t).unwrap());
    assert_eq!(two.device_by_token(b"token-front").unwrap(), None);
    assert_eq!(one.device_by_token(b"token-front").unwrap(), None);
    assert!(!two.device_active(id).unwrap());
    assert!(!two.revoke_device("front", t).unwrap(), "revoked already");
    assert!(!two.revoke_device("nobody", t).unwrap());
    let listed = two.devices().unwrap();
    assert_eq!(listed.len(), 2, "revoked devices are listed too");
    assert_eq!(listed[1].name, "front");
    assert_eq!(listed[1].revoked_at, Some(t));
    // The name is free again.
    pair_device(two, "front", b"token-front-2");
    assert_eq!(one.devices().unwrap().len(), 3);
}

fn feed(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let c = connect(one, Provider::Tiquo, "main");
    assert_eq!(one.newest_delivery_id().unwrap(), None);
    assert!(one.feed(0, 10).unwrap().is_empty());
    let mut first = delivery(c.id, "evt_0", b"{\"n\":0,\"bytes\":\"\xc3\xa9\"}\r\n");
    first.headers = vec![
        ("x-event".into(), "customer.created".into()),
        ("x-event".into(), "second value".into()),
    ];
    first.is_test = true;
    let mut group = vec![first.clone()];
    for n in 1..5 {
        group.push(delivery(
            c.id,
            &format!("evt_{n}"),
            format!("{{\"n\":{n}}}").as_bytes(),
        ));
    }
    let outcomes = one.ingest(&group, &[]).unwrap();
    two.ingest(
        &[
            delivery(c.id, "evt_5", b"{\"n\":5}"),
            delivery(c.id, "evt_6", b"{\"n\":6}"),
        ],
        &[],
    )
    .unwrap();
    let all = two.feed(0, 100).unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(all[0].id, stored(outcomes[0]));
    assert_eq!(all[0].body, first.body, "byte for byte");
    assert_eq!(all[0].headers, first.headers);
    assert_eq!(all[0].received_at, first.received_at);
    assert_eq!(all[0].dedupe_key, "evt_0");
    assert_eq!(all[0].verification, "test");
    assert!(all[0].is_test && !all[1].is_test);
    assert_eq!(
        (all[0].provider, all[0].connection.as_str()),
        (Provider::Tiquo, "main")
    );
    assert_eq!(one.newest_delivery_id().unwrap(), Some(all[6].id));

    let page = one.feed(0, 3).unwrap();
    assert_eq!(page.len(), 3);
    let rest = one.feed(page[2].id, 100).unwrap();
    assert_eq!(rest.len(), 4);
    assert_eq!(rest[0].id, all[3].id);
    assert!(one.feed(all[6].id, 100).unwrap().is_empty());

    // An erased delivery leaves the feed.
    assert_eq!(one.erase_deliveries(&[all[1].id], now()).unwrap(), 1);
    let after = ids(two);
    assert_eq!(after.len(), 6);
    assert!(!after.contains(&all[1].id));
    assert_eq!(
        two.newest_delivery_id().unwrap(),
        Some(all[6].id),
        "its row stays"
    );

    // What came in, and on what.
    assert!(
        two.delivery_matches(all[2].id, Provider::Tiquo, "main", &all[2].body)
            .unwrap()
    );
    assert!(
        !two.delivery_matches(all[2].id, Provider::Tiquo, "main", b"other")
            .unwrap()
    );
    assert!(
        !two.delivery_matches(all[2].id, Provider::Vagaro, "main", &all[2].body)
            .unwrap()
    );
    assert!(
        !two.delivery_matches(all[6].id + 100, Provider::Tiquo, "main", b"")
            .unwrap()
    );
    let settings = ConnectionSettings {
        customer_ref_pointer: Some("/data/customer".into()),
        ..Default::default()
    };
    one.replace_connection_settings(Provider::Tiquo, "main", &settings)
        .unwrap();
    one.remove_connection(Provider::Tiquo, "main", now())
        .unwrap();
    let found = two
        .feed_connections(&[
            (Provider::Vagaro, "main".into()),
            (Provider::Tiquo, "main".into()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "removed connections too, unknown ones not");
    assert_eq!(found[0].settings, settings);
    assert_eq!(
        two.feed(0, 100).unwrap().len(),
        6,
        "a removed connection's deliveries are still pulled"
    );
}

fn acknowledgements(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let c = connect(one, Provider::Tiquo, "main");
    let old = now() - Span::days(2);
    let group: Vec<NewDelivery> = (0..4)
        .map(|n| NewDelivery {
            received_at: old,
            ..delivery(c.id, &format!("evt_{n}"), b"{}")
        })
        .collect();
    one.ingest(&group, &[]).unwrap();
    assert_eq!(
        one.delete_acknowledged(now()).unwrap(),
        0,
        "nobody paired: nobody has them yet"
    );
    let all = ids(one);
    let front = pair_device(one, "front", b"token-front");
    let back = pair_device(two, "back", b"token-back");
    assert_eq!(two.device_behind(front).unwrap(), 4);

    // Never past the newest delivery, never backwards.
    two.acknowledge(front, all[3] + 1000).unwrap();
    let acked = |s: &dyn RelayStore, id: i64| {
        s.devices()
            .unwrap()
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
    };
    assert_eq!(acked(one, front).acked, all[3]);
    one.acknowledge(front, all[0]).unwrap();
    assert_eq!(acked(two, front).acked, all[3]);
    assert_eq!(one.device_behind(front).unwrap(), 0);
    assert_eq!(acked(one, front).behind, 0);
    assert_eq!(acked(one, back).behind, 4);

    // Only what every paired device has.
    one.acknowledge(back, all[1]).unwrap();
    assert_eq!(two.delete_acknowledged(now()).unwrap(), 2);
    assert_eq!(ids(one), all[2..]);
    // ...received before the cutoff.
    one.acknowledge(back, all[3]).unwrap();
    assert_eq!(two.delete_acknowledged(old).unwrap(), 0);
    // Never the newest.
    assert_eq!(two.delete_acknowledged(now()).unwrap(), 1);
    assert_eq!(ids(one), [all[3]]);
    assert_eq!(two.delete_acknowledged(now()).unwrap(), 0);
    let out = one
        .ingest(&[delivery(c.id, "evt_new", b"{}")], &[])
        .unwrap();
    assert!(stored(out[0]) > all[3], "no id handed out twice");
    assert_eq!(one.device_behind(front).unwrap(), 1);
    assert_eq!(one.device_behind(front + back + 1000).unwrap(), 0);
}

fn duplicates(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let c = connect(one, Provider::Vagaro, "main");
    let other = connect(one, Provider::Vagaro, "other");
    let out = one
        .ingest(
            &[
                delivery(c.id, "evt_1", b"{\"a\":1}"),
                delivery(c.id, "evt_1", b"{\"a\":1}"),
                delivery(other.id, "evt_1", b"{\"a\":1}"),
            ],
            &[rejection("vagaro", "main", now())],
        )
        .unwrap();
    let id = stored(out[0]);
    assert_eq!(out[1], IngestOutcome::Duplicate { id, duplicates: 1 });
    assert_ne!(stored(out[2]), id, "the same key on another connection");
    let again = two.ingest(&[delivery(c.id, "evt_1", b"{}")], &[]).unwrap();
    assert_eq!(again[0], IngestOutcome::Duplicate { id, duplicates: 2 });
    assert_eq!(ids(two).len(), 2);
    assert_eq!(one.rejections_after(0, 10).unwrap().len(), 1);

    // The same delivery at two instances at once: stored once, both answered.
    for round in 0..20 {
        let key = format!("race_{round}");
        let barrier = Arc::new(Barrier::new(2));
        let ingests: Vec<_> = [p.one.clone(), p.two.clone()]
            .into_iter()
            .map(|s| {
                let barrier = barrier.clone();
                let d = delivery(c.id, &key, b"{\"race\":true}");
                std::thread::spawn(move || {
                    barrier.wait();
                    s.ingest(&[d], &[]).unwrap()[0]
                })
            })
            .collect();
        let outcomes: Vec<IngestOutcome> = ingests.into_iter().map(|i| i.join().unwrap()).collect();
        let id = match outcomes
            .iter()
            .find(|o| matches!(o, IngestOutcome::Stored { .. }))
        {
            Some(IngestOutcome::Stored { id }) => *id,
            _ => panic!("one of them stores it: {outcomes:?}"),
        };
        assert!(
            outcomes.contains(&IngestOutcome::Duplicate { id, duplicates: 1 }),
            "the other counts a duplicate of it: {outcomes:?}"
        );
    }
    assert_eq!(ids(one).len(), 22);
}

fn changes(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let t = now();
    let m1 = one
        .accept_change(
            &merge("m1", "tiquo/main/cus_z", "vagaro/main/9"),
            "front",
            t,
        )
        .unwrap();
    assert!(m1.new);
    let again = two
        .accept_change(&merge("m1", "tiquo/main/cus_z", "vagaro/main/9"), "back", t)
        .unwrap();
    assert_eq!((again.id, again.new), (m1.id, false), "once by uid");
    assert_eq!(two.change_id("m1").unwrap(), Some(m1.id));
    assert_eq!(two.change_id("nope").unwrap(), None);
    let m2 = two
        .accept_change(&merge("m2", "tiquo/main/cus_b", "vagaro/main/8"), "back", t)
        .unwrap();
    assert!(m2.id > m1.id);

    // A forget that keeps forgetting takes the decisions naming its records with it...
    let f1 = one
        .accept_change(&forget("f1", &["tiquo/main/cus_z"], true), "front", t)
        .unwrap();
    assert_eq!(f1.decisions_deleted, 1);
    let uids = |s: &dyn RelayStore, after: i64, limit: usize| -> Vec<String> {
        s.changes_after(after, limit)
            .unwrap()
            .into_iter()
            .map(|(_, c)| c.uid)
            .collect()
    };
    assert_eq!(uids(two, 0, 100), ["m2", "f1"]);
    assert_eq!(uids(two, m2.id, 1), ["f1"]);
    assert_eq!(uids(two, 0, 1), ["m2"]);
    assert!(uids(one, f1.id, 100).is_empty());

    // ...and withholds what arrives about them.
    let c = connect(two, Provider::Tiquo, "main");
    let out = two
        .ingest(
            &[
                delivery(c.id, "evt_z1", &tiquo("evt_z1", "cus_z", "z@example.org")),
                delivery(c.id, "evt_b1", &tiquo("evt_b1", "cus_b", "b@example.org")),
                NewDelivery {
                    is_test: true,
                    ..delivery(c.id, "evt_zt", &tiquo("evt_zt", "cus_z", "z@example.org"))
                },
            ],
            &[],
        )
        .unwrap();
    assert!(
        matches!(out[0], IngestOutcome::Withheld { .. }),
        "about a customer kept forgotten: {out:?}"
    );
    stored(out[1]);
    stored(out[2]); // a test event is never withheld
    assert_eq!(ids(one).len(), 2);

    // Stopping lifts it.
    let stop = change(
        "s1",
        HandChangeKind::StopForgetting {
            forget: "f1".into(),
        },
    );
    assert!(two.accept_change(&stop, "back", t).unwrap().new);
    let out = one
        .ingest(
            &[delivery(
                c.id,
                "evt_z2",
                &tiquo("evt_z2", "cus_z", "z@example.org"),
            )],
            &[],
        )
        .unwrap();
    stored(out[0]);

    // A forget that doesn't name records by salted hashes isn't kept.
    let bad = change(
        "f2",
        HandChangeKind::Forget {
            forget: Forget {
                salt: "zz".into(),
                records: vec!["not hex".into()],
                keep_forgetting: false,
                reason: ErasureReason::Request,
            },
        },
    );
    assert!(matches!(
        one.accept_change(&bad, "front", t),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(two.change_id("f2").unwrap(), None);
    assert_eq!(uids(one, 0, 100), ["m2", "f1", "s1"]);
}

fn erasing(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let c = connect(one, Provider::Tiquo, "main");
    let ann = tiquo("evt_1", "cus_a", "ann@example.com");
    let out = one
        .ingest(
            &[
                delivery(c.id, "evt_1", &ann),
                delivery(c.id, "evt_2", &tiquo("evt_2", "cus_b", "bob@example.com")),
                NewDelivery {
                    is_test: true,
                    ..delivery(c.id, "evt_t", b"{}")
                },
            ],
            &[],
        )
        .unwrap();
    let first = stored(out[0]);
    let checked = two.deliveries_to_check(0, 10).unwrap();
    assert_eq!(checked.len(), 2, "test events aren't about anyone");
    assert_eq!(checked[0].id, first);
    assert_eq!(
        (checked[0].provider, checked[0].connection.as_str()),
        (Provider::Tiquo, "main")
    );
    assert_eq!(checked[0].body, ann);
    assert_eq!(two.deliveries_to_check(first, 1).unwrap().len(), 1);

    assert_eq!(two.erase_deliveries(&[first], now()).unwrap(), 1);
    assert_eq!(
        one.erase_deliveries(&[first, first + 1000], now()).unwrap(),
        0,
        "erasing twice changes nothing"
    );
    assert_eq!(one.deliveries_to_check(0, 10).unwrap().len(), 1);
    assert!(!ids(two).contains(&first));
    assert!(
        !one.delivery_matches(first, Provider::Tiquo, "main", &ann)
            .unwrap(),
        "its bytes are gone"
    );
    // The provider's retry of it is recognised, on either instance, and not stored again.
    let retry = two.ingest(&[delivery(c.id, "evt_1", &ann)], &[]).unwrap();
    assert_eq!(
        retry[0],
        IngestOutcome::Duplicate {
            id: first,
            duplicates: 1
        }
    );
    let retry = one.ingest(&[delivery(c.id, "evt_1", &ann)], &[]).unwrap();
    assert_eq!(
        retry[0],
        IngestOutcome::Duplicate {
            id: first,
            duplicates: 2
        }
    );
    assert!(one.wipe_forgotten(Duration::from_secs(30)).unwrap());
}

fn rejections(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let t = now();
    let long = "é".repeat(300);
    one.ingest(
        &[],
        &[
            rejection("tiquo", "main", t),
            rejection(&long, &long, t),
            NewRejection {
                remote_addr: None,
                body_bytes: None,
                ..rejection("nobody", "x", t)
            },
        ],
    )
    .unwrap();
    let all = two.rejections_after(0, 10).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(all[0].provider, "tiquo");
    assert_eq!(all[0].code, "bad_signature");
    assert_eq!(all[0].reason, "The signature didn't match.");
    assert_eq!(all[0].remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(all[0].received_at, t);
    assert_eq!(all[1].provider.chars().count(), 101, "names are bounded");
    assert_eq!(all[2].remote_addr, None);
    assert_eq!(two.rejections_after(all[0].id, 1).unwrap()[0].id, all[1].id);
    assert!(two.rejections_after(all[2].id, 10).unwrap().is_empty());
}

fn stats(p: &Pair) {
    let (one, two) = (&*p.one, &*p.two);
    let c = connect(one, Provider::Tiquo, "main");
    let other = connect(one, Provider::Tiquo, "other");
    let t = now();
    let at = |minutes: i64, key: &str| NewDelivery {
        received_at: t - Span::minutes(minutes),
        ..delivery(c.id, key, b"{}")
    };
    one.ingest(
        &[
            at(120, "a"),
            at(30, "b"),
            at(10, "c"),
            NewDelivery {
                is_test: true,
                ..at(1, "test")
            },
            NewDelivery {
                received_at: t,
                ..delivery(other.id, "x", b"{}")
            },
        ],
        &[
            rejection("tiquo", "main", t - Span::minutes(90)),
            rejection("tiquo", "main", t - Span::minutes(5)),
            rejection("tiquo", "other", t),
        ],
    )
    .unwrap();
    let s = two.connection_stats(&c, t - Span::hours(1)).unwrap();
    assert_eq!(s.last_delivery_at, Some(t - Span::minutes(10)));
    assert_eq!(s.deliveries_since, 2, "real deliveries only");
    assert_eq!(s.rejections_since, 1);
    assert_eq!(
        s.recent_arrivals,
        [
            t - Span::minutes(10),
            t - Span::minutes(30),
            t - Span::minutes(120)
        ],
        "newest first"
    );
    let none = connect(two, Provider::Vagaro, "quiet");
    let s = one.connection_stats(&none, t - Span::hours(1)).unwrap();
    assert_eq!(s.last_delivery_at, None);
    assert_eq!((s.deliveries_since, s.rejections_since), (0, 0));
}
