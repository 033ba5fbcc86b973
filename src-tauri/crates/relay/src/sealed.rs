//! Connection secrets on a relay, sealed at rest in its own database.
//!
//! Why not the keychain or environment variables, as on a desk: a server usually has no unlocked
//! keychain, and the relay's secrets don't come from its operator's shell but from admin desks,
//! which set and replace them from the Providers screen while the relay runs. So the relay keeps
//! them in its SQLite database (table `sealed_secrets`), **sealed**: encrypted and authenticated
//! with XChaCha20-Poly1305 under a [`RelayKey`] that is never in the database. A copy of the
//! database (a backup, a stolen disk image) opens no secret without the key.
//!
//! - Each write draws a fresh random 24-byte nonce. XChaCha's nonces are long enough that random
//!   ones never repeat in practice, so there is no counter to keep consistent.
//! - The associated data is the account, `{provider}/{connection}` (e.g. `tiquo/main`): a sealed
//!   secret copied onto another connection's row doesn't open, so nobody with write access to the
//!   database alone can make one connection verify with another's secret.
//! - A secret that doesn't open means the key is not the one it was sealed with (the key file was
//!   replaced, or `CLIENTELE_RELAY_KEY` changed): [`SecretError::RelayKeyMismatch`] says so and
//!   what to do. A row tampered with looks the same, and the same fix (set it again) applies.
//!
//! **The key** ([`RelayKey::load_or_create`]) comes from the environment variable
//! [`KEY_VARIABLE`] (`CLIENTELE_RELAY_KEY`: 64 hexadecimal characters) when it is set, for
//! deployments that keep secrets in their orchestrator; otherwise from the file [`KEY_FILE`]
//! (`relay.key`) in the data folder, created on first start from the OS random source, readable
//! by the relay's user only (mode 0600). Back it up apart from the database: without it the
//! sealed secrets are lost (they can be set again from an admin desk). A key file that others can
//! read is not refused, since the relay's secrets would be no safer for the relay not starting:
//! it is made private (0600) and a warning is logged.
//!
//! Everything here follows the rules of `clientele_secrets`: secrets are trimmed and never empty,
//! deleting a missing one succeeds, and no secret or key appears in an error, a log line or
//! `Debug` output.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::store::{RelayStore, SqliteRelayStore};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use clientele_secrets::{
    KeychainStore, Provider, SecretError, SecretStore, Sensitive, describe_secret,
};
use clientele_store::{SealedRow, Store, StoreError};
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

use crate::random::{self, RandomUnavailable};

/// The environment variable that, when set, holds the relay key as 64 hexadecimal characters.
pub const KEY_VARIABLE: &str = "CLIENTELE_RELAY_KEY";

/// The key file's name in the data folder.
pub const KEY_FILE: &str = "relay.key";

/// Bytes in a relay key (256 bits).
const KEY_BYTES: usize = 32;

/// The 256-bit key the relay seals connection secrets with. Wiped from memory when dropped;
/// `Debug` never shows it.
pub struct RelayKey([u8; KEY_BYTES]);

/// Where the relay key came from, for the start-up log line "relay key: {source}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The environment variable [`KEY_VARIABLE`].
    Environment,
    /// The existing key file at this path.
    File(PathBuf),
    /// A key file just created at this path (worth backing up).
    Created(PathBuf),
}

/// Why the relay key could not be had. No variant carries the key or the variable's value.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "The environment variable CLIENTELE_RELAY_KEY must be 64 hexadecimal characters (a \
         32-byte key, such as the output of `openssl rand -hex 32`). Correct it, or remove it to \
         use the key file in the data folder, then start the relay again."
    )]
    BadVariable,
    #[error(
        "The relay key file {} doesn't hold a key (it should be 64 hexadecimal characters). \
         Restore it from your backup; without the original key the relay can't open the \
         connection secrets it keeps, and they have to be set again.",
        path.display()
    )]
    BadFile { path: PathBuf },
    #[error(
        "The relay couldn't read its key file {}: {source}. Check that the relay runs as the \
         user who owns the data folder.",
        path.display()
    )]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "The relay couldn't create its key file {}: {source}. Check that the data folder \
         exists and that the relay's user can write to it.",
        path.display()
    )]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "A relay on PostgreSQL needs the key its connection secrets are sealed with, the same on \
         every instance: set CLIENTELE_RELAY_KEY to 64 hexadecimal characters (make one with \
         `openssl rand -hex 32` and keep it apart from the database's backups), or pass \
         --key-file with a file holding it."
    )]
    SharedKeyMissing,
    #[error(
        "The relay key file {} doesn't exist. Copy the key file every relay instance shares \
         there, or set CLIENTELE_RELAY_KEY instead.",
        path.display()
    )]
    NoFile { path: PathBuf },
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
}

