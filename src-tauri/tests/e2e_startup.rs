//! Settings → "Starting and closing" in the real window: what closing the window does on a
//! desktop without a tray (the tests' private session bus has none, like stock GNOME) and with
//! one, and "Start Clientele when I log in" writing and removing the autostart entry — in the
//! app's own temporary home, never the home of whoever runs the tests.

mod support;

use clientele_tests::desktop::FakeTray;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{App, WAIT};

/// Where the autostart plugin writes the entry on Linux (`~/.config/autostart/<productName>.desktop`).
fn autostart_entry(home: &Path) -> std::path::PathBuf {
    home.join(".config/autostart/Clientele.desktop")
}

async fn wait_until(app: &App, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        if Instant::now() > deadline {
            app.shot("failure").await;
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn is_checked(app: &App, testid: &str) -> bool {
    app.find(testid)
        .await
        .prop("checked")
        .await
        .ok()
        .flatten()
        .as_deref()
        == Some("true")
}

/// Brings the "Starting and closing" card into view for a screenshot.
async fn scroll_to_startup(app: &App) {
    app.client
        .execute(
            "document.querySelector('[data-testid=\"startup-section\"]').scrollIntoView({block: 'nearest'})",
            vec![],
        )
        .await
        .expect("scroll to the section");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_say_what_closing_does_here_and_start_at_login_writes_its_entry() {
    if !support::can_run("settings_say_what_closing_does_here") {
        return;
    }
    let app = App::start("startup").await;
    app.click("nav-settings").await;
    app.find("startup-section").await;

    // No tray on this desktop: Settings says so, and what closing does instead.
    let notice = app.find("no-tray-notice").await;
    let said = notice.text().await.unwrap_or_default();
    assert!(said.contains("doesn't show tray icons"), "{said}");
    let close = app.text_of("close-help").await;
    assert!(close.contains("minimizes Clientele"), "{close}");

    // A development build leaves start at login off by itself; the person turns it on.
    assert!(!is_checked(&app, "start-at-login").await);
    let entry = autostart_entry(app.home.path());
    assert!(!entry.exists(), "no entry before anyone chose");
    app.click("start-at-login").await;
    wait_until(&app, "the switch to turn on", || entry.exists()).await;
    let text = std::fs::read_to_string(&entry).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("an Exec line");
    assert!(
        exec.contains("clientele-app") && exec.ends_with("--at-login"),
        "starts this program, out of the way: {exec}"
    );
    app.wait_for_text(
        "Clientele opens by itself, out of the way, when you log in",
        WAIT,
    )
    .await;
    scroll_to_startup(&app).await;
    app.shot("01-settings-no-tray").await;

    app.click("start-at-login").await;
    wait_until(&app, "the entry to be removed", || !entry.exists()).await;
    app.wait_for_text("Clientele receives nothing until someone opens it", WAIT)
        .await;

    // A panel with a tray appears (KDE, Xfce, GNOME's AppIndicator extension): Settings, shown
    // again, says closing keeps Clientele in the tray.
    let _tray = FakeTray::start();
    app.click("nav-customers").await;
    app.click("nav-settings").await;
    app.wait_for_text("keeps Clientele running next to the clock", WAIT)
        .await;
    assert!(
        app.text_of("no-tray-notice").await.is_empty(),
        "no notice with a tray"
    );
    scroll_to_startup(&app).await;
    app.shot("02-settings-tray").await;

    app.stop().await;
}
