//! `app_footprint`: the desktop app's idle memory, for `make bench`.
//!
//! First, the baseline: `window_floor` (`src-tauri/examples/window_floor.rs`, next to this program
//! under `examples/`, or `CLIENTELE_FLOOR_BIN`), the app's own Tauri build and settings with one
//! window of the same size showing a heading and a paragraph, measured as below once its window
//! is up and has settled, then stopped.
//!
//! Then it starts the release desktop app (`clientele-app`, next to this program, or
//! `CLIENTELE_APP_BIN`) on the reading benchmark's data set (`clientele_tests::bench_data`:
//! 200,000 people by default; `CLIENTELE_BENCH_DATA` shares it with `read_bench`), with its
//! listener on a free port. Once the listener answers `GET /health`, it waits
//! `CLIENTELE_BENCH_SETTLE_S` seconds (default 15) for the window to load and settle, then reads
//! the memory of the app and every process it started (WebKit's web and network processes) from
//! `/proc`. Then it closes the window as the title bar's × does (the app keeps running in the
//! tray), waits as long again, measures again, and stops the app with SIGTERM:
//!
//! ```text
//! bench: app_floor rss_mb=… pss_mb=… peak_mb=… main_rss_mb=… main_peak_mb=… processes=…
//! bench: app_idle people=… rss_mb=… pss_mb=… peak_mb=… main_rss_mb=… main_peak_mb=… processes=… floor_pss_mb=… ratio=…
//! bench: app_tray people=… rss_mb=… pss_mb=… peak_mb=… main_rss_mb=… main_peak_mb=… processes=…
//! ```
//!
//! - `rss_mb`: resident memory (`VmRSS`) summed over the processes; libraries they share are
//!   counted once per process, so this overstates what they take together;
//! - `pss_mb`: the same with each shared page divided among its sharers (`Pss`): what the
//!   processes take together;
//! - `peak_mb`: each process's own peak (`VmHWM`), summed (an upper bound of the peak of the sum);
//! - `main_rss_mb`, `main_peak_mb`: the same two for the app's own process alone (the first of
//!   `names`), as a process monitor or `/usr/bin/time` shows it, WebKit's processes aside;
//! - `processes`: how many, with their names;
//! - `ratio`: the idle app's `pss_mb` over the floor's, so the app's own share is what the ratio
//!   adds to 1.
//!
//! Needs a display and a session bus: `make bench-footprint` runs it under Xvfb and a private
//! D-Bus session with a Secret Service (`tests/tools/with-secret-service.sh xvfb-run …`).
//! The app and `clientele` must not use the data folder at once; nothing else runs meanwhile.
//! Nothing is asserted about memory.

use clientele_tests::bench_data::{DataSet, env_usize};
use clientele_tests::desktop::{count_windows_titled, request_close};
use clientele_tests::procs::{comm, descendants, pss_kb, status_kb};
use clientele_tests::{agent, sibling_bin};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the app gets to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long SIGTERM gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// One process's memory, in kB.
struct Sample {
    pid: u32,
    name: String,
    rss: u64,
    pss: u64,
    hwm: u64,
    /// Of `rss`: private memory, mapped files (libraries), shared memory.
    anon: u64,
    file: u64,
    shmem: u64,
}

