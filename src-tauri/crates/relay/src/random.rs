//! The operating system's random source, the one place tokens, pairing codes, keys and nonces
//! come from.
//!
//! Why the OS source (through `getrandom`) and not a user-space generator: everything drawn here
//! guards access (a token opens every delivery, a code pairs a device, a key opens every secret),
//! so it must be unpredictable even to someone who has seen earlier values, and the kernel's
//! generator is the one already trusted for that. It only fails when the operating system has no
//! usable source at all, which is reported in plain words rather than papered over.

/// The operating system would not give out random bytes, so nothing safe could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The relay couldn't get random numbers from the operating system, so it can't make a safe \
     {what}. Restart the relay; if this keeps happening, check the server's system log."
)]
pub struct RandomUnavailable {
    /// What was being made: "device token", "pairing code", "relay key", "nonce".
    pub what: &'static str,
}

/// `N` random bytes from the OS; `what` names the thing being made, for the error.
pub(crate) fn bytes<const N: usize>(what: &'static str) -> Result<[u8; N], RandomUnavailable> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|err| {
        tracing::error!(error = %err, what, "the OS random source failed");
        RandomUnavailable { what }
    })?;
    Ok(buf)
}
