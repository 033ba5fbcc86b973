//! Where connection secrets live, behind one trait so the listener, the CLI and the desktop app
//! never care which:
//!
//! - [`KeychainStore`]: the operating system's keychain — the desktop app's home for secrets;
//! - [`EnvStore`]: read-only `CLIENTELE_SECRET_*` environment variables, for servers and CI
//!   (`clientele serve --secrets env`);
//! - [`MemoryStore`]: this process only, for unit tests.
//!
//! Besides one secret per connection, a store keeps the desk's **relay device token**: what
//! pairing with a relay handed out, which the desk shows the relay on every pull
//! ([`SecretStore::relay_token`]). It lives beside the connection secrets because it deserves the
//! same care (whoever holds it can read every delivery the relay keeps), under a name that can't
//! collide with theirs.
//!
//! Rules every store follows, so behaviour doesn't change with the store:
//!
//! - Secrets only travel as [`Sensitive<String>`], whose `Debug` is redacted. No error, log line
//!   or `Debug` output here contains a secret.
//! - `set` trims surrounding whitespace and newlines (a pasted secret often carries a trailing
//!   newline, which would make every signature check fail), and refuses a secret that is empty
//!   after trimming ([`SecretError::Empty`]). Values read back are trimmed too.
//! - `delete` of a secret that is not there succeeds: the user's goal ("no secret") is met.
//! - Failures are [`SecretError`]s: a plain sentence naming the fix plus a stable
//!   [`SecretError::code`], the `{code, message}` the UI shows. Details go to `tracing`.
//!
//! Nothing here returns a secret to the webview: the Tauri commands built on this may set,
//! replace, delete and ask [`SecretStore::is_set`], and only the listener calls `get`.

mod env;
mod error;
mod keychain;
mod memory;

pub use clientele_core::{Provider, Sensitive};
pub use env::{EnvStore, RELAY_TOKEN_VARIABLE, env_var_name};
pub use error::{SecretError, describe_secret};
pub use keychain::{KeychainStore, RELAY_TOKEN_ACCOUNT};
pub use memory::MemoryStore;

/// A place that keeps one secret per `(provider, connection)`.
///
/// Keychain calls block (D-Bus round trips, possibly an unlock prompt); call them from
/// `spawn_blocking` in async code.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The connection's secret, or `None` when none is set.
    fn get(
        &self,
        provider: Provider,
        connection: &str,
    ) -> Result<Option<Sensitive<String>>, SecretError>;

    /// Saves (or replaces) the connection's secret, trimmed of surrounding whitespace. An empty
    /// secret is refused with [`SecretError::Empty`] and leaves any existing secret in place.
    fn set(
        &self,
        provider: Provider,
        connection: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), SecretError>;

    /// Removes the connection's secret. Removing a secret that is not there is `Ok`.
    fn delete(&self, provider: Provider, connection: &str) -> Result<(), SecretError>;

    /// Whether the connection has a secret, for the UI's "is one set?" (which never sees it).
    fn is_set(&self, provider: Provider, connection: &str) -> Result<bool, SecretError> {
        Ok(self.get(provider, connection)?.is_some())
    }

    /// Where secrets are kept, for sentences such as "Secrets are kept in {describe}":
    /// "the system keychain", "environment variables" or "memory".
    fn describe(&self) -> &'static str;

    /// The desk's relay device token, or `None` when this desk has not paired with a relay.
    fn relay_token(&self) -> Result<Option<Sensitive<String>>, SecretError>;

    /// Saves (or replaces) the desk's relay device token, trimmed of surrounding whitespace. An
    /// empty token is refused with [`SecretError::EmptyToken`] and leaves any saved one in place.
    fn set_relay_token(&self, token: &Sensitive<String>) -> Result<(), SecretError>;

    /// Forgets the desk's relay device token (unpairing). Forgetting a token that is not there
    /// is `Ok`.
    fn delete_relay_token(&self) -> Result<(), SecretError>;
}

/// The value `set` stores: trimmed, and refused with [`SecretError::Empty`] when that leaves
/// nothing. Public so stores outside this crate (the relay's sealed store) apply the same rule.
pub fn normalize(provider: Provider, secret: &Sensitive<String>) -> Result<&str, SecretError> {
    let trimmed = secret.expose().trim();
    if trimmed.is_empty() {
        Err(SecretError::Empty { provider })
    } else {
        Ok(trimmed)
    }
}

/// The relay device token `set_relay_token` stores: trimmed, and refused with
/// [`SecretError::EmptyToken`] when that leaves nothing.
fn normalize_token(token: &Sensitive<String>) -> Result<&str, SecretError> {
    let trimmed = token.expose().trim();
    if trimmed.is_empty() {
        Err(SecretError::EmptyToken)
    } else {
        Ok(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_can_be_chosen_at_run_time() {
        let stores: Vec<Box<dyn SecretStore>> = vec![
            Box::new(KeychainStore::new("clientele-unit")),
            Box::new(EnvStore::new()),
            Box::new(MemoryStore::new()),
        ];
        let names: Vec<&str> = stores.iter().map(|s| s.describe()).collect();
        assert_eq!(
            names,
            ["the system keychain", "environment variables", "memory"]
        );
    }

    #[test]
    fn normalize_trims_and_refuses_blank() {
        let pasted = Sensitive::new("\twhsec_abc \n".to_string());
        assert_eq!(normalize(Provider::Tiquo, &pasted).unwrap(), "whsec_abc");
        let blank = Sensitive::new(" \r\n".to_string());
        assert_eq!(
            normalize(Provider::Tiquo, &blank).unwrap_err(),
            SecretError::Empty {
                provider: Provider::Tiquo
            }
        );
    }

    #[test]
    fn normalize_token_trims_and_refuses_blank() {
        let pasted = Sensitive::new(" clt_abc\n".to_string());
        assert_eq!(normalize_token(&pasted).unwrap(), "clt_abc");
        let blank = Sensitive::new("\t\r\n".to_string());
        assert_eq!(
            normalize_token(&blank).unwrap_err(),
            SecretError::EmptyToken
        );
    }

    #[test]
    fn keychain_store_debug_shows_only_the_service() {
        let shown = format!("{:?}", KeychainStore::new("clientele-unit"));
        assert_eq!(shown, r#"KeychainStore { service: "clientele-unit" }"#);
    }
}
