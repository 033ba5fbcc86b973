//! `relay_bench`: the relay's benchmarks in `make bench` (`make bench-relay` alone). Three parts,
//! each printing one line; nothing is asserted about speed.
//!
//! ```text
//! bench: relay_ingest conns=64 relay_rps=… bare_rps=… ratio=… p50_ms=… p99_ms=… bare_p50_ms=… bare_p99_ms=… serve_rps=… serve_ratio=… serve_p99_ms=… rss_mb=… runs=3 non_200=0
//! bench: relay_live deliveries_per_s=100 p50_ms=… p99_ms=… max_ms=… post_p50_ms=… post_p99_ms=… sent=1000 missing=0 non_200=0 poll_ms=2
//! bench: relay_catch_up deliveries=1000000 seconds=… reprocess_seconds=… ratio=… pulled=… stored_s=… derived_when_stored=… desk_cpu_s=… relay_cpu_s=… reprocess_cpu_s=… desk_written_mb=… reprocess_written_mb=… desk_wal_max_mb=… desk_rss_mb=… people=… reprocess_people=…
//! ```
//!
//! **relay_ingest**: the relay's receiving, measured exactly as `loadgen` measures
//! `clientele serve` (its generator, [`clientele_tests::load`]): pre-signed ~1 KB Tiquo
//! deliveries over N keep-alive loopback connections, a warm-up then a measured window, against
//! `bare_axum` in the same runs (alternating, a fresh relay every run), medians over the runs.
//! `clientele serve` is measured in the same runs too (`serve_*`, on a fresh data folder each
//! time, as `loadgen` does): this machine's figures move by a third from one hour to the next,
//! so the relay's ratio is only comparable with `clientele serve`'s from the same minutes.
//! Each relay gets its Tiquo connection as an operator gives it one: from an admin desk paired
//! with it (`relay pair --admin`, `relay join`, `connection add`), since `relay serve` has no
//! `connection add` of its own. No desk pulls meanwhile: this is the relay's receiving alone.
//! `rss_mb` is the relay's highest peak resident memory in any run.
//!
//! **relay_live**: how long a delivery takes from a provider's POST to the relay until it is
//! stored at a desk that pulls (`clientele serve` on a joined desk, waiting at the relay with a
//! long poll). Deliveries are sent at a steady rate, each at its own time (an open loop: a slow
//! answer doesn't delay the next one's sending), and for each the clock starts just before its
//! POST. A thread reads the desk's SQLite file read-only every `poll_ms` (the new rows of
//! `deliveries` by id, so each poll is an index range of a few rows) and notes when each
//! delivery's dedupe key first appears; the key of each is computed beforehand with
//! `clientele_core::providers::verify`, as the relay computes it. The figure therefore includes
//! the relay's durable commit, waking the desk's waiting pull, the page over HTTP, the desk's
//! durable commit, and up to `poll_ms` of polling (half that on average). `post_*` is the
//! provider's own wait for its `200`. Before the measured deliveries one is sent and waited for,
//! so the desk's pull is already waiting at the relay.
//!
//! **relay_catch_up**: a fresh desk joining a relay that holds the reading benchmark's data set
//! (`bench_data`: 1,000,000 deliveries by default, `CLIENTELE_BENCH_PEOPLE` /
//! `CLIENTELE_BENCH_DELIVERIES`, kept in `CLIENTELE_BENCH_DATA`). The relay's data folder is a
//! copy of the data set's database: it has the `deliveries` and `connections` tables a relay
//! serves from, and the relay's own tables (migration 4); the connections' secrets (absent) only
//! matter for receiving, not for pulling. `seconds` is the wall time of `clientele relay pull` on
//! the desk — every page pulled, stored and acknowledged, then everything derived — and
//! `reprocess_seconds` that of `clientele reprocess` of the same deliveries on a second copy of
//! the data folder (one machine rebuilding everything from its own deliveries); `ratio` is the
//! first over the second. The desk is given the data set's default country first (`settings
//! default-country GB`), so both derive the same people (`people`, `reprocess_people`).
//! While the pull runs, a thread samples the desk once a second: `stored_s` is when the desk had
//! stored the last delivery, `derived_when_stored` how many it had derived by then, and
//! `desk_wal_max_mb` its WAL's largest size. `*_cpu_s` are CPU times (user + system; the relay's
//! over the pull), `*_written_mb` what each process wrote to disk (`/proc/PID/io`, sampled: the
//! last second is missing), `desk_rss_mb` the pull's peak memory.
//!
//! Settings (environment): `CLIENTELE_BENCH_RELAY` (default `ingest,live,catch_up`: the parts to
//! run); for relay_ingest `CLIENTELE_BENCH_RELAY_CONNS` (default `64`) and loadgen's
//! `CLIENTELE_BENCH_WARMUP_S`, `CLIENTELE_BENCH_SECONDS`, `CLIENTELE_BENCH_RUNS`,
//! `CLIENTELE_BENCH_CLIENT_THREADS`, `CLIENTELE_BENCH_MAX_RPS`; for relay_live
//! `CLIENTELE_BENCH_LIVE_RATE` (100 per second), `CLIENTELE_BENCH_SECONDS` (10: how long it
//! sends) and `CLIENTELE_BENCH_POLL_MS` (2); for relay_catch_up the data set's
//! `CLIENTELE_BENCH_PEOPLE`, `CLIENTELE_BENCH_DELIVERIES` and `CLIENTELE_BENCH_DATA`.
//! `CLIENTELE_BIN` and `BARE_AXUM_BIN` default to the programs next to this one. Every process it
//! starts is stopped when it ends, also on a panic (their guards' `Drop`).

