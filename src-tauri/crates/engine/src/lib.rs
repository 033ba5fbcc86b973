//! Clientele's engine: what the desktop app and the `clientele` command share.
//!
//! - [`Engine`] is the one start-up path: a data folder, its connections, the ingest pipeline and
//!   the listener, and a `shutdown()` that drains and joins them.
//! - [`Operations`] is everything the screens and commands can do, with one set of rules each.
//! - [`AppError`] with its closed [`ErrorCode`] is the one error contract they return.
//! - [`events`] names what the engine tells the window.
//!
//! Nothing here depends on Tauri: the app's commands are one-line adapters to [`Operations`].

pub mod data_dir;
mod engine;
pub mod error;
pub mod events;
pub mod ops;
pub mod relay;
mod retention;

pub use engine::{Engine, StartError};

/// Logs to standard error, warnings and worse unless `CLIENTELE_LOG` says otherwise (for
/// example `CLIENTELE_LOG=debug`). Call once, first thing, in a program's `main`.
pub fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLIENTELE_LOG")
                // The platform verifier logs every refused certificate as an error of its own;
                // Clientele says it once, in words, where it matters.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,rustls_platform_verifier=off")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
}
pub use error::{ApiResult, AppError, ErrorCode};
pub use ops::Operations;
