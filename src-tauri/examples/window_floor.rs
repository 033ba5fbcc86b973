//! `window_floor`: the baseline for `make bench`'s desktop footprint: what any Tauri window costs
//! on this machine before an app puts anything in it.
//!
//! The same Tauri, WebKitGTK and settings as `clientele-app` (its configuration, its release
//! build, its `prefer_software_compositing`), one window of the same size, showing a heading and
//! a paragraph served from a custom scheme as the app's own pages are. No store, no listener, no
//! tray, no user interface: `tests/src/bin/app_footprint.rs` measures it next to the idle app and
//! prints `bench: app_floor …`, so the app's own share is the difference between the two.
//!
//! `cargo build --release -p clientele-app --example window_floor` (`make bench-build` does).

/// The window's title, which `app_footprint` waits for.
const TITLE: &str = "Clientele window floor";

const PAGE: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Floor</title>\
<body style=\"font-family: sans-serif; margin: 2rem\"><h1>Window floor</h1>\
<p>A Tauri window with nothing in it, for comparison.</p></body></html>";

#[allow(unsafe_code)]
fn main() {
    // SAFETY: the first thing `main` does, before any thread exists.
    unsafe { clientele_app::prefer_software_compositing() };
    let mut context: tauri::Context<tauri::Wry> = tauri::generate_context!();
    let window = context
        .config_mut()
        .app
        .windows
        .first_mut()
        .expect("tauri.conf.json declares the main window");
    window.title = TITLE.into();
    window.url = tauri::WebviewUrl::CustomProtocol(
        "floor://localhost/"
            .parse()
            .expect("a valid URL for the floor page"),
    );
    tauri::Builder::default()
        .register_uri_scheme_protocol("floor", |_context, _request| {
            tauri::http::Response::builder()
                .header("Content-Type", "text/html; charset=utf-8")
                .body(PAGE.as_bytes())
                .expect("a response with a constant header")
        })
        .run(context)
        .expect("run the floor window");
}
