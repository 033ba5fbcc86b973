//! The operations behind every screen of the window and every command of `clientele`, as plain
//! blocking methods on [`Operations`] returning view types that ts-rs turns into the UI's
//! TypeScript types. One place decides what a valid connection, search, setting or export is:
//! the Tauri commands and the command line both call these.
//!
//! One module per area: [`connections`] (the Providers screen), [`activity`], [`people`]
//! (Customers), [`settings`], [`phones`] (the default country of phone numbers), [`businesses`]
//! (names for Vagaro's business ids), [`exports`], [`maintenance`] (catching up and
//! reprocessing), [`relay`] (receiving from the internet through a relay), [`providers`] (what
//! the Connect flow says about each provider), [`test_event`] ("Send a test message") and
//! [`forget`] (forgetting a customer for good, and the erasure log).

pub mod activity;
pub mod businesses;
pub mod connections;
pub mod exports;
pub mod forget;
pub mod hand;
pub mod hand_sync;
pub mod maintenance;
pub mod people;
pub mod phones;
pub mod providers;
pub mod relay;
pub mod retention;
pub mod settings;
pub mod test_event;

use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::{DateTime, SecondsFormat, Utc};
use clientele_core::{Provider, Sensitive};
use clientele_secrets::SecretStore;
use clientele_server::connections::ConnectionRegistry;
use clientele_store::Store;
use settings::ListenerStatus;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Everything the screens and commands can do, over one data folder.
#[derive(Debug)]
pub struct Operations {
    store: Store,
    secrets: Arc<dyn SecretStore>,
    /// The listener's view of connections, reloaded after every change; `None` when this
    /// process runs no listener (the command line's one-off commands: a listener in another
    /// process reloads by itself when a delivery names a connection it doesn't know).
    registry: Option<Arc<ConnectionRegistry>>,
    data_dir: PathBuf,
    /// This process's token marking its own test events (never stored, never shown).
    test_token: Arc<Sensitive<String>>,
    listener: RwLock<ListenerStatus>,
    exports: exports::RunningExports,
    /// The relay puller's status, while this process pulls.
    pulling: RwLock<Option<tokio::sync::watch::Receiver<clientele_relay_client::PullStatus>>>,
    /// Phone numbers are being read again after a change of the default country.
    rereading: std::sync::atomic::AtomicBool,
    /// Closed while a relay desk brings in hand changes at start (people screens wait).
    pub(crate) changes_gate: hand_sync::ChangesGate,
}

impl Operations {
    /// Operations over `store` without a listener in this process.
    pub fn new(store: Store, secrets: Arc<dyn SecretStore>, data_dir: &Path) -> Operations {
        Operations {
            store,
            secrets,
            registry: None,
            data_dir: data_dir.to_path_buf(),
            test_token: Arc::new(new_test_token()),
            listener: RwLock::new(ListenerStatus::default()),
            exports: Default::default(),
            pulling: RwLock::new(None),
            rereading: Default::default(),
            changes_gate: Default::default(),
        }
    }

    /// Operations that keep `registry` (the running listener's view) up to date.
    pub(crate) fn with_registry(mut self, registry: Arc<ConnectionRegistry>) -> Operations {
        self.registry = Some(registry);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(crate) fn test_token(&self) -> &Arc<Sensitive<String>> {
        &self.test_token
    }

    /// Tells the running listener (if any) that connections or secrets changed.
    fn connections_changed(&self) -> ApiResult<()> {
        if let Some(registry) = &self.registry {
            registry.reload()?;
        }
        Ok(())
    }
}

/// A random-enough token for this run's test events (never stored, never shown).
pub(crate) fn new_test_token() -> Sensitive<String> {
    use std::hash::{BuildHasher, Hasher};
    let mut parts = Vec::new();
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        parts.push(format!("{:016x}", h.finish()));
    }
    Sensitive::new(parts.concat())
}

/// Times as the UI reads them: RFC 3339, whole seconds, UTC.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A provider id from the UI.
pub(crate) fn provider(id: &str) -> ApiResult<Provider> {
    id.parse()
        .map_err(|e: clientele_core::provider::UnknownProvider| {
            AppError::new(ErrorCode::UnknownProvider, e.to_string())
        })
}
