// Keep the Windows release build from opening a console next to the window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    clientele_app::run();
}
