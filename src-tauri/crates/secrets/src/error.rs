//! What can go wrong with a secret, in words a receptionist can act on.
//!
//! Every variant's `Display` is the `message` half of the UI's `{code, message}` error shape: it
//! says what happened and names the fix, and it never contains a secret or a platform internal
//! (D-Bus names, error codes, stack traces). Internals go to the log, where the store that failed
//! writes them with `tracing` before returning one of these. [`SecretError::code`] is the `code`
//! half, from the closed list [`SecretError::CODES`] that the UI maps to its own wording.

use clientele_core::Provider;

/// Why a secret could not be read, saved or removed.
///
/// No variant carries the secret value, so `Debug`, `Display` and logs are always safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No keychain service answered (on Linux: no D-Bus session, or no Secret Service such as
    /// GNOME Keyring or KWallet). The platform store is chosen once per process, so after the
    /// user fixes it Clientele has to start again.
    #[error(
        "Clientele couldn't reach the system keychain (Secret Service). On Linux, install and \
         start GNOME Keyring or KWallet, then restart Clientele and try again."
    )]
    Unavailable,

    /// The keychain answered but would not open the secret: it is locked, or the user refused
    /// the unlock prompt.
    #[error(
        "The system keychain is locked. Unlock it (log in again, or open 'Passwords and Keys') \
         and try again."
    )]
    Locked,

    /// Secrets come from environment variables, which Clientele reads but never writes.
    #[error(
        "Clientele is reading secrets from environment variables, so it can't save or remove \
         them itself. Set or remove the environment variable {variable} where Clientele is \
         started, then restart it."
    )]
    ReadOnly {
        /// The variable the user has to set or remove, e.g. `CLIENTELE_SECRET_TIQUO_MAIN`.
        variable: String,
    },

    /// An empty (or whitespace-only) secret was offered to `set`. Saving it would look like "a
    /// secret is set" while every delivery fails to verify, so it is refused.
    #[error(
        "The {} is empty. Copy the whole {} from {}'s webhook settings and paste it again.",
        provider.secret_word(),
        provider.secret_word(),
        provider.display_name()
    )]
    Empty {
        /// Whose secret it was, to name it in the provider's own words.
        provider: Provider,
    },

    /// The secret's environment variable exists but holds nothing. Treating it as "no secret"
    /// would silently accept unsigned deliveries, so it is an error instead.
    #[error(
        "The environment variable {variable} is set but empty. Put the secret in it, or remove \
         it, then restart Clientele."
    )]
    EmptyVariable {
        /// The empty variable.
        variable: String,
    },

    /// An empty (or whitespace-only) relay device token was offered to `set_relay_token`. The
    /// token comes from pairing, so the fix is to pair again.
    #[error(
        "The relay's device token is empty, so it can't be saved. Pair this desk with the relay \
         again."
    )]
    EmptyToken,

    /// Something is stored, but it is not a usable secret (not text, or blank).
    #[error("Clientele can't read {what}. Set it again to replace it.")]
    Unreadable {
        /// A plain description such as "the signing secret saved for Tiquo connection 'main'".
        what: String,
    },

    /// The keychain holds several entries for one connection (for example one was added by
    /// hand), so Clientele can't tell which is right. Setting the secret again replaces them all.
    #[error("The system keychain holds more than one {what}. Set it again to replace them.")]
    Ambiguous {
        /// A plain description such as "signing secret for Tiquo connection 'main'".
        what: String,
    },

    /// A relay's sealed secret doesn't open with the relay's key: the key file was replaced or
    /// the key variable changed since the secret was saved (or the sealed row was tampered with,
    /// which looks the same).
    #[error(
        "The relay can't open the saved {what}: it was sealed with a different relay key \
         (relay.key was replaced, or CLIENTELE_RELAY_KEY changed). Put the original key back and \
         restart the relay, or set the secret again."
    )]
    RelayKeyMismatch {
        /// A plain description such as "signing secret for Tiquo connection 'main'".
        what: String,
    },

    /// The relay's database failed while reading or saving a sealed secret. The details are in
    /// the log.
    #[error(
        "The relay couldn't read or save connection secrets in its database. Try again; if it \
         keeps failing, check the relay's log (the disk may be full)."
    )]
    RelayDatabase,

    /// A relay was asked to keep a device token: relays hand tokens out, they don't pair with
    /// another relay.
    #[error(
        "This is a relay: it gives device tokens to desks and doesn't pair with another relay, \
         so it keeps no device token of its own. Pair a desk with this relay instead."
    )]
    RelayKeepsNoToken,

    /// Any other keychain failure. The details are in the log.
    #[error(
        "Clientele couldn't use the system keychain. Try again; if it keeps failing, restart \
         Clientele and check that your keychain app (such as 'Passwords and Keys') opens."
    )]
    Keychain,
}

