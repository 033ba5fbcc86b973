//! The listener's live view of connections and their secrets.
//!
//! Secrets are read from the secret store once and kept in memory (as `Sensitive`), because a
//! keychain round trip per delivery would cost more than everything else on the path. The view is
//! reloaded when a delivery names a connection it does not know (someone just added it with
//! `clientele connection add`) and a secret is re-read when a signature fails (someone just
//! replaced it) — each at most once per [`RELOAD_INTERVAL`], so forged traffic can't turn into a
//! keychain or database storm.

use clientele_core::{Provider, Sensitive};
use clientele_secrets::SecretStore;
use clientele_store::{Connection, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The shortest time between two reloads triggered by traffic.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// A connection as the listener uses it.
#[derive(Debug)]
pub struct LiveConnection {
    pub connection: Connection,
    pub secret: Option<Sensitive<String>>,
    /// Why the secret couldn't be read (the keychain was locked, the variable is missing…).
    pub secret_problem: Option<String>,
}

impl LiveConnection {
    /// True when deliveries can't be checked: a secret is required but not available.
    pub fn missing_secret(&self) -> bool {
        self.connection.requires_secret && self.secret.is_none()
    }
}

type Key = (Provider, String);

/// Where the registry reads connections from: the data folder's store, or a relay's store
/// (which may be PostgreSQL).
pub trait ConnectionSource: Send + Sync + std::fmt::Debug {
    fn connections(&self) -> Result<Vec<Connection>, StoreError>;
}

impl ConnectionSource for Store {
    fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.reader()?.connections()
    }
}

#[derive(Debug)]
pub struct ConnectionRegistry {
    store: Arc<dyn ConnectionSource>,
    secrets: Arc<dyn SecretStore>,
    live: RwLock<HashMap<Key, Arc<LiveConnection>>>,
    last_reload: Mutex<Option<Instant>>,
    last_secret_refresh: Mutex<HashMap<Key, Instant>>,
}

impl ConnectionRegistry {
    /// Loads every connection and its secret.
    pub fn load(store: Store, secrets: Arc<dyn SecretStore>) -> Result<Self, StoreError> {
        Self::load_from(Arc::new(store), secrets)
    }

    /// [`ConnectionRegistry::load`] from any source of connections.
    pub fn load_from(
        store: Arc<dyn ConnectionSource>,
        secrets: Arc<dyn SecretStore>,
    ) -> Result<Self, StoreError> {
        let registry = ConnectionRegistry {
            store,
            secrets,
            live: RwLock::new(HashMap::new()),
            last_reload: Mutex::new(None),
            last_secret_refresh: Mutex::new(HashMap::new()),
        };
        registry.reload()?;
        Ok(registry)
    }

    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// The connection if it is already loaded; never blocks on the database or the keychain, so
    /// the listener calls it on its async threads (handing every delivery to a blocking thread
    /// just to read this map cost a fifth of the HTTP threads' time under load).
    pub fn loaded(&self, provider: Provider, name: &str) -> Option<Arc<LiveConnection>> {
        self.read().get(&(provider, name.to_string())).cloned()
    }

    /// The connection, if it is configured. Unknown names trigger a (rate-limited) reload.
    /// Blocking: may read the database and the keychain.
    pub fn get(&self, provider: Provider, name: &str) -> Option<Arc<LiveConnection>> {
        let key = (provider, name.to_string());
        if let Some(found) = self.read().get(&key) {
            return Some(found.clone());
        }
        if self.may_reload()
            && let Err(e) = self.reload()
        {
            tracing::warn!(error = %e, "couldn't reload connections");
        }
        self.read().get(&key).cloned()
    }

    /// Re-reads the secret of one connection (rate-limited); returns the connection as now known.
    /// Blocking.
    pub fn refresh_secret(&self, provider: Provider, name: &str) -> Option<Arc<LiveConnection>> {
        let key = (provider, name.to_string());
        let current = self.read().get(&key).cloned()?;
        {
            let mut last = self
                .last_secret_refresh
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if last
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < RELOAD_INTERVAL)
            {
                return Some(current);
            }
            last.insert(key.clone(), now);
        }
        let fresh = Arc::new(self.with_secret(current.connection.clone()));
        self.live
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, fresh.clone());
        Some(fresh)
    }

    /// Reloads every connection from the store and every secret from the secret store.
    pub fn reload(&self) -> Result<(), StoreError> {
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let connections = self.store.connections()?;
        let live: HashMap<Key, Arc<LiveConnection>> = connections
            .into_iter()
            .map(|c| ((c.provider, c.name.clone()), Arc::new(self.with_secret(c))))
            .collect();
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live;
        Ok(())
    }

    /// Every connection as currently known.
    pub fn all(&self) -> Vec<Arc<LiveConnection>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| {
            (a.connection.provider, &a.connection.name)
                .cmp(&(b.connection.provider, &b.connection.name))
        });
        all
    }

    fn with_secret(&self, connection: Connection) -> LiveConnection {
        if !connection.requires_secret {
            return LiveConnection {
                connection,
                secret: None,
                secret_problem: None,
            };
        }
        match self.secrets.get(connection.provider, &connection.name) {
            Ok(Some(secret)) => LiveConnection {
                connection,
                secret: Some(secret),
                secret_problem: None,
            },
            Ok(None) => {
                let problem = format!(
                    "No {} is saved for this connection in {}.",
                    connection.provider.secret_word(),
                    self.secrets.describe()
                );
                LiveConnection {
                    connection,
                    secret: None,
                    secret_problem: Some(problem),
                }
            }
            Err(e) => LiveConnection {
                connection,
                secret: None,
                secret_problem: Some(e.to_string()),
            },
        }
    }

    fn may_reload(&self) -> bool {
        self.last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|t| t.elapsed() >= RELOAD_INTERVAL)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Key, Arc<LiveConnection>>> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }
}
