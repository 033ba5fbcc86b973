//! The relay's PostgreSQL store against a real, private PostgreSQL (`clientele_tests::pg`):
//! migrations run once however many instances start together, and every way of getting the
//! database URL wrong is a sentence naming what to check — never the password.

use clientele_relay_pg::{DatabaseUrl, NewDelivery, PgError, PgStore, Stored};
use clientele_tests::pg::{PASSWORD, PgCluster};

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn instances_starting_together_migrate_once() {
    let Some(pg) = cluster() else { return };
    pg.create_database("relay");
    let url = DatabaseUrl::parse(&pg.url("relay")).unwrap();
    assert!(!url.shown().contains(PASSWORD), "{}", url.shown());
    assert!(!format!("{url:?}").contains(PASSWORD));
    runtime().block_on(async {
        let opened = futures_join(&url).await;
        for store in &opened {
            assert_eq!(
                store.schema_version().await.unwrap(),
                clientele_relay_pg::SCHEMA_VERSION
            );
        }
    });
    assert_eq!(
        pg.psql("relay", "SELECT COUNT(*) FROM clientele_schema"),
        clientele_relay_pg::SCHEMA_VERSION.to_string(),
        "each migration recorded once"
    );
}

/// Four instances opening the same database at the same moment.
async fn futures_join(url: &DatabaseUrl) -> Vec<PgStore> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(
            task.await
                .unwrap()
                .expect("every instance opens the database"),
        );
    }
    stores
}

#[test]
fn a_wrong_database_url_says_what_to_check_and_never_the_password() {
    let Some(pg) = cluster() else { return };
    pg.create_database("relay");
    let rt = runtime();
    let open = |url: &str| -> PgError {
        let url = DatabaseUrl::parse(url).expect("a URL");
        rt.block_on(PgStore::open(&url))
            .expect_err("opening must fail")
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

/// A delivery for connection `c`.
fn delivery(c: i64, key: &str) -> NewDelivery {
    NewDelivery {
        connection_id: c,
        received_at_ms: 1_700_000_000_000,
        dedupe_key: key.into(),
        headers: "[]".into(),
        body: format!("{{\"key\":\"{key}\"}}").into_bytes(),
        verification: "test".into(),
        is_test: false,
    }
}

#[test]
fn a_desk_pulling_while_one_writer_holds_its_transaction_open_skips_nothing() {
    let Some(pg) = cluster() else { return };
    pg.create_database("relay");
    let url = DatabaseUrl::parse(&pg.url("relay")).unwrap();
    runtime().block_on(async {
        let mut b = PgStore::open(&url).await.unwrap();
        let desk = PgStore::open(&url).await.unwrap();
        let c = b.add_connection("tiquo", "main", 0).await.unwrap();
        b.ingest(&[delivery(c, "first")]).await.unwrap();
        let seen = desk.feed_ids(0, 100).await.unwrap();
        assert_eq!(seen.len(), 1);

        // Instance A's group: its transaction takes the feed's lock, stores a delivery, and
        // stays open — as a slow commit would.
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
        // Instance B stores meanwhile: it waits for A instead of committing a higher id first.
        let b_stores = tokio::spawn(async move {
            b.ingest(&[delivery(c, "after")]).await.unwrap();
            b
        });
        // Wait until B is queued behind A's lock (a condition, with a generous deadline).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let waiting: i64 = a
                .query_one(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting == 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "B never waited for A's lock"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let during = desk.feed_ids(seen[0], 100).await.unwrap();
        assert!(
            during.is_empty(),
            "nothing past the cursor is visible while A holds its commit: {during:?}"
        );
        a.batch_execute("COMMIT").await.unwrap();
        let _b = b_stores.await.unwrap();
        let after = desk.feed_ids(seen[0], 100).await.unwrap();
        assert_eq!(
            after.len(),
            2,
            "A's and B's deliveries, none skipped: {after:?}"
        );
        assert!(after[0] < after[1], "in the order they became visible");
    });
}

#[test]
fn the_same_delivery_at_two_instances_at_once_is_stored_once() {
    let Some(pg) = cluster() else { return };
    pg.create_database("relay");
    let url = DatabaseUrl::parse(&pg.url("relay")).unwrap();
    runtime().block_on(async {
        let mut one = PgStore::open(&url).await.unwrap();
        let mut two = PgStore::open(&url).await.unwrap();
        let c = one.add_connection("vagaro", "main", 0).await.unwrap();
        let d = delivery(c, "evt_1");
        let (x, y) = tokio::join!(
            one.ingest(std::slice::from_ref(&d)),
            two.ingest(std::slice::from_ref(&d))
        );
        let outcomes = [x.unwrap()[0], y.unwrap()[0]];
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Stored::New { .. }))
            .count();
        assert_eq!(new, 1, "stored once: {outcomes:?}");
        assert_eq!(one.feed_ids(0, 10).await.unwrap().len(), 1);
    });
}
