//! The app outside WebDriver, as the desktop treats it: the window manager's close request
//! (WM_DELETE_WINDOW, what the title bar's × sends) closes the window — WebKit's web process
//! with it — and Clientele keeps receiving; a second launch on the same data folder starts no
//! second listener and brings the window back.
//!
//! Without a tray (stock GNOME; the tests' private session bus has none unless a test provides
//! one), closing the window minimizes it instead, so Clientele is never left running where
//! nobody can see it.
//!
//! Every app a test starts is stopped when the test ends, passing or failing (with WebKit's
//! processes), so one failure never leaves an app behind for the next test to trip over. Each
//! runs with a home folder of its own, so nothing it writes (its start-at-login entry, caches)
//! lands in the home of whoever runs the tests.

mod support;

use clientele_tests::desktop::{
    FakeTray, MinimizeWatch, count_windows_titled, request_close, visible_windows_titled,
};
use clientele_tests::guard::ProcessGuard;
use clientele_tests::procs::{comm, descendants};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one step may take. Generous: a debug build on a busy two-core machine (CI right
/// after the build) started the app in about 3 s and closed the window in under a second, so
/// this is never why a test fails there; a window that never closes or opens still fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// One app at a time: the apps share one X display, and the tests count windows by title.
static ONE_APP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_app_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_APP_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn health(port: u16) -> u16 {
    clientele_tests::agent()
        .get(format!("http://127.0.0.1:{port}/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Waits for `ok`; on timeout, fails with `what` and `context()` (what the app said).
fn wait_until(
    what: &str,
    within: Duration,
    mut ok: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + within;
    while !ok() {
        if Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for {what}; {}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The app started by a test, its output in a file; stopped, with WebKit's processes, when
/// dropped.
struct Launched {
    process: ProcessGuard,
    log: PathBuf,
    /// Its `HOME`.
    _home: tempfile::TempDir,
}

impl Launched {
    /// What the app wrote to its standard error.
    fn said(&self) -> String {
        format!(
            "the app said:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// WebKit's web processes serving the app's window (children of the app).
    fn web_processes(&self) -> usize {
        descendants(self.process.id())
            .into_iter()
            .filter(|&pid| comm(pid).starts_with("WebKitWebProces"))
            .count()
    }
}

/// Starts the app on `data`, listening on `port` (`"0"`: any), its output in `data/NAME.log`.
fn launch(data: &Path, port: &str, name: &str) -> Launched {
    launch_with(data, port, name, &[])
}

/// [`launch`] with command-line arguments.
fn launch_with(data: &Path, port: &str, name: &str, args: &[&str]) -> Launched {
    let log = data.join(format!("{name}.log"));
    let home = tempfile::tempdir().expect("a home folder");
    let mut app = Command::new(env!("CARGO_BIN_EXE_clientele-app"));
    app.args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env("CLIENTELE_DATA_DIR", data)
        .env("CLIENTELE_LISTEN_PORT", port)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the app's log"));
    let process = ProcessGuard::spawn("clientele-app", &mut app, Duration::from_secs(5))
        .expect("start clientele-app");
    Launched {
        process,
        log,
        _home: home,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Launches the app again on the same data folder: the single-instance plugin hands over to the
/// running app (which shows its window) and this launch exits.
fn launch_again(data: &Path, port: u16, n: u32) {
    let mut again = launch(data, &port.to_string(), &format!("again-{n}"));
    let exited = again.process.wait_within(DEADLINE);
    assert!(
        exited.is_some(),
        "a second launch must exit, leaving the first running; {}",
        again.said()
    );
    assert!(
        exited.is_some_and(|s| s.success()),
        "handing over is no failure: {exited:?}; {}",
        again.said()
    );
}

#[test]
fn closing_the_window_keeps_receiving_frees_the_web_view_and_a_second_launch_reopens_it() {
    if !support::can_run("closing_the_window_keeps_receiving") {
        return;
    }
    let _one = one_app_at_a_time();
    // A desktop with a tray (KDE, Xfce, …): closing the window keeps Clientele in the tray.
    let _tray = FakeTray::start();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut app = launch(data.path(), &port.to_string(), "app");
    wait_until(
        "the listener",
        DEADLINE,
        || health(port) == 200,
        || app.said(),
    );
    wait_until(
        "the window",
        DEADLINE,
        || count_windows_titled("Clientele") > 0 && app.web_processes() > 0,
        || app.said(),
    );

    // A second launch hands over to the first and exits; the first keeps its listener.
    launch_again(data.path(), port, 1);
    assert_eq!(health(port), 200);

    // Closed, the window and its web process go away (rather than hiding and keeping WebKit's
    // memory), and the app keeps receiving.
    assert!(request_close("Clientele") > 0, "found the window to close");
    wait_until(
        "the window to close",
        DEADLINE,
        || count_windows_titled("Clientele") == 0,
        || app.said(),
    );
    wait_until(
        "WebKit's web process to exit",
        DEADLINE,
        || app.web_processes() == 0,
        || app.said(),
    );
    assert!(
        app.process.try_wait().is_none(),
        "closing the window must not quit Clientele; {}",
        app.said()
    );
    assert_eq!(
        health(port),
        200,
        "the listener keeps answering with the window closed"
    );

    // Opening Clientele again (from a menu, as a second launch) builds the window again.
    launch_again(data.path(), port, 2);
    wait_until(
        "the window to open again",
        DEADLINE,
        || visible_windows_titled("Clientele") > 0 && app.web_processes() > 0,
        || app.said(),
    );
    assert!(app.process.try_wait().is_none(), "{}", app.said());
    assert_eq!(health(port), 200);
}

/// Stock GNOME shows no tray icons: closing the window there must not leave Clientele running
/// where nobody can see it. It asks the window manager to minimize the window instead, keeps the
/// window (and receiving), and a second launch brings it back.
#[test]
fn without_a_tray_closing_the_window_minimizes_it_and_keeps_receiving() {
    if !support::can_run("without_a_tray_closing_the_window_minimizes_it") {
        return;
    }
    let _one = one_app_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut app = launch(data.path(), &port.to_string(), "app");
    wait_until(
        "the listener",
        DEADLINE,
        || health(port) == 200,
        || app.said(),
    );
    wait_until(
        "the window",
        DEADLINE,
        || visible_windows_titled("Clientele") > 0 && app.web_processes() > 0,
        || app.said(),
    );

    let minimized = MinimizeWatch::start();
    assert!(request_close("Clientele") > 0, "found the window to close");
    assert!(
        minimized.wait_for("Clientele", DEADLINE),
        "closing without a tray must minimize the window; {}",
        app.said()
    );
    // Minimized, not closed: the window and its web view stay, and Clientele keeps receiving.
    assert_eq!(count_windows_titled("Clientele"), 1);
    assert!(app.web_processes() > 0, "the window's web view is kept");
    assert!(app.process.try_wait().is_none(), "{}", app.said());
    assert_eq!(health(port), 200);

    // Opening Clientele from the menu again shows the same window.
    launch_again(data.path(), port, 1);
    wait_until(
        "the window to be shown",
        DEADLINE,
        || visible_windows_titled("Clientele") == 1,
        || app.said(),
    );
    assert!(app.process.try_wait().is_none(), "{}", app.said());
}

/// Started at login (the autostart entry passes `--at-login`) on a desktop with a tray,
/// Clientele receives from the tray without putting its window in front of whoever just logged
/// in; opening it from the menu shows the window.
#[test]
fn started_at_login_clientele_waits_in_the_tray_without_a_window() {
    if !support::can_run("started_at_login_clientele_waits_in_the_tray") {
        return;
    }
    let _one = one_app_at_a_time();
    let _tray = FakeTray::start();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut app = launch_with(data.path(), &port.to_string(), "app", &["--at-login"]);
    wait_until(
        "the listener",
        DEADLINE,
        || health(port) == 200,
        || app.said(),
    );
    // The window made from the configuration is let go at once, with its web view.
    wait_until(
        "no window and no web view",
        DEADLINE,
        || count_windows_titled("Clientele") == 0 && app.web_processes() == 0,
        || app.said(),
    );
    assert!(app.process.try_wait().is_none(), "{}", app.said());

    launch_again(data.path(), port, 1);
    wait_until(
        "the window, opened from the menu",
        DEADLINE,
        || visible_windows_titled("Clientele") == 1 && app.web_processes() > 0,
        || app.said(),
    );
    assert_eq!(health(port), 200);
}

/// Clientele is one app per data folder, not per desktop: started on a second folder
/// (`CLIENTELE_DATA_DIR`) while it runs on a first, it starts a second, independent app — its
/// own listener and window — rather than handing over to the first and showing its data.
#[test]
fn apps_on_two_data_folders_run_side_by_side() {
    if !support::can_run("apps_on_two_data_folders_run_side_by_side") {
        return;
    }
    let _one = one_app_at_a_time();
    let (first_data, second_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first_port, second_port) = (free_port(), free_port());
    let first = launch(first_data.path(), &first_port.to_string(), "app");
    wait_until(
        "the first app's listener",
        DEADLINE,
        || health(first_port) == 200,
        || first.said(),
    );
    let mut second = launch(second_data.path(), &second_port.to_string(), "app");
    wait_until(
        "the second app's listener, or its exit",
        DEADLINE,
        || health(second_port) == 200 || second.process.try_wait().is_some(),
        || "the second app neither listened nor exited".into(),
    );
    assert!(
        second.process.try_wait().is_none(),
        "the second app exited, handing over to the first; {}",
        second.said()
    );
    wait_until(
        "a window for each",
        DEADLINE,
        || {
            visible_windows_titled("Clientele") == 2
                && first.web_processes() > 0
                && second.web_processes() > 0
        },
        || format!("first: {}\nsecond: {}", first.said(), second.said()),
    );
    assert!(second.process.try_wait().is_none(), "{}", second.said());
    assert_eq!(health(first_port), 200);
    assert_eq!(health(second_port), 200);
}

/// The message's title (`clientele_app::CANNOT_START_TITLE`; spelled out so this test doesn't
/// link the whole app library).
const CANNOT_START_TITLE: &str = "Clientele couldn't start";

/// Opened from a menu while `clientele serve` (started in a terminal) receives into the same
/// data folder, the app can't start: it says why in a message a person sees — not only on
/// stderr, which nobody reads — shows no half-working window, and exits once it is closed. The
/// headless receiver is untouched.
#[test]
fn opening_the_app_while_clientele_serve_runs_says_why_it_cannot_start() {
    if !support::can_run("opening_the_app_while_clientele_serve_runs") {
        return;
    }
    let _one = one_app_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let mut serve = Command::new(clientele_tests::clientele_bin());
    serve.arg("--data-dir").arg(data.path()).args([
        "--secrets",
        "env",
        "serve",
        "--bind",
        "127.0.0.1:0",
    ]);
    let serve = clientele_tests::Server::start(serve);

    let mut app = launch(data.path(), "0", "app-stderr");
    wait_until(
        "a message saying why",
        DEADLINE,
        || visible_windows_titled(CANNOT_START_TITLE) > 0,
        || match app.process.try_wait() {
            Some(status) => format!("the app exited: {status}; {}", app.said()),
            None => format!("the app was still running; {}", app.said()),
        },
    );
    assert_eq!(
        visible_windows_titled("Clientele"),
        0,
        "no main window without the engine behind it"
    );
    let said = std::fs::read_to_string(&app.log).unwrap();
    assert!(
        said.contains("Another copy of Clientele is already receiving messages into")
            && said.contains("clientele serve"),
        "{said}"
    );

    // Closing the message (Enter on its button) ends the app, with a failure status.
    let found = xdotool(&["search", "--onlyvisible", "--name", CANNOT_START_TITLE]);
    assert!(found.status.success(), "xdotool search: {found:?}");
    let window = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .expect("the message window")
        .to_string();
    for args in [
        vec!["windowfocus", "--sync", window.as_str()],
        vec!["key", "Return"],
    ] {
        let done = xdotool(&args);
        assert!(done.status.success(), "xdotool {args:?}: {done:?}");
    }
    let status = app.process.wait_within(DEADLINE);
    assert!(
        status.is_some(),
        "the app must exit once its message is closed; {}",
        app.said()
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    let health = clientele_tests::agent()
        .get(serve.url("/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(health, 200, "clientele serve keeps receiving");
}

/// Runs xdotool, which must answer within the deadline.
fn xdotool(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg(DEADLINE.as_secs().to_string())
        .arg("xdotool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run xdotool")
}
