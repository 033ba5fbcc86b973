//! Who is who, corrected by hand, and a customer forgotten — in the real window under Xvfb: two
//! records linked by a shared email say why; one is separated (confirmed) into a customer of its
//! own; the two are merged back through the search ("Linked by hand …"); both changes are undone
//! from "Changes made by hand"; then the customer is forgotten after a confirmation that names the
//! export that included them, and the search finds nothing. Screenshots in
//! tests/artifacts/e2e/people/hand-*.png.
//!
//! Its own test binary, not a second test in e2e_people.rs: tests in one binary run at the same
//! time, and the screenshots are of the whole X display.

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use clientele_core::Provider;
use clientele_tests::clientele_bin;
use serde_json::json;
use support::{App, WAIT, iso};

const VAGARO_TOKEN: &str = "vagaro-e2e-hand-verification-token-7a1c";
const TIQUO_SECRET: &str = "tiquo-e2e-hand-secret-3f9b";

/// Runs the `clientele` command on the app's data folder, as staff would beside the window.
fn cli(app: &App, args: &[&str]) -> String {
    let out = std::process::Command::new(clientele_bin())
        .arg("--data-dir")
        .arg(app.data.path())
        .args(args)
        .output()
        .expect("run clientele");
    assert!(out.status.success(), "clientele {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Types `text` into the Customers search, replacing what it held.
async fn search(app: &App, text: &str) {
    let field = app.find("customer-search").await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The text of every element with this test id, in page order.
async fn texts(app: &App, testid: &str) -> Vec<String> {
    serde_json::from_value(
        app.client
            .execute(
                &format!(
                    "return [...document.querySelectorAll('[data-testid=\"{testid}\"]')]\
                     .map(e => e.textContent.replace(/\\s+/g, ' ').trim())"
                ),
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap()
}

/// Scrolls the screen's own scrolling area so the element with this test id is at its top, as a
/// mouse wheel would.
async fn scroll_to(app: &App, testid: &str) {
    let _ = app
        .client
        .execute(
            &format!(
                "const e = document.querySelector('[data-testid=\"{testid}\"]'); \
                 const area = e.closest('.screen-body'); \
                 area.scrollTop += e.getBoundingClientRect().top - area.getBoundingClientRect().top - 12; \
                 return true"
            ),
            vec![],
        )
        .await;
}

/// Waits until exactly `n` elements have this test id.
async fn wait_for_count(app: &App, testid: &str, n: usize) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let found = texts(app, testid).await;
        if found.len() == n {
            return;
        }
        if std::time::Instant::now() > deadline {
            app.shot("failure").await;
            panic!("expected {n} [data-testid={testid}], found {found:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_correct_who_is_who_by_hand_and_forget_a_customer() {
    if !support::can_run("staff_correct_who_is_who_by_hand_and_forget_a_customer") {
        return;
    }
    let app = App::start("people").await;
    app.connect_provider("vagaro", "main", VAGARO_TOKEN).await;
    app.connect_provider("tiquo", "main", TIQUO_SECRET).await;

    // Ana at Vagaro and at Tiquo, with the same email: linked automatically.
    let now = Utc::now();
    let vagaro = serde_json::to_vec(&json!({
        "id": "hand-v1", "createdDate": iso(now - ChronoDuration::minutes(10)), "type": "customer",
        "action": "created", "payload": {"customerId": "V1", "customerFirstName": "Ana",
        "customerLastName": "Silva", "email": "ana.hand@example.com", "mobilePhone": "+447700900456",
        "countryCode": "GB"}
    }))
    .unwrap();
    app.send(Provider::Vagaro, VAGARO_TOKEN, &vagaro);
    let tiquo = serde_json::to_vec(&json!({
        "id": "evt_hand_1", "type": "customer.created", "created": iso(now - ChronoDuration::minutes(5)),
        "data": {"id": "cust_ana", "firstName": "Ana", "lastName": "Silva", "email": "ana.hand@example.com"}
    }))
    .unwrap();
    app.send(Provider::Tiquo, TIQUO_SECRET, &tiquo);

    // An incremental export that writes her, run from the command line beside the window.
    let out = tempfile::tempdir().expect("a folder for the export");
    let profile = out.path().join("profile.json");
    std::fs::write(
        &profile,
        serde_json::to_vec(&json!({
            "name": "Mailing list", "rows": "people",
            "columns": [{"header": "Name", "source": "full_name"}, {"header": "Email", "source": "email"}],
            "format": {"type": "csv"}, "incremental": true
        }))
        .unwrap(),
    )
    .unwrap();
    cli(
        &app,
        &["export-profile", "import", profile.to_str().unwrap()],
    );
    let file = out.path().join("mailing.csv");
    cli(
        &app,
        &[
            "export",
            "--profile",
            "Mailing list",
            "--out",
            file.to_str().unwrap(),
        ],
    );

    // Her page: two records, the second linked because of the shared email.
    app.click("nav-customers").await;
    search(&app, "Ana Silva").await;
    app.wait_for_text("1 match", WAIT).await;
    app.click("customer-row").await;
    wait_for_count(&app, "source-row", 2).await;
    let reasons = texts(&app, "link-reason").await;
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("Why linked: Same email") && r.contains("ana.hand@example.com")),
        "{reasons:?}"
    );
    scroll_to(&app, "sources-panel").await;
    app.shot("hand-01-linked").await;

    // "Not this person": the confirmation says what happens; then she is two customers.
    app.find_all("split-record").await[1].click().await.unwrap();
    let sentence = app.text_of("split-sentence").await;
    assert_eq!(
        sentence,
        "This record will be shown as a customer of its own, and stays apart even if it shares an \
         email or phone later. You can undo this in Changes made by hand."
    );
    app.shot("hand-02-split-confirm").await;
    app.click("confirm-split").await;
    app.wait_for_text_of("person-flash", "Separated.", WAIT)
        .await;
    wait_for_count(&app, "source-row", 1).await;
    // What it did is said at the top, in view.
    assert!(app.is_shown("person-flash").await);
    app.shot("hand-03-separated").await;

    app.click("back-to-customers").await;
    search(&app, "Ana Silva").await;
    app.wait_for_text("2 matches", WAIT).await;
    app.shot("hand-04-two-customers").await;

    // Merged back through the search on her page.
    app.click("customer-row").await;
    app.click("merge-person").await;
    app.find("merge-search")
        .await
        .send_keys("Ana Silva")
        .await
        .unwrap();
    wait_for_count(&app, "merge-candidate", 1).await;
    app.shot("hand-05-merge-search").await;
    app.click("merge-candidate").await;
    let merge = app.text_of("merge-sentence").await;
    assert_eq!(
        merge,
        "Ana Silva and Ana Silva will be shown as one customer. You can undo this in Changes made by hand."
    );
    app.shot("hand-06-merge-confirm").await;
    app.click("confirm-merge").await;
    app.wait_for_text_of("person-flash", "Merged with Ana Silva", WAIT)
        .await;
    wait_for_count(&app, "source-row", 2).await;
    let reasons = texts(&app, "link-reason").await;
    assert!(
        reasons.iter().any(|r| r.starts_with("Linked by hand on ")),
        "{reasons:?}"
    );
    app.shot("hand-07-merged").await;
    scroll_to(&app, "sources-panel").await;
    app.shot("hand-07b-merged-records").await;

    // Changes made by hand: both listed, newest first; undo them both.
    app.click("back-to-customers").await;
    app.click("hand-changes-link").await;
    wait_for_count(&app, "decision-row", 2).await;
    let summaries = texts(&app, "decision-summary").await;
    assert!(summaries[0].contains("same person"), "{summaries:?}");
    app.shot("hand-08-changes").await;
    for _ in 0..2 {
        app.click("undo-decision").await;
        app.wait_for_text_of("undo-note", "Undone.", WAIT).await;
    }
    wait_for_count(&app, "decision-undone", 2).await;
    app.shot("hand-09-undone").await;

    // Back to one customer, linked by the email again; forgotten after the confirmation.
    app.click("back-to-customers").await;
    search(&app, "Ana Silva").await;
    app.wait_for_text("1 match", WAIT).await;
    app.click("customer-row").await;
    wait_for_count(&app, "source-row", 2).await;
    app.click("forget-person").await;
    let what = app
        .wait_for_text_of(
            "forget-what",
            "Every message, record and link about Ana Silva",
            WAIT,
        )
        .await;
    assert!(what.contains("erased from this computer"), "{what}");
    let counts = app.text_of("forget-counts").await;
    assert!(counts.contains("2 records at"), "{counts}");
    let exports = texts(&app, "forget-export").await;
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(
        exports[0]
            .to_lowercase()
            .contains("included them: mailing list")
            && exports[0].contains("mailing.csv"),
        "{exports:?}"
    );
    app.click("keep-forgetting").await;
    assert!(
        !app.find("confirm-forget").await.is_enabled().await.unwrap(),
        "nothing is forgotten before the box is ticked"
    );
    app.click("forget-understood").await;
    app.shot("hand-10-forget-confirm").await;
    app.click("confirm-forget").await;
    let result = app
        .wait_for_text_of("customers-flash", "Forgotten.", WAIT)
        .await;
    assert!(result.contains("2 messages erased"), "{result}");
    search(&app, "Ana").await;
    app.wait_for_text("No customers match 'Ana'", WAIT).await;
    app.shot("hand-11-forgotten").await;
    search(&app, "ana.hand@example.com").await;
    app.wait_for_text("No customers match", WAIT).await;

    // Tiquo sends about her again: acknowledged, not kept, and Activity says so without her data.
    let again = serde_json::to_vec(&json!({
        "id": "evt_hand_2", "type": "customer.updated", "created": iso(Utc::now()),
        "data": {"id": "cust_ana", "firstName": "Ana", "lastName": "Silva", "email": "ana.hand@example.com"}
    }))
    .unwrap();
    app.send(Provider::Tiquo, TIQUO_SECRET, &again);
    app.click("nav-activity").await;
    let activity = app
        .wait_for_text(
            "A message about a forgotten customer arrived and wasn't kept",
            WAIT,
        )
        .await;
    assert!(
        !activity.contains("Ana") && !activity.contains("ana.hand"),
        "{activity}"
    );
    app.shot("hand-11b-activity").await;
    // Her earlier messages: erased, and opening one shows that and nothing of her.
    let rows = texts(&app, "activity-row").await;
    let erased = rows
        .iter()
        .position(|r| r.contains("Erased"))
        .unwrap_or_else(|| panic!("an erased row: {rows:?}"));
    app.find_all("activity-row").await[erased]
        .click()
        .await
        .unwrap();
    let panel = app
        .wait_for_text_of(
            "delivery-panel",
            "it was about a customer who was forgotten",
            WAIT,
        )
        .await;
    assert!(
        !panel.contains("Ana") && !panel.contains("ana.hand") && !panel.contains("Re-process"),
        "{panel}"
    );
    app.shot("hand-11c-erased-message").await;

    // Settings → Privacy: the erasure log says when, why and how many — never who.
    app.click("nav-settings").await;
    wait_for_count(&app, "erasure-row", 1).await;
    let log = app.text_of("erasure-log").await;
    assert!(log.contains("Asked to be forgotten"), "{log}");
    assert!(!log.contains("Ana") && !log.contains("ana.hand"), "{log}");
    wait_for_count(&app, "suppression-row", 1).await;
    // Retention, off until turned on, then said plainly.
    let now_says = app.text_of("retention-now").await;
    assert!(now_says.starts_with("Off:"), "{now_says}");
    app.click("retention-inactive-on").await;
    let months = app.find("retention-inactive-months").await;
    months.clear().await.unwrap();
    months.send_keys("18").await.unwrap();
    app.click("save-retention").await;
    app.wait_for_text_of(
        "retention-now",
        "Customers with no activity for 18 months are forgotten.",
        WAIT,
    )
    .await;
    scroll_to(&app, "privacy-settings").await;
    app.shot("hand-12-privacy").await;

    // Providers: what happens when Tiquo deletes a customer.
    app.click("nav-providers").await;
    // Both connections' cards, once the screen has read them (on a busy machine it may not
    // have yet when the click returns).
    wait_for_count(&app, "connection-card", 2).await;
    let cards = texts(&app, "connection-card").await;
    let tiquo = cards
        .iter()
        .position(|c| c.contains("Tiquo – main"))
        .unwrap_or_else(|| panic!("Tiquo's card: {cards:?}"));
    let choice = &app.find_all("forget-deleted-choice").await[tiquo];
    choice
        .find(fantoccini::Locator::Css("option[value=\"forget\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let days = app.find("forget-deleted-days").await;
    days.clear().await.unwrap();
    days.send_keys("30").await.unwrap();
    app.click("save-forget-deleted").await;
    app.wait_for_text_of(
        "forget-deleted-note",
        "Saved. Forget them 30 days after Tiquo deletes them.",
        WAIT,
    )
    .await;
    app.shot("hand-13-provider-deletes").await;

    app.stop().await;
}
