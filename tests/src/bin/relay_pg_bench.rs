//! `relay_pg_bench`: the relay on PostgreSQL in `make bench` (`make bench-relay-pg` alone). Two
//! parts; nothing is asserted about speed, but every delivery a relay acknowledged must be in its
//! database afterwards (the program fails otherwise).
//!
//! ```text
//! bench: pg_minimal conns=64 rps=… p50_ms=… p99_ms=… pool=64 runs=3 non_200=0 acknowledged=… acknowledged_missing=0
//! bench: relay_pg instances=1 conns=64 rps=… bare_rps=… ratio=… p99_ms=… p50_ms=… runs=3 non_200=0 acknowledged=… acknowledged_missing=0
//! bench: relay_pg instances=2 conns=64 rps=… bare_rps=… ratio=… p99_ms=… p50_ms=… runs=3 non_200=0 acknowledged=… acknowledged_missing=0
//! bench: relay_pg_catch_up deliveries=1000000 seconds=… sqlite_seconds=… ratio=… pulled=… sqlite_pulled=… people=… sqlite_people=… desk_cpu_s=… sqlite_desk_cpu_s=… relay_cpu_s=… sqlite_relay_cpu_s=… fill_seconds=… fill_per_s=…
//! ```
//!
//! Everything runs on this machine against one private PostgreSQL cluster started for the run
//! ([`PgCluster::start_durable`]: `fsync=on`, every other setting PostgreSQL's default, so a
//! commit is on disk before it returns); the relays and `pg_minimal` get the same cluster.
//!
//! **pg_minimal / relay_pg**: the load of `loadgen` and `relay_bench`'s relay_ingest
//! ([`clientele_tests::load`]: pre-signed ~1 KB Tiquo deliveries, each sent once, over N
//! keep-alive loopback connections, a warm-up then a measured window), against
//! (a) `pg_minimal` — signature check and one autocommitted `INSERT … ON CONFLICT DO NOTHING` per
//!     request on a pool of connections, the least a durable PostgreSQL receiver does — and
//! (b) `clientele relay serve --database postgres://…` with one instance, then two instances
//!     sharing the database (the N connections split evenly between them, alternating),
//! each on a fresh database every run, in turn within each run, so all see the same minutes of
//! this machine; medians over the runs. `bare_rps` is pg_minimal's rps and `ratio` the relay's
//! over it. Every `200` — in the warm-up too — counts as acknowledged; after each run the
//! database is read back (the relay's through the public store API, `RelayStore::feed`;
//! pg_minimal's own table with psql) and every acknowledged delivery's dedupe key must be there:
//! `acknowledged_missing` is how many were not, over all runs, and any makes the program fail.
//! The relays get their Tiquo connection as an operator gives it: from an admin desk (`relay pair
//! --admin`, `relay join`) with `connection add`. Every `clientele` command on the relay's side
//! has the database URL and the shared relay key in its environment (`CLIENTELE_DATABASE_URL`,
//! `CLIENTELE_RELAY_KEY`), so each instance can open the secret the first sealed.
//!
//! **relay_pg_catch_up**: a fresh desk joining a relay that holds the reading benchmark's data set
//! (`bench_data`), once from a SQLite relay (a copy of the data set's database, as `relay_bench`'s
//! relay_catch_up builds it) and once from a PostgreSQL relay, in the same run; `seconds` and
//! `sqlite_seconds` are the wall times of `clientele relay pull` on each desk (every page pulled,
//! stored and acknowledged, then everything derived), `ratio` the first over the second. The
//! PostgreSQL relay's database is filled beforehand through the public store API: the data set's
//! connections with `RelayStore::add_connection`, its deliveries (as the SQLite relay's feed
//! serves them) with `RelayStore::ingest` in groups of [`FILL_GROUP`]; `fill_seconds` is how
//! long that took. Both desks are given the data set's default country first, so they derive the
//! same people (`people`, `sqlite_people`), and both must pull the same number of deliveries.
//! `*_cpu_s` are CPU times (user + system; the relays' over the pull).
//!
//! Settings (environment): `CLIENTELE_BENCH_RELAY_PG` (default `ingest,catch_up`: the parts to
//! run); for the ingest part `CLIENTELE_BENCH_RELAY_PG_CONNS` (64),
//! `CLIENTELE_BENCH_RELAY_PG_INSTANCES` (`1,2`), `CLIENTELE_PG_MINIMAL_POOL` (pg_minimal's
//! connections, 64) and loadgen's `CLIENTELE_BENCH_WARMUP_S`, `CLIENTELE_BENCH_SECONDS`,
//! `CLIENTELE_BENCH_RUNS`, `CLIENTELE_BENCH_CLIENT_THREADS`, `CLIENTELE_BENCH_MAX_RPS`; for the
//! catch-up the data set's `CLIENTELE_BENCH_PEOPLE`, `CLIENTELE_BENCH_DELIVERIES` and
//! `CLIENTELE_BENCH_DATA`. PostgreSQL's binaries as the tests find them (`CLIENTELE_PG_BIN`,
//! `pg_config`, `/usr/lib/postgresql/*/bin`). `CLIENTELE_BIN` and `PG_MINIMAL_BIN` default to
//! the programs next to this one. Every process it starts is stopped when it ends, also on a
//! panic (their guards' `Drop`), the cluster last.

