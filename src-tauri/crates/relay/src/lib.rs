//! The relay: Clientele's receiving core on an always-on server, which desks pair with and pull
//! from. Providers post to the relay's hooks route exactly as they would to a desk (the same
//! handler, verification, durable commit and rejection log, from `clientele-server`); this crate
//! adds what only a relay needs:
//!
//! - [`code`]: one-time pairing codes short enough to read out over the phone, with a check
//!   character;
//! - [`token`]: the device tokens pairing hands out (only their hashes are stored);
//! - [`throttle`]: slowing down whoever keeps guessing codes or tokens;
//! - [`sealed`]: connection secrets kept in the database sealed under a key held apart from it;
//! - [`changes`]: hand changes desks send (merges, splits, undos, forgets), and forgetting on the
//!   relay's own copy.

pub mod api;
pub mod changes;
pub mod code;
mod random;
pub mod sealed;
pub mod store;
pub mod throttle;
pub mod token;

pub use random::RandomUnavailable;
