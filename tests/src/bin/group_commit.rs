//! `group_commit`: the ingest benchmark's second baseline — the least a receiver can do and still
//! never acknowledge a delivery before it is on disk. It is the design the issue's reference
//! figure describes ("signature check + group commit, storing only the raw body"), written as
//! plainly as a provider's documentation would: no dedupe, no headers kept, no rejections logged,
//! no derivation, no checkpointing of its own, nothing for a desktop app to read.
//!
//! - An axum handler on the same runtime and HTTP stack as `bare_axum` and `clientele serve`
//!   reads the body and checks Tiquo's signature (HMAC-SHA256 over `timestamp.body`, compared in
//!   constant time, five-minute replay window), answering `401` when it fails;
//! - one writer thread takes every request that queued while the last transaction was written,
//!   inserts their bodies in one transaction (WAL, `synchronous=FULL`: fsync'd before `COMMIT`
//!   returns) and only then lets each handler answer `200`.
//!
//! `clientele serve` does all this and more on every delivery, so `clientele_rps / group_commit
//! rps` says what Clientele's own work costs over the bare minimum of a durable receiver on this
//! machine, and `group_commit rps / bare_axum rps` what that minimum costs over HTTP alone.
//!
//! `group_commit DATA_DIR [ADDR]` (default `127.0.0.1:0`) reads the signing secret from
//! `CLIENTELE_SECRET_TIQUO_BENCH` and prints `listening on http://ADDR` once it accepts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;
use tokio::sync::oneshot;

/// Most bodies in one transaction (as `clientele serve`).
const MAX_GROUP: usize = 1_024;
/// Signatures older (or newer) than this are refused, as Tiquo's documentation asks.
const REPLAY_WINDOW_SECS: i64 = 300;

type Job = (Bytes, oneshot::Sender<bool>);

#[derive(Clone)]
struct Receiver {
    secret: std::sync::Arc<[u8]>,
    jobs: crossbeam_channel::Sender<Job>,
}

/// `x-tiquo-signature: sha256=<hex>` over `{x-tiquo-timestamp}.{body}`, within the window.
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

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if !genuine(&receiver.secret, &headers, &body) {
        return (StatusCode::UNAUTHORIZED, r#"{"status":"refused"}"#);
    }
    let (reply, stored) = oneshot::channel();
    if receiver.jobs.try_send((body, reply)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"busy"}"#);
    }
    match stored.await {
        Ok(true) => (StatusCode::OK, r#"{"status":"stored"}"#),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"not stored"}"#,
        ),
    }
}

/// The writer thread: one fsync'd transaction per group of whatever queued meanwhile.
fn write(mut db: rusqlite::Connection, jobs: crossbeam_channel::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let stored = store(&mut db, &group);
        if let Err(e) = &stored {
            eprintln!(
                "group_commit: couldn't store {} deliveries: {e}",
                group.len()
            );
        }
        for (_, reply) in group {
            let _ = reply.send(stored.is_ok());
        }
    }
}

/// Inserts the group's bodies in one transaction; `COMMIT` returns once they are fsync'd.
fn store(db: &mut rusqlite::Connection, group: &[Job]) -> rusqlite::Result<()> {
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO deliveries (received_at, body) VALUES (?1, ?2)")?;
        let now = chrono::Utc::now().timestamp_millis();
        for (body, _) in group {
            insert.execute(rusqlite::params![now, body.as_ref()])?;
        }
    }
    tx.commit()
}

fn open(dir: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(dir.join("group_commit.sqlite3"))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS deliveries (
            id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, body BLOB NOT NULL)",
    )?;
    Ok(db)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: group_commit DATA_DIR [ADDR]");
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let secret = std::env::var("CLIENTELE_SECRET_TIQUO_BENCH")
        .expect("CLIENTELE_SECRET_TIQUO_BENCH holds the signing secret");
    let db = open(Path::new(&dir)).map_err(std::io::Error::other)?;
    let (jobs, queue) = crossbeam_channel::bounded(8_192);
    std::thread::Builder::new()
        .name("group-commit".into())
        .spawn(move || write(db, queue))?;
    let state = Receiver {
        secret: secret.into_bytes().into(),
        jobs,
    };
    clientele_tests::baseline::serve(&addr, post(receive).with_state(state))
}
