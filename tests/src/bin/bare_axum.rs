//! `bare_axum`: the ingest benchmark's baseline — an axum handler that reads the whole body and
//! answers `200`, on the same runtime, HTTP stack and route shape as `clientele serve`, doing
//! nothing else. Whatever `clientele serve` reaches is compared with this: it is the most the HTTP
//! layer can do on this machine, so the ratio says what verification, the durable commit and
//! derivation cost.
//!
//! `bare_axum [ADDR]` (default `127.0.0.1:0`) prints `listening on http://ADDR` once it accepts,
//! like `clientele serve`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn receive(body: Bytes) -> (StatusCode, &'static str) {
    // The body has been read in full by the extractor; answer with a JSON line of the same kind
    // `clientele serve` sends.
    std::hint::black_box(body.len());
    (StatusCode::OK, r#"{"status":"stored"}"#)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    clientele_tests::baseline::serve(&addr, post(receive))
}
