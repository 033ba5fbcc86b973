//! Shared helpers for the black-box tests: find and run the real `clientele` binary, start its
//! listener on `127.0.0.1:0` with a temporary data folder, and post signed deliveries to it over
//! real HTTP. Also the benchmarks' shared parts: the reading data set ([`bench_data`]), process
//! measurements ([`procs`]), the ingest baselines' server ([`baseline`]) and the desktop's windows
//! ([`desktop`]); and the guard that stops every process a test starts ([`guard`]).

pub mod baseline;
pub mod bench_data;
pub mod desktop;
pub mod guard;
pub mod load;
pub mod pg;
pub mod procs;
pub mod relay;
pub mod store_fixture;

use chrono::{DateTime, Utc};
use clientele_core::{Provider, Sensitive, providers};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The `clientele` binary of this build: next to the test executable's `deps/` folder, built on
/// first use when a test is run on its own (`cargo test -p clientele-tests`). A benchmark program
/// (`target/release/relay_bench`) uses the one beside it, as [`sibling_bin`] does.
pub fn clientele_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("CLIENTELE_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("test executable path");
        if exe.parent().and_then(Path::file_name) != Some(std::ffi::OsStr::new("deps")) {
            return sibling_bin("CLIENTELE_BIN", "clientele");
        }
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps layout")
            .to_path_buf();
        let bin = profile_dir.join(format!("clientele{}", std::env::consts::EXE_SUFFIX));
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "clientele-cli",
                "--bin",
                "clientele",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build for the clientele binary");
        assert!(status.success(), "building the clientele binary failed");
        assert!(
            bin.exists(),
            "clientele binary not found at {}",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A program built next to the running one (the benchmarks' `target/release/NAME`), or the path
/// in `env` when it is set.
pub fn sibling_bin(env: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("own path");
    let path = exe
        .parent()
        .expect("own folder")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found: build it (`make bench-build` does) or set {env}",
        path.display()
    );
    path
}

/// The name of the environment variable holding a connection's secret in `--secrets env` mode.
pub fn secret_env(provider: Provider, connection: &str) -> String {
    let suffix: String = format!("{}_{}", provider.id(), connection)
        .to_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("CLIENTELE_SECRET_{suffix}")
}

/// A data folder plus the secrets its connections use (env mode, so tests never touch a keychain
/// unless they mean to).
#[derive(Debug)]
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub secrets: Vec<(String, String)>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// The secret of each provider's `main` connection in the black-box tests (Standard Webhooks
/// secrets are `whsec_` + base64).
pub fn test_secret(p: Provider) -> String {
    match p {
        Provider::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        other => format!("{}-secret-0123456789", other.id()),
    }
}

impl Workspace {
    /// A workspace with one connection called `main` per provider, signed with [`test_secret`].
    pub fn with_every_provider() -> Workspace {
        let mut ws = Workspace::new();
        for p in Provider::ALL {
            ws.add_connection(p, "main", Some(&test_secret(p)));
        }
        ws
    }

    /// The dedupe keys of every stored delivery, as `clientele deliveries list` gives them.
    pub fn dedupe_keys(&self) -> Vec<String> {
        self.json(&["deliveries", "list"])
            .as_array()
            .expect("deliveries list prints an array")
            .iter()
            .map(|d| d["dedupe_key"].as_str().expect("a dedupe key").to_string())
            .collect()
    }

    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
            secrets: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `clientele --data-dir … --secrets env ARGS…`
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(clientele_bin());
        cmd.arg("--data-dir")
            .arg(self.path())
            .args(["--secrets", "env"])
            .args(args);
        cmd.env_remove("CLIENTELE_DATA_DIR");
        for (k, v) in &self.secrets {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the command, returning its output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run clientele")
    }

    /// Runs the command, which must succeed, and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "clientele {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a `--json` listing and parses it.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("valid JSON output")
    }

    /// Adds a connection with `secret` (or none).
    pub fn add_connection(&mut self, provider: Provider, name: &str, secret: Option<&str>) {
        match secret {
            Some(secret) => {
                self.secrets
                    .push((secret_env(provider, name), secret.to_string()));
                self.ok(&["connection", "add", provider.id(), name]);
            }
            None => {
                self.ok(&["connection", "add", provider.id(), name, "--no-secret"]);
            }
        }
    }

    /// Starts `clientele serve` on a free loopback port.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    pub fn serve_with(&self, extra: &[&str]) -> Server {
        Server::start(self.command(&self.serve_args(extra)))
    }

    /// The arguments of `clientele serve` on a free loopback port, plus `extra`.
    pub fn serve_args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        args
    }
}

/// A running `clientele serve`; killed (SIGKILL) on drop, also when the test fails.
#[derive(Debug)]
pub struct Server {
    pub child: guard::ProcessGuard,
    pub addr: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Its standard error (the log), in a file so a chatty server never blocks on a full pipe.
    pub log: PathBuf,
    _log_dir: tempfile::TempDir,
}

