//! `pg_minimal`: the least a receiver can do and still never acknowledge a delivery before
//! PostgreSQL has it durably — the baseline `relay_pg_bench` measures the relay on PostgreSQL
//! against (`bench: pg_minimal …`), as `group_commit` is the SQLite one. Written as plainly as a
//! provider's documentation would:
//!
//! - an axum handler on the same runtime, HTTP stack, route shape and body limit as `bare_axum`,
//!   `group_commit` and `clientele serve` ([`clientele_tests::baseline`]) reads the body and
//!   checks the signature exactly as `group_commit` does (Tiquo's: HMAC-SHA256 over
//!   `timestamp.body`, compared in constant time, five-minute replay window; the load generator
//!   signs Tiquo deliveries), answering `401` when it fails;
//! - then runs one `INSERT … ON CONFLICT (dedupe_key) DO NOTHING` of the raw body under the
//!   event's id (the body's `id`, Tiquo's dedupe key) on one of a pool of PostgreSQL
//!   connections, in autocommit: with the server's `synchronous_commit=on` (its default) the
//!   statement returns once the commit is flushed to disk, and only then the handler answers `200`.
//!
//! No grouping of its own (PostgreSQL's commits group themselves when several backends flush at
//! once), no headers kept, nothing logged, nothing a desk could read.
//!
//! `pg_minimal DATABASE_URL [ADDR]` (default `127.0.0.1:0`) reads the signing secret from
//! `CLIENTELE_SECRET_TIQUO_BENCH`, opens `CLIENTELE_PG_MINIMAL_POOL` connections (default 64:
//! one per connection the benchmark drives it with, so no request waits for a free one; each
//! connection takes the requests given to it in turn), creates its table if needed and prints
//! `listening on http://ADDR` once it accepts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clientele_tests::baseline::BODY_LIMIT;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_postgres::{Client, NoTls, Statement};

/// Signatures older (or newer) than this are refused, as Tiquo's documentation asks.
const REPLAY_WINDOW_SECS: i64 = 300;
/// Connections to PostgreSQL unless `CLIENTELE_PG_MINIMAL_POOL` says otherwise.
const DEFAULT_POOL: usize = 64;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key  TEXT NOT NULL UNIQUE,
    received_at BIGINT NOT NULL,
    body        BYTEA NOT NULL
)";
const INSERT: &str = "INSERT INTO deliveries (dedupe_key, received_at, body) VALUES ($1, $2, $3)
    ON CONFLICT (dedupe_key) DO NOTHING";

struct Pool {
    clients: Vec<(Client, Statement)>,
    next: AtomicUsize,
}

#[derive(Clone)]
struct Receiver {
    secret: Arc<[u8]>,
    pool: Arc<Pool>,
}

/// `x-tiquo-signature: sha256=<hex>` over `{x-tiquo-timestamp}.{body}`, within the window (as
/// `group_commit`).
fn genuine(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(stamp), Some(signature)) = (text("x-tiquo-timestamp"), text("x-tiquo-signature"))
    else {
        return false;
    };
    let fresh = stamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= REPLAY_WINDOW_SECS);
    let Ok(supplied) = hex::decode(signature.strip_prefix("sha256=").unwrap_or(signature)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(stamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // `verify_slice` compares in constant time.
    fresh && mac.verify_slice(&supplied).is_ok()
}

/// The event's id: Tiquo's dedupe key (`{"id": "evt_…", …}`).
fn event_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        id: String,
    }
    serde_json::from_slice::<Event>(body).ok().map(|e| e.id)
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if !genuine(&receiver.secret, &headers, &body) {
        return (StatusCode::UNAUTHORIZED, r#"{"status":"refused"}"#);
    }
    let Some(id) = event_id(&body) else {
        return (StatusCode::BAD_REQUEST, r#"{"status":"no event id"}"#);
    };
    let pool = &receiver.pool;
    let (client, insert) =
        &pool.clients[pool.next.fetch_add(1, Ordering::Relaxed) % pool.clients.len()];
    let now = chrono::Utc::now().timestamp_millis();
    match client.execute(insert, &[&id, &now, &body.as_ref()]).await {
        Ok(_) => (StatusCode::OK, r#"{"status":"stored"}"#),
        Err(e) => {
            eprintln!("pg_minimal: couldn't store a delivery: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"not stored"}"#,
            )
        }
    }
}

/// The URL without its password, for messages.
fn shown(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    format!(
        "postgres://{}@{host}:{}/{}",
        config.get_user().unwrap_or_default(),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or_default()
    )
}

async fn connect(config: &tokio_postgres::Config, size: usize) -> Result<Pool, String> {
    let mut clients = Vec::with_capacity(size);
    for i in 0..size {
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| format!("can't connect to {}: {e}", shown(config)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("pg_minimal: a database connection ended: {e}");
            }
        });
        if i == 0 {
            client
                .batch_execute(SCHEMA)
                .await
                .map_err(|e| format!("can't create the table in {}: {e}", shown(config)))?;
        }
        let insert = client
            .prepare(INSERT)
            .await
            .map_err(|e| format!("can't prepare the insert in {}: {e}", shown(config)))?;
        clients.push((client, insert));
    }
    Ok(Pool {
        clients,
        next: AtomicUsize::new(0),
    })
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: pg_minimal DATABASE_URL [ADDR]");
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| std::io::Error::other("pg_minimal: DATABASE_URL isn't a postgres:// URL"))?;
    let size = std::env::var("CLIENTELE_PG_MINIMAL_POOL")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_POOL)
        .max(1);
    let secret = std::env::var("CLIENTELE_SECRET_TIQUO_BENCH")
        .expect("CLIENTELE_SECRET_TIQUO_BENCH holds the signing secret");
    // As `baseline::serve`: a multi-threaded runtime with one worker per core, axum's HTTP/1
    // server, the same route and body limit; here the database connections live on it too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let pool = connect(&config, size)
            .await
            .map_err(|e| std::io::Error::other(format!("pg_minimal: {e}")))?;
        let state = Receiver {
            secret: secret.into_bytes().into(),
            pool: Arc::new(pool),
        };
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let app = Router::new()
            .route(
                "/hooks/{provider}/{connection}",
                post(receive).with_state(state),
            )
            .layer(DefaultBodyLimit::max(BODY_LIMIT));
        axum::serve(listener, app).await
    })
}
