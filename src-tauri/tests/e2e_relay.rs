//! Receiving from the internet, through the real window: a real relay (`clientele relay serve`)
//! and a pairing code made on it (`clientele relay pair --admin`); the receptionist types the
//! relay's address and the code in Settings and sees "Connected to …"; connects Tiquo from
//! Providers, which adds the connection to the relay (its secret goes there, not to this
//! computer), the test message going to the relay's public address and saying so, the card
//! waiting for Tiquo's first message until a signed delivery posted to the RELAY shows up among
//! the customers and turns it to "Connected"; Settings says when the last message came, that the
//! relay can't be reached while it is down (and connected again once it is back), and that this
//! computer's access was removed once the relay revokes it; and "Stop receiving through the relay" leaves it (Providers then says the relay's
//! connection no longer receives, and the customers stay). The relay's access key is checked to
//! be in the keychain and never on the screen. Screenshots of each step are kept in
//! tests/artifacts/e2e/relay/ to be looked at.

mod support;

use chrono::{SecondsFormat, Utc};
use clientele_core::Provider;
use clientele_tests::relay::Relay;
use clientele_tests::{agent, post, signed};
use serde_json::json;
use std::time::Duration;
use support::App;

const SECRET: &str = "tiquo-relay-e2e-signing-secret-5d2b81";

/// How long a delivery posted to the relay may take to show in the window: the desk's long poll
/// wakes as soon as the relay stores it, but a debug build on two busy cores is slow to derive
/// and refresh. Generous; one that never arrives still fails.
const ARRIVE: Duration = Duration::from_secs(90);

fn tiquo_created(id: &str, at: chrono::DateTime<Utc>) -> Vec<u8> {
    let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    serde_json::to_vec(&json!({
        "id": id, "type": "customer.created", "created": at,
        "data": {"id": "cust_rosa", "firstName": "Rosa", "lastName": "Lima",
                 "email": "rosa@example.com", "phone": "+5511965958123",
                 "createdAt": at, "source": "booking_portal"}
    }))
    .unwrap()
}

/// `secret-tool lookup` in the private Secret Service the test runs with ("" when absent).
fn keychain(account: &str) -> String {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "clientele-dev", "username", account])
        .output()
        .expect("secret-tool");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every item of Clientele's in the keychain, with its secret (`secret-tool search --all`).
