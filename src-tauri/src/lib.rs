//! Clientele's desktop shell. It runs the same listener, pipeline and store as `clientele serve`,
//! in-process, on the same data folder; the window is a view onto them. Closing the window keeps
//! receiving (the tray shows the listener's status); Quit stops the listener gracefully.

mod commands;
mod instance;

use clientele_core::Sensitive;
use clientele_secrets::KeychainStore;
use clientele_server::api::{Api, ListenerPrefs, ListenerStatus, LiveUpdate};
use clientele_server::connections::ConnectionRegistry;
use clientele_server::data_dir::{self, DataDirLock, LockError};
use clientele_server::ingest::{self, Notice};
use clientele_server::listener::{self, ClockHandle, DEFAULT_BODY_LIMIT, ListenerState};
use clientele_store::Store;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::oneshot;

/// Overrides the listening port (tests run the app on a free port).
const PORT_ENV: &str = "CLIENTELE_LISTEN_PORT";
/// The event the UI listens to for live refreshes.
pub const LIVE_EVENT: &str = "clientele://live";

pub(crate) struct AppState {
    api: Arc<Api>,
    ingest: ingest::IngestHandle,
    registry: Arc<ConnectionRegistry>,
    test_token: Arc<Sensitive<String>>,
    listener:
        tokio::sync::Mutex<Option<(oneshot::Sender<()>, tauri::async_runtime::JoinHandle<()>)>>,
    tray_status: Mutex<Option<MenuItem<tauri::Wry>>>,
    keep_in_tray: Mutex<bool>,
    exports: Arc<clientele_server::export_api::RunningExports>,
    _lock: DataDirLock,
}

/// A random-enough token for this run's test events (never stored, never shown).
fn test_token() -> Sensitive<String> {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        parts.push(format!("{:016x}", h.finish()));
    }
    Sensitive::new(parts.concat())
}

fn prepare() -> anyhow::Result<AppState> {
    let dir = data_dir::resolve(None)?;
    let lock = DataDirLock::acquire(&dir).map_err(|e| match e {
        LockError::HeldElsewhere(dir) => anyhow::anyhow!(
            "Another copy of Clientele is already receiving messages into {} — probably \
             “clientele serve”, started in a terminal. Stop it, then open Clientele again.",
            dir.display()
        ),
        other => other.into(),
    })?;
    let store = Store::open_dir(&dir)?;
    let secrets = Arc::new(KeychainStore::new(KeychainStore::default_service()));
    let registry = Arc::new(ConnectionRegistry::load(store.clone(), secrets)?);
    let (ingest, _pipeline) = ingest::start(&store)?;
    let test_token = Arc::new(test_token());
    let api = Arc::new(Api {
        store,
        registry: registry.clone(),
        ingest: ingest.clone(),
        data_dir: dir,
        test_token: test_token.clone(),
        listener: std::sync::RwLock::new(ListenerStatus {
            running: false,
            address: None,
            error: None,
        }),
    });
    let keep_in_tray = api.prefs().map(|p| p.keep_in_tray).unwrap_or(true);
    Ok(AppState {
        api,
        ingest,
        registry,
        test_token,
        listener: tokio::sync::Mutex::new(None),
        tray_status: Mutex::new(None),
        keep_in_tray: Mutex::new(keep_in_tray),
        exports: Arc::default(),
        _lock: lock,
    })
}

/// (Re)starts the listener with `prefs` and updates the status shown in Settings and the tray.
async fn start_listener(app: &AppHandle, state: &AppState, prefs: ListenerPrefs) {
    let mut current = state.listener.lock().await;
    if let Some((stop, task)) = current.take() {
        let _ = stop.send(());
        let _ = task.await;
    }
    let port = std::env::var(PORT_ENV)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(prefs.port);
    let ip = if prefs.allow_network {
        [0, 0, 0, 0]
    } else {
        [127, 0, 0, 1]
    };
    let addr = SocketAddr::from((ip, port));
    let status = match tokio::net::TcpListener::bind(addr).await {
        Ok(tcp) => {
            let bound = tcp
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| addr.to_string());
            let (stop, stopped) = oneshot::channel::<()>();
            let listener_state = ListenerState {
                connections: state.registry.clone(),
                ingest: state.ingest.clone(),
                body_limit: DEFAULT_BODY_LIMIT,
                clock: ClockHandle(clientele_server::system_clock()),
                test_token: Some(state.test_token.clone()),
            };
            let task = tauri::async_runtime::spawn(async move {
                if let Err(e) = listener::run(tcp, listener_state, async {
                    let _ = stopped.await;
                })
                .await
                {
                    tracing::error!(error = %e, "listener stopped");
                }
            });
            *current = Some((stop, task));
            let shown = if prefs.allow_network {
                format!("0.0.0.0:{port}")
            } else {
                bound.clone()
            };
            ListenerStatus {
                running: true,
                address: Some(if prefs.allow_network {
                    format!("127.0.0.1:{port}")
                } else {
                    bound
                }),
                error: None,
            }
            .with_tray_text(&shown)
        }
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(
                    "Port {port} is already used by another program. Choose another port in Settings."
                )
            } else {
                format!("Clientele couldn't start receiving on port {port}: {e}")
            };
            (
                ListenerStatus {
                    running: false,
                    address: None,
                    error: Some(message.clone()),
                },
                message,
            )
        }
    };
    let (status, tray_text) = status;
    state.api.set_listener_status(status);
    if let Some(item) = state
        .tray_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        let _ = item.set_text(tray_text);
    }
    let _ = app.emit(
        LIVE_EVENT,
        LiveUpdate {
            deliveries: 0,
            rejections: 0,
            people: vec![],
        },
    );
}