use chrono::Utc;
use clientele_core::{Inbound, Provider, Sensitive, providers};
use clientele_tests::bench_data::DataSet;
use clientele_tests::load::{
    self, CONNECTION, POOL_MAX_AGE, Pool, SECRET, SECRET_VAR, Settings, drive, env_num, median,
};
use clientele_tests::procs::{self, Measured, MeasuredCommand};
use clientele_tests::relay::{Desk, Relay};
use clientele_tests::{Server, Workspace, agent, clientele_bin, post, sibling_bin};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest wait for a desk to have what was sent (it takes milliseconds when all is well).
const ARRIVE_LIMIT: Duration = Duration::from_secs(60);
/// Senders in relay_live: enough that one slow answer never holds up the next delivery's POST.
const LIVE_SENDERS: usize = 8;

fn main() {
    // This program also starts the measured commands (see `MeasuredCommand`).
    procs::serve_measure_request();
    let parts =
        std::env::var("CLIENTELE_BENCH_RELAY").unwrap_or_else(|_| "ingest,live,catch_up".into());
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    for part in &parts {
        match *part {
            "ingest" => ingest(),
            "live" => live(),
            "catch_up" => catch_up(),
            "" => {}
            other => {
                panic!("CLIENTELE_BENCH_RELAY: unknown part {other:?} (ingest, live or catch_up)")
            }
        }
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A relay on a fresh data folder with the Tiquo connection `bench` that [`Pool`] signs for,
/// added from an admin desk as an operator adds it (`relay serve` has no `connection add`).
fn bench_relay() -> (Relay, Desk) {
    let relay = Relay::start(&[]);
    let mut ws = Workspace::new();
    ws.secrets
        .push((SECRET_VAR.to_string(), SECRET.to_string()));
    let admin = Desk::join(ws, &relay.url(), &relay.pair("bench-admin", true), &[]);
    admin.ws.ok(&["connection", "add", "tiquo", CONNECTION]);
    (relay, admin)
}

fn socket_addr(server: &Server) -> SocketAddr {
    server
        .addr
        .parse()
        .unwrap_or_else(|e| panic!("{} is not an address: {e}", server.addr))
}

// ---------------------------------------------------------------------------------------------
// relay_ingest

fn ingest() {
    let mut settings = Settings::from_env();
    settings.conns = std::env::var("CLIENTELE_BENCH_RELAY_CONNS")
        .unwrap_or_else(|_| "64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let window = settings.warmup + settings.measure;
    let mut pool_size = (settings.max_rps as f64 * window.as_secs_f64()) as usize;
    let mut pool = Arc::new(Pool::generate(pool_size, threads()));
    // Signatures must stay inside Tiquo's replay window for the whole of the next run.
    let renew_if_old = |pool: &mut Arc<Pool>, size: usize| {
        if pool.made.elapsed() + window > POOL_MAX_AGE {
            *pool = Arc::new(Pool::generate(size, threads()));
        }
    };
    for &conns in &settings.conns {
        let (mut bare, mut relay_rps, mut p50, mut p99) = (vec![], vec![], vec![], vec![]);
        let (mut bare_p50, mut bare_p99) = (vec![], vec![]);
        let (mut serve_rps, mut serve_p99) = (vec![], vec![]);
        let (mut rss_kb, mut non_200) = (0u64, 0u64);
        let mut run = 0;
        while run < settings.runs {
            let b = {
                let server = Server::start(Command::new(sibling_bin("BARE_AXUM_BIN", "bare_axum")));
                drive(socket_addr(&server), pool.clone(), false, conns, &settings)
            };
            renew_if_old(&mut pool, pool_size);
            // `clientele serve` in the same run: the ratio the relay's is to be compared with.
            let serve = {
                let mut ws = Workspace::new();
                ws.add_connection(Provider::Tiquo, CONNECTION, Some(SECRET));
                let server = ws.serve();
                drive(socket_addr(&server), pool.clone(), true, conns, &settings)
            };
            renew_if_old(&mut pool, pool_size);
            let (r, peak) = {
                let (relay, _admin) = bench_relay();
                let r = drive(
                    socket_addr(&relay.server),
                    pool.clone(),
                    true,
                    conns,
                    &settings,
                );
                (r, relay.server.peak_rss_kb())
            };
            eprintln!(
                "relay_bench: ingest conns={conns} run={} bare_rps={:.0} bare_p99_ms={:.2} serve_rps={:.0} serve_p99_ms={:.2} relay_rps={:.0} p50_ms={:.2} p99_ms={:.2} rss_mb={:.1} non_200={} bare_non_200={}",
                run + 1,
                b.rps,
                b.p99_ms,
                serve.rps,
                serve.p99_ms,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                peak as f64 / 1024.0,
                r.non_200,
                b.non_200
            );
            if r.exhausted || serve.exhausted {
                // Every delivery must be new to measure the real path: sign more and run again.
                pool_size *= 2;
                eprintln!("relay_bench: ran out of pre-signed deliveries; signing {pool_size}");
                pool = Arc::new(Pool::generate(pool_size, threads()));
                continue;
            }
            renew_if_old(&mut pool, pool_size);
            bare.push(b.rps);
            serve_rps.push(serve.rps);
            serve_p99.push(serve.p99_ms);
            relay_rps.push(r.rps);
            p50.push(r.p50_ms);
            p99.push(r.p99_ms);
            bare_p50.push(b.p50_ms);
            bare_p99.push(b.p99_ms);
            rss_kb = rss_kb.max(peak);
            non_200 += r.non_200;
            run += 1;
        }
        let (bare_rps, relay_rps, serve_rps) = (median(bare), median(relay_rps), median(serve_rps));
        println!(
            "bench: relay_ingest conns={conns} relay_rps={relay_rps:.0} bare_rps={bare_rps:.0} ratio={:.3} p50_ms={:.2} p99_ms={:.2} bare_p50_ms={:.2} bare_p99_ms={:.2} serve_rps={serve_rps:.0} serve_ratio={:.3} serve_p99_ms={:.2} rss_mb={:.1} runs={} non_200={non_200}",
            relay_rps / bare_rps.max(1.0),
            median(p50),
            median(p99),
            median(bare_p50),
            median(bare_p99),
            serve_rps / bare_rps.max(1.0),
            median(serve_p99),
            rss_kb as f64 / 1024.0,
            settings.runs
        );
    }
}

// ---------------------------------------------------------------------------------------------
// relay_live

/// The dedupe key the relay (and the desk) store delivery `i` under: what the provider's own
/// verification gives it.
fn dedupe_key(pool: &Pool, i: usize) -> String {
    let body = pool.body(i);
    let mut headers = http::HeaderMap::new();
    for (k, v) in pool.headers(i) {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    let inbound = Inbound {
        headers: &headers,
        body: &body,
        remote_ip: None,
    };
    let secret = Sensitive::new(SECRET.to_string());
    providers::verify(
        Provider::Tiquo,
        &Default::default(),
        Some(&secret),
        &inbound,
        Utc::now(),
    )
    .expect("a freshly signed delivery verifies")
    .dedupe_key
}

/// Notes when each expected delivery first appears in a desk's database.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Option<Instant>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Polls `db` read-only every `every` for new rows of `deliveries`, matching their dedupe keys
    /// against `keys` (delivery `i` has `keys[i]`).
    fn start(db: PathBuf, keys: &[String], every: Duration) -> Watcher {
        let index: HashMap<String, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let seen = Arc::new(Mutex::new(vec![None; keys.len()]));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = rusqlite::Connection::open_with_flags(&db, flags)
                    .expect("open the desk's database read-only");
                let mut newer = conn
                    .prepare("SELECT id, dedupe_key FROM deliveries WHERE id > ?1 ORDER BY id")
                    .expect("prepare");
                let mut last = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    // A row this poll finds was committed before the poll's snapshot, which is
                    // taken when the statement first steps: just after this instant.
                    let polled = Instant::now();
                    let rows: Vec<(i64, String)> = newer
                        .query_map([last], |r| Ok((r.get(0)?, r.get(1)?)))
                        .and_then(|rows| rows.collect())
                        .unwrap_or_default();
                    if !rows.is_empty() {
                        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                        for (id, key) in rows {
                            last = last.max(id);
                            if let Some(&i) = index.get(&key) {
                                seen[i].get_or_insert(polled);
                            }
                        }
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Watcher {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self, i: usize) -> Option<Instant> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    /// Waits until every one of `which` has been seen, or `limit` has passed.
    fn wait_for(&self, which: std::ops::Range<usize>, limit: Duration) {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let all = {
                let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                seen[which.clone()].iter().all(Option::is_some)
            };
            if all {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One delivery as sent: when its POST started, how long its answer took, and the status.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    answered_in: Duration,
    status: u16,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn live() {
    let rate = env_num("CLIENTELE_BENCH_LIVE_RATE", 100.0).max(1.0);
    let seconds = env_num("CLIENTELE_BENCH_SECONDS", 10.0).max(0.1);
    let poll = Duration::from_secs_f64(env_num("CLIENTELE_BENCH_POLL_MS", 2.0).max(0.1) / 1000.0);
    let count = (rate * seconds).round().max(1.0) as usize;
    // Delivery `count` is the one sent first, to start the desk's pull waiting at the relay.
    let pool = Arc::new(Pool::generate(count + 1, threads()));
    let keys: Vec<String> = (0..=count).map(|i| dedupe_key(&pool, i)).collect();

    let (relay, _admin) = bench_relay();
    let desk = Desk::join(
        Workspace::new(),
        &relay.url(),
        &relay.pair("bench-desk", false),
        &[],
    );
    let serving = desk.ws.serve();
    let watcher = Watcher::start(desk.ws.path().join("clientele.db"), &keys, poll);
    let url = relay.server.url(load::PATH);

    let (status, text) = post(&agent(), &url, &pool.headers(count), &pool.body(count));
    assert_eq!(status, 200, "the relay refused the first delivery: {text}");
    watcher.wait_for(count..count + 1, ARRIVE_LIMIT);
    assert!(
        watcher.seen(count).is_some(),
        "the desk never stored the first delivery; the desk logged:\n{}",
        serving.log_text()
    );

    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let next = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<Option<Sent>>>> = Arc::new(Mutex::new(vec![None; count]));
    let senders: Vec<_> = (0..LIVE_SENDERS)
        .map(|_| {
            let (next, sent, pool, url) = (next.clone(), sent.clone(), pool.clone(), url.clone());
            std::thread::spawn(move || {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    let (headers, body) = (pool.headers(i), pool.body(i));
                    let due = start + interval.mul_f64(i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let at = Instant::now();
                    let (status, _) = post(&agent, &url, &headers, &body);
                    let answered_in = at.elapsed();
                    sent.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(Sent {
                        at,
                        answered_in,
                        status,
                    });
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("a sender thread panicked");
    }
    let sending = start.elapsed();
    watcher.wait_for(0..count, ARRIVE_LIMIT);
    let seen: Vec<Option<Instant>> = (0..count).map(|i| watcher.seen(i)).collect();
    drop(watcher);
    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();

    let mut latencies = Vec::new();
    let mut answers = Vec::new();
    let (mut missing, mut non_200) = (0usize, 0usize);
    for (s, seen) in sent.iter().zip(&seen) {
        let Some(s) = s else { continue };
        answers.push(s.answered_in.as_secs_f64() * 1000.0);
        if s.status != 200 {
            non_200 += 1;
            continue;
        }
        match seen {
            Some(seen) => {
                latencies.push(seen.saturating_duration_since(s.at).as_secs_f64() * 1000.0)
            }
            None => missing += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    answers.sort_by(f64::total_cmp);
    eprintln!(
        "relay_bench: live sent {count} in {:.1} s ({:.0}/s)",
        sending.as_secs_f64(),
        count as f64 / sending.as_secs_f64()
    );
    println!(
        "bench: relay_live deliveries_per_s={rate:.0} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} post_p50_ms={:.2} post_p99_ms={:.2} sent={count} missing={missing} non_200={non_200} poll_ms={}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        percentile(&answers, 0.50),
        percentile(&answers, 0.99),
        poll.as_secs_f64() * 1000.0
    );
}

// ---------------------------------------------------------------------------------------------
// relay_catch_up

/// Copies the SQLite database of data folder `from` into data folder `to` (its WAL too, if any:
/// nothing writes to it meanwhile, so the pair is consistent).
fn copy_database(from: &Path, to: &Path) {
    for suffix in ["", "-wal"] {
        let name = format!("clientele.db{suffix}");
        let source = from.join(&name);
        if source.exists() {
            std::fs::copy(&source, to.join(&name))
                .unwrap_or_else(|e| panic!("copying {}: {e}", source.display()));
        }
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open a database read-only");
    conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

/// One sample of a running command.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: Duration,
    /// Deliveries stored (the desk's newest id) and derived (its derivation watermark).
    stored: i64,
    derived: i64,
    wal_bytes: u64,
    /// What the process has written to disk so far.
    written: u64,
}

/// Samples a running `clientele` command once a second: what it has written, and (with `db`)
/// how far its database has got.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Sample>>>,
}

impl Monitor {
    /// Watches the `clientele` process started by this program that isn't one of `others` (by
    /// its name: `CLIENTELE_BIN` may name a copy such as `clientele-b`).
    fn start(db: Option<PathBuf>, others: Vec<u32>, label: &'static str) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples: Vec<Sample> = Vec::new();
            let mut target: Option<u32> = None;
            let mut conn: Option<rusqlite::Connection> = None;
            let mut reported = Instant::now();
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                if target.is_none() {
                    target = procs::descendants(std::process::id())
                        .into_iter()
                        .find(|p| !others.contains(p) && procs::comm(*p).starts_with("clientele"));
                }
                let mut sample = Sample {
                    at: started.elapsed(),
                    ..Sample::default()
                };
                if let Some(written) = target.and_then(written_bytes) {
                    sample.written = written;
                } else if let Some(last) = samples.last() {
                    sample.written = last.written;
                }
                if let Some(db) = &db {
                    if conn.is_none() {
                        conn = rusqlite::Connection::open_with_flags(
                            db,
                            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                        )
                        .ok();
                    }
                    if let Some(c) = &conn {
                        let one = |sql: &str| c.query_row(sql, [], |r| r.get(0)).unwrap_or(0);
                        sample.stored = one("SELECT COALESCE(MAX(id), 0) FROM deliveries");
                        sample.derived =
                            one("SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes");
                    }
                    sample.wal_bytes = std::fs::metadata(db.with_extension("db-wal"))
                        .map(|m| m.len())
                        .unwrap_or(0);
                }
                if reported.elapsed() >= Duration::from_secs(15) {
                    reported = Instant::now();
                    eprintln!(
                        "relay_bench: {label} {:.0} s: stored {} derived {} wal {:.0} MB written {:.0} MB",
                        sample.at.as_secs_f64(),
                        sample.stored,
                        sample.derived,
                        sample.wal_bytes as f64 / 1e6,
                        sample.written as f64 / 1e6
                    );
                }
                samples.push(sample);
            }
            samples
        });
        Monitor {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `write_bytes` of `/proc/PID/io`: what the process has caused to be written to disk.
fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `clientele --data-dir DIR --secrets env ARGS…` measured, with `env`; returns the
/// measurement and its standard output.
fn measured_clientele(dir: &Path, args: &[&str], env: &[(String, String)]) -> (Measured, String) {
    let out = tempfile::NamedTempFile::new().expect("a file for the output");
    let mut m = MeasuredCommand::new(clientele_bin());
    m.cmd
        .arg("--data-dir")
        .arg(dir)
        .args(["--secrets", "env"])
        .args(args)
        .env_remove("CLIENTELE_DATA_DIR")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("reopen the output file"));
    let measured = m.run().expect("run a measured clientele command");
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        measured.status.success(),
        "clientele {args:?} failed ({}): {text}",
        measured.status
    );
    (measured, text)
}

fn catch_up() {
    let data = DataSet::open_or_build("relay_bench");
    // Everything the data set holds in its database file (no other process has it open).
    {
        let conn = rusqlite::Connection::open(data.store.path()).expect("open the data set");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint the data set");
    }
    let relay_ws = Workspace::new();
    let started = Instant::now();
    copy_database(&data.dir, relay_ws.path());
    eprintln!(
        "relay_bench: copied the data set for the relay in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let relay = Relay::start_in(relay_ws, "127.0.0.1:0", &[]);
    let relay_db = relay.ws.path().join("clientele.db");
    let at_relay = count(&relay_db, "SELECT COUNT(*) FROM deliveries");

    let desk = Desk::join(
        Workspace::new(),
        &relay.url(),
        &relay.pair("catch-up-desk", false),
        &[],
    );
    // The data set's default country, so the desk reads phone numbers as the data set did.
    desk.ws.ok(&["settings", "default-country", "GB"]);
    let desk_db = desk.ws.path().join("clientele.db");

    eprintln!("relay_bench: a fresh desk pulls {at_relay} deliveries from the relay");
    let relay_pid = relay.server.child.id();
    let relay_cpu = procs::cpu_seconds(relay_pid).unwrap_or(0.0);
    let monitor = Monitor::start(Some(desk_db.clone()), vec![relay_pid], "catch-up");
    let (pull, out) = measured_clientele(
        desk.ws.path(),
        &["relay", "pull", "--json"],
        &desk.ws.secrets,
    );
    let samples = monitor.finish();
    let relay_cpu = procs::cpu_seconds(relay_pid).unwrap_or(0.0) - relay_cpu;
    drop(relay);
    let pulled = serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["pulled"].as_i64())
        .unwrap_or_else(|| panic!("relay pull --json said {out:?}"));
    let people = count(&desk_db, "SELECT COUNT(*) FROM people");
    let stored_at = samples.iter().find(|s| s.stored >= at_relay);
    let stored_s = stored_at.map_or(pull.seconds, |s| s.at.as_secs_f64());
    let derived_when_stored = stored_at.map_or(0, |s| s.derived);
    let wal_max = samples.iter().map(|s| s.wal_bytes).max().unwrap_or(0);
    let desk_written = samples.last().map_or(0, |s| s.written);
    drop(desk);

    let copy = Workspace::new();
    copy_database(&data.dir, copy.path());
    eprintln!("relay_bench: clientele reprocess of the same deliveries on a copy");
    let monitor = Monitor::start(None, vec![], "reprocess");
    let (reprocess, said) = measured_clientele(copy.path(), &["reprocess"], &[]);
    let reprocess_written = monitor.finish().last().map_or(0, |s| s.written);
    // "Re-processed N messages: E timeline events, P people, A needing attention."
    let reprocess_people = said
        .split(", ")
        .find_map(|part| part.strip_suffix(" people"))
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or(-1);
    drop(copy);

    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!(
        "bench: relay_catch_up deliveries={} seconds={:.1} reprocess_seconds={:.1} ratio={:.2} pulled={pulled} stored_s={stored_s:.0} derived_when_stored={derived_when_stored} desk_cpu_s={:.1} relay_cpu_s={relay_cpu:.1} reprocess_cpu_s={:.1} desk_written_mb={:.0} reprocess_written_mb={:.0} desk_wal_max_mb={:.0} desk_rss_mb={:.0} people={people} reprocess_people={reprocess_people}",
        data.deliveries,
        pull.seconds,
        reprocess.seconds,
        pull.seconds / reprocess.seconds.max(1e-9),
        pull.cpu_seconds,
        reprocess.cpu_seconds,
        mb(desk_written),
        mb(reprocess_written),
        mb(wal_max),
        pull.peak_rss_kb as f64 / 1024.0
    );
}
