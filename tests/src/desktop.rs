//! The desktop as a window manager sees it (X11): find the app's windows by title and ask them to
//! close the way the title bar's × does. Used by the window tests and `app_footprint`.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, MapState, Window,
};

/// Top-level windows titled exactly `title`, under `root`.
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

/// Windows titled `title` on the display, mapped or not.
pub fn count_windows_titled(title: &str) -> usize {
    let (conn, screen) = x11rb::connect(None).expect("X display");
    windows_titled(&conn, conn.setup().roots[screen].root, title).len()
}

/// Windows titled `title` that are mapped (visible) on the display.
pub fn visible_windows_titled(title: &str) -> usize {
    let (conn, screen) = x11rb::connect(None).expect("X display");
    windows_titled(&conn, conn.setup().roots[screen].root, title)
        .into_iter()
        .filter(|w| {
            conn.get_window_attributes(*w)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == MapState::VIEWABLE)
        })
        .count()
}

/// Sends WM_DELETE_WINDOW to every window titled `title`, as a window manager does when the user
/// clicks ×. Returns how many windows it was sent to, once the X server has delivered it.
///
/// Waiting for the server matters: a request is only "sent" when the server has read it, and an
/// X server that finds a client's connection already closed drops whatever that client wrote
/// last unread. Flushing and disconnecting at once lost the close request on a busy two-core
/// machine (6 times in 8; never once with the wait) — the window then never closed. A window
/// manager keeps its connection open, so people never lost a click this way.
pub fn request_close(title: &str) -> usize {
    let (conn, screen) = x11rb::connect(None).expect("X display");
    let root = conn.setup().roots[screen].root;
    let atom = |name: &[u8]| {
        conn.intern_atom(false, name)
            .expect("intern atom")
            .reply()
            .expect("intern atom")
            .atom
    };
    let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
    let windows = windows_titled(&conn, root, title);
    let mut sent = 0;
    for &window in &windows {
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        // `check` waits for the server to have processed the request (a round trip), and
        // reports a window that went away meanwhile (BadWindow), which is then not counted.
        if conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .expect("send WM_DELETE_WINDOW")
            .check()
            .is_ok()
        {
            sent += 1;
        }
    }
    sent
}

/// Watches for requests to minimize (iconify) a window: the message a program sends the window
/// manager (ICCCM `WM_CHANGE_STATE` with `IconicState`, to the root window). Under Xvfb no
/// window manager acts on it, so a test sees the request itself.
pub struct MinimizeWatch {
    conn: x11rb::rust_connection::RustConnection,
    root: Window,
    change_state: x11rb::protocol::xproto::Atom,
}

impl std::fmt::Debug for MinimizeWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimizeWatch").finish_non_exhaustive()
    }
}

impl MinimizeWatch {
    /// Starts watching (requests sent before this are not seen).
    pub fn start() -> MinimizeWatch {
        use x11rb::protocol::xproto::ChangeWindowAttributesAux;
        let (conn, screen) = x11rb::connect(None).expect("X display");
        let root = conn.setup().roots[screen].root;
        let change_state = conn
            .intern_atom(false, b"WM_CHANGE_STATE")
            .expect("intern atom")
            .reply()
            .expect("intern atom")
            .atom;
        // Messages to the window manager are sent to the root window for the clients that
        // watch its children (SubstructureNotify); a window manager watches the same way.
        conn.change_window_attributes(
            root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY),
        )
        .expect("watch the root window")
        .check()
        .expect("watch the root window");
        MinimizeWatch {
            conn,
            root,
            change_state,
        }
    }

    /// Waits up to `within` for a request to minimize a window titled `title`.
    pub fn wait_for(&self, title: &str, within: std::time::Duration) -> bool {
        use x11rb::protocol::Event;
        /// ICCCM's IconicState.
        const ICONIC: u32 = 3;
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            match self.conn.poll_for_event().expect("X events") {
                Some(Event::ClientMessage(message))
                    if message.type_ == self.change_state
                        && message.data.as_data32()[0] == ICONIC
                        && windows_titled(&self.conn, self.root, title)
                            .contains(&message.window) =>
                {
                    return true;
                }
                Some(_) => {}
                None => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        false
    }
}

/// A tray on the session bus, for a test: a StatusNotifierWatcher with a host registered, as a
/// KDE or Xfce panel provides (the test's private bus has none, like stock GNOME). Gone when
/// dropped.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct FakeTray {
    _bus: zbus::blocking::Connection,
}

#[cfg(target_os = "linux")]
struct Watcher;

#[cfg(target_os = "linux")]
#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, _service: &str) {}

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        Vec::new()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

#[cfg(target_os = "linux")]
impl FakeTray {
    /// Claims `org.kde.StatusNotifierWatcher` on the session bus (`DBUS_SESSION_BUS_ADDRESS`).
    pub fn start() -> FakeTray {
        let bus = zbus::blocking::connection::Builder::session()
            .and_then(|b| b.name("org.kde.StatusNotifierWatcher"))
            .and_then(|b| b.serve_at("/StatusNotifierWatcher", Watcher))
            .and_then(|b| b.build())
            .expect("a StatusNotifierWatcher on the session bus");
        FakeTray { _bus: bus }
    }
}
