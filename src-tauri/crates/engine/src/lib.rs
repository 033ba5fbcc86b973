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

pub use engine::{Engine, StartError};
pub use error::{ApiResult, AppError, ErrorCode};
pub use ops::Operations;
