//! Secrets from environment variables, for servers, containers and CI where there is no keychain
//! (`clientele serve --secrets env`).
//!
//! Each connection's secret is in `CLIENTELE_SECRET_<PROVIDER>_<CONNECTION>` (see
//! [`env_var_name`]), and a desk's relay device token in [`RELAY_TOKEN_VARIABLE`]
//! (`CLIENTELE_RELAY_TOKEN`), a name no connection's variable can take (those all start
//! `CLIENTELE_SECRET_`). The store is read-only: a process cannot change the environment it was
//! started with in a way its operator would see, so `set` and `delete` answer
//! [`SecretError::ReadOnly`] naming the variable to set instead.
//!
//! The variables are read on every call (not cached at start) so the store never holds a copy of
//! a secret it was not asked for. Values are trimmed like keychain secrets, and a variable that is
//! present but blank is an error rather than "no secret", because "no secret" could mean unsigned
//! deliveries get accepted.

use std::fmt;

use clientele_core::{Provider, Sensitive};

use crate::{SecretError, SecretStore};

/// The environment variable that holds one connection's secret:
/// `CLIENTELE_SECRET_<PROVIDER>_<CONNECTION>`, ASCII upper-cased, with every character other than
/// `A`–`Z` and `0`–`9` replaced by `_`.
///
/// `(Tiquo, "main-shop")` → `CLIENTELE_SECRET_TIQUO_MAIN_SHOP`. Connection names that differ
/// only in punctuation or case (`main-shop`, `main_shop`, `Main.Shop`) share one variable.
pub fn env_var_name(provider: Provider, connection: &str) -> String {
    format!("CLIENTELE_SECRET_{}_{}", provider.id(), connection)
        .chars()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The environment variable that holds the desk's relay device token.
pub const RELAY_TOKEN_VARIABLE: &str = "CLIENTELE_RELAY_TOKEN";

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Read-only secrets from `CLIENTELE_SECRET_*` environment variables.
pub struct EnvStore {
    source: Source,
}

enum Source {
    /// The process environment.
    Process,
    /// An injected lookup (tests: the process environment can't be changed safely while other
    /// threads run, and `std::env::set_var` is `unsafe` in edition 2024).
    Lookup(Box<Lookup>),
}

impl EnvStore {
    /// Reads the process environment.
    pub fn new() -> Self {
        Self {
            source: Source::Process,
        }
    }

    /// Reads variables through `lookup` instead of the process environment: `lookup(name)` is
    /// the variable's value, or `None` when it is not set.
    pub fn with_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            source: Source::Lookup(Box::new(lookup)),
        }
    }

    fn read(&self, variable: &str) -> Result<Option<String>, SecretError> {
        match &self.source {
            Source::Lookup(lookup) => Ok(lookup(variable)),
            Source::Process => match std::env::var(variable) {
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                // The rejected value is the secret: it is neither logged nor kept.
                Err(std::env::VarError::NotUnicode(_)) => {
                    tracing::warn!(store = "env", variable, "variable is not valid UTF-8");
                    Err(SecretError::Unreadable {
                        what: format!("the environment variable {variable}"),
                    })
                }
            },
        }
    }
}

impl Default for EnvStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EnvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Process => "process environment",
            Source::Lookup(_) => "injected lookup",
        };
        f.debug_struct("EnvStore").field("source", &source).finish()
    }
}

impl EnvStore {
    /// The trimmed value of `variable`: `None` when it is not set, an error when it is blank.
    fn read_trimmed(&self, variable: String) -> Result<Option<Sensitive<String>>, SecretError> {
        let Some(value) = self.read(&variable)? else {
            return Ok(None);
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            tracing::warn!(store = "env", variable, "variable is set but blank");
            return Err(SecretError::EmptyVariable { variable });
        }
        Ok(Some(Sensitive::new(trimmed.to_string())))
    }
}

impl SecretStore for EnvStore {
    fn get(
        &self,
        provider: Provider,
        connection: &str,
    ) -> Result<Option<Sensitive<String>>, SecretError> {
        self.read_trimmed(env_var_name(provider, connection))
    }

