//! Clientele's desktop shell. It starts the same engine as `clientele serve` (listener, pipeline
//! and store, in-process, on the same data folder); the window is a view onto it. Closing the window keeps
//! receiving (the tray shows the listener's status, and the relay's when this computer is joined
//! to one; on a desktop without a tray the window is minimized instead, see `desktop`); Quit
//! stops the listener and the relay puller gracefully.

mod commands;
pub mod desktop;
mod instance;
mod upgrade;

use clientele_engine::data_dir::{self, LockError};
use clientele_engine::events::{LIVE_EVENT, LiveUpdate, RELAY_EVENT};
use clientele_engine::ops::relay::{RelayState, RelayStatus};
use clientele_engine::ops::settings::{ListenerPrefs, ListenerStatus};
use clientele_engine::{ApiResult, Engine, Operations, StartError};
use clientele_secrets::KeychainStore;
use clientele_store::{Store, UpgradeProgress};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager};

/// Overrides the listening port (tests run the app on a free port).
const PORT_ENV: &str = "CLIENTELE_LISTEN_PORT";

pub(crate) struct AppState {
    engine: Engine,
    tray: Mutex<Option<Tray>>,
    keep_in_tray: Mutex<bool>,
    /// One relay status published at a time, so the window and the tray end on the newest.
    relay_turn: tokio::sync::Mutex<()>,
}

/// The tray menu's status lines: the listener's, and the relay's while this computer is joined.
struct Tray {
    menu: Menu<tauri::Wry>,
    status: MenuItem<tauri::Wry>,
    relay: MenuItem<tauri::Wry>,
    relay_shown: bool,
}

impl AppState {
    /// What the commands call.
    pub(crate) fn ops(&self) -> &Arc<Operations> {
        self.engine.operations()
    }
}

/// Starts the engine on the data folder (`CLIENTELE_DATA_DIR`, else the platform's), with the
/// system keychain; `progress` hears how converting a folder from an older version goes.
fn prepare(progress: impl FnMut(&UpgradeProgress)) -> anyhow::Result<AppState> {
    let dir = data_dir::resolve(None)?;
    let secrets = Arc::new(KeychainStore::new(KeychainStore::default_service()));
    let engine = Engine::start_with_progress(&dir, secrets, progress).map_err(|e| match e {
        StartError::DataDir(LockError::HeldElsewhere(dir)) => anyhow::anyhow!(
            "Another copy of Clientele is already receiving messages into {} — probably \
             “clientele serve”, started in a terminal. Stop it, then open Clientele again.",
            dir.display()
        ),
        other => other.into(),
    })?;
    let keep_in_tray = engine
        .operations()
        .prefs()
        .map_or(ListenerPrefs::DEFAULT.keep_in_tray, |p| p.keep_in_tray);
    Ok(AppState {
        engine,
        tray: Mutex::new(None),
        keep_in_tray: Mutex::new(keep_in_tray),
        relay_turn: tokio::sync::Mutex::new(()),
    })
}

/// (Re)starts the listener with `prefs` and updates the status shown in Settings and the tray.
async fn start_listener(app: &AppHandle, state: &AppState, mut prefs: ListenerPrefs) {
    if let Some(port) = std::env::var(PORT_ENV).ok().and_then(|p| p.parse().ok()) {
        prefs.port = port;
    }
    let status = state.engine.listen_as_configured(prefs).await;
    if let Some(tray) = state
        .tray
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        let _ = tray.status.set_text(tray_text(&status, prefs));
    }
    let _ = app.emit(LIVE_EVENT, LiveUpdate::default());
}

/// The tray's status line: where Clientele receives, or why it doesn't.
fn tray_text(status: &ListenerStatus, prefs: ListenerPrefs) -> String {
    match (&status.address, &status.error) {
        (Some(_), _) if prefs.allow_network => {
            format!("Receiving at http://0.0.0.0:{}", prefs.port)
        }
        (Some(address), _) => format!("Receiving at http://{address}"),
        (None, Some(error)) => error.clone(),
        (None, None) => "Not receiving".into(),
    }
}

/// Starts pulling from the relay when this computer is joined to one (restarting a puller that
/// runs), and forwards the puller's status to the window and the tray for as long as it runs.
pub(crate) async fn start_pulling(app: &AppHandle, state: &AppState) -> ApiResult<bool> {
    let started = state.engine.start_pulling().await;
    if let Some(changes) = state.ops().watch_pull_status() {
        forward_relay_status(app.clone(), changes);
    }
    publish_relay_status(app).await;
    started
}

