//! Secrets in the operating system's keychain: Keychain Services on macOS, Credential Manager on
//! Windows, the Secret Service (GNOME Keyring, KWallet) over D-Bus on Linux.
//!
//! Why the keychain: it is where a desktop user expects passwords to live, it is encrypted and
//! unlocked with their login, and it keeps secrets out of Clientele's SQLite file, exports and
//! backups.
//!
//! How the platform store is chosen: the `keyring` crate (4.x, built on `keyring-core`) with its
//! `v1` feature picks the platform's store the first time an entry is made in this process
//! (`keyring::Entry::new` initialises it once, then `keyring-core`'s default store is used). On
//! Linux that is `zbus-secret-service-keyring-store`, which connects to the session bus at that
//! moment; if there is no bus or no Secret Service then, every later call in this process reports
//! [`SecretError::Unavailable`] (`keyring::Entry::store_status` keeps the reason, which we log).
//! There is no silent in-memory fallback in keyring 4, so a value that was "saved" really is in
//! the keychain.
//!
//! Each secret is one keychain item: service [`KeychainStore::default_service`] (`clientele`, or
//! `clientele-dev` in debug builds so development never touches the installed app's secrets),
//! account `{provider}/{connection}` such as `tiquo/main`. On Linux the Secret Service item has the
//! attributes `service` and `username` with those values, which is how `secret-tool` finds it.
//! The desk's relay device token is one more item of the same service, account
//! [`RELAY_TOKEN_ACCOUNT`] (`relay:device-token`): no connection's account can be that, because
//! theirs all contain a `/`.
//!
//! The calls block on the keychain (D-Bus round trips, and on some systems an unlock prompt): from
//! async code call them inside `spawn_blocking`.

use clientele_core::{Provider, Sensitive};

use crate::error::describe_secret;
use crate::{SecretError, SecretStore};

/// The keychain account of the desk's relay device token. It has no `/`, so it never equals a
/// connection's `{provider}/{connection}` account.
pub const RELAY_TOKEN_ACCOUNT: &str = "relay:device-token";

/// Secrets in the OS keychain, under one keychain service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeychainStore {
    service: String,
}

impl KeychainStore {
    /// A store for the keychain items of `service`. Nothing is contacted until the first call.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_string(),
        }
    }

    /// The service name the app uses: `clientele` in release builds, `clientele-dev` in debug
    /// builds, so a developer's `cargo run` never reads or overwrites the installed app's secrets.
    pub fn default_service() -> &'static str {
        if cfg!(debug_assertions) {
            "clientele-dev"
        } else {
            "clientele"
        }
    }

    /// The keychain service name this store reads and writes.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The keychain account of one connection's secret: `{provider}/{connection}`, e.g.
    /// `tiquo/main`.
    pub fn account(provider: Provider, connection: &str) -> String {
        format!("{}/{}", provider.id(), connection)
    }

    fn entry(&self, op: Op, account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, account).map_err(|err| {
            if let (keyring::Error::NoDefaultStore, Err(why)) =
                (&err, keyring::Entry::store_status())
            {
                tracing::warn!(
                    store = "keychain",
                    service = %self.service,
                    account,
                    op = op.name(),
                    error = %why,
                    "the system keychain could not be opened in this process"
                );
                return SecretError::Unavailable;
            }
            self.failed(op, account, err)
        })
    }

    /// Logs what went wrong (never the secret) and turns it into the user's words.
    fn failed(&self, op: Op, account: &str, err: keyring::Error) -> SecretError {
        let kind = classify(&err);
        tracing::warn!(
            store = "keychain",
            service = %self.service,
            account,
            op = op.name(),
            error = %loggable(&err),
            "keychain call failed"
        );
        match kind {
            Kind::Unavailable => SecretError::Unavailable,
            Kind::Locked => SecretError::Locked,
            Kind::Unreadable => SecretError::Unreadable {
                what: format!("the {}", op.what()),
            },
            Kind::Ambiguous => SecretError::Ambiguous { what: op.what() },
            Kind::Other => SecretError::Keychain,
        }
    }

    /// Removes every item that matched when the keychain reported several for one account.
    /// `deletions` performs one item's deletion per step (the items are `keyring-core` entries,
    /// which this crate only reaches through `keyring`).
    fn delete_all(
        &self,
        op: Op,
        account: &str,
        deletions: impl ExactSizeIterator<Item = keyring::Result<()>>,
    ) -> Result<(), SecretError> {
        tracing::info!(
            store = "keychain",
            service = %self.service,
            account,
            count = deletions.len(),
            "removing duplicate keychain items"
        );
        for deletion in deletions {
            match deletion {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(err) => return Err(self.failed(op, account, err)),
            }
        }
        Ok(())
    }
}