    fn set(
        &self,
        provider: Provider,
        connection: &str,
        _secret: &Sensitive<String>,
    ) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly {
            variable: env_var_name(provider, connection),
        })
    }

    fn delete(&self, provider: Provider, connection: &str) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly {
            variable: env_var_name(provider, connection),
        })
    }

    fn describe(&self) -> &'static str {
        "environment variables"
    }

    fn relay_token(&self) -> Result<Option<Sensitive<String>>, SecretError> {
        self.read_trimmed(RELAY_TOKEN_VARIABLE.to_string())
    }

    fn set_relay_token(&self, _token: &Sensitive<String>) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly {
            variable: RELAY_TOKEN_VARIABLE.to_string(),
        })
    }

    fn delete_relay_token(&self) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly {
            variable: RELAY_TOKEN_VARIABLE.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn store_with(vars: &[(&str, &str)]) -> EnvStore {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvStore::with_lookup(move |name| vars.get(name).cloned())
    }

    #[test]
    fn variable_names_are_upper_case_with_underscores() {
        let cases = [
            (
                Provider::Tiquo,
                "main-shop",
                "CLIENTELE_SECRET_TIQUO_MAIN_SHOP",
            ),
            (Provider::Tiquo, "main", "CLIENTELE_SECRET_TIQUO_MAIN"),
            (
                Provider::Resdiary,
                "Soho.2",
                "CLIENTELE_SECRET_RESDIARY_SOHO_2",
            ),
            (
                Provider::Standard,
                "a b/c",
                "CLIENTELE_SECRET_STANDARD_A_B_C",
            ),
            (Provider::Zupy, "café", "CLIENTELE_SECRET_ZUPY_CAF_"),
            (Provider::Vagaro, "", "CLIENTELE_SECRET_VAGARO_"),
        ];
        for (provider, connection, expected) in cases {
            assert_eq!(
                env_var_name(provider, connection),
                expected,
                "{connection:?}"
            );
        }
    }

    #[test]
    fn reads_and_trims_the_connections_variable() {
        let store = store_with(&[("CLIENTELE_SECRET_TIQUO_MAIN_SHOP", "  whsec_abc\n")]);
        let secret = store.get(Provider::Tiquo, "main-shop").unwrap();
        assert_eq!(
            secret.as_ref().map(|s| s.expose().as_str()),
            Some("whsec_abc")
        );
        assert!(store.is_set(Provider::Tiquo, "main-shop").unwrap());
    }

    #[test]
    fn an_unset_variable_means_no_secret() {
        let store = store_with(&[("CLIENTELE_SECRET_TIQUO_MAIN", "x")]);
        assert!(store.get(Provider::Zupy, "main").unwrap().is_none());
        assert!(!store.is_set(Provider::Tiquo, "other").unwrap());
    }

    #[test]
    fn a_blank_variable_is_an_error_not_a_missing_secret() {
        let store = store_with(&[("CLIENTELE_SECRET_PLAIN_MAIN", " \n")]);
        let err = store.get(Provider::Plain, "main").unwrap_err();
        assert_eq!(err.code(), "secret_empty");
        assert!(err.to_string().contains("CLIENTELE_SECRET_PLAIN_MAIN"));
    }

    #[test]
    fn set_and_delete_say_which_variable_to_set() {
        let store = store_with(&[]);
        let secret = Sensitive::new("whsec_topsecret".to_string());
        for err in [
            store
                .set(Provider::Tiquo, "main-shop", &secret)
                .unwrap_err(),
            store.delete(Provider::Tiquo, "main-shop").unwrap_err(),
        ] {
            assert_eq!(err.code(), "secrets_read_only");
            let message = err.to_string();
            assert!(
                message.contains("CLIENTELE_SECRET_TIQUO_MAIN_SHOP"),
                "{message}"
            );
            assert!(!message.contains("topsecret"), "{message}");
        }
    }

    #[test]
    fn the_relay_token_is_read_trimmed_from_its_own_variable() {
        let store = store_with(&[("CLIENTELE_RELAY_TOKEN", " clt_abc\n")]);
        assert_eq!(
            store
                .relay_token()
                .unwrap()
                .as_ref()
                .map(|t| t.expose().as_str()),
            Some("clt_abc")
        );
        assert!(store_with(&[]).relay_token().unwrap().is_none());
    }

    #[test]
    fn a_blank_relay_token_variable_is_an_error_not_a_missing_token() {
        let store = store_with(&[("CLIENTELE_RELAY_TOKEN", "  ")]);
        let err = store.relay_token().unwrap_err();
        assert_eq!(
            err,
            SecretError::EmptyVariable {
                variable: "CLIENTELE_RELAY_TOKEN".into()
            }
        );
        assert_eq!(err.code(), "secret_empty");
    }

    #[test]
    fn setting_or_forgetting_the_relay_token_names_its_variable() {
        let store = store_with(&[("CLIENTELE_RELAY_TOKEN", "clt_old")]);
        let token = Sensitive::new("clt_topsecret".to_string());
        for err in [
            store.set_relay_token(&token).unwrap_err(),
            store.delete_relay_token().unwrap_err(),
        ] {
            assert_eq!(err.code(), "secrets_read_only");
            let message = err.to_string();
            assert!(message.contains("CLIENTELE_RELAY_TOKEN"), "{message}");
            assert!(!message.contains("topsecret"), "{message}");
        }
        assert_eq!(
            store.relay_token().unwrap().unwrap().expose(),
            "clt_old",
            "nothing changes"
        );
    }

    #[test]
    fn the_process_environment_is_read_when_nothing_is_injected() {
        // Reading needs no `set_var`: PATH is set in any test environment, and a name this
        // unlikely is not.
        let store = EnvStore::new();
        assert!(store.read("PATH").unwrap().is_some());
        let unlikely = format!("CLIENTELE_SECRET_TIQUO_UNSET_{}", std::process::id());
        assert!(store.read(&unlikely).unwrap().is_none());
        assert!(store.get(Provider::Tiquo, &unlikely).unwrap().is_none());
        assert_eq!(store.describe(), "environment variables");
    }

    #[test]
    fn debug_shows_neither_values_nor_names() {
        let store = store_with(&[("CLIENTELE_SECRET_TIQUO_MAIN", "whsec_topsecret")]);
        let shown = format!("{store:?} {store:#?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("EnvStore"));
    }
}
