//! The Debian packages (`src-tauri/packaging/package.sh`), checked without installing them:
//! unpacked with `dpkg-deb -x` into temporary folders, their programs run from there.
//!
//! `make test` bundles them from the debug build its tests already made and runs this with
//! `CLIENTELE_PACKAGES` (the folder holding `clientele_VERSION_ARCH.deb` and
//! `clientele-relay_VERSION_ARCH.deb`) and `CLIENTELE_REQUIRE_PACKAGES=1`, inside a virtual X
//! server and a private Secret Service. Without `CLIENTELE_PACKAGES` each test says it was
//! skipped — and fails instead when `CLIENTELE_REQUIRE_PACKAGES=1`.

use clientele_tests::guard::ProcessGuard;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace's version, which both packages and both programs must carry.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long one step may take: generous, for a debug build on a busy two-core machine (the
/// unpacked app showed its window in about 3 s there); a window that never opens still fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn required() -> bool {
    std::env::var("CLIENTELE_REQUIRE_PACKAGES").as_deref() == Ok("1")
}

/// Says why `test` can't run; fails instead when the packages are required.
fn skip(test: &str, why: &str) {
    assert!(!required(), "{test}: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// The package named `name` (`clientele` or `clientele-relay`) in `CLIENTELE_PACKAGES`.
fn package(test: &str, name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("CLIENTELE_PACKAGES") else {
        skip(
            test,
            "CLIENTELE_PACKAGES is not set (make test bundles the packages and sets it)",
        );
        return None;
    };
    let prefix = format!("{name}_{VERSION}_");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{test}: can't read {}: {e}", Path::new(&dir).display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    match found.as_slice() {
        [deb] => Some(deb.clone()),
        [] if !required() => {
            skip(test, &format!("no {prefix}*.deb in {}", dir.display()));
            None
        }
        other => panic!(
            "{test}: expected one {prefix}*.deb in {}, found {other:?}",
            dir.display()
        ),
    }
}

/// Runs `program` with `args`, which must finish within the deadline.
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    let program = program.as_ref();
    Command::new("timeout")
        .arg(DEADLINE.as_secs().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program:?}: {e}"))
}

fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The control fields `dpkg-deb --info` shows (a continued field's lines joined).
fn control(deb: &Path) -> BTreeMap<String, String> {
    let info = succeeded(
        "dpkg-deb --info",
        run("dpkg-deb", &["--info", &deb.display().to_string()]),
    );
    let mut fields = BTreeMap::new();
    let mut last: Option<String> = None;
    // The control file follows the archive summary, indented by one space.
    for line in info.lines().filter_map(|l| l.strip_prefix(' ')) {
        match line.split_once(": ") {
            Some((name, value)) if !name.starts_with(' ') && !name.contains(' ') => {
                fields.insert(name.to_string(), value.trim().to_string());
                last = Some(name.to_string());
            }
            _ => {
                if let Some(field) = last.as_ref().and_then(|n| fields.get_mut(n)) {
                    field.push('\n');
                    field.push_str(line.trim());
                }
            }
        }
    }
    fields
}

/// The package names a relation field lists ("libc6 (>= 2.34), adduser" → libc6, adduser),
/// alternatives included.
fn names(field: Option<&String>) -> Vec<String> {
    field
        .map(String::as_str)
        .unwrap_or_default()
        .split([',', '|'])
        .filter_map(|relation| relation.split_whitespace().next())
        .map(|name| name.split('(').next().unwrap_or(name).to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

/// `deb` unpacked with `dpkg-deb -x` (what `dpkg -i` would install, without installing it).
fn unpack(deb: &Path) -> tempfile::TempDir {
    let tree = tempfile::tempdir().expect("temp folder");
    succeeded(
        "dpkg-deb -x",
        run(
            "dpkg-deb",
            &[
                "-x",
                &deb.display().to_string(),
                &tree.path().display().to_string(),
            ],
        ),
    );
    tree
}

/// `clientele --version` of an unpacked tree.
fn assert_cli_version(tree: &Path) {
    let cli = tree.join("usr/bin/clientele");
    let said = succeeded("clientele --version", run(&cli, &["--version"]));
    assert_eq!(
        said.trim(),
        format!("clientele {VERSION}"),
        "{}",
        cli.display()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn health(port: u16) -> u16 {
    clientele_tests::agent()
        .get(format!("http://127.0.0.1:{port}/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool, context: impl FnOnce() -> String) {
    let deadline = Instant::now() + DEADLINE;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}; {}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of `key` in a desktop entry or unit file's lines (`Key=value`).
fn key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

#[test]
fn the_app_package_holds_the_app_the_command_and_a_valid_desktop_entry() {
    let test = "the_app_package_holds_the_app_the_command_and_a_valid_desktop_entry";
    let Some(deb) = package(test, "clientele") else {
        return;
    };
    let fields = control(&deb);
    assert_eq!(fields.get("Package").map(String::as_str), Some("clientele"));
    assert_eq!(fields.get("Version").map(String::as_str), Some(VERSION));
    let depends = names(fields.get("Depends"));
    // The window and web view, the tray (loaded at run time, so named by hand), and what the
    // binaries link against as dpkg-shlibdeps found it.
    for needed in [
        "libwebkit2gtk-4.1-0",
        "libgtk-3-0",
        "libayatana-appindicator3-1",
        "libc6",
        "libsoup-3.0-0",
    ] {
        assert!(
            depends.iter().any(|d| d == needed),
            "Depends lacks {needed}: {fields:?}"
        );
    }
    // The keychain is a Secret Service on the session bus: a keyring is expected, not forced.
    assert!(names(fields.get("Recommends")).contains(&"gnome-keyring".to_string()));
    // Both packages ship /usr/bin/clientele.
    assert!(names(fields.get("Conflicts")).contains(&"clientele-relay".to_string()));
    assert!(names(fields.get("Replaces")).contains(&"clientele-relay".to_string()));

    let tree = unpack(&deb);
    let root = tree.path();
    assert_cli_version(root);
    let app = root.join("usr/bin/clientele-app");
    assert!(app.is_file(), "the app at /usr/bin/clientele-app");

    let entries: Vec<PathBuf> = std::fs::read_dir(root.join("usr/share/applications"))
        .expect("a desktop entry folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    let [entry] = entries.as_slice() else {
        panic!("one desktop entry expected: {entries:?}");
    };
    succeeded(
        "desktop-file-validate",
        run("desktop-file-validate", &[&entry.display().to_string()]),
    );
    let text = std::fs::read_to_string(entry).unwrap();
    assert_eq!(key(&text, "Name"), Some("Clientele"));
    assert!(
        key(&text, "Comment").is_some_and(|c| !c.is_empty()),
        "{text}"
    );
    assert!(
        key(&text, "Categories").is_some_and(|c| c.split(';').any(|c| c == "Office")),
        "{text}"
    );
    // What the menu starts, and its icon, are in the package.
    let exec = key(&text, "Exec").expect("Exec");
    let program = exec.split_whitespace().next().unwrap();
    assert!(
        root.join("usr/bin").join(program).is_file(),
        "Exec={exec} is not in /usr/bin"
    );
    let icon = key(&text, "Icon").expect("Icon");
    for size in ["32x32", "128x128", "256x256", "512x512"] {
        let png = root.join(format!("usr/share/icons/hicolor/{size}/apps/{icon}.png"));
        assert!(png.is_file(), "no {size} icon: {}", png.display());
    }
}

#[test]
fn the_unpacked_app_opens_its_window_and_receives() {
    let test = "the_unpacked_app_opens_its_window_and_receives";
    let Some(deb) = package(test, "clientele") else {
        return;
    };
    for (what, missing) in [
        (
            "an X display (make test runs this under xvfb-run)",
            std::env::var_os("DISPLAY").is_none(),
        ),
        (
            "a D-Bus session with a Secret Service (tests/tools/with-secret-service.sh)",
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none(),
        ),
        (
            "xdotool (Debian package xdotool)",
            !Path::new("/usr/bin/xdotool").exists(),
        ),
        (
            "ImageMagick's import",
            !Path::new("/usr/bin/import").exists(),
        ),
    ] {
        if missing {
            skip(test, &format!("needs {what}"));
            return;
        }
    }
    let tree = unpack(&deb);
    // A home of its own: the app writes its start-at-login entry and caches there, never into the
    // home of whoever runs the tests.
    let home = tempfile::tempdir().expect("temp home");
    let data = tempfile::tempdir().expect("temp data folder");
    let port = free_port();
    let log = data.path().join("app.log");
    let program = tree.path().join("usr/bin/clientele-app");
    let mut cmd = Command::new(&program);
    cmd.env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .env("CLIENTELE_DATA_DIR", data.path())
        .env("CLIENTELE_LISTEN_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the app's log"));
    // Stopped, with WebKit's processes, when the test ends, passing or failing.
    let mut app = ProcessGuard::spawn("unpacked clientele-app", &mut cmd, Duration::from_secs(5))
        .expect("start the unpacked app");
    let said = || {
        format!(
            "the app said:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    wait_until(
        "the window titled Clientele",
        || {
            run(
                "xdotool",
                &["search", "--onlyvisible", "--name", "^Clientele$"],
            )
            .status
            .success()
        },
        said,
    );
    wait_until("its listener", || health(port) == 200, said);
    assert!(app.try_wait().is_none(), "the app exited; {}", said());

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/packages");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let shot = shots.join("app-window.png");
    // The window is mapped before WebKit paints the screens into it: screenshots until it shows
    // more than a blank page does (a few colours).
    wait_until(
        "the window to show Clientele's screens",
        || {
            succeeded(
                "screenshot",
                run("import", &["-window", "root", &shot.display().to_string()]),
            );
            let colours = succeeded(
                "identify",
                run("identify", &["-format", "%k", &shot.display().to_string()]),
            );
            colours.trim().parse::<u32>().unwrap_or(0) > 64
        },
        said,
    );

    // An installed Clientele turns start at login on at its first start (docs/packaging.md says
    // why): the entry, in the app's own home, starts the installed program out of the way.
    let entry = home.path().join(".config/autostart/Clientele.desktop");
    wait_until("the start-at-login entry", || entry.is_file(), said);
    let text = std::fs::read_to_string(&entry).unwrap();
    assert_eq!(
        key(&text, "Exec"),
        Some(format!("{} --at-login", program.display()).as_str()),
        "{text}"
    );
    app.stop();
}

#[test]
fn the_relay_package_installs_a_service_it_does_not_start() {
    let test = "the_relay_package_installs_a_service_it_does_not_start";
    let Some(deb) = package(test, "clientele-relay") else {
        return;
    };
    let fields = control(&deb);
    assert_eq!(
        fields.get("Package").map(String::as_str),
        Some("clientele-relay")
    );
    assert_eq!(fields.get("Version").map(String::as_str), Some(VERSION));
    let depends = names(fields.get("Depends"));
    for needed in ["libc6", "adduser"] {
        assert!(
            depends.iter().any(|d| d == needed),
            "Depends lacks {needed}: {fields:?}"
        );
    }
    // A server needs no desktop: nothing of GTK or WebKit.
    assert!(
        !depends
            .iter()
            .any(|d| d.contains("gtk") || d.contains("webkit")),
        "{depends:?}"
    );
    assert!(names(fields.get("Conflicts")).contains(&"clientele".to_string()));
    assert!(names(fields.get("Replaces")).contains(&"clientele".to_string()));

    let tree = unpack(&deb);
    let root = tree.path();
    assert_cli_version(root);

    // The settings are a conffile: an upgrade keeps the administrator's changes.
    let control_dir = tempfile::tempdir().unwrap();
    succeeded(
        "dpkg-deb -e",
        run(
            "dpkg-deb",
            &[
                "-e",
                &deb.display().to_string(),
                &control_dir.path().display().to_string(),
            ],
        ),
    );
    let conffiles = std::fs::read_to_string(control_dir.path().join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/clientele/relay.conf");
    assert!(root.join("etc/clientele/relay.conf").is_file());
    // The maintainer scripts are valid shell, and none enables or starts the relay: its address
    // must be set first.
    for script in ["postinst", "prerm", "postrm"] {
        let path = control_dir.path().join(script);
        succeeded(
            &format!("sh -n {script}"),
            run("sh", &["-n", &path.display().to_string()]),
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for starts in [
            "systemctl enable",
            "systemctl start",
            "--now",
            "invoke start",
        ] {
            assert!(!text.contains(starts), "{script} runs {starts:?}");
        }
    }
    let postinst = std::fs::read_to_string(control_dir.path().join("postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system"),
        "postinst makes the user"
    );
    assert!(
        postinst.contains("-m 0700 \"$DATA\"")
            && postinst.contains("DATA=/var/lib/clientele-relay"),
        "postinst makes the data folder, private to the relay's user"
    );
    // Installed, not enabled: no link into a target's wants.
    assert!(
        !root.join("etc/systemd").exists(),
        "the package enables nothing"
    );

    // The unit: ExecStart and EnvironmentFile resolve inside the package, and systemd finds
    // nothing to complain about. systemd-analyze checks the program exists, so it verifies a
    // copy whose paths point into the unpacked tree.
    let unit_path = root.join("usr/lib/systemd/system/clientele-relay.service");
    let unit = std::fs::read_to_string(&unit_path).expect("the unit");
    let exec = key(&unit, "ExecStart").expect("ExecStart");
    assert_eq!(exec, "/usr/bin/clientele relay serve");
    let program = exec.split_whitespace().next().unwrap();
    assert!(
        root.join(&program[1..]).is_file(),
        "{program} is in the package"
    );
    assert_eq!(
        key(&unit, "EnvironmentFile"),
        Some("/etc/clientele/relay.conf")
    );
    assert_eq!(key(&unit, "User"), Some("clientele"));
    assert_eq!(key(&unit, "StateDirectory"), Some("clientele-relay"));
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("clientele-relay.service");
    let inside = |path: &str| format!("{}{path}", root.display());
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/clientele", &inside("/usr/bin/clientele"))
            .replace(
                "/etc/clientele/relay.conf",
                &inside("/etc/clientele/relay.conf"),
            ),
    )
    .unwrap();
    let verified = run("systemd-analyze", &["verify", &copy.display().to_string()]);
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    // It reports some problems (an unknown setting) on its output with a success status.
    assert!(
        verified.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {}\n{complaints}",
        verified.status
    );
}

#[test]
fn the_relay_starts_with_the_settings_the_package_ships() {
    let test = "the_relay_starts_with_the_settings_the_package_ships";
    let Some(deb) = package(test, "clientele-relay") else {
        return;
    };
    let tree = unpack(&deb);
    let conf = std::fs::read_to_string(tree.path().join("etc/clientele/relay.conf")).unwrap();
    let settings: Vec<(&str, &str)> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l}"))
        })
        .collect();
    assert!(
        settings
            .iter()
            .any(|(k, v)| *k == "CLIENTELE_RELAY_BIND" && v.starts_with("127.0.0.1:")),
        "the relay listens on this computer only until told otherwise: {settings:?}"
    );
    // Every setting in the file, commented out or not, is one the program reads.
    let help = succeeded(
        "relay serve --help",
        run(
            tree.path().join("usr/bin/clientele"),
            &["relay", "serve", "--help"],
        ),
    );
    for line in conf.lines() {
        let setting = line.trim_start_matches('#');
        if let Some((name, _)) = setting.split_once('=')
            && name.starts_with("CLIENTELE_")
            && !name.contains(' ')
            && name != "CLIENTELE_RELAY_KEY"
        {
            assert!(
                help.contains(&format!("[env: {name}")),
                "{name} is not an option"
            );
        }
    }

    // As systemd would start it: the file's settings in the environment, no arguments (only the
    // port changed, to a free one, and a data folder of its own).
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut relay = Command::new(tree.path().join("usr/bin/clientele"));
    relay.args(["relay", "serve"]);
    for (name, value) in &settings {
        relay.env(name, value);
    }
    relay
        .env("CLIENTELE_RELAY_BIND", format!("127.0.0.1:{port}"))
        .env("CLIENTELE_DATA_DIR", data.path());
    let relay = clientele_tests::Server::start_expecting(relay, "relay listening on ");
    assert_eq!(relay.addr, format!("127.0.0.1:{port}"));
    assert_eq!(health(port), 200);
}