impl Default for KeychainStore {
    /// The app's own service, [`KeychainStore::default_service`].
    fn default() -> Self {
        Self::new(Self::default_service())
    }
}

impl KeychainStore {
    /// The trimmed value of `account`'s item, or `None` when there is none.
    fn read(&self, op: Op, account: &str) -> Result<Option<Sensitive<String>>, SecretError> {
        let entry = self.entry(op, account)?;
        match entry.get_password() {
            Ok(value) => {
                let trimmed = value.trim();
                if trimmed.is_empty() {
                    tracing::warn!(store = "keychain", service = %self.service, account, "stored secret is blank");
                    return Err(SecretError::Unreadable {
                        what: format!("the {}", op.what()),
                    });
                }
                Ok(Some(Sensitive::new(trimmed.to_string())))
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(self.failed(op, account, err)),
        }
    }

    /// Saves `value` (already normalized) as `account`'s one item.
    fn write(&self, op: Op, account: &str, value: &str) -> Result<(), SecretError> {
        let entry = self.entry(op, account)?;
        match entry.set_password(value) {
            Ok(()) => {}
            Err(keyring::Error::Ambiguous(duplicates)) => {
                // Setting means "this is now the secret": clear every matching item, then save one.
                self.delete_all(
                    op,
                    account,
                    duplicates.iter().map(|d| d.delete_credential()),
                )?;
                entry
                    .set_password(value)
                    .map_err(|err| self.failed(op, account, err))?;
            }
            Err(err) => return Err(self.failed(op, account, err)),
        }
        tracing::info!(store = "keychain", service = %self.service, account, "secret saved");
        Ok(())
    }

    /// Removes every item of `account`; none there is `Ok`.
    fn remove(&self, op: Op, account: &str) -> Result<(), SecretError> {
        let entry = self.entry(op, account)?;
        match entry.delete_credential() {
            Ok(()) => {
                tracing::info!(store = "keychain", service = %self.service, account, "secret removed");
                Ok(())
            }
            Err(keyring::Error::NoEntry) => Ok(()),
            Err(keyring::Error::Ambiguous(duplicates)) => self.delete_all(
                op,
                account,
                duplicates.iter().map(|d| d.delete_credential()),
            ),
            Err(err) => Err(self.failed(op, account, err)),
        }
    }
}

impl SecretStore for KeychainStore {
    fn get(
        &self,
        provider: Provider,
        connection: &str,
    ) -> Result<Option<Sensitive<String>>, SecretError> {
        let op = Op::new(Action::Get, Item::Secret(provider, connection));
        self.read(op, &Self::account(provider, connection))
    }

    fn set(
        &self,
        provider: Provider,
        connection: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), SecretError> {
        let value = crate::normalize(provider, secret)?;
        let op = Op::new(Action::Set, Item::Secret(provider, connection));
        self.write(op, &Self::account(provider, connection), value)
    }

    fn delete(&self, provider: Provider, connection: &str) -> Result<(), SecretError> {
        let op = Op::new(Action::Delete, Item::Secret(provider, connection));
        self.remove(op, &Self::account(provider, connection))
    }

    /// Asks for the item's attributes rather than its secret, so answering "is one set?" never
    /// decrypts or copies the secret.
    fn is_set(&self, provider: Provider, connection: &str) -> Result<bool, SecretError> {
        let op = Op::new(Action::IsSet, Item::Secret(provider, connection));
        let account = Self::account(provider, connection);
        let entry = self.entry(op, &account)?;
        match entry.inner.get_attributes() {
            Ok(_) | Err(keyring::Error::Ambiguous(_)) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(err) => Err(self.failed(op, &account, err)),
        }
    }

