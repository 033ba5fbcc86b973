//! A data folder written by the schema-6 release (`tests/fixtures/store-v6`) opened by this app:
//! the window opens at once on "Updating your data" with its progress, then goes on to the
//! Customers screen with every customer the old release had. A debug build's test slow-down
//! (`CLIENTELE_TEST_SLOW_UPGRADE_MS`) makes the conversion last long enough to see and
//! photograph the screen. Screenshots in tests/artifacts/e2e/upgrade/.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{App, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_folder_opens_on_updating_your_data_then_shows_every_customer() {
    if !support::can_run("an_older_data_folder_opens_on_updating_your_data") {
        return;
    }
    let fixture = clientele_tests::store_fixture::dir();
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture.join("data/clientele.db"),
        data.path().join("clientele.db"),
    )
    .unwrap();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(fixture.join("expected/customers-list-all.json")).unwrap(),
    )
    .unwrap();
    let expected = expected.as_array().unwrap();

    let app = App::start_with(
        "upgrade",
        data,
        &[("CLIENTELE_TEST_SLOW_UPGRADE_MS", "12000")],
    )
    .await;
    let screen = app.find("updating-screen").await;
    let words = screen.text().await.unwrap_or_default();
    assert!(words.contains("Updating your data"), "{words}");
    assert!(words.contains("nothing is lost"), "{words}");
    assert!(
        app.find_all("nav-customers").await.is_empty(),
        "nothing else while it converts"
    );
    // How far, in messages: the fixture holds 237.
    let count = app
        .wait_for_text_of("updating-count", " of 237 messages", WAIT)
        .await;
    assert!(!count.starts_with("237 of"), "{count}");
    app.shot("updating").await;

    // Then the usual window, on Customers, with the old release's customers.
    app.find("nav-customers").await;
    let total = app
        .wait_for_text_of(
            "customer-count",
            &format!("{} customers", expected.len()),
            WAIT,
        )
        .await;
    assert!(total.contains("39 customers"), "{total}");
    for person in expected.iter().take(5) {
        let name = person["display_name"].as_str().unwrap();
        app.wait_for_text(name, Duration::from_secs(10)).await;
    }
    app.shot("customers").await;
    app.stop().await;
}
