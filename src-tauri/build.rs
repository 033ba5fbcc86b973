//! `generate_context!` embeds ui/dist; create it empty when the UI hasn't been built so that
//! `cargo check`/`clippy` work without Node (`make` builds the real UI first).
fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    if !dist.exists() {
        let _ = std::fs::create_dir_all(&dist);
    }
    tauri_build::build();
}
