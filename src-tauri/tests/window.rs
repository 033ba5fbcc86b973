//! The app outside WebDriver, as the desktop treats it: the window manager's close request
//! (WM_DELETE_WINDOW, what the title bar's × sends) hides the window and Clientele keeps
//! receiving; a second launch on the same data folder doesn't start a second listener.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, Window};

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

/// Top-level windows titled exactly `title`.
fn windows_titled(conn: &impl Connection, root: Window, title: &str) -> Vec<Window> {
    let mut found = Vec::new();
    let Some(tree) = conn.query_tree(root).ok().and_then(|c| c.reply().ok()) else {
        return found;
    };
    for child in tree.children {
        let name = conn
            .get_property(false, child, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| String::from_utf8_lossy(&r.value).into_owned());
        if name.as_deref() == Some(title) {
            found.push(child);
        }
        found.extend(windows_titled(conn, child, title));
    }
    found
}

/// Sends WM_DELETE_WINDOW, as a window manager does when the user clicks ×.
fn request_close(title: &str) -> usize {
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let protocols = conn
        .intern_atom(false, b"WM_PROTOCOLS")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    let delete = conn
        .intern_atom(false, b"WM_DELETE_WINDOW")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    let windows = windows_titled(&conn, root, title);
    for &window in &windows {
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, window, EventMask::NO_EVENT, event)
            .unwrap();
    }
    conn.flush().unwrap();
    windows.len()
}

#[test]
fn closing_the_window_keeps_receiving_and_a_second_launch_starts_no_second_listener() {
    if !support::can_run("closing_the_window_keeps_receiving") {
        return;
    }
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
        let (conn, screen) = x11rb::connect(None).expect("X display");
        !windows_titled(&conn, conn.setup().roots[screen].root, "Clientele").is_empty()
    });

    // A second launch hands over to the first and exits; the first keeps its listener.
    let mut second = launch(data.path(), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exited.is_some(),
        "the second launch must exit, leaving the first running"
    );
    assert_eq!(health(port), 200);

    assert!(request_close("Clientele") > 0, "found the window to close");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        app.try_wait().unwrap().is_none(),
        "closing the window must not quit Clientele"
    );
    assert_eq!(
        health(port),
        200,
        "the listener keeps answering with the window closed"
    );

    let _ = app.kill();
    let _ = app.wait();
}
