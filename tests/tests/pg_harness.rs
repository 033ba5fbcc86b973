//! The tests' private PostgreSQL cluster itself: made, reachable with its password and only with
//! it, killed and started again on the same data, and gone when dropped.

use clientele_tests::pg::{PASSWORD, PgCluster};

#[test]
fn a_private_cluster_starts_keeps_its_data_across_a_kill_and_is_stopped_when_dropped() {
    if let Err(why) = PgCluster::available() {
        assert!(PgCluster::may_skip(), "CLIENTELE_REQUIRE_PG=1, but {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let mut pg = PgCluster::start();
    pg.create_database("relay");
    assert_eq!(pg.psql("relay", "SELECT 40 + 2"), "42");
    assert!(
        pg.url("relay")
            .contains(&format!("127.0.0.1:{}/relay", pg.port))
    );
    assert!(pg.url("relay").contains(PASSWORD));
    pg.psql(
        "relay",
        "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)",
    );

    // Killed as a crash would kill it, then started again: committed rows are still there.
    pg.kill();
    assert!(!pg.listening(), "the server is gone once killed");
    pg.restart();
    assert_eq!(pg.psql("relay", "SELECT n FROM kept"), "7");

    let data = pg.data_dir();
    let port = pg.port;
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens once the cluster is dropped"
    );
    assert!(!data.exists(), "its folder is removed");
}