    fn describe(&self) -> &'static str {
        "the system keychain"
    }

    fn relay_token(&self) -> Result<Option<Sensitive<String>>, SecretError> {
        self.read(Op::new(Action::Get, Item::RelayToken), RELAY_TOKEN_ACCOUNT)
    }

    fn set_relay_token(&self, token: &Sensitive<String>) -> Result<(), SecretError> {
        let value = crate::normalize_token(token)?;
        self.write(
            Op::new(Action::Set, Item::RelayToken),
            RELAY_TOKEN_ACCOUNT,
            value,
        )
    }

    fn delete_relay_token(&self) -> Result<(), SecretError> {
        self.remove(
            Op::new(Action::Delete, Item::RelayToken),
            RELAY_TOKEN_ACCOUNT,
        )
    }
}

/// Which call failed on which item, for the log and for naming the item in a message.
#[derive(Clone, Copy)]
struct Op<'a> {
    action: Action,
    item: Item<'a>,
}

#[derive(Clone, Copy)]
enum Action {
    Get,
    Set,
    Delete,
    IsSet,
}

#[derive(Clone, Copy)]
enum Item<'a> {
    /// One connection's secret.
    Secret(Provider, &'a str),
    /// The desk's relay device token.
    RelayToken,
}

impl<'a> Op<'a> {
    fn new(action: Action, item: Item<'a>) -> Self {
        Op { action, item }
    }

    fn name(self) -> &'static str {
        match self.action {
            Action::Get => "get",
            Action::Set => "set",
            Action::Delete => "delete",
            Action::IsSet => "is_set",
        }
    }

    fn what(self) -> String {
        match self.item {
            Item::Secret(provider, connection) => describe_secret(provider, connection),
            Item::RelayToken => "device token for the relay".to_string(),
        }
    }
}

/// The user-facing kind of a keychain failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Locked,
    Unreadable,
    Ambiguous,
    Other,
}

/// Phrases in a platform error chain that mean "there is no keychain service to talk to": the
/// `secret-service` crate's `Unavailable`, and the D-Bus errors for a name nobody owns (the
/// Secret Service went away after this process connected).
const UNAVAILABLE_MARKERS: [&str; 3] = [
    "no secret service provider",
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
];

fn classify(err: &keyring::Error) -> Kind {
    match err {
        keyring::Error::NoDefaultStore => Kind::Unavailable,
        keyring::Error::NoStorageAccess(_) => Kind::Locked,
        keyring::Error::PlatformFailure(inner) => {
            let chain = error_chain(inner.as_ref());
            if UNAVAILABLE_MARKERS.iter().any(|m| chain.contains(m)) {
                Kind::Unavailable
            } else {
                Kind::Other
            }
        }
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => Kind::Unreadable,
        keyring::Error::Ambiguous(_) => Kind::Ambiguous,
        _ => Kind::Other,
    }
}

/// A description of a keychain error that is safe to log. `BadEncoding` and `BadDataFormat`
/// carry the stored bytes (the secret), and their `Debug` would print them, so those are
/// described without their data.
fn loggable(err: &keyring::Error) -> String {
    match err {
        keyring::Error::BadEncoding(_) => {
            "stored secret is not valid UTF-8 (value not logged)".into()
        }
        keyring::Error::BadDataFormat(..) => "stored secret is malformed (value not logged)".into(),
        keyring::Error::Ambiguous(items) => format!("{} keychain items match", items.len()),
        other => error_chain(other),
    }
}

