// Keep the Windows release build from opening a console next to the window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    prefer_software_compositing();
    clientele_app::run();
}

/// WebKitGTK's accelerated compositing keeps layer buffers in its web process that a window of
/// forms and lists doesn't need: `make bench`'s app_footprint measured the idle app at 349 MB
/// (proportional set size over the app and WebKit's processes) with it and 251 MB without, the
/// web process's own memory going from 111 MB to 37 MB. A user or packager who sets the variable
/// keeps their choice.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn prefer_software_compositing() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: the first thing `main` does, before any thread exists, so nothing can be reading
        // the environment at the same time.
        unsafe { std::env::set_var(VAR, "1") };
    }
}

#[cfg(not(target_os = "linux"))]
fn prefer_software_compositing() {}
