//! One Clientele per data folder. Starting Clientele again on a folder it already has open hands
//! over to the running copy (which shows its window) — the single-instance plugin — while
//! Clientele on another folder (`CLIENTELE_DATA_DIR`) is a separate, independent app: its own
//! store, listener, tray and window. Per desktop session instead, opening a second folder would
//! silently show the first folder's window, and a test's leftover app would swallow the next
//! test's launch.
//!
//! On Linux the plugin claims a D-Bus name on the session bus; this module derives that name from
//! the data folder. (On Windows and macOS the plugin only knows the app's identifier, so there it
//! stays one Clientele per session: a launch on any folder brings back the running one's window.)

use std::path::{Path, PathBuf};

/// The single-instance plugin's D-Bus id for `data_dir` (the plugin appends `.SingleInstance`):
/// `identifier` followed by an element naming the folder, e.g.
/// `app.clientele.desktop.data_1f0c…`. The same folder, however it is spelled, gives the same id.
pub(crate) fn dbus_id(identifier: &str, data_dir: &Path) -> String {
    let folder = same_folder(data_dir);
    format!(
        "{identifier}.data_{:016x}",
        fnv1a(folder.as_os_str().as_encoded_bytes())
    )
}

/// `dir` spelled one way: absolute, symbolic links resolved. The folder is created first (as
/// the app does anyway), so the first launch and a second one resolve it alike.
fn same_folder(dir: &Path) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// 64-bit FNV-1a: short, and the same in every build (std's hasher may change between Rust
/// releases, and two builds of Clientele must agree on the name).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "app.clientele.desktop";

    /// What D-Bus accepts as a well-known name (the plugin panics on anything else).
    fn valid_bus_name(name: &str) -> bool {
        name.len() <= 255
            && name.split('.').count() >= 2
            && name.split('.').all(|element| {
                !element.is_empty()
                    && !element.starts_with(|c: char| c.is_ascii_digit())
                    && element
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
    }

    #[test]
    fn one_folder_however_spelled_is_one_instance_and_two_folders_are_two() {
        let root = tempfile::tempdir().unwrap();
        let shop = root.path().join("shop");
        let other = root.path().join("other");
        let id = dbus_id(ID, &shop);
        assert!(valid_bus_name(&format!("{id}.SingleInstance")), "{id}");
        assert!(id.starts_with("app.clientele.desktop.data_"), "{id}");
        assert_eq!(id, dbus_id(ID, &root.path().join("other/../shop")));
        assert_eq!(id, dbus_id(ID, &shop.join(".")));
        #[cfg(unix)]
        {
            let link = root.path().join("link");
            std::os::unix::fs::symlink(&shop, &link).unwrap();
            assert_eq!(id, dbus_id(ID, &link));
        }
        assert_ne!(id, dbus_id(ID, &other));
    }

    #[test]
    fn a_folder_with_any_characters_gives_a_valid_name() {
        let root = tempfile::tempdir().unwrap();
        let odd = root.path().join("Données clients (2024) — été.d");
        assert!(valid_bus_name(&format!(
            "{}.SingleInstance",
            dbus_id(ID, &odd)
        )));
    }
}
