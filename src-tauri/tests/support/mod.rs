//! Drives the real Clientele window through WebDriver: `tauri-driver` (in front of Debian's
//! `WebKitWebDriver`) starts the app binary under the X server in `DISPLAY`, with its own data
//! folder and listening port; a real Secret Service must be on the session bus. `make test`
//! provides all three (Xvfb, a private D-Bus session with gnome-keyring). Without them the tests
//! say they were skipped — and fail instead when `CLIENTELE_REQUIRE_E2E=1`.

#![allow(dead_code)]

use clientele_tests::guard::ProcessGuard;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long starting tauri-driver, WebKitWebDriver and the app may take: generous, for a debug
/// build on a busy two-core machine; an app that never starts still fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// How long the window may take to show what a step leads to (an element, a text, a preview).
/// Generous: with both cores of the machine busy, a whole end-to-end test took under 35 s; a
/// screen that never shows it still fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The app under WebDriver. Dropped — at the end of a test, or when it fails — it stops
/// tauri-driver, WebKitWebDriver and the app with its WebKit processes (see [`ProcessGuard`]).
pub struct App {
    pub client: Client,
    /// tauri-driver, and through it WebKitWebDriver and the app.
    driver: ProcessGuard,
    pub data: tempfile::TempDir,
    /// The app's `HOME`: what it writes there (its start-at-login entry, caches) stays out of the
    /// home of whoever runs the tests.
    pub home: tempfile::TempDir,
    pub port: u16,
    shots: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tauri_driver() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tauri-driver"))
            .find(|p| p.exists())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
        Some(home.join("bin/tauri-driver")).filter(|p| p.exists())
    })
}

/// Why the end-to-end tests can't run here, if they can't.
pub fn missing_prerequisite() -> Option<String> {
    if std::env::var_os("DISPLAY").is_none() {
        return Some("no X display (run under xvfb-run, as make test does)".into());
    }
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Some("no D-Bus session with a Secret Service (make test starts one)".into());
    }
    if tauri_driver().is_none() {
        return Some("tauri-driver is not installed (make test installs it)".into());
    }
    if !Path::new("/usr/bin/WebKitWebDriver").exists() {
        return Some("WebKitWebDriver is missing (Debian package webkit2gtk-driver)".into());
    }
    if !Path::new("/usr/bin/xdotool").exists() {
        return Some("xdotool is missing (Debian package xdotool)".into());
    }
    if !Path::new("/usr/bin/import").exists() {
        return Some("ImageMagick's import is missing (Debian package imagemagick)".into());
    }
    None
}

/// Returns false (after saying so) when the test must be skipped.
pub fn can_run(test: &str) -> bool {
    match missing_prerequisite() {
        None => true,
        Some(why) if std::env::var("CLIENTELE_REQUIRE_E2E").as_deref() == Ok("1") => {
            panic!("{test}: end-to-end prerequisites missing: {why}")
        }
        Some(why) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            false
        }
    }
}

fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl App {
    /// Starts the app with a fresh data folder and waits for its window and its listener.
    pub async fn start(name: &str) -> App {
        let app = App::start_with(name, tempfile::tempdir().expect("temp data folder"), &[]).await;
        wait_for_port(app.port, DEADLINE);
        app
    }

    /// Starts the app on `data` (a data folder the test prepared) with `env` added, and waits
    /// for its window only: the listener starts once the folder is open, which the test waits
    /// for itself (an older folder is converted first).
    pub async fn start_with(name: &str, data: tempfile::TempDir, env: &[(&str, &str)]) -> App {
        let home = tempfile::tempdir().expect("temp home folder");
        let port = free_port();
        let driver_port = free_port();
        let native_port = free_port();
        let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/artifacts/e2e")
            .join(name);
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        let log_path = shots.join("tauri-driver.log");
        let log = std::fs::File::create(&log_path).expect("tauri-driver log");
        let mut driver = Command::new(tauri_driver().expect("tauri-driver"));
        driver
            .args([
                "--port",
                &driver_port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("CLIENTELE_DATA_DIR", data.path())
            .env("CLIENTELE_LISTEN_PORT", port.to_string())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_CACHE_HOME", home.path().join(".cache"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("tauri-driver log"))
            .stderr(log);
        // SIGTERM first: tauri-driver then stops WebKitWebDriver itself; what is left (the app
        // WebKitWebDriver started, when no session was closed) is killed with the group.
        let driver = ProcessGuard::spawn("tauri-driver", &mut driver, DRIVER_GRACE)
            .expect("start tauri-driver");
        // tauri-driver listens at once but only proxies to WebKitWebDriver, which it starts at
        // the same moment; a session request that arrives before WebKitWebDriver listens is
        // dropped (hyper's IncompleteMessage). On a cold, busy 2-core machine that is a real
        // race, so wait for both, and retry the session a few times.
        wait_for_port(driver_port, DEADLINE);
        wait_for_port(native_port, DEADLINE);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({"application": env!("CARGO_BIN_EXE_clientele-app")}),
        );
        caps.insert("browserName".into(), serde_json::json!("wry"));
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{driver_port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if attempt < 5 => {
                    eprintln!("WebDriver session attempt {attempt} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!(
                        "no WebDriver session with the app after {attempt} attempts: {e}\ntauri-driver said:\n{log}"
                    );
                }
            }
        };
        App {
            client,
            driver,
            data,
            home,
            port,
            shots,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Posts `body` to the app's listener as `provider`'s connection `main`, signed with
    /// `secret` now, and expects it stored (`200`).
    pub fn send(&self, provider: clientele_core::Provider, secret: &str, body: &[u8]) {
        let url = self.url(&format!("/hooks/{}/main", provider.id()));
        let headers = clientele_tests::signed(provider, secret, body, chrono::Utc::now());
        let (status, text) = clientele_tests::post(&clientele_tests::agent(), &url, &headers, body);
        assert_eq!(status, 200, "{text}");
    }

    /// Saves a screenshot of the display — the app's window is all it shows — as a test artifact.
    ///
    /// Taken from the X server, not through WebDriver: the app runs WebKit without accelerated
    /// compositing (see `main.rs`), and WebKitWebDriver's screenshot command never answers in
    /// that mode, though every other command does.
    pub async fn shot(&self, name: &str) {
        let file = self.shots.join(format!("{name}.png"));
        let out = std::process::Command::new("timeout")
            .arg(DEADLINE.as_secs().to_string())
            .args(["import", "-window", "root"])
            .arg(&file)
            .output()
            .expect("run import (ImageMagick) for a screenshot");
        assert!(
            out.status.success(),
            "screenshot {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn find(&self, testid: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no element [data-testid={testid}]: {e}"))
    }

    pub async fn click(&self, testid: &str) {
        self.find(testid)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {testid}: {e}"));
    }

    /// The text of the whole page. (`textContent`: WebKitWebDriver's element text leaves out
    /// parts of rows inside the virtualised, scrolled customer list.)
    pub async fn page_text(&self) -> String {
        self.text_content("document.body").await
    }

    /// The text of the first element with this test id (`textContent`, as `page_text`), or ""
    /// when there is none.
    pub async fn text_of(&self, testid: &str) -> String {
        self.text_content(&format!(
            "document.querySelector('[data-testid=\"{testid}\"]')"
        ))
        .await
    }

    /// `element`'s (a JavaScript expression) text, whitespace collapsed; "" if it is missing.
    async fn text_content(&self, element: &str) -> String {
        self.client
            .execute(
                &format!("const e = {element}; return e ? e.textContent : ''"),
                vec![],
            )
            .await
            .ok()
            .and_then(|v| {
                v.as_str()
                    .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .unwrap_or_default()
    }

    /// Whether the first element with this test id is on screen: laid out, and not inside a
    /// closed `<details>`. (This WebKit lays out and reports a size for the content of a closed
    /// `<details>`, and WebKitWebDriver's "is displayed" says yes to it, though nothing shows.)
    pub async fn is_shown(&self, testid: &str) -> bool {
        self.client
            .execute(
                &format!(
                    "const e = document.querySelector('[data-testid=\"{testid}\"]'); \
                     if (!e || e.getClientRects().length === 0) return false; \
                     for (let d = e.parentElement; d; d = d.parentElement) \
                       if (d.tagName === 'DETAILS' && !d.open) return false; \
                     return true"
                ),
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// In an open delivery panel, checks that the raw message waits behind "Show technical
    /// details", opens them, and checks that it is then shown.
    pub async fn open_technical_details(&self) {
        self.find("message-content").await;
        assert!(
            !self.is_shown("message-content").await,
            "the raw message waits behind technical details"
        );
        self.find("technical-details")
            .await
            .find(Locator::Css("summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(
            self.is_shown("message-content").await,
            "shown once asked for"
        );
    }

    /// Waits until the page shows `text` (without reloading it).
    pub async fn wait_for_text(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let page = self.page_text().await;
            if page.contains(text) {
                return page;
            }
            if Instant::now() > deadline {
                self.shot("failure").await;
                panic!("the window never showed {text:?}; it shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Connects `provider` as `name` through the guided flow, as a person would: pick the
    /// provider, name the connection, paste the secret, send the test message, and leave
    /// without waiting for the provider's first message.
    pub async fn connect_provider(&self, provider: &str, name: &str, secret: &str) {
        self.click("nav-providers").await;
        self.click("connect-provider").await;
        self.click(&format!("provider-card-{provider}")).await;
        let field = self.find("connection-name").await;
        field.clear().await.expect("clear the name");
        field.send_keys(name).await.expect("type the name");
        self.click("name-next").await;
        self.click("address-next").await;
        self.find("secret-input")
            .await
            .send_keys(secret)
            .await
            .expect("type the secret");
        self.click("save-secret").await;
        self.click("send-test").await;
        let result = self
            .find("test-result")
            .await
            .text()
            .await
            .unwrap_or_default();
        assert!(
            result.contains("Clientele checked a sample message"),
            "the test message: {result}"
        );
        self.click("connect-done").await;
    }

    /// Waits until the element with this test id says `text` (all of its text, or a part).
    pub async fn wait_for_text_of(&self, testid: &str, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let said = self.text_of(testid).await;
            if said.contains(text) {
                return said;
            }
            if Instant::now() > deadline {
                self.shot("failure").await;
                panic!("[data-testid={testid}] never said {text:?}; it says {said:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element has this test id.
    pub async fn wait_until_gone(&self, testid: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self
            .client
            .find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await
            .is_ok()
        {
            if Instant::now() > deadline {
                self.shot("failure").await;
                panic!("[data-testid={testid}] is still shown");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every element with this test id, in page order.
    pub async fn find_all(&self, testid: &str) -> Vec<fantoccini::elements::Element> {
        self.client
            .find_all(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await
            .unwrap_or_else(|e| panic!("find [data-testid={testid}]: {e}"))
    }

    /// Answers the native GTK save dialog titled `title` with `path`, the way a person would:
    /// the dialog is found on the X display, the path typed into its name field, Enter pressed.
    /// Runs on its own thread; join it once the dialog should have closed.
    pub fn answer_save_dialog(
        title: &str,
        path: &Path,
    ) -> std::thread::JoinHandle<Result<(), String>> {
        let title = title.to_string();
        let path = path.display().to_string();
        std::thread::spawn(move || {
            let xdotool = |args: &[&str]| -> Result<String, String> {
                let out = Command::new("timeout")
                    .arg("30")
                    .arg("xdotool")
                    .args(args)
                    .output()
                    .map_err(|e| format!("xdotool: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "xdotool {args:?}: {} {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            };
            let found = xdotool(&["search", "--sync", "--onlyvisible", "--name", &title])?;
            let window = found
                .lines()
                .next()
                .ok_or_else(|| format!("no window titled {title:?}"))?
                .to_string();
            // No window manager under Xvfb: give the dialog the keyboard focus directly.
            xdotool(&["windowfocus", "--sync", &window])?;
            // The name field has the focus and holds the suggested name: replace it.
            xdotool(&["key", "--clearmodifiers", "ctrl+a"])?;
            xdotool(&["type", "--delay", "5", &path])?;
            xdotool(&["key", "Return"])?;
            Ok(())
        })
    }

    /// Closes the session (WebKitWebDriver then closes the app), and stops tauri-driver with
    /// SIGTERM (SIGKILL would orphan WebKitWebDriver) and whatever is left with it.
    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        self.driver.stop();
    }
}

/// How long tauri-driver gets to stop WebKitWebDriver after SIGTERM before the guard kills what
/// is left.
const DRIVER_GRACE: Duration = Duration::from_secs(10);

/// Times as providers write them: RFC 3339, whole seconds, UTC.
pub fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
