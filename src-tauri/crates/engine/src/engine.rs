//! [`Engine`]: the one start-up path. The desktop app, `clientele serve` and the tests all start
//! Clientele's receiving side through it: the data folder's lock, the store, the connections and
//! their secrets, the ingest pipeline, and the listener — and stop it the same way, with
//! [`Engine::shutdown`] draining and joining the pipeline.

use crate::data_dir::{DataDirLock, LockError};
use crate::error::{ApiResult, AppError, ErrorCode};
use crate::ops::Operations;
use crate::ops::settings::{ListenerPrefs, ListenerStatus};
use clientele_ingest::{Derivation, IngestHandle, Notice, Pipeline};
use clientele_relay_client::pull::StoreFailure;
use clientele_relay_client::{PullStatus, Puller};
use clientele_secrets::SecretStore;
use clientele_server::client_addr::TrustedProxies;
use clientele_server::connections::ConnectionRegistry;
use clientele_server::listener::{self, ClockHandle, DEFAULT_BODY_LIMIT, ListenerState};
use clientele_store::{Store, UpgradeProgress};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// How long [`Engine::shutdown`] waits for requests in flight and for the pipeline to store and
/// derive what is queued. Everything answered `200` is on disk already; this is for the rest.
pub(crate) const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);
/// How long starting to pull waits for the relay's hand changes before going on without them.
const START_SYNC: Duration = Duration::from_secs(15);

/// Clientele receiving into one data folder.
#[derive(Debug)]
pub struct Engine {
    operations: Arc<Operations>,
    registry: Arc<ConnectionRegistry>,
    pipeline: PipelineSlot,
    notices: broadcast::Sender<Notice>,
    listener: tokio::sync::Mutex<Option<Listening>>,
    /// The relay puller, on a joined desk while it runs.
    puller: tokio::sync::Mutex<Option<Pulling>>,
    body_limit: usize,
    /// The time retention goes by (tests move it forward).
    retention_clock: ClockHandle,
    _lock: DataDirLock,
}

