//! The relay's PostgreSQL store against a real, private PostgreSQL (`clientele_tests::pg`), for
//! what only a shared database server has: migrations run once however many instances start
//! together, every way of getting the database URL wrong is a sentence naming what to check —
//! never the password —, the feed never skips while another instance holds its commit, other
//! instances' commits wake this one, and a server that goes away and comes back costs failed
//! calls, not the store. (What both stores do alike is `relay_store.rs`.)

use chrono::Utc;
use clientele_core::hand::{Decision, HandChange, HandChangeKind};
use clientele_core::relay_protocol::Policy;
use clientele_core::{ConnectionSettings, Provider};
use clientele_relay::store::{RelayStore, StoreEvent};
use clientele_relay_pg::{DatabaseUrl, PgError, PgStore};
use clientele_store::{IngestOutcome, NewConnection, NewDelivery, StoreError};
use clientele_tests::pg::{PASSWORD, PgCluster};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

fn cluster() -> Option<PgCluster> {
    match PgCluster::available() {
        Ok(_) => Some(PgCluster::start()),
        Err(why) => {
            assert!(PgCluster::may_skip(), "CLIENTELE_REQUIRE_PG=1, but {why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A fresh database `relay` in `pg`, and its URL.
fn database(pg: &PgCluster) -> DatabaseUrl {
    pg.create_database("relay");
    DatabaseUrl::parse(&pg.url("relay")).unwrap()
}

fn add_connection(s: &dyn RelayStore, name: &str) -> i64 {
    s.add_connection(
        &NewConnection {
            provider: Provider::Tiquo,
            name: name.into(),
            settings: ConnectionSettings::default(),
            requires_secret: true,
        },
        Utc::now(),
    )
    .unwrap()
    .id
}

fn delivery(connection_id: i64, key: &str) -> NewDelivery {
    NewDelivery {
        connection_id,
        received_at: Utc::now(),
        dedupe_key: key.into(),
        headers: vec![],
        body: format!("{{\"key\":\"{key}\"}}").into_bytes(),
        verification: "test".into(),
        is_test: false,
    }
}

fn feed_ids(s: &dyn RelayStore, after: i64) -> Vec<i64> {
    s.feed(after, 1000).unwrap().iter().map(|f| f.id).collect()
}

/// Waits (a condition, with a generous deadline) until `rx` has said `want`.
fn wait_for_event(rx: &mut broadcast::Receiver<StoreEvent>, want: StoreEvent, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match rx.try_recv() {
            Ok(event) if event == want => return,
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
            Err(broadcast::error::TryRecvError::Empty) => {}
            Err(broadcast::error::TryRecvError::Closed) => panic!("the events ended"),
        }
        assert!(Instant::now() < deadline, "no {want:?} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn instances_starting_together_migrate_once() {
    let Some(pg) = cluster() else { return };
    let url = database(&pg);
    assert!(!url.shown().contains(PASSWORD), "{}", url.shown());
    assert!(!format!("{url:?}").contains(PASSWORD));
    // Four instances opening the same database at the same moment.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                PgStore::connect(&url)
            })
        })
        .collect();
    for store in opening {
        let store = store
            .join()
            .unwrap()
            .expect("every instance opens the database");
        assert_eq!(
            store.schema_version().unwrap(),
            clientele_relay_pg::SCHEMA_VERSION
        );
    }
    assert_eq!(
        pg.psql("relay", "SELECT COUNT(*) FROM clientele_schema"),
        clientele_relay_pg::SCHEMA_VERSION.to_string(),
        "each migration recorded once"
    );

    // A database a newer Clientele set up is refused, in words.
    pg.psql(
        "relay",
        "INSERT INTO clientele_schema (version) VALUES (999)",
    );
    let said = PgStore::connect(&url).unwrap_err();
    assert!(matches!(said, PgError::TooNew { found: 999, .. }), "{said}");
    assert!(said.to_string().contains("Update this relay"), "{said}");
}

#[test]
fn a_wrong_database_url_says_what_to_check_and_never_the_password() {
    let Some(pg) = cluster() else { return };
    pg.create_database("relay");
    let open = |url: &str| -> PgError {
        let url = DatabaseUrl::parse(url).expect("a URL");
        PgStore::connect(&url).expect_err("opening must fail")
    };
    let wrong_password = format!(
        "postgres://clientele:not-{PASSWORD}@127.0.0.1:{}/relay",
        pg.port
    );
    let said = open(&wrong_password).to_string();
    assert!(said.contains("refused user 'clientele'"), "{said}");
    assert!(!said.contains(PASSWORD) && !said.contains("not-"), "{said}");

    let no_database = pg.url("missing");
    let said = open(&no_database).to_string();
    assert!(
        said.contains("no database 'missing'") && said.contains("createdb"),
        "{said}"
    );
    assert!(!said.contains(PASSWORD), "{said}");

    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = format!("postgres://clientele:{PASSWORD}@127.0.0.1:{free}/relay");
    let said = open(&nobody).to_string();
    assert!(
        said.contains(&format!("Nothing answered at 127.0.0.1:{free}")),
        "{said}"
    );
    assert!(!said.contains(PASSWORD), "{said}");

    for bad in [
        "relay.db",
        "mysql://a@b/c",
        "postgres://",
        "postgres://host:5432",
    ] {
        let e = DatabaseUrl::parse(bad).expect_err(bad);
        assert!(e.to_string().contains("postgres://USER"), "{bad}: {e}");
    }
}

#[test]
fn a_desk_pulling_while_one_writer_holds_its_transaction_open_skips_nothing() {
    let Some(pg) = cluster() else { return };
    let url = database(&pg);
    let b = PgStore::connect(&url).unwrap();
    let desk = PgStore::connect(&url).unwrap();
    let c = add_connection(&b, "main");
    b.ingest(&[delivery(c, "first")], &[]).unwrap();
    let seen = feed_ids(&desk, 0);
    assert_eq!(seen.len(), 1);

    // Instance A's group: its transaction takes the feed's lock, stores a delivery, and stays
    // open — as a slow commit would. (A raw connection, driven by this test's own runtime.)
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = rt.block_on(async {
        let (a, conn) = tokio_postgres::connect(&pg.url("relay"), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        a.batch_execute("BEGIN").await.unwrap();
        a.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&clientele_relay_pg::FEED_LOCK],
        )
        .await
        .unwrap();
        a.execute(
            "INSERT INTO deliveries (connection_id, received_at, dedupe_key, headers, body,
                                     verification) VALUES ($1, 0, 'held', '[]', '\\x00', 't')",
            &[&c],
        )
        .await
        .unwrap();
        a
    });
    // Instance B stores meanwhile: it waits for A instead of committing a higher id first.
    let b_stores = std::thread::spawn(move || {
        let out = b.ingest(&[delivery(c, "after")], &[]).unwrap();
        assert!(matches!(out[0], IngestOutcome::Stored { .. }), "{out:?}");
    });
    // Wait until B is queued behind A's lock.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = rt.block_on(async {
            a.query_one(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .unwrap()
            .get(0)
        });
        if waiting == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "B never waited for A's lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let during = feed_ids(&desk, seen[0]);
    assert!(
        during.is_empty(),
        "nothing past the cursor is visible while A holds its commit: {during:?}"
    );
    rt.block_on(a.batch_execute("COMMIT")).unwrap();
    b_stores.join().unwrap();
    let after = feed_ids(&desk, seen[0]);
    assert_eq!(
        after.len(),
        2,
        "A's and B's deliveries, none skipped: {after:?}"
    );
    assert!(after[0] < after[1], "in the order they became visible");
}

