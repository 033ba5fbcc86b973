//! Running as a relay: [`Relay`], Clientele's receiving core on an always-on server — the
//! connections and their secrets (sealed in the relay's database under a key held apart from it),
//! a pipeline that stores without deriving (its desks derive what they pull), and the relay's own
//! routes (`POST /pair`, `/v1/`) served beside the hooks route on one port.
//!
//! One relay over two stores ([`RelayStore`]): the data folder's SQLite
//! ([`Relay::start_in_folder`]), or a database several relay instances share, such as PostgreSQL
//! ([`Relay::start_shared`]). Everything above the store — the hooks route, verification, the
//! pipeline's groups, pairing, the feed, admin desks' connections, forgetting — is the same code.

mod admin;

pub use admin::RelayConnections;

use crate::data_dir::DataDirLock;
use crate::engine::{Listening, PipelineSlot, StartError, stop, stop_now};
use crate::error::{AppError, ErrorCode};
use chrono::{Duration, Utc};
use clientele_core::Sensitive;
use clientele_ingest::{GroupStore, IngestHandle, Notice, Pipeline};
use clientele_relay::sealed::{RelayKey, SealedSecrets};
use clientele_relay::store::{RelayStore, SqliteRelayStore};
use clientele_secrets::SecretStore;
use clientele_server::connections::{ConnectionRegistry, ConnectionSource};
use clientele_server::listener::{self, ClockHandle, DEFAULT_BODY_LIMIT, ListenerState};
use clientele_store::{Connection, IngestOutcome, NewDelivery, NewRejection, Store, StoreError};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};

/// The settings key keeping the relay's public address, for commands run beside it.
pub const PUBLIC_URL_SETTING: &str = "relay.public_url";

/// How `clientele relay serve` listens.
#[derive(Debug, Default)]
pub struct RelayListen {
    /// Where providers post to (`<public_url>/hooks/…`); default: the address it listens on.
    pub public_url: Option<String>,
    pub tls: Option<clientele_server::tls::TlsSettings>,
    pub trusted_proxies: clientele_server::client_addr::TrustedProxies,
    /// Delete deliveries older than this that every paired desk has.
    pub keep_days: Option<u32>,
    /// Tasks to run as long as the listener (renewing an ACME certificate).
    pub background: Vec<tokio::task::JoinHandle<()>>,
}

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes, every [`RETENTION_EVERY`] (and once at start), deliveries older than `days` that
/// every paired desk has acknowledged.
async fn retention(store: Arc<dyn RelayStore>, days: u32) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        let store = store.clone();
        let cutoff = Utc::now() - Duration::days(i64::from(days));
        let deleted = tokio::task::spawn_blocking(move || store.delete_acknowledged(cutoff)).await;
        match deleted {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                deleted = n,
                days,
                "retention: deleted old deliveries every desk has"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "retention couldn't delete old deliveries"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}

/// An address providers could reach from the internet (not loopback, private, link-local or
/// unspecified). Without `--public-url`, a relay listening on another kind has no address to
/// hand out that providers can use.
pub fn is_public_address(addr: SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_documentation())
        }
        std::net::IpAddr::V6(ip) => !(ip.is_loopback() || ip.is_unspecified()),
    }
}

