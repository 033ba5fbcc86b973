//! Secrets held in this process only, for unit tests of code that needs a [`SecretStore`]. It
//! applies the same rules as the keychain (trimmed, never empty) so tests see real behaviour, and
//! forgets everything when dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use clientele_core::{Provider, Sensitive};

use crate::{SecretError, SecretStore};

/// An in-memory [`SecretStore`]; starts empty.
#[derive(Default)]
pub struct MemoryStore {
    secrets: Mutex<BTreeMap<(Provider, String), Sensitive<String>>>,
    relay_token: Mutex<Option<Sensitive<String>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A panic in another test thread while holding the lock cannot leave a half-written map
    /// (every change is one insert or remove), so a poisoned lock is still safe to use.
    fn secrets(&self) -> MutexGuard<'_, BTreeMap<(Provider, String), Sensitive<String>>> {
        self.secrets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Poisoning is harmless here for the same reason: every change is one assignment.
    fn relay_token_slot(&self) -> MutexGuard<'_, Option<Sensitive<String>>> {
        self.relay_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lists which connections have a secret, never the secrets.
impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accounts: Vec<String> = self
            .secrets()
            .keys()
            .map(|(provider, connection)| format!("{provider}/{connection}"))
            .collect();
        f.debug_struct("MemoryStore")
            .field("accounts", &accounts)
            .field("relay_token_set", &self.relay_token_slot().is_some())
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn get(
        &self,
        provider: Provider,
        connection: &str,
    ) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(self
            .secrets()
            .get(&(provider, connection.to_string()))
            .cloned())
    }

    fn set(
        &self,
        provider: Provider,
        connection: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), SecretError> {
        let value = crate::normalize(provider, secret)?;
        self.secrets().insert(
            (provider, connection.to_string()),
            Sensitive::new(value.to_string()),
        );
        Ok(())
    }

    fn delete(&self, provider: Provider, connection: &str) -> Result<(), SecretError> {
        self.secrets().remove(&(provider, connection.to_string()));
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "memory"
    }

    fn relay_token(&self) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(self.relay_token_slot().clone())
    }

    fn set_relay_token(&self, token: &Sensitive<String>) -> Result<(), SecretError> {
        let value = crate::normalize_token(token)?;
        *self.relay_token_slot() = Some(Sensitive::new(value.to_string()));
        Ok(())
    }

    fn delete_relay_token(&self) -> Result<(), SecretError> {
        *self.relay_token_slot() = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> Sensitive<String> {
        Sensitive::new(value.to_string())
    }

    #[test]
    fn set_get_replace_delete_round_trip() {
        let store = MemoryStore::new();
        assert!(store.get(Provider::Tiquo, "main").unwrap().is_none());
        assert!(!store.is_set(Provider::Tiquo, "main").unwrap());

        store
            .set(Provider::Tiquo, "main", &secret("first"))
            .unwrap();
        assert_eq!(
            store
                .get(Provider::Tiquo, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "first"
        );
        assert!(store.is_set(Provider::Tiquo, "main").unwrap());

        store
            .set(Provider::Tiquo, "main", &secret("second"))
            .unwrap();
        assert_eq!(
            store
                .get(Provider::Tiquo, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "second"
        );

        store.delete(Provider::Tiquo, "main").unwrap();
        assert!(store.get(Provider::Tiquo, "main").unwrap().is_none());
        store
            .delete(Provider::Tiquo, "main")
            .expect("deleting nothing is fine");
    }

    #[test]
    fn secrets_are_kept_per_provider_and_connection() {
        let store = MemoryStore::new();
        store.set(Provider::Tiquo, "main", &secret("t")).unwrap();
        store.set(Provider::Zupy, "main", &secret("z")).unwrap();
        store.set(Provider::Tiquo, "other", &secret("o")).unwrap();
        assert_eq!(
            store
                .get(Provider::Tiquo, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "t"
        );
        assert_eq!(
            store.get(Provider::Zupy, "main").unwrap().unwrap().expose(),
            "z"
        );
        assert_eq!(
            store
                .get(Provider::Tiquo, "other")
                .unwrap()
                .unwrap()
                .expose(),
            "o"
        );
    }

    #[test]
    fn pasted_whitespace_is_trimmed_and_empty_secrets_are_refused() {
        let store = MemoryStore::new();
        store
            .set(Provider::Vagaro, "main", &secret("  token-123\r\n"))
            .unwrap();
        assert_eq!(
            store
                .get(Provider::Vagaro, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "token-123"
        );

        for blank in ["", "   ", "\n", " \t\r\n "] {
            let err = store
                .set(Provider::Vagaro, "main", &secret(blank))
                .unwrap_err();
            assert_eq!(
                err,
                SecretError::Empty {
                    provider: Provider::Vagaro
                }
            );
            assert_eq!(err.code(), "secret_empty");
        }
        assert_eq!(
            store
                .get(Provider::Vagaro, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "token-123",
            "a refused set must leave the old secret in place"
        );
    }

    #[test]
    fn the_relay_token_is_kept_apart_from_connection_secrets() {
        let store = MemoryStore::new();
        assert!(store.relay_token().unwrap().is_none());
        store
            .delete_relay_token()
            .expect("forgetting a token that is not there is fine");

        store
            .set(Provider::Tiquo, "main", &secret("whsec_a"))
            .unwrap();
        store.set_relay_token(&secret(" clt_first\n")).unwrap();
        assert_eq!(
            store.relay_token().unwrap().unwrap().expose(),
            "clt_first",
            "the token is trimmed like a secret"
        );
        store.set_relay_token(&secret("clt_second")).unwrap();
        assert_eq!(store.relay_token().unwrap().unwrap().expose(), "clt_second");

        assert_eq!(
            store.set_relay_token(&secret(" \n")).unwrap_err(),
            SecretError::EmptyToken
        );
        assert_eq!(
            store.relay_token().unwrap().unwrap().expose(),
            "clt_second",
            "a refused token must leave the saved one in place"
        );

        store.delete_relay_token().unwrap();
        assert!(store.relay_token().unwrap().is_none());
        assert_eq!(
            store
                .get(Provider::Tiquo, "main")
                .unwrap()
                .unwrap()
                .expose(),
            "whsec_a",
            "forgetting the token must not touch connection secrets"
        );
    }

    #[test]
    fn debug_lists_accounts_but_never_secrets() {
        let store = MemoryStore::new();
        store
            .set(Provider::Tiquo, "main", &secret("whsec_topsecret"))
            .unwrap();
        store.set_relay_token(&secret("clt_tokensecret")).unwrap();
        let shown = format!("{store:?} {store:#?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("tokensecret"),
            "Debug leaked the secret: {shown}"
        );
        assert!(shown.contains("tiquo/main"), "{shown}");
        assert_eq!(store.describe(), "memory");
    }
}
