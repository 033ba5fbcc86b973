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

use chrono::Utc;
use clientele_core::{Provider, Sensitive, providers};
use clientele_tests::{procs, sibling_bin};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "loadgen-tiquo-signing-secret-5f0c2a9e";
const CONNECTION: &str = "bench";
const SECRET_VAR: &str = "CLIENTELE_SECRET_TIQUO_BENCH";
const PATH: &str = "/hooks/tiquo/bench";
/// Placeholders spliced with each delivery's numbers (same width, so offsets hold).
const EVENT_MARK: &str = "evt_000000000000";
const EVENT_DIGITS: usize = 12;
const CUSTOMER_MARK: &str = "cus_000000";
const CUSTOMER_DIGITS: usize = 6;
/// Each customer's own mobile number: the customer number goes in its last six digits.
const PHONE_MARK: &str = "+447911000000";
/// Deliveries are spread over this many customers (so derivation folds real profiles).
const CUSTOMERS: usize = 50_000;
/// Longest wait for derivation to catch up after a run.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// Signatures older than this are made again (Tiquo's replay window is 5 minutes).
const POOL_MAX_AGE: Duration = Duration::from_secs(150);

const WARMUP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

struct Settings {
    conns: Vec<usize>,
    warmup: Duration,
    measure: Duration,
    runs: usize,
    client_threads: usize,
    max_rps: usize,
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        let conns = std::env::var("CLIENTELE_BENCH_CONNS")
            .unwrap_or_else(|_| "16,64".into())
            .split(',')
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        Settings {
            conns,
            warmup: Duration::from_secs_f64(env_num("CLIENTELE_BENCH_WARMUP_S", 3.0)),
            measure: Duration::from_secs_f64(env_num("CLIENTELE_BENCH_SECONDS", 10.0)),
            runs: env_num("CLIENTELE_BENCH_RUNS", 3.0).max(1.0) as usize,
            client_threads: env_num("CLIENTELE_BENCH_CLIENT_THREADS", 1.0).max(1.0) as usize,
            max_rps: env_num("CLIENTELE_BENCH_MAX_RPS", 120_000.0).max(1_000.0) as usize,
        }
    }
}

/// Pre-signed deliveries: one body template, and per delivery only its numbers and signature.
struct Pool {
    template: Vec<u8>,
    event_at: Vec<usize>,
    customer_at: Vec<usize>,
    phone_at: Vec<usize>,
    stamp: HeaderValue,
    event: HeaderValue,
    signature_len: usize,
    signatures: Vec<u8>,
    made: Instant,
}

fn offsets(haystack: &[u8], needle: &str) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_bytes())
        .map(|(i, _)| i + needle.len())
        .collect()
}

/// Writes `n` as zero-padded decimal into the `width` bytes before each offset.
fn splice(body: &mut [u8], ends: &[usize], mut n: usize, width: usize) {
    let mut digits = [b'0'; 20];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &end in ends {
        body[end - width..end].copy_from_slice(&digits[..width]);
    }
}

/// A realistic ~1 KB `customer.updated`, built from the adapter's own sample.
fn template() -> Vec<u8> {
    let at = Utc::now();
    let email = format!("{CUSTOMER_MARK}@bench.example.com");
    let sample = providers::sample_body(Provider::Tiquo, CUSTOMER_MARK, &email, at);
    let mut v: Value = serde_json::from_slice(&sample).expect("the Tiquo sample is JSON");
    v["id"] = json!(EVENT_MARK);
    v["type"] = json!("customer.updated");
    let stamp = v["created"].clone();
    let data = &mut v["data"];
    data["firstName"] = json!("Ana");
    data["lastName"] = json!("Lima Figueiredo");
    data["phone"] = json!(PHONE_MARK);
    data["company"] = json!("Figueiredo & Filhos");
    data["loyaltyPoints"] = json!(1250);
    data["loyaltyTier"] = json!("gold");
    data["tags"] = json!(["vip", "newsletter", "birthday-club"]);
    data["updatedAt"] = stamp;
    data["notes"] = json!(
        "Prefers the window table; allergic to shellfish. Booked the tasting menu for two in \
         March and asked to be told about the summer terrace opening."
    );
    v["previousAttributes"] = json!({
        "email": format!("{CUSTOMER_MARK}@old.example.com"),
        "loyaltyPoints": 1200,
        "loyaltyTier": "silver",
        "tags": ["newsletter"]
    });
    serde_json::to_vec_pretty(&v).expect("serialize")
}