fn main() {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "app_footprint: no display; run it under Xvfb and D-Bus: `make bench-footprint` \
             (tests/tools/with-secret-service.sh xvfb-run -a target/release/app_footprint)"
        );
        std::process::exit(2);
    }
    let settle = Duration::from_secs(env_usize("CLIENTELE_BENCH_SETTLE_S", 15) as u64);
    let app_bin = sibling_bin("CLIENTELE_APP_BIN", "clientele-app");
    // Cargo puts examples in `examples/` next to this program.
    let floor_bin = sibling_bin("CLIENTELE_FLOOR_BIN", "examples/window_floor");
    let data = DataSet::open_or_build("app_footprint");
    let people: i64 = rusqlite::Connection::open(data.store.path())
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM people", [], |r| r.get(0)))
        .expect("count people");
    // The app opens the data folder itself; close this program's handles first.
    drop(data.store);

    let floor = measure_floor(&floor_bin, settle);

    let home = tempfile::tempdir().expect("a folder for the app's configuration and caches");
    let port = free_port();
    let (mut app, log_path) = App::launch(
        &app_bin,
        home.path(),
        &[
            ("CLIENTELE_DATA_DIR", data.dir.as_os_str()),
            ("CLIENTELE_LISTEN_PORT", port.to_string().as_ref()),
        ],
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let started = Instant::now();
    let http = agent();
    let health = format!("http://127.0.0.1:{port}/health");
    loop {
        if let Ok(Some(status)) = app.child.try_wait() {
            panic!(
                "the app exited ({status}) before answering /health:\n{}",
                log()
            );
        }
        if let Ok(resp) = http.get(&health).call()
            && resp.status().is_success()
        {
            break;
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "the app didn't answer {health} within {} s:\n{}",
            START_TIMEOUT.as_secs(),
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let ready = started.elapsed().as_secs_f64();
    eprintln!(
        "app_footprint: listener up after {ready:.1} s; settling {} s",
        settle.as_secs()
    );
    std::thread::sleep(settle);

    let idle = app.measure();
    let floor_pss = mb(total(&floor, |s| s.pss));
    let people_field = format!(" people={people}");
    report(
        "app_idle",
        &people_field,
        &idle,
        &format!(
            " ready_s={ready:.1} floor_pss_mb={floor_pss:.1} ratio={:.2}",
            mb(total(&idle, |s| s.pss)) / floor_pss
        ),
    );

    // Closed to the tray, as staff leave it most of the day: the window (and WebKit's web
    // process with it) goes away while the listener keeps receiving.
    // A window left open would make `app_tray` an open-window figure under the wrong name.
    assert!(
        request_close(WINDOW_TITLE) > 0,
        "no window titled '{WINDOW_TITLE}' to close"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while count_windows_titled(WINDOW_TITLE) > 0 {
        assert!(
            Instant::now() < deadline,
            "the window was still there 15 s after it was asked to close"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        app.child.try_wait().ok().flatten().is_none(),
        "the app quit when its window was closed (no tray?):\n{}",
        log()
    );
    eprintln!(
        "app_footprint: window closed; settling {} s",
        settle.as_secs()
    );
    std::thread::sleep(settle);
    let tray = app.measure();
    report(
        "app_tray",
        &people_field,
        &tray,
        &format!(" ready_s={ready:.1}"),
    );
    let status = app.stop();
    eprintln!("app_footprint: the app stopped ({status})");
}

/// The main window's title (`tauri.conf.json`).
const WINDOW_TITLE: &str = "Clientele";

/// The title `window_floor` gives its window.
const FLOOR_TITLE: &str = "Clientele window floor";

/// Starts `window_floor`, waits for its window and then `settle`, measures it as the app is
/// measured, prints `bench: app_floor …` and stops it.
fn measure_floor(bin: &std::path::Path, settle: Duration) -> Vec<Sample> {
    let home = tempfile::tempdir().expect("a folder for the floor's configuration and caches");
    let (mut floor, log_path) = App::launch(bin, home.path(), &[]);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = Instant::now();
    while count_windows_titled(FLOOR_TITLE) == 0 {
        if let Ok(Some(status)) = floor.child.try_wait() {
            panic!(
                "window_floor exited ({status}) before showing its window:\n{}",
                log()
            );
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "window_floor showed no window within {} s:\n{}",
            START_TIMEOUT.as_secs(),
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "app_footprint: floor window up after {:.1} s; settling {} s",
        started.elapsed().as_secs_f64(),
        settle.as_secs()
    );
    std::thread::sleep(settle);
    let samples = floor.measure();
    report("app_floor", "", &samples, "");
    let status = floor.stop();
    eprintln!("app_footprint: window_floor stopped ({status})");
    samples
}

/// One of `Sample`'s figures summed over the processes, in kB.
fn total(samples: &[Sample], figure: fn(&Sample) -> u64) -> u64 {
    samples.iter().map(figure).sum()
}

/// The memory of `pid` (first) and every process it started.
fn sample(pid: u32) -> Vec<Sample> {
    let mut pids = vec![pid];
    pids.extend(descendants(pid));
    let samples: Vec<Sample> = pids
        .iter()
        .filter_map(|&p| {
            Some(Sample {
                pid: p,
                name: comm(p),
                rss: status_kb(p, "VmRSS")?,
                pss: pss_kb(p).unwrap_or(0),
                hwm: status_kb(p, "VmHWM").unwrap_or(0),
                anon: status_kb(p, "RssAnon").unwrap_or(0),
                file: status_kb(p, "RssFile").unwrap_or(0),
                shmem: status_kb(p, "RssShmem").unwrap_or(0),
            })
        })
        .collect();
    assert!(
        samples.first().is_some_and(|s| s.pid == pid),
        "process {pid} exited before it could be measured"
    );
    samples
}

/// One line per process on stderr, then the `bench: LABEL…` line: `before` and `after` are
/// ` key=value` pairs around the memory figures.
fn report(label: &str, before: &str, samples: &[Sample], after: &str) {
    for s in samples {
        eprintln!(
            "app_footprint: {label} pid={} name={} rss_mb={:.1} (anon={:.1} file={:.1} shmem={:.1}) pss_mb={:.1} peak_mb={:.1}",
            s.pid,
            s.name,
            mb(s.rss),
            mb(s.anon),
            mb(s.file),
            mb(s.shmem),
            mb(s.pss),
            mb(s.hwm)
        );
    }
    let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    println!(
        "bench: {label}{before} rss_mb={:.1} pss_mb={:.1} peak_mb={:.1} main_rss_mb={:.1} main_peak_mb={:.1} processes={} names={}{after}",
        mb(total(samples, |s| s.rss)),
        mb(total(samples, |s| s.pss)),
        mb(total(samples, |s| s.hwm)),
        mb(samples[0].rss),
        mb(samples[0].hwm),
        samples.len(),
        names.join(",")
    );
}

/// The running app and the processes it started; stopped on drop too (a panic mid-way).
struct App {
    child: Child,
    /// Descendants seen while it ran, with their names (checked again before signalling them,
    /// so a reused pid is left alone).
    started: Vec<(u32, String)>,
}

impl App {
    /// Starts `bin` with `env`, its configuration, caches and data (WebKit's) in `home`, so
    /// neither the developer's nor an earlier run's count, and its output in `home/output.log`.
    fn launch(
        bin: &std::path::Path,
        home: &std::path::Path,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> (App, std::path::PathBuf) {
        let log_path = home.join("output.log");
        let log_file = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(bin)
            .envs(env.iter().copied())
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let app = App {
            child,
            started: Vec::new(),
        };
        (app, log_path)
    }

    /// Measures the process and every process it started, remembering those for [`App::stop`].
    fn measure(&mut self) -> Vec<Sample> {
        let samples = sample(self.child.id());
        for s in samples.iter().skip(1) {
            if !self.started.iter().any(|(p, _)| *p == s.pid) {
                self.started.push((s.pid, s.name.clone()));
            }
        }
        samples
    }

    /// SIGTERM, a grace period, then SIGKILL; then any descendant left behind gets SIGTERM.
    fn stop(&mut self) -> String {
        let pid = self.child.id();
        let mut result = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            signal("TERM", pid);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    result = Some(status.to_string());
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if result.is_none() {
                let _ = self.child.kill();
                result = Some("killed after SIGTERM was ignored".into());
            }
        }
        let _ = self.child.wait();
        // WebKit's processes leave when the app's socket closes; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.started.iter().any(|(p, n)| comm(*p) == *n) {
            std::thread::sleep(Duration::from_millis(100));
        }
        for (p, name) in std::mem::take(&mut self.started) {
            if comm(p) == name {
                eprintln!("app_footprint: {name} ({p}) outlived the app; stopping it");
                signal("TERM", p);
            }
        }
        result.unwrap_or_else(|| "already exited".into())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
