//! A desk's side of the relay: [`client`] talks to it (pairing, pulling, acknowledging, and an
//! admin desk's changes to its connections); [`pull`] keeps this desk's store up to date with it,
//! live while the desk is awake and catching up at once when it wakes. [`own_address`] is the
//! relay's own use of the same HTTPS client: posting a test event to its public address.
//! [`changes`] carries hand changes (merges, splits, undos, forgets) both ways.

pub mod changes;
pub mod client;
pub mod own_address;
pub mod pull;
mod trust;
pub mod wake;

pub use changes::HandChanges;
pub use client::{ClientError, RelayClient};
pub use pull::{LinkState, PullStatus, Puller};