/// Publishes the relay status each time the puller's changes; ends with the puller (its sender
/// goes away when it stops).
fn forward_relay_status<T: Send + Sync + 'static>(
    app: AppHandle,
    mut changes: tokio::sync::watch::Receiver<T>,
) {
    tauri::async_runtime::spawn(async move {
        while changes.changed().await.is_ok() {
            publish_relay_status(&app).await;
        }
    });
}

/// Reads where the relay link stands and shows it: the window gets [`RELAY_EVENT`] (the status
/// carries no access key), the tray its second line.
pub(crate) async fn publish_relay_status(app: &AppHandle) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let _turn = state.relay_turn.lock().await;
    let ops = state.ops().clone();
    let status = match tauri::async_runtime::spawn_blocking(move || ops.relay_status(false)).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            tracing::warn!(error = %e.message, "couldn't read the relay's status");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "couldn't read the relay's status");
            return;
        }
    };
    if let Some(tray) = state
        .tray
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        show_relay_in_tray(tray, &status);
    }
    let _ = app.emit(RELAY_EVENT, &status);
}

/// Shows the relay line under the listener's while joined; removes it otherwise.
fn show_relay_in_tray(tray: &mut Tray, status: &RelayStatus) {
    match relay_tray_text(status, chrono::Local::now()) {
        Some(text) => {
            let _ = tray.relay.set_text(text);
            if !tray.relay_shown && tray.menu.insert(&tray.relay, 1).is_ok() {
                tray.relay_shown = true;
            }
        }
        None => {
            if tray.relay_shown && tray.menu.remove(&tray.relay).is_ok() {
                tray.relay_shown = false;
            }
        }
    }
}

/// The tray's relay line ("Relay: connected to relay.example.com"), or none when this computer
/// isn't joined to a relay.
fn relay_tray_text(status: &RelayStatus, now: chrono::DateTime<chrono::Local>) -> Option<String> {
    let host = status
        .host
        .clone()
        .or_else(|| status.url.clone())
        .unwrap_or_else(|| "the relay".into());
    Some(match status.state {
        RelayState::NotJoined => return None,
        RelayState::Connecting => format!("Relay: connecting to {host}…"),
        RelayState::Connected => format!("Relay: connected to {host}"),
        RelayState::Unreachable => match status.since.as_deref().and_then(|s| local_time(s, now)) {
            Some(since) => format!("Relay: can't reach {host} since {since}"),
            None => format!("Relay: can't reach {host}"),
        },
        RelayState::Revoked => "Relay: this computer's access was removed".into(),
    })
}

/// "09:14" today, "3 Mar 09:14" on another day, in this computer's time zone.
fn local_time(iso: &str, now: chrono::DateTime<chrono::Local>) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(iso)
        .ok()?
        .with_timezone(&chrono::Local);
    Some(if at.date_naive() == now.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%-d %b %H:%M").to_string()
    })
}

/// Applies saved preferences: listener address, tray behaviour, start at login.
pub(crate) async fn apply_prefs(
    app: &AppHandle,
    state: &AppState,
    before: ListenerPrefs,
    prefs: ListenerPrefs,
) {
    *state.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner()) = prefs.keep_in_tray;
    set_start_at_login(app, prefs.start_at_login);
    let address_changed = (before.port, before.allow_network) != (prefs.port, prefs.allow_network);
    if address_changed || !state.ops().listener_status().running {
        start_listener(app, state, prefs).await;
    }
}

/// Writes or removes this user's autostart entry (on Linux `~/.config/autostart/Clientele.desktop`,
/// starting this program with [`desktop::AT_LOGIN_ARG`]).
fn set_start_at_login(app: &AppHandle, on: bool) {
    use tauri_plugin_autostart::ManagerExt;
    // The plugin makes only the last folder of `~/.config/autostart`; a new account may not
    // have `~/.config` yet.
    #[cfg(target_os = "linux")]
    if on && let Some(home) = std::env::var_os("HOME") {
        let _ = std::fs::create_dir_all(std::path::Path::new(&home).join(".config/autostart"));
    }
    let autostart = app.autolaunch();
    let result = if on {
        autostart.enable()
    } else {
        autostart.disable()
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "couldn't change start at login");
    }
}