impl RelayKey {
    /// The relay's key: from [`KEY_VARIABLE`] when it is set, else from `data_dir/relay.key`,
    /// which is created (mode 0600) when it doesn't exist yet. See the module docs.
    pub fn load_or_create(data_dir: &Path) -> Result<(RelayKey, KeySource), KeyError> {
        let variable = match std::env::var_os(KEY_VARIABLE) {
            None => None,
            Some(value) => Some(
                value
                    .into_string()
                    .map(Zeroizing::new)
                    .map_err(|_| KeyError::BadVariable)?,
            ),
        };
        Self::load_or_create_with(data_dir, variable.as_deref().map(String::as_str))
    }

    /// [`RelayKey::load_or_create`] with the variable's value passed in (`None`: not set), so it
    /// can be tested without changing the process environment.
    pub fn load_or_create_with(
        data_dir: &Path,
        variable: Option<&str>,
    ) -> Result<(RelayKey, KeySource), KeyError> {
        if let Some(value) = variable {
            let key = RelayKey::from_hex(value).ok_or(KeyError::BadVariable)?;
            return Ok((key, KeySource::Environment));
        }
        let path = data_dir.join(KEY_FILE);
        if let Some(key) = read_key_file(&path)? {
            return Ok((key, KeySource::File(path)));
        }
        fs::create_dir_all(data_dir).map_err(|source| KeyError::Create {
            path: path.clone(),
            source,
        })?;
        if let Some(key) = create_key_file(&path)? {
            tracing::info!(path = %path.display(), "created a new relay key; back it up apart from the database");
            return Ok((key, KeySource::Created(path)));
        }
        // Another process created it between our read and our create: use theirs.
        match read_key_file(&path)? {
            Some(key) => Ok((key, KeySource::File(path))),
            None => Err(KeyError::Read {
                source: io::Error::new(io::ErrorKind::NotFound, "it disappeared while starting"),
                path,
            }),
        }
    }

    /// The key of a relay whose instances share one database: never created here (each instance
    /// would make its own), so it comes from [`KEY_VARIABLE`] or from an existing `key_file`.
    pub fn load_shared(key_file: Option<&Path>) -> Result<(RelayKey, KeySource), KeyError> {
        let variable = match std::env::var_os(KEY_VARIABLE) {
            None => None,
            Some(value) => Some(
                value
                    .into_string()
                    .map(Zeroizing::new)
                    .map_err(|_| KeyError::BadVariable)?,
            ),
        };
        Self::load_shared_with(key_file, variable.as_deref().map(String::as_str))
    }

    /// [`RelayKey::load_shared`] with the variable's value passed in.
    pub fn load_shared_with(
        key_file: Option<&Path>,
        variable: Option<&str>,
    ) -> Result<(RelayKey, KeySource), KeyError> {
        if let Some(value) = variable {
            let key = RelayKey::from_hex(value).ok_or(KeyError::BadVariable)?;
            return Ok((key, KeySource::Environment));
        }
        let Some(path) = key_file else {
            return Err(KeyError::SharedKeyMissing);
        };
        match read_key_file(path)? {
            Some(key) => Ok((key, KeySource::File(path.to_path_buf()))),
            None => Err(KeyError::NoFile {
                path: path.to_path_buf(),
            }),
        }
    }

    /// A new key from the OS random source.
    pub fn generate() -> Result<RelayKey, RandomUnavailable> {
        Ok(RelayKey(random::bytes("relay key")?))
    }

