//! Which relay certificates this crate's HTTPS clients trust: `clientele-trust`, shared with the
//! relay's PostgreSQL client.

pub(crate) use clientele_trust::{PinnedOr, provider};