/// On the first start of a data folder, an installed Clientele turns start at login on: its job
/// is to be running when messages arrive, and a desk computer restarts (updates, power cuts)
/// without anyone thinking to open it again. Settings shows the choice and turns it off; once
/// chosen, either way, this never changes it. A development build leaves it off.
fn start_at_login_on_first_start(app: &AppHandle, state: &AppState) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let on = desktop::start_at_login_by_default(&exe);
    match state.ops().choose_start_at_login_once(on) {
        Ok(true) if on => set_start_at_login(app, true),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e.message, "couldn't record start at login"),
    }
}

/// Started at login ([`desktop::AT_LOGIN_ARG`]): out of the way, in the tray when there is one,
/// else minimized — never hidden with no way back.
fn start_out_of_the_way(app: &AppHandle, keep_in_tray: bool) {
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    match desktop::login_start(keep_in_tray, desktop::tray_available()) {
        // The window goes, and its web view's memory with it; "Open Clientele" in the tray
        // builds it again.
        desktop::LoginStart::InTray => {
            let _ = window.destroy();
        }
        desktop::LoginStart::Minimized => {
            let _ = window.minimize();
        }
        desktop::LoginStart::Window => {}
    }
}

/// What closing the window does now: Settings shows it, and the window's close follows it.
pub(crate) fn close_action(app: &AppHandle) -> desktop::CloseAction {
    desktop::close_action(keeps_running_in_tray(app), desktop::tray_available())
}

/// Forwards pipeline notices to the window, batched so a burst is one refresh.
fn forward_live_updates(app: AppHandle, engine: &Engine) {
    let mut notices = engine.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let Ok(first) = notices.recv().await else {
                break;
            };
            let mut update = LiveUpdate::default();
            update.add(first);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, notices.recv()).await {
                update.add(n);
            }
            let _ = app.emit(LIVE_EVENT, update.finish());
        }
    });
}

/// Shows the main window, creating it again if it was destroyed while Clientele kept running
/// in the tray.
fn show_main(app: &AppHandle) {
    let window = app.get_webview_window("main").or_else(|| {
        let config = app.config().app.windows.first()?.clone();
        tauri::WebviewWindowBuilder::from_config(app, &config)
            .and_then(|b| b.build())
            .map_err(|e| tracing::warn!(error = %e, "couldn't open the window again"))
            .ok()
    });
    if let Some(window) = window {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Clientele can't run (its data folder is in use, the database can't be opened, …): say so in a
/// window a person sees — launched from a menu, nobody reads stderr — and exit once it is closed.
/// The main window stays hidden: without the engine, its screens could only show errors.
fn cannot_start(app: &AppHandle, message: String) {
    use tauri_plugin_dialog::{DialogExt, MessageDialogKind};
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.hide();
    }
    COULD_NOT_START.store(true, std::sync::atomic::Ordering::SeqCst);
    let handle = app.clone();
    app.dialog()
        .message(message)
        .title(CANNOT_START_TITLE)
        .kind(MessageDialogKind::Error)
        .show(move |_| handle.exit(1));
}

/// Set when Clientele couldn't start: however the event loop then ends (the message's button,
/// or the last window going away), the process reports the failure.
static COULD_NOT_START: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The title of the message shown when Clientele can't start.
pub const CANNOT_START_TITLE: &str = "Clientele couldn't start";

fn keeps_running_in_tray(app: &AppHandle) -> bool {
    app.try_state::<AppState>()
        .is_some_and(|s| *s.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner()))
}

fn build_tray(app: &AppHandle) -> tauri::Result<Tray> {
    let status = MenuItem::with_id(app, "status", "Starting…", false, None::<&str>)?;
    // Inserted under the status line once this computer is joined to a relay.
    let relay = MenuItem::with_id(app, "relay", "Relay", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Clientele", true, None::<&str>)?;
    let quit_item = MenuItem::with_id(app, "quit", "Quit Clientele", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&status, &open, &quit_item])?;
    let icon = tauri::image::Image::from_bytes(include_bytes!("../../icons/tray.png"))?;
    TrayIconBuilder::with_id("clientele")
        .icon(icon)
        .tooltip("Clientele")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "quit" => quit(app),
            _ => {}
        })
        .build(app)?;
    Ok(Tray {
        menu,
        status,
        relay,
        relay_shown: false,
    })
}

