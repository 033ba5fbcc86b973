//! The app outside WebDriver, as the desktop treats it: the window manager's close request
//! (WM_DELETE_WINDOW, what the title bar's × sends) closes the window — WebKit's web process
//! with it — and Clientele keeps receiving; a second launch on the same data folder starts no
//! second listener and brings the window back.

mod support;

use clientele_tests::desktop::{count_windows_titled, request_close, visible_windows_titled};
use clientele_tests::procs::{comm, descendants};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One app at a time: the single-instance plugin is per desktop session (D-Bus), so an app
/// started by one test while another test's app runs would hand over to it and exit.
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

fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn launch(data: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clientele-app"))
        .env("CLIENTELE_DATA_DIR", data)
        .env("CLIENTELE_LISTEN_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clientele-app")
}

/// Launches the app again on the same data folder: the single-instance plugin hands over to the
/// running app (which shows its window) and this launch exits.
fn launch_again(data: &std::path::Path, port: u16) {
    let mut again = launch(data, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = again.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = again.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exited.is_some(),
        "a second launch must exit, leaving the first running"
    );
}

/// WebKit's web processes serving the app's window (children of the app).
fn web_processes(app: &Child) -> usize {
    descendants(app.id())
        .into_iter()
        .filter(|&pid| comm(pid).starts_with("WebKitWebProces"))
        .count()
}

#[test]
fn closing_the_window_keeps_receiving_frees_the_web_view_and_a_second_launch_reopens_it() {
    if !support::can_run("closing_the_window_keeps_receiving") {
        return;
    }
    let _one = one_app_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut app = launch(data.path(), port);
    wait_until("the listener", Duration::from_secs(30), || {
        health(port) == 200
    });
    wait_until("the window", Duration::from_secs(10), || {
        count_windows_titled("Clientele") > 0 && web_processes(&app) > 0
    });

    // A second launch hands over to the first and exits; the first keeps its listener.
    launch_again(data.path(), port);
    assert_eq!(health(port), 200);

    // Closed, the window and its web process go away (rather than hiding and keeping WebKit's
    // memory), and the app keeps receiving.
    assert!(request_close("Clientele") > 0, "found the window to close");
    wait_until("the window to close", Duration::from_secs(10), || {
        count_windows_titled("Clientele") == 0
    });
    wait_until(
        "WebKit's web process to exit",
        Duration::from_secs(15),
        || web_processes(&app) == 0,
    );
    assert!(
        app.try_wait().unwrap().is_none(),
        "closing the window must not quit Clientele"
    );
    assert_eq!(
        health(port),
        200,
        "the listener keeps answering with the window closed"
    );

    // Opening Clientele again (from a menu, as a second launch) builds the window again.
    launch_again(data.path(), port);
    wait_until("the window to open again", Duration::from_secs(15), || {
        visible_windows_titled("Clientele") > 0 && web_processes(&app) > 0
    });
    assert!(app.try_wait().unwrap().is_none());
    assert_eq!(health(port), 200);

    let _ = app.kill();
    let _ = app.wait();
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

    let log = data.path().join("app-stderr.log");
    let mut app = Command::new(env!("CARGO_BIN_EXE_clientele-app"))
        .env("CLIENTELE_DATA_DIR", data.path())
        .env("CLIENTELE_LISTEN_PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start clientele-app");
    let deadline = Instant::now() + Duration::from_secs(30);
    while visible_windows_titled(CANNOT_START_TITLE) == 0 {
        if Instant::now() > deadline {
            let exited = app.try_wait().unwrap();
            let _ = app.kill();
            panic!(
                "no message saying why within 30 s (the app {}); it said:\n{}",
                exited.map_or("was still running".into(), |s| format!("exited: {s}")),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        visible_windows_titled("Clientele"),
        0,
        "no main window without the engine behind it"
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("Another copy of Clientele is already receiving messages into")
            && said.contains("clientele serve"),
        "{said}"
    );

    // Closing the message (Enter on its button) ends the app, with a failure status.
    let found = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--name", CANNOT_START_TITLE])
        .output()
        .unwrap();
    let window = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()
        .expect("the message window")
        .to_string();
    for args in [
        vec!["windowfocus", "--sync", window.as_str()],
        vec!["key", "Return"],
    ] {
        assert!(
            Command::new("xdotool")
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = app.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            panic!("the app must exit once its message is closed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1));
    let health = clientele_tests::agent()
        .get(serve.url("/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(health, 200, "clientele serve keeps receiving");
}
