// Keep the Windows release build from opening a console next to the window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[allow(unsafe_code)]
fn main() {
    // SAFETY: the first thing `main` does, before any thread exists.
    unsafe { clientele_app::prefer_software_compositing() };
    clientele_app::run();
}
