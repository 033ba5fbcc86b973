//! The ingest load generator shared by `loadgen` (which drives `clientele serve` and its
//! baselines) and `relay_bench` (which drives `clientele relay serve` the same way): correctly
//! signed ~1 KB Tiquo `customer.updated` deliveries, pre-signed in a [`Pool`], posted over N
//! keep-alive loopback connections for a warm-up and then a measured window ([`drive`]).
//! What it measures and why is in `loadgen`'s documentation.

use chrono::Utc;
use clientele_core::{Provider, Sensitive, providers};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The Tiquo signing secret of the `bench` connection.
pub const SECRET: &str = "loadgen-tiquo-signing-secret-5f0c2a9e";
/// The connection the deliveries are posted to (`/hooks/tiquo/bench`).
pub const CONNECTION: &str = "bench";
/// Where `--secrets env` reads that connection's secret.
pub const SECRET_VAR: &str = "CLIENTELE_SECRET_TIQUO_BENCH";
/// The hooks route of the `bench` connection.
pub const PATH: &str = "/hooks/tiquo/bench";
/// Placeholders spliced with each delivery's numbers (same width, so offsets hold).
const EVENT_MARK: &str = "evt_000000000000";
const EVENT_DIGITS: usize = 12;
const CUSTOMER_MARK: &str = "cus_000000";
const CUSTOMER_DIGITS: usize = 6;
/// Each customer's own mobile number: the customer number goes in its last six digits.
const PHONE_MARK: &str = "+447911000000";
/// Deliveries are spread over this many customers (so derivation folds real profiles).
const CUSTOMERS: usize = 50_000;
/// Signatures older than this are made again (Tiquo's replay window is 5 minutes).
pub const POOL_MAX_AGE: Duration = Duration::from_secs(150);

const WARMUP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// The load's shape, from the environment (see `loadgen`'s documentation).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connection counts, one measurement each (`CLIENTELE_BENCH_CONNS`).
    pub conns: Vec<usize>,
    pub warmup: Duration,
    pub measure: Duration,
    pub runs: usize,
    pub client_threads: usize,
    pub max_rps: usize,
}

/// A number from the environment, else `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    pub fn from_env() -> Settings {
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
#[derive(Debug)]
pub struct Pool {
    template: Vec<u8>,
    event_at: Vec<usize>,
    customer_at: Vec<usize>,
    phone_at: Vec<usize>,
    stamp: HeaderValue,
    event: HeaderValue,
    signature_len: usize,
    signatures: Vec<u8>,
    /// When the signatures were made (they expire with Tiquo's replay window).
    pub made: Instant,
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
    /// Signs `size` deliveries on `threads` threads.
    pub fn generate(size: usize, threads: usize) -> Pool {
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

    /// How many deliveries it holds.
    pub fn len(&self) -> usize {
        self.signatures.len() / self.signature_len.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivery `i`'s headers (besides the content type), for a client other than [`drive`]'s.
    pub fn headers(&self, i: usize) -> Vec<(String, String)> {
        let sig = &self.signatures[i * self.signature_len..(i + 1) * self.signature_len];
        let text = |v: &HeaderValue| v.to_str().expect("ASCII header").to_string();
        vec![
            ("x-tiquo-timestamp".into(), text(&self.stamp)),
            ("x-tiquo-event".into(), text(&self.event)),
            (
                "x-tiquo-signature".into(),
                String::from_utf8(sig.to_vec()).expect("hex signature"),
            ),
        ]
    }

    /// Delivery `i`'s exact bytes.
    pub fn body(&self, i: usize) -> Vec<u8> {
        let mut body = self.template.clone();
        splice(&mut body, &self.event_at, i, EVENT_DIGITS);
        splice(&mut body, &self.customer_at, i % CUSTOMERS, CUSTOMER_DIGITS);
        splice(&mut body, &self.phone_at, i % CUSTOMERS, CUSTOMER_DIGITS);
        body
    }

    /// Delivery `i` as a request to [`PATH`] on `host`.
    pub fn request(&self, i: usize, host: &HeaderValue) -> Request<Full<Bytes>> {
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
pub struct RunResult {
    /// Answered `200` per second of the measured window.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub ok: u64,
    pub non_200: u64,
    /// The pool ran out (with `unique`): sign more and run again.
    pub exhausted: bool,
}

struct Shared {
    pool: Arc<Pool>,
    next: AtomicUsize,
    phase: AtomicU8,
    unique: bool,
    exhausted: AtomicBool,
    /// Which deliveries of the pool were answered `200`, whenever (warm-up too).
    acknowledged: Vec<AtomicBool>,
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
            if status == hyper::StatusCode::OK {
                shared.acknowledged[i].store(true, Ordering::Relaxed);
            }
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

/// Drives the server at `addr` with `conns` keep-alive connections for the settings' warm-up
/// and measured window. `unique`: every delivery is sent once (the run says when the pool ran
/// out); otherwise the pool is cycled (for servers that don't deduplicate).
pub fn drive(
    addr: SocketAddr,
    pool: Arc<Pool>,
    unique: bool,
    conns: usize,
    settings: &Settings,
) -> RunResult {
    drive_noting(&[addr], pool, unique, conns, settings).0
}

/// [`drive`] against several servers — connection k to `addrs[k % addrs.len()]`, as a load
/// balancer would spread them — also returning which deliveries of the pool were answered `200`.
pub fn drive_noting(
    addrs: &[SocketAddr],
    pool: Arc<Pool>,
    unique: bool,
    conns: usize,
    settings: &Settings,
) -> (RunResult, Vec<usize>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
        .expect("client runtime");
    let pool_len = pool.len();
    runtime.block_on(async {
        let shared = Arc::new(Shared {
            pool,
            next: AtomicUsize::new(0),
            phase: AtomicU8::new(WARMUP),
            unique,
            exhausted: AtomicBool::new(false),
            acknowledged: (0..pool_len).map(|_| AtomicBool::new(false)).collect(),
        });
        let tasks: Vec<_> = (0..conns)
            .map(|k| tokio::spawn(connection(addrs[k % addrs.len()], shared.clone())))
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
        let result = RunResult {
            rps: ok as f64 / window.as_secs_f64(),
            p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            ok,
            non_200,
            exhausted: shared.exhausted.load(Ordering::Relaxed),
        };
        let acknowledged = (0..shared.acknowledged.len())
            .filter(|&i| shared.acknowledged[i].load(Ordering::Relaxed))
            .collect();
        (result, acknowledged)
    })
}

/// The median of `values` (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
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
