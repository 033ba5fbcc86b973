//! `loadgen`: the ingest benchmark of `make bench`.
//!
//! It posts correctly signed ~1 KB Tiquo `customer.updated` deliveries over loopback, keeping N
//! keep-alive connections busy (each sends its next request as soon as the previous answer is
//! read), first for a warm-up, then for a measured window, against
//! (a) `bare_axum` — an axum handler that reads the body and answers 200, the most the HTTP layer
//!     can do here — and
//! (b) `clientele serve` — the full path: signature check, durable group commit of the raw
//!     delivery before the 200, and derivation of timelines on the same writer thread —
//!     started on a fresh data folder for every run — and
//! (c) `group_commit` — the least a durable receiver can do: the same signature check and a
//!     group commit of the raw body, nothing else (the design behind the issue's reference
//!     figure of 0.41× bare axum), also on a fresh folder every run. It says what durability
//!     itself costs on this machine, and how much of that minimum Clientele reaches.
//!
//! Every delivery is unique (its own event id, so none is a duplicate) and signed in advance
//! with `clientele_core::providers::sign`, so the generator spends its time on HTTP, not on HMAC.
//! Only the event id and the customer number differ between bodies: they are spliced into one
//! template and each signature is computed over the exact bytes that are sent. Tiquo refuses time
//! stamps older than 5 minutes, so the signatures are made again when they get old.
//!
//! Each configuration runs `CLIENTELE_BENCH_RUNS` times (the three in turn, so all see the same
//! machine) and the medians are printed, two lines per connection count:
//!
//! ```text
//! bench: ingest conns=64 clientele_rps=… bare_rps=… ratio=… p50_ms=… p99_ms=… bare_p50_ms=… bare_p99_ms=… rss_mb=… derive_pending=… catch_up_s=… runs=3 non_200=0
//! bench: ingest_group_commit conns=64 rps=… bare_rps=… ratio=… p50_ms=… p99_ms=… clientele_share=… runs=3 non_200=0
//! ```
//!
//! `ratio` on the second line is the minimal durable receiver's to bare axum, and
//! `clientele_share` is `clientele_rps` over its `rps`: the part of what durability allows that
//! Clientele reaches with everything else it does.
//!
//! `p50_ms`/`p99_ms` are `clientele serve`'s latencies (median over the runs of each run's
//! percentile), `bare_p50_ms`/`bare_p99_ms` the bare handler's in the same runs: what the HTTP
//! layer alone costs in latency on this machine at that load; `rss_mb` is the highest peak
//! resident memory (`VmHWM`) `clientele serve` reached in any run. `derive_pending` is how many
//! stored deliveries were not yet read into timelines when the load stopped, and `catch_up_s`
//! how long `clientele serve` then took to read them (medians): under a saturating burst the
//! listener answers first and derivation catches up after, and these say by how much. Per-run
//! figures go to stderr. Nothing is asserted: this prints figures.
//!
//! Settings (environment): `CLIENTELE_BENCH_CONNS` (default `16,64`), `CLIENTELE_BENCH_WARMUP_S`
//! (3), `CLIENTELE_BENCH_SECONDS` (10), `CLIENTELE_BENCH_RUNS` (3),
//! `CLIENTELE_BENCH_CLIENT_THREADS` (1: the generator's runtime threads; the servers get both
//! cores' worth of workers), `CLIENTELE_BENCH_MAX_RPS` (120000: sizes the pool of pre-signed
//! deliveries), `CLIENTELE_BIN`, `BARE_AXUM_BIN` and `GROUP_COMMIT_BIN` (default: next to this
//! program).
//! `CLIENTELE_BENCH_TARGET=HOST:PORT` instead drives a server that is already running (one with a
//! Tiquo connection `bench` whose secret is this program's), e.g. to profile it.

use clientele_tests::load::{
    CONNECTION, POOL_MAX_AGE, Pool, SECRET, SECRET_VAR, Settings, drive, median,
};
use clientele_tests::{procs, sibling_bin};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for derivation to catch up after a run.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);