use chrono::Utc;
use clientele_core::{Inbound, Provider, Sensitive, providers};
use clientele_relay::store::{RelayStore, SqliteRelayStore};
use clientele_relay_pg::{DatabaseUrl, PgStore};
use clientele_store::{NewConnection, NewDelivery};
use clientele_tests::bench_data::DataSet;
use clientele_tests::load::{CONNECTION, POOL_MAX_AGE, Pool, RunResult, SECRET, SECRET_VAR};
use clientele_tests::load::{Settings, drive_noting, env_num, median};
use clientele_tests::pg::PgCluster;
use clientele_tests::procs::{self, Measured, MeasuredCommand};
use clientele_tests::relay::{Desk, Relay};
use clientele_tests::{Server, Workspace, clientele_bin, sibling_bin};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The relays' key for sealing connection secrets in the shared database (every instance must
/// have the same one). A benchmark's own: it seals only the load generator's signing secret.
const RELAY_KEY: &str = "7c1e0b9a4f3d2e6a8b5c7d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c";
/// Deliveries per `ingest` call when filling the PostgreSQL relay for the catch-up.
const FILL_GROUP: usize = 5_000;
/// Feed page size when reading a relay's database back.
const READ_PAGE: usize = 10_000;

fn main() {
    // This program also starts the measured commands (see `MeasuredCommand`).
    procs::serve_measure_request();
    let parts =
        std::env::var("CLIENTELE_BENCH_RELAY_PG").unwrap_or_else(|_| "ingest,catch_up".into());
    let parts: Vec<String> = parts.split(',').map(|p| p.trim().to_string()).collect();
    for part in &parts {
        if !matches!(part.as_str(), "ingest" | "catch_up" | "") {
            panic!("CLIENTELE_BENCH_RELAY_PG: unknown part {part:?} (ingest or catch_up)");
        }
    }
    if let Err(why) = PgCluster::available() {
        panic!("relay_pg_bench needs PostgreSQL: {why}");
    }
    let cluster = PgCluster::start_durable();
    eprintln!(
        "relay_pg_bench: PostgreSQL on 127.0.0.1:{} with fsync={}",
        cluster.port,
        cluster.psql("postgres", "SHOW fsync")
    );
    for part in &parts {
        match part.as_str() {
            "ingest" => ingest(&cluster),
            "catch_up" => catch_up(&cluster),
            _ => {}
        }
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn socket_addr(server: &Server) -> SocketAddr {
    server
        .addr
        .parse()
        .unwrap_or_else(|e| panic!("{} is not an address: {e}", server.addr))
}

/// A store on the relay database at `url` (the relay's own migrations run if they haven't).
fn pg_store(url: &str) -> PgStore {
    let url = DatabaseUrl::parse(url).unwrap_or_else(|e| panic!("{e}"));
    PgStore::connect(&url).unwrap_or_else(|e| panic!("{e}"))
}

/// A workspace whose `clientele` commands reach the relay database at `url` with the shared
/// relay key, as the relay machine's shell would (both in the environment: other users of the
/// machine can read command lines).
fn pg_workspace(url: &str) -> Workspace {
    let mut ws = Workspace::new();
    ws.secrets
        .push(("CLIENTELE_DATABASE_URL".into(), url.to_string()));
    ws.secrets
        .push(("CLIENTELE_RELAY_KEY".into(), RELAY_KEY.to_string()));
    ws
}

/// `clientele relay serve` on the database at `url`, on a free loopback port (its own data
/// folder).
fn start_pg_relay(url: &str) -> Relay {
    Relay::start_in(pg_workspace(url), "127.0.0.1:0", &[])
}

/// `instances` relays sharing the database at `url`, with the Tiquo connection `bench` that
/// [`Pool`] signs for, added from an admin desk on the first (before the others start, so each
/// finds it however it reads connections).
struct PgRelays {
    instances: Vec<Relay>,
    _admin: Desk,
}

impl PgRelays {
    fn start(url: &str, instances: usize) -> PgRelays {
        let first = start_pg_relay(url);
        let mut ws = Workspace::new();
        ws.secrets
            .push((SECRET_VAR.to_string(), SECRET.to_string()));
        let admin = Desk::join(ws, &first.url(), &first.pair("bench-admin", true), &[]);
        admin.ws.ok(&["connection", "add", "tiquo", CONNECTION]);
        let mut all = vec![first];
        all.extend((1..instances).map(|_| start_pg_relay(url)));
        PgRelays {
            instances: all,
            _admin: admin,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.instances
            .iter()
            .map(|r| socket_addr(&r.server))
            .collect()
    }
}

/// The dedupe key a relay stores delivery `i` under: what the provider's own verification gives
/// it (for Tiquo, the event's id, which is also what `pg_minimal` keys on).
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

/// How many of the `acknowledged` deliveries are not among `stored` (dedupe keys).
fn missing(pool: &Pool, acknowledged: &[usize], stored: &HashSet<String>) -> usize {
    let missing: Vec<usize> = acknowledged
        .iter()
        .copied()
        .filter(|&i| !stored.contains(&dedupe_key(pool, i)))
        .collect();
    if let Some(first) = missing.first() {
        eprintln!(
            "relay_pg_bench: {} acknowledged deliveries are not in the database, the first {}",
            missing.len(),
            dedupe_key(pool, *first)
        );
    }
    missing.len()
}

/// Every dedupe key in a relay's feed, read through the store.
fn feed_keys(store: &dyn RelayStore) -> HashSet<String> {
    let mut keys = HashSet::new();
    let mut after = 0;
    loop {
        let page = store.feed(after, READ_PAGE).expect("read the relay's feed");
        let Some(last) = page.last() else {
            return keys;
        };
        after = last.id;
        keys.extend(page.into_iter().map(|item| item.dedupe_key));
    }
}

// ---------------------------------------------------------------------------------------------
// pg_minimal and relay_pg

/// One configuration's figures over the runs.
#[derive(Default)]
struct Figures {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    non_200: u64,
    acknowledged: usize,
    missing: usize,
}

impl Figures {
    fn add(&mut self, r: &RunResult, acknowledged: usize, missing: usize) {
        self.rps.push(r.rps);
        self.p50.push(r.p50_ms);
        self.p99.push(r.p99_ms);
        self.non_200 += r.non_200;
        self.acknowledged += acknowledged;
        self.missing += missing;
    }
}

/// One run of `pg_minimal` on a fresh database `name`.
fn run_minimal(
    cluster: &PgCluster,
    name: &str,
    pool: &Arc<Pool>,
    conns: usize,
    settings: &Settings,
) -> (RunResult, usize, usize) {
    cluster.create_database(name);
    let (r, acked) = {
        let mut cmd = Command::new(sibling_bin("PG_MINIMAL_BIN", "pg_minimal"));
        cmd.arg(cluster.url(name)).env(SECRET_VAR, SECRET);
        let server = Server::start(cmd);
        drive_noting(&[socket_addr(&server)], pool.clone(), true, conns, settings)
    };
    let stored: HashSet<String> = cluster
        .psql(name, "SELECT dedupe_key FROM deliveries")
        .lines()
        .map(str::to_string)
        .collect();
    let gone = missing(pool, &acked, &stored);
    cluster.psql(
        "postgres",
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    );
    (r, acked.len(), gone)
}

/// One run of `instances` relays sharing a fresh database `name`.
fn run_relays(
    cluster: &PgCluster,
    name: &str,
    instances: usize,
    pool: &Arc<Pool>,
    conns: usize,
    settings: &Settings,
) -> (RunResult, usize, usize) {
    cluster.create_database(name);
    let url = cluster.url(name);
    let (r, acked) = {
        let relays = PgRelays::start(&url, instances);
        drive_noting(&relays.addrs(), pool.clone(), true, conns, settings)
    };
    let stored = {
        let store = pg_store(&url);
        feed_keys(&store)
    };
    let gone = missing(pool, &acked, &stored);
    cluster.psql(
        "postgres",
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    );
    (r, acked.len(), gone)
}

fn ingest(cluster: &PgCluster) {
    let settings = Settings::from_env();
    let conns = env_num("CLIENTELE_BENCH_RELAY_PG_CONNS", 64.0).max(1.0) as usize;
    let instances: Vec<usize> = std::env::var("CLIENTELE_BENCH_RELAY_PG_INSTANCES")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    let minimal_pool = env_num("CLIENTELE_PG_MINIMAL_POOL", 64.0).max(1.0) as usize;
    let window = settings.warmup + settings.measure;
    let mut pool_size = (settings.max_rps as f64 * window.as_secs_f64()) as usize;
    let mut pool = Arc::new(Pool::generate(pool_size, threads()));
    // Signatures must stay inside Tiquo's replay window for the whole of the next run.
    let renew_if_old = |pool: &mut Arc<Pool>, size: usize| {
        if pool.made.elapsed() + window > POOL_MAX_AGE {
            *pool = Arc::new(Pool::generate(size, threads()));
        }
    };
    let mut minimal = Figures::default();
    let mut relays: Vec<Figures> = instances.iter().map(|_| Figures::default()).collect();
    let mut run = 0;
    let mut attempt = 0;
    while run < settings.runs {
        attempt += 1;
        renew_if_old(&mut pool, pool_size);
        let (m, m_acked, m_missing) = run_minimal(
            cluster,
            &format!("pg_minimal_{attempt}"),
            &pool,
            conns,
            &settings,
        );
        eprintln!(
            "relay_pg_bench: run={} pg_minimal rps={:.0} p50_ms={:.2} p99_ms={:.2} non_200={} acknowledged={m_acked} missing={m_missing}",
            run + 1,
            m.rps,
            m.p50_ms,
            m.p99_ms,
            m.non_200
        );
        let mut exhausted = m.exhausted;
        let mut results = Vec::new();
        for &n in &instances {
            renew_if_old(&mut pool, pool_size);
            let (r, acked, gone) = run_relays(
                cluster,
                &format!("relay_{n}_{attempt}"),
                n,
                &pool,
                conns,
                &settings,
            );
            eprintln!(
                "relay_pg_bench: run={} relay_pg instances={n} rps={:.0} p50_ms={:.2} p99_ms={:.2} non_200={} acknowledged={acked} missing={gone}",
                run + 1,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.non_200
            );
            exhausted |= r.exhausted;
            results.push((r, acked, gone));
        }
        // A loss counts whatever else happened in the run.
        minimal.missing += m_missing;
        for (figures, (_, _, gone)) in relays.iter_mut().zip(&results) {
            figures.missing += gone;
        }
        if exhausted {
            // Every delivery must be new to measure the real path: sign more and run again.
            pool_size *= 2;
            eprintln!("relay_pg_bench: ran out of pre-signed deliveries; signing {pool_size}");
            pool = Arc::new(Pool::generate(pool_size, threads()));
            continue;
        }
        minimal.add(&m, m_acked, 0);
        for (figures, (r, acked, _)) in relays.iter_mut().zip(&results) {
            figures.add(r, *acked, 0);
        }
        run += 1;
    }
    let bare_rps = median(minimal.rps.clone());
    println!(
        "bench: pg_minimal conns={conns} rps={bare_rps:.0} p50_ms={:.2} p99_ms={:.2} pool={minimal_pool} runs={} non_200={} acknowledged={} acknowledged_missing={}",
        median(minimal.p50.clone()),
        median(minimal.p99.clone()),
        settings.runs,
        minimal.non_200,
        minimal.acknowledged,
        minimal.missing
    );
    for (n, figures) in instances.iter().zip(&relays) {
        let rps = median(figures.rps.clone());
        println!(
            "bench: relay_pg instances={n} conns={conns} rps={rps:.0} bare_rps={bare_rps:.0} ratio={:.3} p99_ms={:.2} p50_ms={:.2} runs={} non_200={} acknowledged={} acknowledged_missing={}",
            rps / bare_rps.max(1.0),
            median(figures.p99.clone()),
            median(figures.p50.clone()),
            settings.runs,
            figures.non_200,
            figures.acknowledged,
            figures.missing
        );
    }
    let lost = minimal.missing + relays.iter().map(|f| f.missing).sum::<usize>();
    assert_eq!(
        lost, 0,
        "relay_pg_bench: {lost} acknowledged deliveries are missing from the databases (see above)"
    );
}

// ---------------------------------------------------------------------------------------------
// relay_pg_catch_up

/// Copies the SQLite database of data folder `from` into data folder `to` (as `relay_bench`).
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

/// Runs `clientele --data-dir DIR --secrets env ARGS…` measured, with `env`; returns the
/// measurement and its standard output (as `relay_bench`).
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

/// What one desk's catch-up measured.
struct Pull {
    measured: Measured,
    pulled: i64,
    people: i64,
    relay_cpu: f64,
}

/// A fresh desk joins the relay at `relay_url` (`server` is its process) with `code` and pulls
/// everything, measured.
fn pull(relay_url: &str, server: &Server, code: &str) -> Pull {
    let desk = Desk::join(Workspace::new(), relay_url, code, &[]);
    // The data set's default country, so the desk reads phone numbers as the data set did.
    desk.ws.ok(&["settings", "default-country", "GB"]);
    let relay_cpu = procs::cpu_seconds(server.child.id()).unwrap_or(0.0);
    let (measured, out) = measured_clientele(
        desk.ws.path(),
        &["relay", "pull", "--json"],
        &desk.ws.secrets,
    );
    let relay_cpu = procs::cpu_seconds(server.child.id()).unwrap_or(0.0) - relay_cpu;
    let pulled = serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["pulled"].as_i64())
        .unwrap_or_else(|| panic!("relay pull --json said {out:?}"));
    let people = count(
        &desk.ws.path().join("clientele.db"),
        "SELECT COUNT(*) FROM people",
    );
    Pull {
        measured,
        pulled,
        people,
        relay_cpu,
    }
}

/// Fills the PostgreSQL relay `target` with what the SQLite relay `source` serves: its
/// connections, then its feed, in groups of [`FILL_GROUP`] (the reading of the next group
/// overlapping the writing of this one). Returns how many deliveries were stored.
fn fill(source: &SqliteRelayStore, target: &PgStore) -> usize {
    let now = Utc::now();
    let mut ids = HashMap::new();
    for c in source.connections().expect("the data set's connections") {
        let added = target
            .add_connection(
                &NewConnection {
                    provider: c.provider,
                    name: c.name.clone(),
                    settings: c.settings.clone(),
                    requires_secret: c.requires_secret,
                },
                now,
            )
            .expect("add a connection to the PostgreSQL relay");
        ids.insert((c.provider, c.name), added.id);
    }
    let (pages, read) = std::sync::mpsc::sync_channel(2);
    let reader = {
        let source = source.clone();
        std::thread::spawn(move || {
            let mut after = 0;
            loop {
                let page = source
                    .feed(after, FILL_GROUP)
                    .expect("read the data set's deliveries");
                let Some(last) = page.last() else {
                    return;
                };
                after = last.id;
                if pages.send(page).is_err() {
                    return;
                }
            }
        })
    };
    let (mut stored, mut reported) = (0, Instant::now());
    for page in read {
        let group: Vec<NewDelivery> = page
            .into_iter()
            .map(|item| NewDelivery {
                connection_id: *ids
                    .get(&(item.provider, item.connection.clone()))
                    .unwrap_or_else(|| {
                        panic!(
                            "delivery {} came in on {}/{}, a connection the data set doesn't list",
                            item.id,
                            item.provider.id(),
                            item.connection
                        )
                    }),
                received_at: item.received_at,
                dedupe_key: item.dedupe_key,
                headers: item.headers,
                body: item.body,
                verification: item.verification,
                is_test: item.is_test,
            })
            .collect();
        let outcomes = target
            .ingest(&group, &[])
            .expect("store deliveries in the PostgreSQL relay");
        stored += outcomes.len();
        if reported.elapsed() >= Duration::from_secs(15) {
            reported = Instant::now();
            eprintln!("relay_pg_bench: filled {stored} deliveries");
        }
    }
    reader.join().expect("the data set's reader panicked");
    stored
}

fn catch_up(cluster: &PgCluster) {
    let data = DataSet::open_or_build("relay_pg_bench");
    // Everything the data set holds in its database file (no other process has it open).
    {
        let conn = rusqlite::Connection::open(data.store.path()).expect("open the data set");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint the data set");
    }

    // The PostgreSQL relay's database, through the store.
    cluster.create_database("catch_up");
    let url = cluster.url("catch_up");
    let store = pg_store(&url);
    let started = Instant::now();
    let filled = fill(&SqliteRelayStore::new(data.store.clone()), &store);
    let fill_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "relay_pg_bench: filled the PostgreSQL relay with {filled} deliveries in {fill_seconds:.1} s ({:.0}/s)",
        filled as f64 / fill_seconds.max(1e-9)
    );
    cluster.psql("catch_up", "VACUUM ANALYZE");

    // The SQLite relay, as relay_bench's relay_catch_up builds it.
    let sqlite = {
        let relay_ws = Workspace::new();
        copy_database(&data.dir, relay_ws.path());
        let relay = Relay::start_in(relay_ws, "127.0.0.1:0", &[]);
        let code = relay.pair("catch-up-desk", false);
        eprintln!("relay_pg_bench: a fresh desk pulls from the SQLite relay");
        pull(&relay.url(), &relay.server, &code)
    };

    let pg = {
        let relay = start_pg_relay(&url);
        let code = relay.pair("catch-up-desk", false);
        eprintln!("relay_pg_bench: a fresh desk pulls from the PostgreSQL relay");
        pull(&relay.url(), &relay.server, &code)
    };
    drop(store);

    println!(
        "bench: relay_pg_catch_up deliveries={} seconds={:.1} sqlite_seconds={:.1} ratio={:.2} pulled={} sqlite_pulled={} people={} sqlite_people={} desk_cpu_s={:.1} sqlite_desk_cpu_s={:.1} relay_cpu_s={:.1} sqlite_relay_cpu_s={:.1} fill_seconds={fill_seconds:.1} fill_per_s={:.0}",
        data.deliveries,
        pg.measured.seconds,
        sqlite.measured.seconds,
        pg.measured.seconds / sqlite.measured.seconds.max(1e-9),
        pg.pulled,
        sqlite.pulled,
        pg.people,
        sqlite.people,
        pg.measured.cpu_seconds,
        sqlite.measured.cpu_seconds,
        pg.relay_cpu,
        sqlite.relay_cpu,
        filled as f64 / fill_seconds.max(1e-9)
    );
    assert_eq!(
        pg.pulled, sqlite.pulled,
        "the desk pulled a different number of deliveries from the PostgreSQL relay than from the SQLite one"
    );
}