    /// 64 hexadecimal characters (either case), surrounding whitespace aside.
    fn from_hex(text: &str) -> Option<RelayKey> {
        let text = text.trim();
        if text.len() != 2 * KEY_BYTES {
            return None;
        }
        let mut key = RelayKey([0; KEY_BYTES]);
        hex::decode_to_slice(text, &mut key.0).ok()?;
        Some(key)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl Drop for RelayKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for RelayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayKey(<redacted>)")
    }
}

/// "environment", or the key file's path (with "(new)" when it was just created).
impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => f.write_str("environment"),
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Created(path) => write!(f, "{} (new)", path.display()),
        }
    }
}

/// The key in `path`, `None` when there is no such file. A key file others can read is made
/// private (see the module docs).
fn read_key_file(path: &Path) -> Result<Option<RelayKey>, KeyError> {
    let text = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let key = std::str::from_utf8(&text)
        .ok()
        .and_then(RelayKey::from_hex)
        .ok_or_else(|| KeyError::BadFile {
            path: path.to_path_buf(),
        })?;
    make_private(path);
    Ok(Some(key))
}

/// Makes the key file readable by its owner only, if others can read it (Unix).
#[cfg(unix)]
fn make_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return;
    }
    match fs::set_permissions(path, fs::Permissions::from_mode(0o600)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{:o}", mode & 0o777),
            "the relay key file could be read by other users; it is now private (0600). Whoever \
             read it can open the relay's sealed secrets: consider setting them again"
        ),
        Err(err) => tracing::warn!(
            path = %path.display(),
            was = format!("{:o}", mode & 0o777),
            error = %err,
            "the relay key file can be read by other users and could not be made private; run \
             `chmod 600` on it"
        ),
    }
}

#[cfg(not(unix))]
fn make_private(_path: &Path) {}

/// Creates the key file with a new key, all at once: the key is written and flushed to disk in a
/// private temporary file, which is then hard-linked to `path` (which fails if `path` exists, so
/// two relays starting together never overwrite each other's key, and a crash never leaves a
/// half-written key file). `None` when another process created `path` first.
fn create_key_file(path: &Path) -> Result<Option<RelayKey>, KeyError> {
    let key = RelayKey::generate()?;
    let contents = Zeroizing::new(format!("{}\n", hex::encode(key.0)));
    let created = |source| KeyError::Create {
        path: path.to_path_buf(),
        source,
    };
    let suffix: [u8; 8] = random::bytes("temporary file name")?;
    let temporary = path.with_file_name(format!(".{KEY_FILE}.{}.tmp", hex::encode(suffix)));
    write_private(&temporary, contents.as_bytes()).map_err(created)?;
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        // A file system without hard links: create the file in place (still never replacing one).
        Err(_) => match write_private(path, contents.as_bytes()) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
            Err(err) => return Err(created(err)),
        },
    }
    sync_directory(path);
    Ok(Some(key))
}

/// Writes `contents` to a new file at `path` (never an existing one) that only its owner can
/// read, and flushes it to disk.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Flushes the directory entry of a new file, so the file survives a power cut (Unix).
fn sync_directory(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Err(err) = fs::File::open(dir).and_then(|d| d.sync_all())
    {
        tracing::warn!(dir = %dir.display(), error = %err, "couldn't flush the data folder");
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The relay's [`SecretStore`]: connection secrets sealed in its database (see the module docs).
///
/// Secrets are read when a connection is loaded and written when an admin sets one, rarely: each
/// call is its own short database call (on SQLite its own connection, the one long-lived writer
/// belonging to the ingest pipeline).
pub struct SealedSecrets {
    store: Arc<dyn RelayStore>,
    key: RelayKey,
}

impl SealedSecrets {
    /// Secrets sealed in the data folder's SQLite.
    pub fn new(store: Store, key: RelayKey) -> Self {
        Self::in_store(Arc::new(SqliteRelayStore::new(store)), key)
    }

    /// Secrets sealed in any relay store (PostgreSQL too).
    pub fn in_store(store: Arc<dyn RelayStore>, key: RelayKey) -> Self {
        SealedSecrets { store, key }
    }

    /// Seals `secret` for `account` under a fresh nonce.
    fn seal(&self, account: &str, secret: &str) -> Result<SealedRow, SecretError> {
        // Without randomness nothing can be sealed safely; `random` has logged why.
        let nonce: [u8; 24] = random::bytes("nonce").map_err(|_| SecretError::RelayDatabase)?;
        let ciphertext = self
            .key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: account.as_bytes(),
                },
            )
            .map_err(|_| {
                tracing::error!(account, "sealing a secret failed (too long?)");
                SecretError::RelayDatabase
            })?;
        Ok(SealedRow {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens `row`, sealed for `account`, into the trimmed secret.
    fn open(
        &self,
        provider: Provider,
        connection: &str,
        account: &str,
        row: &SealedRow,
    ) -> Result<Sensitive<String>, SecretError> {
        let unreadable = |why: &str| {
            tracing::warn!(
                store = "sealed",
                account,
                why,
                "a sealed secret can't be used"
            );
            SecretError::Unreadable {
                what: format!("the {}", describe_secret(provider, connection)),
            }
        };
        let nonce = XNonce::try_from(row.nonce.as_slice())
            .map_err(|_| unreadable("the stored nonce is not 24 bytes"))?;
        let plain = self
            .key
            .cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: &row.ciphertext,
                    aad: account.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                tracing::warn!(
                    store = "sealed",
                    account,
                    "a sealed secret doesn't open with this relay key"
                );
                SecretError::RelayKeyMismatch {
                    what: describe_secret(provider, connection),
                }
            })?;
        let text = std::str::from_utf8(&plain).map_err(|_| unreadable("not UTF-8"))?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(unreadable("blank"));
        }
        Ok(Sensitive::new(trimmed.to_string()))
    }
}

