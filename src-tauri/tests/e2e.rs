//! The desktop app as a receptionist uses it: the real window under Xvfb, driven through
//! WebDriver; a provider connected through the UI alone ("Main Salon" saved as main-salon) with
//! its secret in a real Secret Service; the test message saying what it proved, and the step
//! waiting for the provider's own first message until a real signed delivery turns it green;
//! signed and forged deliveries sent from outside showing up live; the person's timeline and a
//! delivery's detail opened. Screenshots of each screen are kept in
//! tests/artifacts/e2e/ (ignored by git) to be looked at.

mod support;

use chrono::{Duration as ChronoDuration, Utc};
use clientele_core::Provider;
use clientele_tests::{agent, post, signed};
use fantoccini::Locator;
use serde_json::json;
use support::{App, iso};

const SECRET: &str = "tiquo-e2e-signing-secret-7f3a9c";

fn tiquo_body(
    id: &str,
    kind: &str,
    at: chrono::DateTime<Utc>,
    email: &str,
    previous: Option<&str>,
) -> Vec<u8> {
    let mut body = json!({
        "id": id, "type": kind, "created": iso(at),
        "data": {"id": "cust_ana", "firstName": "Ana", "lastName": "Silva", "email": email,
                 "phone": "+5511965958122", "loyaltyPoints": 120, "tags": ["VIP"],
                 "marketingConsent": true, "createdAt": iso(at), "source": "booking_portal"}
    });
    if let Some(old) = previous {
        body["previousAttributes"] = json!({"email": old});
    }
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_connects_tiquo_and_watches_customers_arrive() {
    if !support::can_run("a_receptionist_connects_tiquo_and_watches_customers_arrive") {
        return;
    }
    let app = App::start("receptionist").await;
    assert_eq!(app.client.title().await.unwrap(), "Clientele");

    // First run: every screen says what to do next, and the navigation doesn't claim to be
    // receiving while nothing is connected.
    app.click("nav-customers").await;
    app.wait_for_text("No customers yet", support::WAIT).await;
    app.wait_for_text_of(
        "nav-status",
        "Ready — nothing is connected yet",
        support::WAIT,
    )
    .await;
    assert_eq!(
        app.text_of("status-link").await,
        "Connect a provider to start receiving"
    );
    app.shot("01-customers-empty").await;
    app.click("nav-providers").await;
    app.shot("02-providers-empty").await;

    // Connect Tiquo through the UI alone, naming it as a person would.
    app.click("connect-provider").await;
    app.click("provider-card-tiquo").await;
    let name = app.find("connection-name").await;
    name.clear().await.unwrap();
    name.send_keys("Main Salon").await.unwrap();
    app.wait_for_text_of(
        "connection-name-result",
        "It will be saved as main-salon.",
        support::WAIT,
    )
    .await;
    app.shot("03a-connect-name").await;
    app.click("name-next").await;
    let address = app.find("webhook-url").await.text().await.unwrap();
    assert!(address.ends_with("/hooks/tiquo/main-salon"), "{address}");
    assert!(
        app.text_of("timeline-events")
            .await
            .contains("order.created"),
        "the fuller timeline's events are offered"
    );
    app.shot("03-connect-address").await;
    app.click("address-next").await;
    let secret = app.find("secret-input").await;
    assert_eq!(
        secret.attr("type").await.unwrap().as_deref(),
        Some("password"),
        "the secret is masked"
    );
    // Save with nothing pasted: told to paste it; pasting makes that go away.
    app.click("save-secret").await;
    app.wait_for_text_of(
        "secret-error",
        "Paste the signing secret from Tiquo first.",
        support::WAIT,
    )
    .await;
    secret.send_keys(SECRET).await.unwrap();
    app.wait_until_gone("secret-error", support::WAIT).await;
    app.shot("04-connect-secret").await;
    app.click("save-secret").await;

    // The test message says what it proved, and what it didn't; then the step waits for Tiquo.
    app.click("send-test").await;
    let result = app.find("test-result").await.text().await.unwrap();
    assert!(
        result.contains("Clientele checked a sample message for Tiquo 'main-salon' with the signing secret you pasted")
            && result.contains("This doesn't show that Tiquo can reach this computer yet"),
        "the test says exactly what it proved: {result}"
    );
    assert!(!result.contains("It works"), "{result}");
    assert!(
        app.text_of("first-message-waiting").await.contains(
            "Waiting for the first message from Tiquo — send a test from Tiquo's webhook settings"
        ),
        "the step waits, visibly, for Tiquo's own message"
    );
    assert_eq!(
        app.text_of("connect-done").await,
        "Done — I'll send it later"
    );
    assert!(
        !app.page_text().await.contains(SECRET),
        "the secret is never shown again"
    );
    app.shot("05-test-event").await;

    // Tiquo's own first message — a real signed delivery to the connection's address — turns
    // the step green.
    let now = Utc::now();
    let url = app.url("/hooks/tiquo/main-salon");
    let first = serde_json::to_vec(&json!({
        "id": "evt_e2e_first", "type": "customer.created", "created": iso(now),
        "data": {"id": "cust_bea", "firstName": "Bea", "lastName": "Costa",
                 "email": "bea@example.com", "createdAt": iso(now), "source": "web_app"}
    }))
    .unwrap();
    let (status, text) = post(
        &agent(),
        &url,
        &signed(Provider::Tiquo, SECRET, &first, now),
        &first,
    );
    assert_eq!(status, 200, "{text}");
    let arrived = app
        .find("first-message-arrived")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        arrived.contains("The first message from Tiquo arrived")
            && arrived.contains("was checked with the signing secret: Tiquo – main-salon works."),
        "{arrived}"
    );
    assert_eq!(app.text_of("connect-done").await, "Done");
    app.shot("05b-first-message").await;
    app.click("connect-done").await;
    app.find("connected-badge").await;
    app.wait_for_text_of("nav-status", "Receiving messages", support::WAIT)
        .await;
    app.shot("06-providers").await;

    // The secret is in the keychain (a real Secret Service), and nowhere in the data folder.
    let lookup = std::process::Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "clientele-dev",
            "username",
            "tiquo/main-salon",
        ])
        .output()
        .expect("secret-tool");
    assert_eq!(
        String::from_utf8_lossy(&lookup.stdout).trim(),
        SECRET,
        "{lookup:?}"
    );
    let leaks = clientele_tests::findable(app.data.path(), &[SECRET]);
    assert!(leaks.is_empty(), "the secret leaked into {leaks:?}");

    // A signed delivery from outside appears without reloading.
    app.click("nav-customers").await;
    let created = tiquo_body(
        "evt_e2e_1",
        "customer.created",
        now - ChronoDuration::minutes(5),
        "ana@example.com",
        None,
    );
    let (status, text) = post(
        &agent(),
        &url,
        &signed(Provider::Tiquo, SECRET, &created, now),
        &created,
    );
    assert_eq!(status, 200, "{text}");
    app.wait_for_text("Ana Silva", support::WAIT).await;
    app.shot("07-customers-live").await;

    // A forged one shows as refused, with a reason a person understands.
    let forged = tiquo_body(
        "evt_e2e_forged",
        "customer.updated",
        now,
        "evil@example.com",
        Some("ana@example.com"),
    );
    let (status, _) = post(
        &agent(),
        &url,
        &signed(Provider::Tiquo, "wrong-secret", &forged, now),
        &forged,
    );
    assert_eq!(status, 401);
    app.click("nav-activity").await;
    app.wait_for_text("signature didn't match", support::WAIT)
        .await;
    app.shot("08-activity").await;

    // A delivery's detail: who it was about, what was checked, and the message itself one
    // click away.
    let rows = app
        .client
        .find_all(Locator::Css("[data-testid=\"activity-row\"]"))
        .await
        .unwrap();
    let mut opened = false;
    for row in rows {
        let text = row.text().await.unwrap_or_default();
        if text.contains("Ana Silva") {
            row.click().await.unwrap();
            opened = true;
            break;
        }
    }
    assert!(opened, "a row names Ana");
    let link = app.find("delivery-person-link").await;
    assert_eq!(
        link.text().await.unwrap(),
        "Ana Silva",
        "a link to her page"
    );
    app.open_technical_details().await;
    let panel = app.find("delivery-panel").await.text().await.unwrap();
    assert!(panel.contains("cust_ana"), "the message content: {panel}");
    assert!(!panel.contains(SECRET));
    app.shot("09-delivery-detail").await;

    // The person's timeline, updating live and reading naturally.
    app.click("nav-customers").await;
    app.wait_for_text("Ana Silva", support::WAIT).await;
    // (By its textContent: WebDriver's element text leaves out parts of the virtualised rows.)
    let opened = app
        .client
        .execute(
            "const row = [...document.querySelectorAll('[data-testid=\"customer-row\"]')] \
               .find((r) => r.textContent.includes('Ana Silva')); \
             if (row) row.click(); \
             return !!row",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        opened,
        json!(true),
        "Ana's row is listed (beside Bea's, from the first message)"
    );
    app.find("timeline").await;
    let update = tiquo_body(
        "evt_e2e_2",
        "customer.updated",
        now,
        "ana.new@example.com",
        Some("ana@example.com"),
    );
    let (status, text) = post(
        &agent(),
        &url,
        &signed(Provider::Tiquo, SECRET, &update, Utc::now()),
        &update,
    );
    assert_eq!(status, 200, "{text}");
    let page = app
        .wait_for_text(
            "Email changed from ana@example.com to ana.new@example.com",
            support::WAIT,
        )
        .await;
    assert!(page.contains("Tiquo"), "each line names the provider");
    app.shot("10-person").await;

    app.click("nav-settings").await;
    app.wait_for_text(&format!("127.0.0.1:{}", app.port), support::WAIT)
        .await;
    // The sidebar shows the address too: wait for the screen itself, not its loading placeholders.
    app.find("port-input").await;
    app.find("data-dir").await;
    app.shot("11-settings").await;

    app.stop().await;
}
