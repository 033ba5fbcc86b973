//! Clientele's receiving side, shared by the desktop app and the headless `clientele` command:
//! the axum listener ([`listener`]), the group-commit pipeline that stores and derives deliveries
//! ([`ingest`]), the live view of configured connections and their secrets ([`connections`]),
//! and the data-directory conventions ([`data_dir`]).

pub mod api;
pub mod cli;
pub mod connections;
pub mod data_dir;
pub mod export_api;
pub mod ingest;
pub mod listener;

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The clock, injected so tests and replay-window checks never read the system time directly.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