#[test]
fn another_instance_s_commits_wake_this_one() {
    let Some(pg) = cluster() else { return };
    let url = database(&pg);
    let here = PgStore::connect(&url).unwrap();
    let there = PgStore::connect(&url).unwrap();
    let mut events = here
        .subscribe()
        .expect("a shared database can be listened to");
    let c = add_connection(&there, "main");
    there.ingest(&[delivery(c, "evt_1")], &[]).unwrap();
    wait_for_event(&mut events, StoreEvent::Deliveries, Duration::from_secs(30));
    assert_eq!(feed_ids(&here, 0).len(), 1, "what woke it is there to read");

    let merge = HandChange {
        uid: "m1".into(),
        at: Utc::now(),
        by: "Front desk".into(),
        what: HandChangeKind::Decide {
            decision: Decision::Merge {
                records: [
                    "tiquo/main/1".parse().unwrap(),
                    "vagaro/main/2".parse().unwrap(),
                ],
            },
        },
    };
    there.accept_change(&merge, "front", Utc::now()).unwrap();
    wait_for_event(&mut events, StoreEvent::Changes, Duration::from_secs(30));
    there
        .store_retention_policy(&Policy {
            retention_inactive_months: Some(12),
            retention_rejections_days: None,
        })
        .unwrap();
    wait_for_event(&mut events, StoreEvent::Changes, Duration::from_secs(30));
}