/// A running listener.
#[derive(Debug)]
pub(crate) struct Listening {
    pub(crate) stop: oneshot::Sender<()>,
    /// Tells a relay's waiting pulls to answer now.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// Tasks that live as long as the listener (retention, a relay's ACME).
    pub(crate) background: Vec<tokio::task::JoinHandle<()>>,
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How a listener serves, beyond its address.
#[derive(Debug, Default)]
pub(crate) struct Serving {
    pub(crate) tls: Option<clientele_server::tls::TlsSettings>,
    pub(crate) trusted_proxies: TrustedProxies,
}

/// A running relay puller.
#[derive(Debug)]
struct Pulling {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Why the engine couldn't start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder can't be used: another Clientele is receiving into it, or it can't be
    /// created.
    #[error(transparent)]
    DataDir(#[from] LockError),
    /// The store can't be opened, or the pipeline started.
    #[error("{0}")]
    Store(AppError),
}

impl From<clientele_store::StoreError> for StartError {
    fn from(e: clientele_store::StoreError) -> Self {
        StartError::Store(e.into())
    }
}

impl Engine {
    /// Takes the data folder's lock, opens its store, loads every connection and its secret, and
    /// starts the pipeline (which first derives whatever a previous run left pending). The
    /// listener starts separately ([`Engine::listen`]).
    pub fn start(data_dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Engine, StartError> {
        Engine::start_with_progress(data_dir, secrets, |_| {})
    }

    /// [`Engine::start`], telling `progress` how converting a data folder from an older version
    /// goes (under the folder's lock, before anything else runs). Nothing is reported when the
    /// folder is up to date.
    pub fn start_with_progress(
        data_dir: &Path,
        secrets: Arc<dyn SecretStore>,
        progress: impl FnMut(&UpgradeProgress),
    ) -> Result<Engine, StartError> {
        Engine::start_with(data_dir, secrets, Derivation::On, progress)
    }

    /// [`Engine::start`], choosing whether the pipeline derives (a relay doesn't).
    pub(crate) fn start_with(
        data_dir: &Path,
        secrets: Arc<dyn SecretStore>,
        derivation: Derivation,
        progress: impl FnMut(&UpgradeProgress),
    ) -> Result<Engine, StartError> {
        let lock = DataDirLock::acquire(data_dir)?;
        let store = Store::open_dir_with_progress(data_dir, progress)?;
        let registry = Arc::new(ConnectionRegistry::load(store.clone(), secrets.clone())?);
        let (ingest, pipeline) = clientele_ingest::start_with(&store, derivation)?;
        let joined = store.reader()?.relay_link()?.is_some();
        let operations =
            Arc::new(Operations::new(store, secrets, data_dir).with_registry(registry.clone()));
        if joined {
            // Opened by start_pulling once the relay's hand changes are in (or it gave up).
            operations.changes_gate.close();
        }
        Ok(Engine {
            operations,
            registry,
            notices: ingest.notices(),
            pipeline: PipelineSlot::new(ingest, pipeline),
            listener: tokio::sync::Mutex::new(None),
            puller: tokio::sync::Mutex::new(None),
            body_limit: DEFAULT_BODY_LIMIT,
            retention_clock: ClockHandle(clientele_server::system_clock()),
            _lock: lock,
        })
    }

    /// The clock retention and the provider-delete choice go by (default: the system's). Tests
    /// set one months ahead to see the policies act.
    pub fn with_retention_clock(mut self, clock: clientele_server::Clock) -> Engine {
        self.retention_clock = ClockHandle(clock);
        self
    }

    /// The largest body the listener accepts (default [`DEFAULT_BODY_LIMIT`]); applies from the
    /// next [`Engine::listen`].
    pub fn with_body_limit(mut self, bytes: usize) -> Engine {
        self.body_limit = bytes;
        self
    }

    /// Everything the screens and commands can do.
    pub fn operations(&self) -> &Arc<Operations> {
        &self.operations
    }

    /// The connections as the listener sees them.
    pub fn registry(&self) -> &Arc<ConnectionRegistry> {
        &self.registry
    }

    /// What the pipeline reports as it stores and derives, for live screens.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Resolves when everything queued so far is stored and derived.
    pub async fn flush(&self) -> ApiResult<()> {
        let ingest = self.ingest_handle();
        match ingest {
            Some(ingest) => ingest
                .flush()
                .await
                .map_err(|e| AppError::internal("Clientele couldn't finish storing.", &e)),
            None => Ok(()),
        }
    }

    fn ingest_handle(&self) -> Option<IngestHandle> {
        self.pipeline.handle()
    }

    /// Starts listening on `addr` (stopping a listener already running first) and returns the
    /// address it bound. Needs a Tokio runtime.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        self.listen_with(addr, Serving::default()).await
    }

    /// [`Engine::listen`] with TLS or trusted proxies.
    pub(crate) async fn listen_with(
        &self,
        addr: SocketAddr,
        serving: Serving,
    ) -> std::io::Result<SocketAddr> {
        let mut current = self.listener.lock().await;
        if let Some(running) = current.take() {
            stop(running).await;
        }
        let Some(ingest) = self.ingest_handle() else {
            return Err(std::io::Error::other("Clientele is shutting down"));
        };
        let tcp = tokio::net::TcpListener::bind(addr).await?;
        let bound = tcp.local_addr()?;
        let state = ListenerState {
            connections: self.registry.clone(),
            ingest,
            body_limit: self.body_limit,
            clock: ClockHandle(clientele_server::system_clock()),
            test_token: Some(self.operations.test_token().clone()),
            trusted_proxies: serving.trusted_proxies,
        };
        let (closing, _) = tokio::sync::watch::channel(false);
        let app = listener::router(state);
        let background = vec![tokio::spawn(crate::retention::run(
            self.operations.clone(),
            self.retention_clock.0.clone(),
        ))];
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(listener::serve(tcp, app, serving.tls, async {
            let _ = stop_rx.await;
        }));
        *current = Some(Listening {
            stop: stop_tx,
            closing,
            background,
            task,
        });
        self.operations.set_listener_status(ListenerStatus {
            running: true,
            address: Some(bound.to_string()),
            error: None,
        });
        Ok(bound)
    }

