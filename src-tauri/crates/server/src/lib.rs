//! Clientele's HTTP side, and only that: the hooks route providers post to ([`hooks`]), the
//! listener that serves it with its limits ([`listener`]) over plain HTTP or HTTPS ([`tls`], its
//! certificate from files or got by itself from a certificate authority: [`acme`]),
//! who sent a request when a reverse proxy stands in between ([`client_addr`]), and the live view
//! of connections and their secrets that every request is checked against ([`connections`]).
//! Storing is the ingest pipeline's job (`clientele-ingest`); starting all of it is the engine's
//! (`clientele-engine`).

pub mod acme;
pub mod client_addr;
pub mod connections;
pub mod hooks;
pub mod listener;
pub mod tls;

pub use hooks::{TEST_HEADER, webhook_path};

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The clock, injected so tests and replay-window checks never read the system time directly.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