/// Logs a database failure (never a secret: none is ever in a query's error) and says it plainly.
fn database_failed(op: &'static str, account: &str) -> impl FnOnce(StoreError) -> SecretError {
    move |err| {
        tracing::warn!(store = "sealed", op, account, error = %err, "relay database call failed");
        SecretError::RelayDatabase
    }
}

impl fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecrets")
            .field("database", &self.store.describe())
            .field("key", &self.key)
            .finish()
    }
}

impl SecretStore for SealedSecrets {
    fn get(
        &self,
        provider: Provider,
        connection: &str,
    ) -> Result<Option<Sensitive<String>>, SecretError> {
        let account = KeychainStore::account(provider, connection);
        let row = self
            .store
            .sealed_secret(&account)
            .map_err(database_failed("get", &account))?;
        match row {
            None => Ok(None),
            Some(row) => self.open(provider, connection, &account, &row).map(Some),
        }
    }

    fn set(
        &self,
        provider: Provider,
        connection: &str,
        secret: &Sensitive<String>,
    ) -> Result<(), SecretError> {
        let value = clientele_secrets::normalize(provider, secret)?;
        let account = KeychainStore::account(provider, connection);
        let row = self.seal(&account, value)?;
        self.store
            .put_sealed_secret(&account, &row)
            .map_err(database_failed("set", &account))?;
        tracing::info!(store = "sealed", account, "secret saved");
        Ok(())
    }

    fn delete(&self, provider: Provider, connection: &str) -> Result<(), SecretError> {
        let account = KeychainStore::account(provider, connection);
        self.store
            .delete_sealed_secret(&account)
            .map_err(database_failed("delete", &account))?;
        tracing::info!(store = "sealed", account, "secret removed");
        Ok(())
    }

    /// Whether a sealed secret is stored, without opening it (as the keychain answers from an
    /// item's attributes): true even when the key no longer opens it, which `get` then reports.
    fn is_set(&self, provider: Provider, connection: &str) -> Result<bool, SecretError> {
        let account = KeychainStore::account(provider, connection);
        let row = self
            .store
            .sealed_secret(&account)
            .map_err(database_failed("is_set", &account))?;
        Ok(row.is_some())
    }

    fn describe(&self) -> &'static str {
        "the relay's database (encrypted)"
    }

    /// A relay pairs with nobody, so it has no token.
    fn relay_token(&self) -> Result<Option<Sensitive<String>>, SecretError> {
        Ok(None)
    }

    fn set_relay_token(&self, _token: &Sensitive<String>) -> Result<(), SecretError> {
        Err(SecretError::RelayKeepsNoToken)
    }

    /// There is never a token to forget, so forgetting it succeeds.
    fn delete_relay_token(&self) -> Result<(), SecretError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
