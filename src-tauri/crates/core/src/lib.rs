//! Clientele's domain, with no I/O: what a provider sends, how to tell a genuine delivery from a
//! forged one, how a delivery becomes normalized customer events, how those events fold into a
//! source profile, how people are recognised across providers, and how an event reads as a
//! sentence.
//!
//! Everything here is a pure function of its inputs (the clock is passed in), so the desktop app,
//! the headless `clientele` command, the benchmarks and the tests all run the same code.

pub mod event;
pub mod export;
pub mod fields;
pub mod hand;
pub mod identity;
pub mod profile;
pub mod provider;
pub mod providers;
pub mod relay_protocol;
pub mod sensitive;
pub mod summary;
pub mod time;
pub mod verify;

pub use event::{Change, EventKind, ParseError, ParsedDelivery, SourceEvent};
pub use provider::{ConnectionSettings, Provider};
pub use sensitive::Sensitive;
pub use verify::{Inbound, Rejection, Verified};
