//! The relay's PostgreSQL store against a real, private PostgreSQL (`clientele_tests::pg`):
//! migrations run once however many instances start together, and every way of getting the
//! database URL wrong is a sentence naming what to check — never the password.

use clientele_relay_pg::{DatabaseUrl, PgError, PgStore};
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
            assert_eq!(store.schema_version().await.unwrap(), 1);
        }
    });
    assert_eq!(
        pg.psql("relay", "SELECT COUNT(*) FROM clientele_schema"),
        "1",
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