/// A server process started for one run; killed on drop.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("couldn't start {cmd:?}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the server's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{cmd:?} did not start: {line:?}"));
        Running { child, addr }
    }

    /// Peak resident memory so far, in MB.
    fn peak_rss_mb(&self) -> f64 {
        procs::status_kb(self.child.id(), "VmHWM").unwrap_or(0) as f64 / 1024.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGKILL: the data folder is thrown away, there's nothing to wait for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bare() -> Running {
    Running::start(Command::new(sibling_bin("BARE_AXUM_BIN", "bare_axum")))
}

fn start_group_commit(data: &Path) -> Running {
    let mut cmd = Command::new(sibling_bin("GROUP_COMMIT_BIN", "group_commit"));
    cmd.arg(data).env(SECRET_VAR, SECRET);
    Running::start(cmd)
}

fn start_clientele(data: &Path) -> Running {
    let bin = sibling_bin("CLIENTELE_BIN", "clientele");
    let clientele = |args: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.arg("--data-dir")
            .arg(data)
            .args(["--secrets", "env"])
            .args(args)
            .env(SECRET_VAR, SECRET)
            .env_remove("CLIENTELE_DATA_DIR");
        cmd
    };
    let added = clientele(&["connection", "add", "tiquo", CONNECTION])
        .stdout(Stdio::null())
        .status()
        .expect("run clientele connection add");
    assert!(added.success(), "clientele connection add failed");
    Running::start(clientele(&["serve", "--bind", "127.0.0.1:0"]))
}

/// How far derivation (timelines, people) was behind the listener when the load stopped.
struct Lag {
    /// Stored deliveries not yet derived.
    pending: i64,
    /// How long the server then took to derive them.
    catch_up: Duration,
}

