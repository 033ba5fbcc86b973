//! Deciding whether a delivery is genuine. Every check runs on the exact bytes received and every
//! comparison of secrets or signatures is constant-time (`subtle`).

use crate::provider::{ConnectionSettings, Provider};
use crate::sensitive::Sensitive;
use crate::time::human_duration;
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
    /// `skew_secs` is this computer's time minus the message's: positive when it is old.
    #[error("{}", stale_words(*skew_secs))]
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

fn stale_words(skew_secs: i64) -> String {
    let off = human_duration(skew_secs);
    if skew_secs >= 0 {
        format!(
            "The message was sent {off} before it arrived, which is too long ago; it may be an old message sent again, or this computer's clock may be wrong."
        )
    } else {
        format!(
            "The message is dated {off} ahead of this computer's clock; this computer's clock may be wrong."
        )
    }
}

/// A refusal as staff read it: a plain sentence for the Activity list, and the technical detail
/// behind "Show technical details" when the stored reason has any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalWords {
    pub plain: String,
    pub technical: Option<String>,
}

/// What the Activity list says about a stored refusal (`code` and `reason` as the refusal log
/// keeps them; `provider_name` as the request named it). Reads refusals stored by earlier
/// versions, and those copied from a relay ("At the relay: …"), too: the log is kept, and a relay
/// may run another version.
pub fn refusal_words(code: &str, provider_name: &str, reason: &str) -> RefusalWords {
    const RELAY: &str = "At the relay: ";
    if let Some(rest) = reason.strip_prefix(RELAY) {
        let words = refusal_words(code, provider_name, rest);
        return RefusalWords {
            plain: format!("{RELAY}{}", words.plain),
            technical: words.technical.map(|t| format!("{RELAY}{t}")),
        };
    }
    let plain = match code {
        "malformed_signature" => format!(
            "The signature sent with this message couldn't be read, so Clientele couldn't check that {provider_name} sent it."
        ),
        // Earlier versions wrote "(3600 seconds off)".
        "stale_timestamp" => match legacy_skew(reason) {
            Some(skew_secs) => Rejection::StaleTimestamp { skew_secs }.to_string(),
            None => reason.to_string(),
        },
        _ => reason.to_string(),
    };
    let technical = (plain != reason).then(|| reason.to_string());
    RefusalWords { plain, technical }
}

/// The seconds of "(N seconds off)", as earlier versions wrote a stale time stamp's refusal.
fn legacy_skew(reason: &str) -> Option<i64> {
    let end = reason.find(" seconds off)")?;
    let start = reason[..end].rfind('(')? + 1;
    reason[start..end].trim().parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_time_stamps_say_how_far_off_in_words() {
        assert_eq!(
            Rejection::StaleTimestamp { skew_secs: 3_600 }.to_string(),
            "The message was sent 1 hour before it arrived, which is too long ago; it may be an old message sent again, or this computer's clock may be wrong."
        );
        assert!(
            Rejection::StaleTimestamp { skew_secs: -600 }
                .to_string()
                .starts_with("The message is dated 10 minutes ahead")
        );
    }

    /// Every refusal the list shows is plain words; what was technical moves to the detail.
    #[test]
    fn refusals_read_as_plain_words_with_the_detail_kept_apart() {
        let legacy = "The message is too old or from the future (3600 seconds off); it may be a replay of an old message, or this computer's clock may be wrong.";
        let words = refusal_words("stale_timestamp", "Tiquo", legacy);
        assert!(
            words.plain.contains("1 hour before it arrived"),
            "{words:?}"
        );
        assert!(!words.plain.contains("seconds"), "{words:?}");
        assert_eq!(words.technical.as_deref(), Some(legacy));

        let malformed =
            Rejection::MalformedSignature("a webhook-signature entry isn't valid base64".into());
        let words = refusal_words(
            malformed.code(),
            "Standard Webhooks",
            &malformed.to_string(),
        );
        assert_eq!(
            words.plain,
            "The signature sent with this message couldn't be read, so Clientele couldn't check that Standard Webhooks sent it."
        );
        assert!(words.technical.unwrap().contains("base64"));

        let relayed = format!("At the relay: {legacy}");
        let words = refusal_words("stale_timestamp", "Tiquo", &relayed);
        assert!(
            words
                .plain
                .starts_with("At the relay: The message was sent 1 hour"),
            "{words:?}"
        );

        // Every other refusal is already a plain sentence, kept as it is.
        for rejection in [
            Rejection::MissingSignature {
                secret_word: "signing secret",
            },
            Rejection::BadSignature {
                provider: "Vagaro",
                secret_word: "verification token",
            },
            Rejection::MissingTimestamp { provider: "Tiquo" },
            Rejection::StaleTimestamp { skew_secs: 400 },
            Rejection::AddressNotAllowed("203.0.113.9".parse().unwrap()),
        ] {
            let reason = rejection.to_string();
            let words = refusal_words(rejection.code(), "Vagaro", &reason);
            assert_eq!(
                (words.plain.as_str(), words.technical),
                (reason.as_str(), None)
            );
            assert!(!reason.contains("seconds off"), "{reason}");
        }
    }
}