    /// Starts (or restarts) the listener where the settings say: `prefs.port` on this computer
    /// only, or on every network interface when the user allowed it. The status (also shown in
    /// Settings) says where, or in plain words why not.
    pub async fn listen_as_configured(&self, prefs: ListenerPrefs) -> ListenerStatus {
        let port = prefs.port;
        let ip = if prefs.allow_network {
            [0, 0, 0, 0]
        } else {
            [127, 0, 0, 1]
        };
        let status = match self.listen(SocketAddr::from((ip, port))).await {
            // Addresses handed to providers and to the test event: this computer's.
            Ok(bound) if prefs.allow_network => ListenerStatus {
                running: true,
                address: Some(format!("127.0.0.1:{}", bound.port())),
                error: None,
            },
            Ok(bound) => ListenerStatus {
                running: true,
                address: Some(bound.to_string()),
                error: None,
            },
            Err(e) => ListenerStatus {
                running: false,
                address: None,
                error: Some(if e.kind() == std::io::ErrorKind::AddrInUse {
                    format!(
                        "Port {port} is already used by another program. Choose another port in Settings."
                    )
                } else {
                    format!("Clientele couldn't start receiving on port {port}: {e}")
                }),
            },
        };
        self.operations.set_listener_status(status.clone());
        status
    }

    /// Stops the listener: it takes no new connections and finishes the requests in flight.
    pub async fn stop_listening(&self) {
        if let Some(running) = self.listener.lock().await.take() {
            stop(running).await;
        }
        self.operations
            .set_listener_status(ListenerStatus::default());
    }

    /// On a desk joined to a relay, starts pulling from it (stopping a puller already running
    /// first): at once, to catch up, then live. Returns false when this desk isn't joined.
    /// Needs a Tokio runtime.
    pub async fn start_pulling(&self) -> ApiResult<bool> {
        // The people screens wait for the relay's hand changes; whatever happens below, they
        // stop waiting when this returns.
        struct OpenOnReturn<'a>(&'a Operations);
        impl Drop for OpenOnReturn<'_> {
            fn drop(&mut self) {
                self.0.changes_gate.open();
            }
        }
        let _open = OpenOnReturn(&self.operations);
        self.stop_pulling().await;
        let operations = self.operations.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            if operations.relay_link()?.is_none() {
                return Ok(None);
            }
            operations.relay_client().map(Some)
        })
        .await
        .map_err(|e| {
            AppError::internal("Clientele couldn't start pulling from the relay.", &e)
        })??;
        let Some((link, client)) = prepared else {
            return Ok(false);
        };
        let Some(ingest) = self.ingest_handle() else {
            return Ok(false);
        };
        let (status_tx, status_rx) = tokio::sync::watch::channel(PullStatus::default());
        let mut puller = self.puller_for(&link, client, ingest, status_tx);
        // Hand changes first, before this desk shows anyone: a customer forgotten on another desk
        // while this one was off is forgotten here before the listener and window start. Bounded,
        // so an unreachable relay doesn't hold the start (the puller tries again at once).
        match tokio::time::timeout(START_SYNC, puller.sync_changes()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "couldn't bring hand changes from the relay at start")
            }
            Err(_) => tracing::warn!("the relay took too long to send hand changes at start"),
        }
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(puller.run(stop_rx));
        self.operations.set_pull_status(Some(status_rx));
        *self.puller.lock().await = Some(Pulling { stop, task });
        Ok(true)
    }

    /// A puller for `link` from where it got to (an admin desk's also copies the relay's
    /// refusals and connections).
    fn puller_for(
        &self,
        link: &clientele_store::RelayLink,
        client: clientele_relay_client::RelayClient,
        ingest: IngestHandle,
        status: tokio::sync::watch::Sender<PullStatus>,
    ) -> Puller {
        let puller = Puller::new(
            client,
            link.ca_cert.clone(),
            self.operations.store().clone(),
            ingest,
            link.cursor.clone(),
            status,
        )
        .with_hand_changes(self.operations.hand_changes());
        if link.admin {
            puller.copying_refusals(link.rejections_cursor)
        } else {
            puller
        }
    }

    /// Pulls everything the relay has for this desk, then derives it; returns how many
    /// deliveries were new here. For `clientele relay pull`.
    pub async fn pull_once(&self) -> ApiResult<u64> {
        let operations = self.operations.clone();
        let (link, client) = tokio::task::spawn_blocking(move || operations.relay_client())
            .await
            .map_err(|e| AppError::internal("Clientele couldn't pull from the relay.", &e))??;
        let Some(ingest) = self.ingest_handle() else {
            return Ok(0);
        };
        let (status_tx, _) = tokio::sync::watch::channel(PullStatus::default());
        let mut puller = self.puller_for(&link, client, ingest, status_tx);
        let pulled = puller.catch_up().await.map_err(|e| match e {
            StoreFailure::Relay(e) => AppError::from(e),
            StoreFailure::Local(message) => AppError::new(ErrorCode::Database, message),
        })?;
        self.flush().await?;
        Ok(pulled)
    }

    /// Stops pulling from the relay (what was pulled is stored already).
    pub async fn stop_pulling(&self) {
        if let Some(running) = self.puller.lock().await.take() {
            let _ = running.stop.send(true);
            if tokio::time::timeout(SHUTDOWN_WAIT, running.task)
                .await
                .is_err()
            {
                tracing::warn!("the relay puller didn't stop in time");
            }
        }
        self.operations.set_pull_status(None);
    }

    /// Stops everything in order: the listener (requests in flight finish), then the pipeline,
    /// which stores and derives what is queued before its threads end and are joined. Safe to
    /// call more than once.
    pub async fn shutdown(&self) {
        self.stop_pulling().await;
        self.stop_listening().await;
        self.pipeline.join().await;
    }

    /// [`Engine::shutdown`] for callers without a runtime of their own (the command line after
    /// its runtime is gone, a test's guard): joins the pipeline on this thread. Inside a Tokio
    /// runtime, only a multi-threaded one: the listener's task must run to let the pipeline go.
    pub fn shutdown_blocking(&self) {
        if let Ok(mut puller) = self.puller.try_lock()
            && let Some(running) = puller.take()
        {
            let _ = running.stop.send(true);
            running.task.abort();
        }
        stop_now(&self.listener);
        self.pipeline.join_blocking();
    }
}