impl SecretError {
    /// Every value [`SecretError::code`] can return, for the UI's mapping and its drift test.
    pub const CODES: [&'static str; 10] = [
        "keychain_unavailable",
        "keychain_locked",
        "keychain_ambiguous",
        "keychain_error",
        "secrets_read_only",
        "secret_empty",
        "secret_unreadable",
        "relay_key_mismatch",
        "relay_database",
        "relay_keeps_no_token",
    ];

    /// The stable identifier the UI maps to its wording (the `code` of `{code, message}`).
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::Unavailable => "keychain_unavailable",
            SecretError::Locked => "keychain_locked",
            SecretError::Ambiguous { .. } => "keychain_ambiguous",
            SecretError::Keychain => "keychain_error",
            SecretError::ReadOnly { .. } => "secrets_read_only",
            SecretError::Empty { .. }
            | SecretError::EmptyVariable { .. }
            | SecretError::EmptyToken => "secret_empty",
            SecretError::Unreadable { .. } => "secret_unreadable",
            SecretError::RelayKeyMismatch { .. } => "relay_key_mismatch",
            SecretError::RelayDatabase => "relay_database",
            SecretError::RelayKeepsNoToken => "relay_keeps_no_token",
        }
    }
}

/// "signing secret for Tiquo connection 'main'" — how messages name one connection's secret.
pub fn describe_secret(provider: Provider, connection: &str) -> String {
    format!(
        "{} for {} connection '{}'",
        provider.secret_word(),
        provider.display_name(),
        connection
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<SecretError> {
        vec![
            SecretError::Unavailable,
            SecretError::Locked,
            SecretError::ReadOnly {
                variable: "CLIENTELE_SECRET_TIQUO_MAIN".into(),
            },
            SecretError::Empty {
                provider: Provider::Vagaro,
            },
            SecretError::EmptyVariable {
                variable: "CLIENTELE_SECRET_TIQUO_MAIN".into(),
            },
            SecretError::EmptyToken,
            SecretError::Unreadable {
                what: "the x".into(),
            },
            SecretError::Ambiguous { what: "x".into() },
            SecretError::RelayKeyMismatch { what: "x".into() },
            SecretError::RelayDatabase,
            SecretError::RelayKeepsNoToken,
            SecretError::Keychain,
        ]
    }

    #[test]
    fn every_code_is_in_the_closed_list_and_every_listed_code_is_used() {
        let used: Vec<&str> = every_variant().iter().map(SecretError::code).collect();
        for code in &used {
            assert!(
                SecretError::CODES.contains(code),
                "{code} missing from CODES"
            );
        }
        for code in SecretError::CODES {
            assert!(
                used.contains(&code),
                "CODES lists {code} but no variant uses it"
            );
        }
    }

    #[test]
    fn messages_are_plain_sentences_that_name_a_fix() {
        for err in every_variant() {
            let message = err.to_string();
            assert!(message.ends_with('.'), "not a finished sentence: {message}");
            for internal in ["dbus", "D-Bus", "zbus", "Platform", "Error", "keyring::"] {
                assert!(
                    !message.contains(internal),
                    "message leaks an internal ({internal}): {message}"
                );
            }
        }
    }

    #[test]
    fn messages_use_the_providers_own_words() {
        let vagaro = SecretError::Empty {
            provider: Provider::Vagaro,
        }
        .to_string();
        assert!(vagaro.contains("verification token") && vagaro.contains("Vagaro"));
        let read_only = SecretError::ReadOnly {
            variable: "CLIENTELE_SECRET_TIQUO_MAIN".into(),
        }
        .to_string();
        assert!(read_only.contains("CLIENTELE_SECRET_TIQUO_MAIN"));
        assert_eq!(
            describe_secret(Provider::Tiquo, "main"),
            "signing secret for Tiquo connection 'main'"
        );
        let mismatch = SecretError::RelayKeyMismatch {
            what: describe_secret(Provider::Tiquo, "main"),
        }
        .to_string();
        assert!(
            mismatch.contains("the saved signing secret for Tiquo connection 'main'")
                && mismatch.contains("relay key"),
            "{mismatch}"
        );
    }
}