/// Reloads the connections (and their secrets) when another instance sharing the database says
/// they changed, or when notices may have been lost.
async fn reload_on_notice(
    mut events: broadcast::Receiver<clientele_relay::store::StoreEvent>,
    registry: Arc<ConnectionRegistry>,
) {
    use clientele_relay::store::StoreEvent;
    loop {
        match events.recv().await {
            Ok(StoreEvent::Connections) | Err(broadcast::error::RecvError::Lagged(_)) => {
                let registry = registry.clone();
                let reloaded = tokio::task::spawn_blocking(move || registry.reload()).await;
                if !matches!(reloaded, Ok(Ok(()))) {
                    tracing::warn!("couldn't reload the connections another instance changed");
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The registry's view of the relay's connections.
#[derive(Debug)]
struct Connections(Arc<dyn RelayStore>);

impl ConnectionSource for Connections {
    fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.0.connections()
    }
}

/// The pipeline's groups, committed in the relay's store.
struct Groups(Arc<dyn RelayStore>);

impl GroupStore for Groups {
    fn store_group(
        &self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.0.ingest(deliveries, rejections)
    }
}

/// A relay receiving into its store. See the module docs.
#[derive(Debug)]
pub struct Relay {
    store: Arc<dyn RelayStore>,
    secrets: Arc<dyn SecretStore>,
    registry: Arc<ConnectionRegistry>,
    pipeline: PipelineSlot,
    notices: broadcast::Sender<Notice>,
    /// Marks this process's own test events.
    test_token: Arc<Sensitive<String>>,
    body_limit: usize,
    listener: tokio::sync::Mutex<Option<Listening>>,
    /// A relay on the data folder holds its lock (one relay per folder).
    _lock: Option<DataDirLock>,
}

fn key_error(e: clientele_relay::sealed::KeyError) -> StartError {
    StartError::Store(AppError::new(ErrorCode::InvalidInput, e.to_string()))
}

impl Relay {
    /// A relay on the data folder's SQLite. The key sealing connection secrets comes from
    /// `CLIENTELE_RELAY_KEY`, else `key_file` when given, else the folder's key file (created on
    /// first start). Also returns where the key came from, for the start-up line.
    pub fn start_in_folder(
        data_dir: &Path,
        key_file: Option<&Path>,
    ) -> Result<(Relay, String), StartError> {
        Relay::start_in_folder_with_progress(data_dir, key_file, |_| {})
    }

    /// [`Relay::start_in_folder`], telling `progress` how converting a data folder from an
    /// older version goes (under the folder's lock).
    pub fn start_in_folder_with_progress(
        data_dir: &Path,
        key_file: Option<&Path>,
        progress: impl FnMut(&clientele_store::UpgradeProgress),
    ) -> Result<(Relay, String), StartError> {
        let lock = DataDirLock::acquire(data_dir)?;
        let store = Store::open_dir_with_progress(data_dir, progress)?;
        let (key, source) = match key_file {
            Some(file) => RelayKey::load_shared(Some(file)),
            None => RelayKey::load_or_create(data_dir),
        }
        .map_err(key_error)?;
        // The SQLite pipeline keeps its WAL checkpoints; it stores without deriving.
        let (ingest, pipeline) =
            clientele_ingest::start_with(&store, clientele_ingest::Derivation::Off)?;
        let relay_store: Arc<dyn RelayStore> = Arc::new(SqliteRelayStore::new(store));
        let relay = Relay::assemble(relay_store, key, ingest, pipeline, Some(lock))?;
        Ok((relay, source.to_string()))
    }

    /// A relay on a store several instances share (PostgreSQL). They must all seal secrets with
    /// one key, so it is never made here: `CLIENTELE_RELAY_KEY`, or an existing `key_file`.
    pub fn start_shared(
        store: Arc<dyn RelayStore>,
        key_file: Option<&Path>,
    ) -> Result<(Relay, String), StartError> {
        let (key, source) = RelayKey::load_shared(key_file).map_err(key_error)?;
        let (ingest, pipeline) = clientele_ingest::start_storing(Arc::new(Groups(store.clone())))?;
        let relay = Relay::assemble(store, key, ingest, pipeline, None)?;
        Ok((relay, source.to_string()))
    }

    fn assemble(
        store: Arc<dyn RelayStore>,
        key: RelayKey,
        ingest: IngestHandle,
        pipeline: Pipeline,
        lock: Option<DataDirLock>,
    ) -> Result<Relay, StartError> {
        let secrets: Arc<dyn SecretStore> = Arc::new(SealedSecrets::in_store(store.clone(), key));
        let registry = Arc::new(ConnectionRegistry::load_from(
            Arc::new(Connections(store.clone())),
            secrets.clone(),
        )?);
        Ok(Relay {
            store,
            secrets,
            registry,
            notices: ingest.notices(),
            pipeline: PipelineSlot::new(ingest, pipeline),
            test_token: Arc::new(crate::ops::new_test_token()),
            body_limit: DEFAULT_BODY_LIMIT,
            listener: tokio::sync::Mutex::new(None),
            _lock: lock,
        })
    }

    /// The largest accepted message, in bytes.
    pub fn with_body_limit(mut self, bytes: usize) -> Relay {
        self.body_limit = bytes;
        self
    }

    pub fn store(&self) -> &Arc<dyn RelayStore> {
        &self.store
    }

    /// The pipeline's notices (stored, duplicate, rejected), for tests and logs.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Listens: the hooks route and the relay's own routes on one port. Returns the address bound
    /// and the public address it hands out. Needs a multi-threaded Tokio runtime.
    pub async fn listen(
        &self,
        addr: SocketAddr,
        options: RelayListen,
    ) -> std::io::Result<(SocketAddr, String)> {
        let mut current = self.listener.lock().await;
        if let Some(running) = current.take() {
            stop(running).await;
        }
        let Some(ingest) = self.pipeline.handle() else {
            return Err(std::io::Error::other("the relay is shutting down"));
        };
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        let bound = tcp.local_addr()?;
        let trusted = options.trusted_proxies.clone();
        let state = ListenerState {
            connections: self.registry.clone(),
            ingest,
            body_limit: self.body_limit,
            clock: ClockHandle(clientele_server::system_clock()),
            test_token: Some(self.test_token.clone()),
            trusted_proxies: options.trusted_proxies,
        };
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // Without --public-url, the address it listens on is handed out; providers can reach it
        // only when it is a public one.
        let known = options
            .public_url
            .clone()
            .or_else(|| is_public_address(bound).then(|| format!("{scheme}://{bound}")));
        let url = options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"));
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let admin = admin::Admin {
            connections: RelayConnections::new(self.store.clone(), self.secrets.clone())
                .with_registry(self.registry.clone()),
            test_token: self.test_token.clone(),
            public_url: known.map(|u| u.trim_end_matches('/').to_string()),
            listening: format!("{scheme}://{bound}"),
            own_certificates: options
                .tls
                .as_ref()
                .map(|t| t.certificates().to_vec())
                .unwrap_or_default(),
            runtime: tokio::runtime::Handle::current(),
        };
        let mut routes = clientele_relay::api::RelayState::new(
            self.store.clone(),
            self.notices.clone(),
            &url,
            Arc::new(admin),
            closing_rx,
        );
        routes.client_ip = Arc::new(move |headers, peer| {
            peer.map(|p| clientele_server::client_addr::client_addr(p.ip(), headers, &trusted))
        });
        let app = listener::router(state).merge(clientele_relay::api::router(routes));
        let mut background = options.background;
        if let Some(events) = self.store.subscribe() {
            background.push(tokio::spawn(reload_on_notice(
                events,
                self.registry.clone(),
            )));
        }
        if let Some(days) = options.keep_days {
            background.push(tokio::spawn(retention(self.store.clone(), days)));
        }
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(listener::serve(tcp, app, options.tls, async {
            let _ = stop_rx.await;
        }));
        *current = Some(Listening {
            stop: stop_tx,
            closing,
            background,
            task,
        });
        Ok((bound, url))
    }

    /// Stops the listener (requests in flight finish, waiting pulls answer), then the pipeline,
    /// which stores what is queued before its thread ends. Safe to call more than once.
    pub async fn shutdown(&self) {
        if let Some(running) = self.listener.lock().await.take() {
            stop(running).await;
        }
        self.pipeline.join().await;
    }

    /// [`Relay::shutdown`] for callers whose runtime is gone: joins the pipeline on this thread.
    pub fn shutdown_blocking(&self) {
        stop_now(&self.listener);
        self.pipeline.join_blocking();
    }
}