/// `Display` of an error and each of its sources, joined with " <- ".
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(" <- ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(message: &str) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(std::io::Error::other(message.to_string()))
    }

    #[test]
    fn accounts_are_provider_slash_connection() {
        assert_eq!(
            KeychainStore::account(Provider::Tiquo, "main"),
            "tiquo/main"
        );
        assert_eq!(
            KeychainStore::account(Provider::Standard, "main-shop"),
            "standard/main-shop"
        );
    }

    #[test]
    fn debug_builds_use_the_dev_service_so_they_never_touch_the_installed_apps_secrets() {
        let expected = if cfg!(debug_assertions) {
            "clientele-dev"
        } else {
            "clientele"
        };
        assert_eq!(KeychainStore::default_service(), expected);
        assert_eq!(KeychainStore::default().service(), expected);
    }

    #[test]
    fn platform_errors_become_the_users_kind_of_problem() {
        assert_eq!(classify(&keyring::Error::NoDefaultStore), Kind::Unavailable);
        assert_eq!(
            classify(&keyring::Error::NoStorageAccess(platform(
                "SS Error: object locked"
            ))),
            Kind::Locked
        );
        assert_eq!(
            classify(&keyring::Error::PlatformFailure(platform(
                "zbus error: org.freedesktop.DBus.Error.ServiceUnknown: The name is not activatable"
            ))),
            Kind::Unavailable
        );
        assert_eq!(
            classify(&keyring::Error::PlatformFailure(platform(
                "no secret service provider or dbus session found"
            ))),
            Kind::Unavailable
        );
        assert_eq!(
            classify(&keyring::Error::PlatformFailure(platform(
                "Crypto error: bad padding"
            ))),
            Kind::Other
        );
        assert_eq!(
            classify(&keyring::Error::BadEncoding(vec![0xff])),
            Kind::Unreadable
        );
        assert_eq!(
            classify(&keyring::Error::Ambiguous(Vec::new())),
            Kind::Ambiguous
        );
        assert_eq!(
            classify(&keyring::Error::TooLong("username".into(), 10)),
            Kind::Other
        );
    }

    #[test]
    fn logged_errors_never_carry_the_stored_secret() {
        let secret = b"whsec_topsecret".to_vec();
        // `Debug` of these variants prints the bytes as numbers: "[119, 104, ...".
        let as_numbers = format!("{:?}", &secret[..3]);
        let as_numbers = as_numbers.trim_end_matches(']');
        for err in [
            keyring::Error::BadEncoding(secret.clone()),
            keyring::Error::BadDataFormat(secret.clone(), platform("bad")),
        ] {
            let logged = loggable(&err);
            assert!(
                !logged.contains("topsecret") && !logged.contains(as_numbers),
                "log line leaks the secret: {logged}"
            );
        }
    }

    #[test]
    fn logged_platform_errors_keep_their_cause_for_whoever_reads_the_log() {
        let logged = loggable(&keyring::Error::PlatformFailure(platform(
            "zbus error: org.freedesktop.DBus.Error.UnknownMethod",
        )));
        assert!(logged.contains("UnknownMethod"), "{logged}");
    }

    #[test]
    fn failures_reach_the_user_as_plain_errors_that_name_the_connection() {
        let store = KeychainStore::new("clientele-unit");
        let op = Op::new(Action::Get, Item::Secret(Provider::Tiquo, "main"));
        assert_eq!(
            store.failed(op, "tiquo/main", keyring::Error::BadEncoding(vec![0xff])),
            SecretError::Unreadable {
                what: "the signing secret for Tiquo connection 'main'".into()
            }
        );
        assert_eq!(
            store.failed(
                op,
                "tiquo/main",
                keyring::Error::NoStorageAccess(platform("locked"))
            ),
            SecretError::Locked
        );
        assert_eq!(
            store.failed(
                op,
                "tiquo/main",
                keyring::Error::Invalid("user".into(), "bad".into())
            ),
            SecretError::Keychain
        );
        let token = Op::new(Action::Set, Item::RelayToken);
        assert_eq!(
            store.failed(
                token,
                RELAY_TOKEN_ACCOUNT,
                keyring::Error::Ambiguous(Vec::new())
            ),
            SecretError::Ambiguous {
                what: "device token for the relay".into()
            }
        );
    }

    #[test]
    fn the_relay_token_account_never_equals_a_connections_account() {
        assert!(!RELAY_TOKEN_ACCOUNT.contains('/'));
        for provider in Provider::ALL {
            assert!(KeychainStore::account(provider, "").contains('/'));
        }
    }
}