/// The pipeline and the owner's own handle to it (`None` once shut down): what the desk's
/// [`Engine`] and a [`crate::relay::Relay`] both stop the same way.
#[derive(Debug)]
pub(crate) struct PipelineSlot {
    ingest: Mutex<Option<IngestHandle>>,
    pipeline: Mutex<Option<Pipeline>>,
}

impl PipelineSlot {
    pub(crate) fn new(ingest: IngestHandle, pipeline: Pipeline) -> PipelineSlot {
        PipelineSlot {
            ingest: Mutex::new(Some(ingest)),
            pipeline: Mutex::new(Some(pipeline)),
        }
    }

    /// A handle to send to the pipeline; `None` once shutting down.
    pub(crate) fn handle(&self) -> Option<IngestHandle> {
        self.ingest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops the owner's handle (the listener's goes with the listener) and takes the pipeline
    /// to join: it ends once it has stored (and derived) what is queued.
    fn release(&self) -> Option<Pipeline> {
        drop(self.ingest.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.pipeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Joins the pipeline off the async threads, waiting at most [`SHUTDOWN_WAIT`].
    pub(crate) async fn join(&self) {
        if let Some(pipeline) = self.release() {
            let joined = tokio::task::spawn_blocking(move || pipeline.join());
            if tokio::time::timeout(SHUTDOWN_WAIT, joined).await.is_err() {
                tracing::warn!("the ingest pipeline didn't stop in time; what it stored is safe");
            }
        }
    }

    /// Joins the pipeline on this thread (no runtime left to wait on).
    pub(crate) fn join_blocking(&self) {
        if let Some(pipeline) = self.release() {
            pipeline.join();
        }
    }
}

/// Tells a running listener to stop, without waiting for it (for callers without a runtime).
pub(crate) fn stop_now(listener: &tokio::sync::Mutex<Option<Listening>>) {
    if let Ok(mut listener) = listener.try_lock()
        && let Some(running) = listener.take()
    {
        let _ = running.closing.send(true);
        let _ = running.stop.send(());
    }
}

pub(crate) async fn stop(running: Listening) {
    let _ = running.closing.send(true);
    for task in &running.background {
        task.abort();
    }
    let _ = running.stop.send(());
    match tokio::time::timeout(SHUTDOWN_WAIT, running.task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "the listener stopped with an error"),
        Ok(Err(e)) => tracing::error!(error = %e, "the listener's task failed"),
        Err(_) => tracing::warn!("requests in flight didn't finish in time"),
    }
}