fn keychain_items() -> String {
    let out = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "clientele-dev"])
        .output()
        .expect("secret-tool");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receptionist_joins_a_relay_and_customers_arrive_through_it() {
    if !support::can_run("a_receptionist_joins_a_relay_and_customers_arrive_through_it") {
        return;
    }
    // The relay, on a free loopback port that it is told is its public address (as an operator
    // tells it the name providers use), and a one-time code for an admin desk. Both processes
    // are stopped by their guards when the test ends, passed or failed.
    let relay = Relay::start_public("http", &[]);
    let relay_url = relay.url();
    let relay_host = relay_url
        .split_once("://")
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest).to_string())
        .expect("an address with a scheme");
    let code = relay.pair("desk", true);

    let app = App::start("relay").await;
    app.wait_for_text_of(
        "nav-status",
        "Ready — nothing is connected yet",
        support::WAIT,
    )
    .await;

    // Settings explains the relay and asks for its address and the code.
    app.click("nav-settings").await;
    app.find("relay-why").await;
    app.find("relay-address")
        .await
        .send_keys(&relay_url)
        .await
        .expect("type the relay's address");
    app.find("relay-code")
        .await
        .send_keys(&code)
        .await
        .expect("type the code");
    app.find("relay-name")
        .await
        .send_keys("Front desk")
        .await
        .expect("type a name");
    scroll_to(&app, "relay-section").await;
    app.shot("01-settings-join").await;
    app.click("relay-join").await;

    // Joined and pulling: "Connected to 127.0.0.1 — no messages yet".
    let page = app
        .wait_for_text(&format!("Connected to {relay_host}"), ARRIVE)
        .await;
    assert!(
        page.contains("This computer now receives messages through"),
        "{page}"
    );
    assert_eq!(app.text_of("relay-computer-name").await, "Front desk");
    assert!(
        app.text_of("relay-admin")
            .await
            .contains("may add and remove the relay's connections"),
        "an admin code makes an admin desk"
    );
    // The access key is in the keychain, and nowhere on screen.
    let access_key = keychain("relay:device-token");
    assert!(
        !access_key.is_empty(),
        "the relay's access key is in the keychain"
    );
    assert!(!app.page_text().await.contains(&access_key));
    // The navigation says messages come through the relay.
    app.wait_for_text_of(
        "nav-status",
        &format!("Receiving through the relay {relay_host}"),
        support::WAIT,
    )
    .await;
    scroll_to(&app, "relay-section").await;
    app.shot("02-settings-connected").await;

    // Connect Tiquo from Providers: on an admin desk, the connection goes to the relay.
    app.click("nav-providers").await;
    app.wait_for_text("Messages also arrive through the relay", support::WAIT)
        .await;
    app.click("connect-provider").await;
    app.click("provider-card-tiquo").await;
    let name = app.find("connection-name").await;
    name.clear().await.unwrap();
    name.send_keys("online").await.unwrap();
    app.click("name-next").await;
    let address = app.find("webhook-url").await.text().await.unwrap();
    assert_eq!(
        address,
        format!("{relay_url}/hooks/tiquo/online"),
        "the address to paste is the relay's"
    );
    app.shot("03-connect-relay-address").await;
    app.click("address-next").await;
    app.find("secret-input")
        .await
        .send_keys(SECRET)
        .await
        .expect("type the secret");
    app.find("secret-relay-note").await;
    app.shot("04-connect-relay-secret").await;
    app.click("save-secret").await;
    app.find("relay-test-note").await;
    // The relay sends the test to its public address (only it holds the secret), over real
    // HTTP; this computer then pulls it. The words say what that proved.
    app.click("send-test").await;
    let result = app.find("test-result").await.text().await.unwrap();
    assert!(
        result.contains(&format!(
            "The relay received a sample message for Tiquo 'online' at its public address {relay_url} and checked it with the signing secret it keeps."
        )),
        "the test went through the relay's public address: {result}"
    );
    assert!(!result.contains("It works"), "{result}");
    // A test is not Tiquo's own message: the step still waits for that.
    assert!(
        app.text_of("first-message-waiting")
            .await
            .contains("Waiting for the first message from Tiquo"),
        "the step waits for Tiquo's own message"
    );
    app.shot("05-connect-relay-done").await;
    // Leave while waiting: nothing is lost, and Providers keeps saying it waits.
    assert_eq!(
        app.text_of("connect-done").await,
        "Done — I'll send it later"
    );
    app.click("connect-done").await;
    app.find("relay-badge").await;
    assert_eq!(
        app.text_of("waiting-badge").await,
        "Waiting for the first message"
    );
    assert!(
        app.text_of("connection-address")
            .await
            .starts_with(&relay_url)
    );
    app.shot("06-providers-relay").await;

    // The secret went to the relay: not in this computer's keychain, nor its data folder.
    // (Connection names differ from the other window tests', which share this keychain.)
    assert_eq!(
        keychain("tiquo/online"),
        "",
        "a relay connection's secret stays off the desk"
    );
    assert!(
        !keychain_items().contains(SECRET),
        "the secret is nowhere in this computer's keychain"
    );
    let leaks = clientele_tests::findable(app.data.path(), &[SECRET]);
    assert!(leaks.is_empty(), "the secret leaked into {leaks:?}");

    // A signed delivery posted to the RELAY becomes a customer in the window.
    app.click("nav-customers").await;
    app.wait_for_text("No customers yet", support::WAIT).await;
    let now = Utc::now();
    let body = tiquo_created("evt_relay_e2e_1", now);
    let (status, text) = post(
        &agent(),
        &format!("{relay_url}/hooks/tiquo/online"),
        &signed(Provider::Tiquo, SECRET, &body, now),
        &body,
    );
    assert_eq!(status, 200, "the relay accepts the signed delivery: {text}");
    app.wait_for_text("Rosa Lima", ARRIVE).await;
    app.shot("07-customers-through-relay").await;
    // Tiquo's first genuine message has arrived: the card no longer waits.
    app.click("nav-providers").await;
    app.find("connected-badge").await;
    app.wait_until_gone("waiting-badge", support::WAIT).await;
    app.shot("07b-providers-first-message").await;

    // Settings says when the last message came.
    app.click("nav-settings").await;
    app.wait_for_text(&format!("Connected to {relay_host} — last message"), ARRIVE)
        .await;
    // The test event and the delivery.
    let received = app.text_of("relay-received").await;
    assert!(received.starts_with("2 messages"), "{received}");
    assert!(!app.page_text().await.contains(&access_key));
    scroll_to(&app, "relay-section").await;
    app.shot("08-settings-last-message").await;

    // The relay goes away: Settings says since when it can't be reached, and that messages wait.
    let Relay { ws, server, args } = relay;
    let bind = server.addr.clone();
    server.kill9();
    app.wait_for_text("Can't reach the relay since", ARRIVE)
        .await;
    app.wait_for_text(
        "messages wait there and arrive when it's back",
        support::WAIT,
    )
    .await;
    scroll_to(&app, "relay-section").await;
    app.shot("09-settings-unreachable").await;

    // It comes back on the same address: connected again, by itself.
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Relay::start_in(ws, &bind, &extra);
    app.wait_for_text(&format!("Connected to {relay_host}"), ARRIVE)
        .await;

    // Whoever looks after the relay removes this computer: the window says so, and how to fix it.
    relay.ws.ok(&["relay", "revoke", "Front desk"]);
    app.wait_for_text("This computer's access was removed", ARRIVE)
        .await;
    assert!(
        app.text_of("relay-advice")
            .await
            .contains("Ask whoever looks after the relay for a new pairing code"),
        "the fix is spelled out"
    );
    scroll_to(&app, "relay-section").await;
    app.shot("10-settings-revoked").await;
    app.click("nav-providers").await;
    app.find("providers-relay-trouble").await;
    app.shot("11-providers-revoked").await;
    app.click("nav-settings").await;

    // Stop receiving through the relay, after a confirmation; the customers stay.
    app.click("relay-leave").await;
    app.find("relay-leave-confirm").await;
    app.shot("12-leave-confirm").await;
    app.click("relay-leave-confirm-button").await;
    app.find("relay-join-form").await;
    app.wait_for_text("no longer receives through the relay", support::WAIT)
        .await;
    assert_eq!(
        keychain("relay:device-token"),
        "",
        "leaving forgets the access key"
    );
    scroll_to(&app, "relay-section").await;
    app.shot("13-settings-left").await;
    // Providers says the relay's connection no longer receives; the customers stay.
    app.click("nav-providers").await;
    app.wait_for_text("Not receiving: the relay was left", support::WAIT)
        .await;
    app.shot("14-providers-after-leaving").await;
    app.click("nav-customers").await;
    app.wait_for_text("Rosa Lima", support::WAIT).await;

    app.stop().await;
    drop(relay);
}

/// Scrolls the screen so that the element with this test id is at its top, for the screenshot.
/// (The screen's own scrolling area, as a person's mouse wheel would: `scrollIntoView` also
/// moves the whole window's content in WebKit.)
async fn scroll_to(app: &App, testid: &str) {
    let _ = app
        .client
        .execute(
            &format!(
                "const e = document.querySelector('[data-testid=\"{testid}\"]'); \
                 const area = e && e.closest('.screen-body'); \
                 if (area) area.scrollTop += e.getBoundingClientRect().top - area.getBoundingClientRect().top - 12; \
                 return true"
            ),
            vec![],
        )
        .await;
}