trait TrayText {
    fn with_tray_text(self, shown: &str) -> (ListenerStatus, String);
}

impl TrayText for ListenerStatus {
    fn with_tray_text(self, shown: &str) -> (ListenerStatus, String) {
        (self, format!("Receiving at http://{shown}"))
    }
}

/// Applies saved preferences: listener address, tray behaviour, start at login.
pub(crate) async fn apply_prefs(
    app: &AppHandle,
    state: &AppState,
    before: ListenerPrefs,
    prefs: ListenerPrefs,
) {
    *state.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner()) = prefs.keep_in_tray;
    {
        use tauri_plugin_autostart::ManagerExt;
        let autostart = app.autolaunch();
        let result = if prefs.start_at_login {
            autostart.enable()
        } else {
            autostart.disable()
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "couldn't change start at login");
        }
    }
    let address_changed = (before.port, before.allow_network) != (prefs.port, prefs.allow_network);
    let not_running = !state.api.settings().is_ok_and(|s| s.listener.running);
    if address_changed || not_running {
        start_listener(app, state, prefs).await;
    }
}

/// Forwards pipeline notices to the window, batched so a burst is one refresh.
fn forward_live_updates(app: AppHandle, ingest: &ingest::IngestHandle) {
    let mut notices = ingest.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let Ok(first) = notices.recv().await else {
                break;
            };
            let mut update = LiveUpdate {
                deliveries: 0,
                rejections: 0,
                people: vec![],
            };
            let add = |n: Notice, u: &mut LiveUpdate| match n {
                Notice::Stored { .. } | Notice::Duplicate { .. } => u.deliveries += 1,
                Notice::Rejected { .. } => u.rejections += 1,
                Notice::Derived { people, .. } => u.people.extend(people),
            };
            add(first, &mut update);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, notices.recv()).await {
                add(n, &mut update);
            }
            update.people.sort_unstable();
            update.people.dedup();
            let _ = app.emit(LIVE_EVENT, update);
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

fn build_tray(app: &AppHandle) -> tauri::Result<MenuItem<tauri::Wry>> {
    let status = MenuItem::with_id(app, "status", "Starting…", false, None::<&str>)?;
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
    Ok(status)
}

/// Stops the listener (in-flight requests finish; stored deliveries are already durable), then
/// exits.
fn quit(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(state) = app.try_state::<AppState>() {
            if let Some((stop, task)) = state.listener.lock().await.take() {
                let _ = stop.send(());
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
            let _ = state.ingest.flush().await;
        }
        app.exit(0);
    });
}

/// WebKitGTK's accelerated compositing keeps layer buffers in its web process that a window of
/// forms and lists doesn't need: `make bench`'s app_footprint measured the idle app at 349 MB
/// (proportional set size over the app and WebKit's processes) with it and 251 MB without, the
/// web process's own memory going from 111 MB to 37 MB. A user or packager who sets the variable
/// keeps their choice.
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

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLIENTELE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
            None,
        ))
        .setup(|app| {
            let state = match prepare() {
                Ok(state) => state,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    cannot_start(app.handle(), format!("{e:#}"));
                    return Ok(());
                }
            };
            let handle = app.handle().clone();
            forward_live_updates(handle.clone(), &state.ingest);
            match build_tray(&handle) {
                Ok(item) => {
                    *state.tray_status.lock().unwrap_or_else(|p| p.into_inner()) = Some(item)
                }
                // No system tray (a bare X server): the window still works; closing it quits.
                Err(e) => {
                    tracing::warn!(error = %e, "no system tray");
                    *state.keep_in_tray.lock().unwrap_or_else(|p| p.into_inner()) = false;
                }
            }
            let prefs = state.api.prefs().unwrap_or(ListenerPrefs {
                port: clientele_server::api::DEFAULT_PORT,
                allow_network: false,
                start_at_login: false,
                keep_in_tray: true,
            });
            app.manage(state);
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<AppState>();
                start_listener(&handle, &state, prefs).await;
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
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
            commands::preview_export,
            commands::choose_export_file,
            commands::run_export,
            commands::cancel_export,
            commands::export_history,
            commands::show_in_folder,
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