/// Stops the relay puller (what it pulled is stored), the listener (in-flight requests finish;
/// stored deliveries are already durable) and the pipeline (what is queued is stored and
/// derived, its threads joined), then exits.
pub(crate) fn quit(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(state) = app.try_state::<AppState>() {
            state.engine.shutdown().await;
        }
        app.exit(0);
    });
}

/// Turns off WebKitGTK's accelerated compositing, whose layer buffers a window of forms and lists
/// doesn't need: it took about a third of the idle app's memory (the measurement is in
/// `docs/performance.md`, "Software compositing"). A user or packager who sets the variable keeps
/// their choice.
///
/// `examples/window_floor.rs` calls it too, so `make bench`'s baseline window runs with the same
/// settings as the app.
///
/// # Safety
/// It sets an environment variable: call it first thing in `main`, before any other thread
/// exists, so nothing can be reading the environment at the same time.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub unsafe fn prefer_software_compositing() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: the caller's promise above.
        unsafe { std::env::set_var(VAR, "1") };
    }
}

/// # Safety
/// Nothing to uphold here; unsafe to match the Linux version.
#[cfg(not(target_os = "linux"))]
#[allow(unsafe_code)]
pub unsafe fn prefer_software_compositing() {}

/// Everything after the engine started: live updates, the tray, start at login, the state the
/// commands use, the listener and the relay.
fn start(app: &AppHandle, state: AppState) {
    let handle = app.clone();
    forward_live_updates(handle.clone(), &state.engine);
    match build_tray(&handle) {
        Ok(tray) => *state.tray.lock().unwrap_or_else(|p| p.into_inner()) = Some(tray),
        // No system tray (a bare X server): the window still works; closing it quits.
        Err(e) => {
            tracing::warn!(error = %e, "no system tray");
            *state.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner()) = false;
        }
    }
    start_at_login_on_first_start(app, &state);
    let prefs = state.ops().prefs().unwrap_or(ListenerPrefs::DEFAULT);
    let keep_in_tray = *state.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner());
    app.manage(state);
    if std::env::args().any(|a| a == desktop::AT_LOGIN_ARG) {
        start_out_of_the_way(app, keep_in_tray);
    }
    tauri::async_runtime::spawn(async move {
        let state = handle.state::<AppState>();
        start_listener(&handle, &state, prefs).await;
        // Then what waited at the relay while Clientele was closed.
        if let Err(e) = start_pulling(&handle, &state).await {
            tracing::warn!(error = %e.message, "couldn't start pulling from the relay");
        }
    });
}