#[test]
fn a_database_that_goes_away_and_comes_back_costs_calls_not_the_store() {
    let Some(mut pg) = cluster() else { return };
    let url = database(&pg);
    let store = PgStore::connect(&url).unwrap();
    let c = add_connection(&store, "main");
    let before = store.ingest(&[delivery(c, "before")], &[]).unwrap();
    let mut events = store.subscribe().unwrap();

    pg.kill();
    // Every kind of call says the database can't be used, naming it without its password —
    // and says it promptly: a provider is waiting for the answer.
    let unavailable = |what: &str, result: Result<(), StoreError>| match result {
        Err(StoreError::Unavailable(said)) => {
            eprintln!("{what}: {said}");
            assert!(said.contains(url.shown()), "{what}: {said}");
            assert!(!said.contains(PASSWORD), "{what}: {said}");
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    };
    let started = Instant::now();
    unavailable(
        "ingest",
        store.ingest(&[delivery(c, "during")], &[]).map(|_| ()),
    );
    unavailable("feed", store.feed(0, 10).map(|_| ()));
    unavailable("connections", store.connections().map(|_| ()));
    unavailable(
        "claim",
        store
            .claim_pairing_code(b"code", b"token", None, Utc::now())
            .map(|_| ()),
    );
    unavailable("device_by_token", store.device_by_token(b"t").map(|_| ()));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered in {:?}",
        started.elapsed()
    );

    pg.restart();
    // The same store, no new connect: it works again once the server is back.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        match store.ingest(&[delivery(c, "after")], &[]) {
            Ok(out) => break out,
            Err(StoreError::Unavailable(said)) => {
                assert!(!said.contains(PASSWORD), "{said}");
                assert!(
                    Instant::now() < deadline,
                    "still unavailable a minute after PostgreSQL came back: {said}\n{}",
                    pg.log_text()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    let ids = feed_ids(&store, 0);
    assert_eq!(ids.len(), 2, "what was committed before, and the new one");
    assert!(matches!(before[0], IngestOutcome::Stored { id } if id == ids[0]));
    assert!(matches!(after[0], IngestOutcome::Stored { id } if id == ids[1]));
    assert_eq!(store.connections().unwrap().len(), 1);
    // The listener reconnected by itself and said to look again (it may have missed commits).
    wait_for_event(&mut events, StoreEvent::Changes, Duration::from_secs(60));
    let other = PgStore::connect(&url).unwrap();
    other.ingest(&[delivery(c, "from another")], &[]).unwrap();
    wait_for_event(&mut events, StoreEvent::Deliveries, Duration::from_secs(30));
}
