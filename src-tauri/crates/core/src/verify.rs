//! Deciding whether a delivery is genuine. Every check runs on the exact bytes received and every
//! comparison of secrets or signatures is constant-time (`subtle`).

use crate::provider::{ConnectionSettings, Provider};
use crate::sensitive::Sensitive;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use std::net::IpAddr;

/// A request as it reached the listener.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub remote_ip: Option<IpAddr>,
}

/// A delivery that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key that makes a retry of the same delivery a duplicate, forever: the provider's event
    /// id where it has one, else `sha256:<hex of body>`.
    pub dedupe_key: String,
    /// What was checked, in plain words for staff ("Signed by Tiquo with the signing secret
    /// (signature over the time and the message)"). Never contains the secret.
    pub check: String,
}

/// Why a request was refused. `code()` is stable for storage and the UI; `Display` is a sentence
/// a receptionist can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error(
        "No signature was sent with this message, but this connection has a {secret_word} set."
    )]
    MissingSignature { secret_word: &'static str },
    #[error("The signature didn't match — the {secret_word} may have changed in {provider}.")]
    BadSignature {
        provider: &'static str,
        secret_word: &'static str,
    },
    #[error("The signature could not be read: {0}.")]
    MalformedSignature(String),
    #[error("The message has no time stamp, which {provider} always sends.")]
    MissingTimestamp { provider: &'static str },
    #[error(
        "The message is too old or from the future ({skew_secs} seconds off); it may be a replay of an old message, or this computer's clock may be wrong."
    )]
    StaleTimestamp { skew_secs: i64 },
    #[error(
        "The message came from an address ({0}) that is not on this connection's allowed list."
    )]
    AddressNotAllowed(IpAddr),
}

impl Rejection {
    /// A stable code for storage, filters and the UI's translations.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingSignature { .. } => "missing_signature",
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::MalformedSignature(_) => "malformed_signature",
            Rejection::MissingTimestamp { .. } => "missing_timestamp",
            Rejection::StaleTimestamp { .. } => "stale_timestamp",
            Rejection::AddressNotAllowed(_) => "address_not_allowed",
        }
    }
}

/// Checks one delivery for `provider`. `secret` is `None` when the connection was set up without
/// one (then nothing is verified and `check` says so). `now` is injected for the replay windows.
pub fn verify(
    provider: Provider,
    settings: &ConnectionSettings,
    secret: Option<&Sensitive<String>>,
    inbound: &Inbound<'_>,
    now: DateTime<Utc>,
) -> Result<Verified, Rejection> {
    // The address allow-list, signature and replay window are all checked there.
    crate::providers::verify(provider, settings, secret, inbound, now)
}