impl Pool {
    fn generate(size: usize, threads: usize) -> Pool {
        let started = Instant::now();
        let template = template();
        let event_at = offsets(&template, EVENT_MARK);
        let customer_at = offsets(&template, CUSTOMER_MARK);
        let phone_at = offsets(&template, PHONE_MARK);
        assert_eq!(event_at.len(), 1, "the event id appears once in the body");
        let now = Utc::now();
        let secret = Sensitive::new(SECRET.to_string());
        let mut pool = Pool {
            template,
            event_at,
            customer_at,
            phone_at,
            stamp: HeaderValue::from_static("0"),
            event: HeaderValue::from_static("customer.updated"),
            signature_len: 0,
            signatures: Vec::new(),
            made: Instant::now(),
        };
        // Headers of delivery 0 fix the time stamp and the signature's width.
        let first = providers::sign(Provider::Tiquo, &secret, &pool.body(0), now);
        let header = |headers: &[(String, String)], name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("sign() gives {name}"))
        };
        pool.stamp = HeaderValue::from_str(&header(&first, "x-tiquo-timestamp")).expect("header");
        pool.event = HeaderValue::from_str(&header(&first, "x-tiquo-event")).expect("header");
        pool.signature_len = header(&first, "x-tiquo-signature").len();
        let width = pool.signature_len;
        let chunk = size.div_ceil(threads.max(1));
        let mut signatures = vec![0u8; size * width];
        std::thread::scope(|s| {
            for (part, out) in signatures.chunks_mut(chunk * width).enumerate() {
                let pool = &pool;
                let secret = &secret;
                s.spawn(move || {
                    for (j, slot) in out.chunks_mut(width).enumerate() {
                        let i = part * chunk + j;
                        let headers = providers::sign(Provider::Tiquo, secret, &pool.body(i), now);
                        let sig = header(&headers, "x-tiquo-signature");
                        slot.copy_from_slice(sig.as_bytes());
                    }
                });
            }
        });
        pool.signatures = signatures;
        pool.made = Instant::now();
        eprintln!(
            "loadgen: signed {size} deliveries of {} bytes in {:.1} s",
            pool.template.len(),
            started.elapsed().as_secs_f64()
        );
        pool
    }

    fn len(&self) -> usize {
        self.signatures.len() / self.signature_len.max(1)
    }

    fn body(&self, i: usize) -> Vec<u8> {
        let mut body = self.template.clone();
        splice(&mut body, &self.event_at, i, EVENT_DIGITS);
        splice(&mut body, &self.customer_at, i % CUSTOMERS, CUSTOMER_DIGITS);
        splice(&mut body, &self.phone_at, i % CUSTOMERS, CUSTOMER_DIGITS);
        body
    }

    fn request(&self, i: usize, host: &HeaderValue) -> Request<Full<Bytes>> {
        let sig = &self.signatures[i * self.signature_len..(i + 1) * self.signature_len];
        Request::post(PATH)
            .header(HOST, host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("x-tiquo-timestamp", self.stamp.clone())
            .header("x-tiquo-event", self.event.clone())
            .header(
                "x-tiquo-signature",
                HeaderValue::from_bytes(sig).expect("hex signature"),
            )
            .body(Full::new(Bytes::from(self.body(i))))
            .expect("request")
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
struct RunResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    ok: u64,
    non_200: u64,
    exhausted: bool,
}

struct Shared {
    pool: Arc<Pool>,
    next: AtomicUsize,
    phase: AtomicU8,
    unique: bool,
    exhausted: AtomicBool,
}

/// One connection: send, read the whole answer, repeat. Returns its measured latencies.
async fn connection(addr: SocketAddr, shared: Arc<Shared>) -> (Histogram<u64>, u64, u64) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let (mut ok, mut bad) = (0u64, 0u64);
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    'connect: while shared.phase.load(Ordering::Relaxed) != STOPPED {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            continue;
        };
        tokio::spawn(conn);
        loop {
            if shared.phase.load(Ordering::Relaxed) == STOPPED {
                break 'connect;
            }
            let mut i = shared.next.fetch_add(1, Ordering::Relaxed);
            if i >= shared.pool.len() {
                if shared.unique {
                    shared.exhausted.store(true, Ordering::Relaxed);
                    break 'connect;
                }
                i %= shared.pool.len();
            }
            let request = shared.pool.request(i, &host);
            if sender.ready().await.is_err() {
                continue 'connect;
            }
            let started = Instant::now();
            let Ok(response) = sender.send_request(request).await else {
                continue 'connect;
            };
            let status = response.status();
            if response.into_body().collect().await.is_err() {
                continue 'connect;
            }
            let took = started.elapsed();
            if shared.phase.load(Ordering::Relaxed) == MEASURING {
                if status.is_success() {
                    ok += 1;
                    let _ = hist.record((took.as_micros() as u64).max(1));
                } else {
                    bad += 1;
                }
            }
        }
    }
    (hist, ok, bad)
}

fn drive(
    addr: SocketAddr,
    pool: Arc<Pool>,
    unique: bool,
    conns: usize,
    settings: &Settings,
) -> RunResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let shared = Arc::new(Shared {
            pool,
            next: AtomicUsize::new(0),
            phase: AtomicU8::new(WARMUP),
            unique,
            exhausted: AtomicBool::new(false),
        });
        let tasks: Vec<_> = (0..conns)
            .map(|_| tokio::spawn(connection(addr, shared.clone())))
            .collect();
        tokio::time::sleep(settings.warmup).await;
        shared.phase.store(MEASURING, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(settings.measure).await;
        shared.phase.store(STOPPED, Ordering::Relaxed);
        let window = started.elapsed();
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let (mut ok, mut non_200) = (0, 0);
        for task in tasks {
            if let Ok((h, o, b)) = task.await {
                let _ = hist.add(h);
                ok += o;
                non_200 += b;
            }
        }
        RunResult {
            rps: ok as f64 / window.as_secs_f64(),
            p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            ok,
            non_200,
            exhausted: shared.exhausted.load(Ordering::Relaxed),
        }
    })
}

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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
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