/// How long `clientele serve` gets to say where it listens, and to stop after SIGTERM: generous,
/// for a debug build on a busy two-core machine; a server that hangs still fails the test.
const SERVE_DEADLINE: Duration = Duration::from_secs(60);

impl Server {
    /// Starts `cmd` (a `clientele serve`, possibly behind a wrapper that `exec`s it) and waits
    /// for its "listening on" line.
    pub fn start(cmd: Command) -> Server {
        Server::start_expecting(cmd, "listening on ")
    }

    /// Starts `cmd` and waits for the line `{prefix}http://ADDR` (or `https://`) on its standard
    /// output (`relay listening on ` for a relay).
    pub fn start_expecting(mut cmd: Command, prefix: &str) -> Server {
        let log_dir = tempfile::tempdir().expect("temp dir for the log");
        let log = log_dir.path().join("serve.log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        // Guarded from the start: a panic below still stops it.
        let mut child = guard::ProcessGuard::spawn("clientele serve", &mut cmd, Duration::ZERO)
            .expect("start clientele serve");
        let stdout = child.child_mut().stdout.take().expect("stdout");
        // Read on a thread so a server that never says anything fails the test, not hangs it.
        let (said, line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = said.send(read.map(|_| line));
        });
        let line = match line.recv_timeout(SERVE_DEADLINE) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => panic!("reading serve's output: {e}"),
            Err(_) => panic!(
                "serve said nothing within {SERVE_DEADLINE:?}; it logged:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        let Some((scheme, addr)) = line
            .trim()
            .strip_prefix(prefix)
            .and_then(|url| url.split_once("://"))
        else {
            child.stop();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("serve did not start: {line:?} {err}");
        };
        Server {
            child,
            scheme: scheme.to_string(),
            addr: addr.to_string(),
            log,
            _log_dir: log_dir,
        }
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Peak resident memory so far (`VmHWM`), in kB; 0 where /proc isn't available.
    pub fn peak_rss_kb(&self) -> u64 {
        procs::status_kb(self.child.id(), "VmHWM").unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill9();
    }

    /// SIGTERM, wait for a graceful stop, and return its status with everything it logged.
    pub fn stop_with_log(self) -> (std::process::ExitStatus, String) {
        let log = self.log.clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let kept = dir.path().join("serve.log");
        // Hard-link the file so it outlives the server's own temporary folder.
        std::fs::hard_link(&log, &kept).expect("keep the log");
        let status = self.stop();
        let text = std::fs::read_to_string(&kept).unwrap_or_default();
        (status, text)
    }

    /// SIGTERM and wait for a graceful stop.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.child.signal(guard::Signal::Term);
        match self.child.wait_within(SERVE_DEADLINE) {
            Some(status) => status,
            None => panic!("clientele serve didn't stop within {SERVE_DEADLINE:?} of SIGTERM"),
        }
    }
}

/// An HTTP agent that returns 4xx/5xx as responses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Posts `body` with `headers`; returns the status and the response text.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            (status, text)
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Headers that make `body` correctly signed for `provider` at `at`.
pub fn signed(
    provider: Provider,
    secret: &str,
    body: &[u8],
    at: DateTime<Utc>,
) -> Vec<(String, String)> {
    providers::sign(provider, &Sensitive::new(secret.to_string()), body, at)
}

/// Where each of `needles` is found, case-insensitively, in the bytes of every file under `dir`:
/// what `grep -rai` would find (a file removed while it is read — a WAL checkpointed away — is
/// skipped), and in what is stored packed, unpacked (`clientele_store::pack`): compression must
/// not hide a trace from it. The forgetting tests search data folders with it.
pub fn findable(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // What is packed, unpacked: every zstd frame in the bytes (the WAL, free pages), and
            // every packed value a database holds, read through SQLite (a value spread over
            // overflow pages isn't one run of bytes in the file).
            let mut texts = vec![("", bytes.to_ascii_lowercase())];
            for value in clientele_store::pack::unpacked_frames_in(&bytes) {
                texts.push((" (packed)", value.to_ascii_lowercase()));
            }
            if bytes.starts_with(b"SQLite format 3\0") {
                let values = clientele_store::pack::packed_values_in_database(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                for value in values {
                    texts.push((" (packed)", value.to_ascii_lowercase()));
                }
            }
            for needle in needles {
                let needle = needle.to_ascii_lowercase();
                if let Some((how, _)) = texts
                    .iter()
                    .find(|(_, text)| text.windows(needle.len()).any(|w| w == needle.as_bytes()))
                {
                    found.push(format!("'{needle}' in {}{how}", path.display()));
                }
            }
        }
    }
    found
}