pub fn run() {
    clientele_engine::log_to_stderr();
    let context = tauri::generate_context!();
    // One Clientele per data folder (see `instance`): a second launch on the same folder only
    // brings back the running one's window; one on another folder is an app of its own. When
    // there is no folder, `prepare` says why.
    let single_instance =
        tauri_plugin_single_instance::Builder::new().callback(|app, _args, _cwd| show_main(app));
    let single_instance = match data_dir::resolve(None) {
        Ok(dir) => single_instance.dbus_id(instance::dbus_id(&context.config().identifier, &dir)),
        Err(_) => single_instance,
    };
    let result = tauri::Builder::default()
        // First, so a second launch only focuses the running window.
        .plugin(single_instance.build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![desktop::AT_LOGIN_ARG]),
        ))
        // Closing the window where there is no tray to come back from minimizes it instead
        // (see `desktop`); with a tray, or to quit, the window closes as usual.
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.label() == "main"
                && close_action(window.app_handle()) == desktop::CloseAction::Minimize
            {
                api.prevent_close();
                let _ = window.minimize();
            }
        })
        .setup(|app| {
            // A folder from an older version is converted first, which can take a minute: the
            // window opens at once on "Updating your data" while a thread converts, then the
            // rest starts as usual. Otherwise everything starts here, as before.
            let upgrading = data_dir::resolve(None)
                .is_ok_and(|dir| Store::needs_upgrade(&dir).unwrap_or(false));
            app.manage(upgrade::UpgradeState::new(if upgrading {
                upgrade::UpgradeView::starting()
            } else {
                upgrade::UpgradeView::Ready
            }));
            if !upgrading {
                match prepare(|_| {}) {
                    Ok(state) => start(app.handle(), state),
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        cannot_start(app.handle(), format!("{e:#}"));
                    }
                }
                return Ok(());
            }
            let handle = app.handle().clone();
            std::thread::Builder::new()
                .name("clientele-upgrade".into())
                .spawn(move || {
                    let mut reporter = upgrade::Reporter::new(handle.clone());
                    let prepared = prepare(|p| reporter.report(p));
                    // The tray and the window's state belong to the main thread.
                    let main = handle.clone();
                    let _ = handle.run_on_main_thread(move || match prepared {
                        Ok(state) => {
                            start(&main, state);
                            upgrade::publish(&main, upgrade::UpgradeView::Ready);
                        }
                        Err(e) => {
                            eprintln!("error: {e:#}");
                            upgrade::publish(
                                &main,
                                upgrade::UpgradeView::Failed {
                                    message: format!("{e:#}"),
                                },
                            );
                            cannot_start(&main, format!("{e:#}"));
                        }
                    });
                })?;
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::upgrade_status,
            commands::list_providers,
            commands::list_connections,
            commands::add_connection,
            commands::replace_secret,
            commands::remove_connection,
            commands::set_connection_paused,
            commands::send_test_event,
            commands::list_activity,
            commands::delivery_detail,
            commands::reprocess_delivery,
            commands::search_people,
            commands::person_detail,
            commands::get_settings,
            commands::update_settings,
            commands::list_export_profiles,
            commands::get_export_profile,
            commands::save_export_profile,
            commands::delete_export_profile,
            commands::export_sources,
            commands::export_filter_choices,
            commands::preview_export,
            commands::choose_export_file,
            commands::run_export,
            commands::cancel_export,
            commands::export_history,
            commands::show_in_folder,
            commands::phone_settings,
            commands::set_default_country,
            commands::list_businesses,
            commands::name_business,
            commands::relay_status,
            commands::join_relay,
            commands::leave_relay,
            commands::desktop_status,
            commands::quit_app,
            commands::merge_people,
            commands::split_record,
            commands::undo_decision,
            commands::list_decisions,
            commands::forget_preview,
            commands::forget_person,
            commands::erasure_log,
            commands::list_suppressions,
            commands::stop_forgetting,
            commands::get_retention,
            commands::set_retention,
            commands::set_forget_deleted,
        ])
        .build(context);
    let app = match result {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: Clientele couldn't start: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event
            && COULD_NOT_START.load(std::sync::atomic::Ordering::SeqCst)
        {
            std::process::exit(1);
        }
        // Closing the window while Clientele keeps running in the tray lets it go rather than
        // hiding it: WebKit's web process, most of the app's memory, goes with it (`make bench`'s
        // `app_tray` line), and "Open Clientele" builds it again (`show_main`). The last window
        // going away must not stop the listener, so the exit that follows is refused; Quit in
        // the tray exits with a code.
        if let tauri::RunEvent::ExitRequested {
            api, code: None, ..
        } = event
            && keeps_running_in_tray(app)
        {
            api.prevent_exit();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn status(state: RelayState, since: Option<String>) -> RelayStatus {
        RelayStatus {
            state,
            url: Some("https://relay.example.com".into()),
            host: Some("relay.example.com".into()),
            name: Some("front-desk".into()),
            admin: false,
            public_url: Some("https://relay.example.com".into()),
            since,
            error: None,
            last_pull_at: None,
            last_delivery_at: None,
            received: 0,
        }
    }

    #[test]
    fn the_tray_says_how_the_relay_is_doing_in_words() {
        let now = chrono::Local
            .with_ymd_and_hms(2025, 3, 4, 11, 0, 0)
            .single()
            .expect("a local time");
        let at = |h, m| {
            chrono::Local
                .with_ymd_and_hms(2025, 3, 4, h, m, 0)
                .single()
                .expect("a local time")
                .to_rfc3339()
        };
        let text = |s: RelayStatus| relay_tray_text(&s, now);
        assert_eq!(text(status(RelayState::NotJoined, None)), None);
        assert_eq!(
            text(status(RelayState::Connected, None)).as_deref(),
            Some("Relay: connected to relay.example.com")
        );
        assert_eq!(
            text(status(RelayState::Unreachable, Some(at(9, 14)))).as_deref(),
            Some("Relay: can't reach relay.example.com since 09:14")
        );
        let yesterday = (now - chrono::Duration::days(1)).to_rfc3339();
        assert_eq!(
            text(status(RelayState::Unreachable, Some(yesterday))).as_deref(),
            Some("Relay: can't reach relay.example.com since 3 Mar 11:00")
        );
        assert_eq!(
            text(status(RelayState::Revoked, None)).as_deref(),
            Some("Relay: this computer's access was removed")
        );
    }
}
