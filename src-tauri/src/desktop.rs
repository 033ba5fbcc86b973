//! How Clientele fits the desktop it runs on: whether there is a tray to keep running in, what
//! closing the window does, how it starts at login, and whether this copy is installed.
//!
//! Clientele's job is to be running: closing the window must never leave it receiving with no
//! way back a person can see. With a tray (Windows, macOS, KDE, most Linux panels), closing the
//! window keeps Clientele next to the clock. Stock GNOME shows no tray icons, and a tray icon
//! made there is shown nowhere: closing the window then minimizes it instead, so Clientele stays
//! in the task bar / Activities, and Settings says so.

use serde::Serialize;
use std::path::Path;
use ts_rs::TS;

/// The arguments a start at login passes (the autostart entry's command line).
pub const AT_LOGIN_ARG: &str = "--at-login";

/// What closing the window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum CloseAction {
    /// The window goes (with WebKit's memory); Clientele keeps receiving in the tray, and
    /// "Open Clientele" in the tray brings the window back.
    KeepInTray,
    /// No tray to come back from: the window is minimized and Clientele keeps receiving.
    Minimize,
    /// "Keep receiving when the window is closed" is off: closing quits.
    Quit,
}

/// What closing the window does, given the "keep receiving when closed" preference and whether
/// the desktop shows tray icons.
pub fn close_action(keep_running: bool, tray: bool) -> CloseAction {
    match (keep_running, tray) {
        (false, _) => CloseAction::Quit,
        (true, true) => CloseAction::KeepInTray,
        (true, false) => CloseAction::Minimize,
    }
}

/// How the window starts when Clientele starts at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStart {
    /// In the tray, no window: the desk's screen stays as the person left it.
    InTray,
    /// Minimized: no tray to start in, but it is in the task bar.
    Minimized,
    /// "Keep receiving when the window is closed" is off: a window, since closing it quits.
    Window,
}

/// How Clientele shows itself when started with [`AT_LOGIN_ARG`].
pub fn login_start(keep_running: bool, tray: bool) -> LoginStart {
    match close_action(keep_running, tray) {
        CloseAction::KeepInTray => LoginStart::InTray,
        CloseAction::Minimize => LoginStart::Minimized,
        CloseAction::Quit => LoginStart::Window,
    }
}

/// Whether `exe` is a development build: a program inside a Cargo build folder (`target/debug`,
/// `target/release`, `$CARGO_TARGET_DIR/...`, each of which holds Cargo's `.fingerprint`
/// folder). `make run` and the tests run such builds; the packages install the program
/// elsewhere (`/usr/bin`).
pub fn is_development_build(exe: &Path) -> bool {
    exe.parent()
        .is_some_and(|dir| dir.join(".fingerprint").is_dir())
}

/// Whether Clientele should start at login on the first start of a data folder: an installed
/// Clientele does, as an app whose job is to be running; a development build never writes an
/// autostart entry by itself (it would point into a build folder).
pub fn start_at_login_by_default(exe: &Path) -> bool {
    !is_development_build(exe)
}

/// What Settings shows about closing and starting.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DesktopView {
    /// Whether this desktop shows tray icons now.
    pub tray: bool,
    /// What closing the window does now.
    pub close_action: CloseAction,
}

/// Whether the desktop shows tray icons. On Linux the tray is a StatusNotifier host, which
/// registers with the `org.kde.StatusNotifierWatcher` service on the session bus (KDE, Xfce,
/// Cinnamon, MATE, Budgie, GNOME with the AppIndicator extension); stock GNOME has none.
/// Asked each time (a panel may start after Clientele, at login, or stop); when in doubt, no
/// tray — minimizing is the safe answer.
#[cfg(target_os = "linux")]
pub fn tray_available() -> bool {
    match tray_host_registered() {
        Ok(tray) => tray,
        Err(e) => {
            tracing::info!(error = %e, "couldn't ask the session bus for a tray; assuming none");
            false
        }
    }
}

/// Windows' notification area and macOS's menu bar are always there.
#[cfg(not(target_os = "linux"))]
pub fn tray_available() -> bool {
    true
}

#[cfg(target_os = "linux")]
fn tray_host_registered() -> zbus::Result<bool> {
    const WATCHER: &str = "org.kde.StatusNotifierWatcher";
    let bus = session_bus()?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&bus)?;
    if !dbus.name_has_owner(WATCHER.try_into()?)? {
        return Ok(false);
    }
    // A watcher with no host registered shows icons nowhere. A watcher that doesn't answer the
    // property is given the benefit of the doubt.
    let watcher = zbus::blocking::Proxy::new(
        &bus,
        WATCHER,
        "/StatusNotifierWatcher",
        "org.kde.StatusNotifierWatcher",
    )?;
    Ok(watcher
        .get_property::<bool>("IsStatusNotifierHostRegistered")
        .unwrap_or(true))
}

/// One connection to the session bus for the process, made on first use.
#[cfg(target_os = "linux")]
fn session_bus() -> zbus::Result<zbus::blocking::Connection> {
    static BUS: std::sync::OnceLock<zbus::blocking::Connection> = std::sync::OnceLock::new();
    if let Some(bus) = BUS.get() {
        return Ok(bus.clone());
    }
    let bus = zbus::blocking::Connection::session()?;
    Ok(BUS.get_or_init(|| bus).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_keeps_clientele_reachable_or_quits_when_asked() {
        assert_eq!(close_action(true, true), CloseAction::KeepInTray);
        // No tray: hiding the window would leave Clientele running with no way back.
        assert_eq!(close_action(true, false), CloseAction::Minimize);
        assert_eq!(close_action(false, true), CloseAction::Quit);
        assert_eq!(close_action(false, false), CloseAction::Quit);
    }

    #[test]
    fn at_login_clientele_starts_out_of_the_way_but_never_out_of_reach() {
        assert_eq!(login_start(true, true), LoginStart::InTray);
        assert_eq!(login_start(true, false), LoginStart::Minimized);
        assert_eq!(login_start(false, true), LoginStart::Window);
        assert_eq!(login_start(false, false), LoginStart::Window);
    }

    #[test]
    fn only_an_installed_clientele_turns_start_at_login_on_by_itself() {
        let root = tempfile::tempdir().unwrap();
        let build = root.path().join("target/release");
        std::fs::create_dir_all(build.join(".fingerprint")).unwrap();
        let built = build.join("clientele-app");
        assert!(is_development_build(&built));
        assert!(!start_at_login_by_default(&built));

        let installed = root.path().join("usr/bin/clientele-app");
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        assert!(!is_development_build(&installed));
        assert!(start_at_login_by_default(&installed));
        assert!(start_at_login_by_default(Path::new(
            "/usr/bin/clientele-app"
        )));
    }

    /// The test binary itself runs from Cargo's build folder (`target/debug/deps`): the check
    /// recognises the real layout, not only the one made above.
    #[test]
    fn the_tests_own_build_folder_is_a_development_build() {
        let exe = std::env::current_exe().unwrap();
        let profile = exe.parent().and_then(Path::parent).unwrap();
        assert!(is_development_build(&profile.join("clientele-app")));
    }
}