/// Reads the running server's database (WAL lets a reader in beside it) until derivation has
/// caught up, or for at most [`CATCH_UP_LIMIT`].
fn derivation_lag(data: &Path) -> Lag {
    let reader = clientele_store::Store::open_dir(data)
        .and_then(|store| store.reader())
        .expect("open the server's database");
    let pending_now = || {
        reader
            .pending_deliveries()
            .expect("count pending deliveries")
    };
    let started = Instant::now();
    let pending = pending_now();
    while pending_now() > 0 && started.elapsed() < CATCH_UP_LIMIT {
        std::thread::sleep(Duration::from_millis(50));
    }
    Lag {
        pending,
        catch_up: started.elapsed(),
    }
}
fn main() {
    let settings = Settings::from_env();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let window = (settings.warmup + settings.measure).as_secs_f64();
    let mut pool_size = (settings.max_rps as f64 * window) as usize;
    let mut pool = Arc::new(Pool::generate(pool_size, threads));
    eprintln!(
        "loadgen: conns={:?} warmup={:.1}s measured={:.1}s runs={} client_threads={}",
        settings.conns,
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64(),
        settings.runs,
        settings.client_threads
    );
    if let Ok(target) = std::env::var("CLIENTELE_BENCH_TARGET") {
        // Drive a server that is already running (for profiling it), once per connection count.
        let addr: SocketAddr = target.parse().expect("CLIENTELE_BENCH_TARGET is HOST:PORT");
        for &conns in &settings.conns {
            let r = drive(addr, pool.clone(), true, conns, &settings);
            eprintln!("loadgen: target={addr} conns={conns} {r:?}");
        }
        return;
    }
    // Signatures must stay inside Tiquo's replay window for the whole of the next run.
    let renew_if_old = |pool: &mut Arc<Pool>, size: usize| {
        if pool.made.elapsed() + settings.warmup + settings.measure > POOL_MAX_AGE {
            *pool = Arc::new(Pool::generate(size, threads));
        }
    };
    for &conns in &settings.conns {
        let (mut bare, mut full, mut p50, mut p99) = (vec![], vec![], vec![], vec![]);
        let (mut bare_p50, mut bare_p99) = (vec![], vec![]);
        let (mut rss, mut non_200) = (0f64, 0u64);
        let (mut pending, mut catch_up) = (vec![], vec![]);
        let (mut group, mut group_p50, mut group_p99, mut group_non_200) =
            (vec![], vec![], vec![], 0);
        let mut run = 0;
        while run < settings.runs {
            let b = {
                let server = start_bare();
                drive(server.addr, pool.clone(), false, conns, &settings)
            };
            renew_if_old(&mut pool, pool_size);
            let data = tempfile::tempdir().expect("temp data folder");
            let (c, peak, lag) = {
                let server = start_clientele(data.path());
                let result = drive(server.addr, pool.clone(), true, conns, &settings);
                let peak = server.peak_rss_mb();
                (result, peak, derivation_lag(data.path()))
            };
            drop(data);
            eprintln!(
                "loadgen: conns={conns} run={} bare_rps={:.0} bare_p99_ms={:.2} clientele_rps={:.0} p50_ms={:.2} p99_ms={:.2} rss_mb={peak:.1} non_200={} bare_non_200={} derive_pending={} catch_up_s={:.1}",
                run + 1,
                b.rps,
                b.p99_ms,
                c.rps,
                c.p50_ms,
                c.p99_ms,
                c.non_200,
                b.non_200,
                lag.pending,
                lag.catch_up.as_secs_f64()
            );
            if c.exhausted {
                // Every delivery must be new to measure the real path: sign more and run again.
                pool_size *= 2;
                eprintln!("loadgen: ran out of pre-signed deliveries; signing {pool_size}");
                pool = Arc::new(Pool::generate(pool_size, threads));
                continue;
            }
            debug_assert!(c.ok > 0);
            renew_if_old(&mut pool, pool_size);
            let g = {
                // It doesn't deduplicate: deliveries may repeat, as for the bare handler.
                let data = tempfile::tempdir().expect("temp data folder");
                let server = start_group_commit(data.path());
                drive(server.addr, pool.clone(), false, conns, &settings)
            };
            eprintln!(
                "loadgen: conns={conns} run={} group_commit_rps={:.0} group_commit_p50_ms={:.2} group_commit_p99_ms={:.2} group_commit_non_200={}",
                run + 1,
                g.rps,
                g.p50_ms,
                g.p99_ms,
                g.non_200
            );
            bare.push(b.rps);
            full.push(c.rps);
            p50.push(c.p50_ms);
            p99.push(c.p99_ms);
            bare_p50.push(b.p50_ms);
            bare_p99.push(b.p99_ms);
            rss = rss.max(peak);
            pending.push(lag.pending as f64);
            catch_up.push(lag.catch_up.as_secs_f64());
            non_200 += c.non_200;
            group.push(g.rps);
            group_p50.push(g.p50_ms);
            group_p99.push(g.p99_ms);
            group_non_200 += g.non_200;
            run += 1;
        }
        let (bare_rps, clientele_rps) = (median(bare), median(full));
        println!(
            "bench: ingest conns={conns} clientele_rps={clientele_rps:.0} bare_rps={bare_rps:.0} ratio={:.3} p50_ms={:.2} p99_ms={:.2} bare_p50_ms={:.2} bare_p99_ms={:.2} rss_mb={rss:.1} derive_pending={:.0} catch_up_s={:.1} runs={} non_200={non_200}",
            clientele_rps / bare_rps.max(1.0),
            median(p50),
            median(p99),
            median(bare_p50),
            median(bare_p99),
            median(pending),
            median(catch_up),
            settings.runs
        );
        let group_rps = median(group);
        println!(
            "bench: ingest_group_commit conns={conns} rps={group_rps:.0} bare_rps={bare_rps:.0} ratio={:.3} p50_ms={:.2} p99_ms={:.2} clientele_share={:.3} runs={} non_200={group_non_200}",
            group_rps / bare_rps.max(1.0),
            median(group_p50),
            median(group_p99),
            clientele_rps / group_rps.max(1.0),
            settings.runs
        );
    }
}
