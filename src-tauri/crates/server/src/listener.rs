//! The HTTP listener: its routes (`POST /hooks/{provider}/{connection}`, see [`crate::hooks`],
//! and `GET /health`), the limits every request is held to, and the serve loop — plain HTTP on a
//! desk, HTTPS on a relay that holds its own certificate ([`crate::tls`]).

use crate::Clock;
use crate::client_addr::TrustedProxies;
use crate::connections::ConnectionRegistry;
use crate::hooks::{HOOKS_ROUTE, receive};
use crate::tls::TlsSettings;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clientele_ingest::IngestHandle;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// Default largest accepted body: 5 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 5 * 1024 * 1024;
/// A request (headers and body) must complete within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests handled at once; more wait their turn.
pub const MAX_CONCURRENT_REQUESTS: usize = 1_024;
/// How long a client may take to send a request's line and headers before its connection is
/// closed. Providers' servers send them at once; a connection that trickles them ("slowloris")
/// would otherwise stay open for good, and enough of them use up the process's open files.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the listener needs.
#[derive(Debug, Clone)]
pub struct ListenerState {
    pub connections: Arc<ConnectionRegistry>,
    pub ingest: IngestHandle,
    pub body_limit: usize,
    pub clock: ClockHandle,
    /// The desktop app's per-run token marking its own "Send a test event" deliveries.
    pub test_token: Option<Arc<clientele_core::Sensitive<String>>>,
    /// Reverse proxies whose forwarding headers name the sender (see [`crate::client_addr`]);
    /// empty: the peer is the sender.
    pub trusted_proxies: TrustedProxies,
}

/// `Clock` with a `Debug` impl.
#[derive(Clone)]
pub struct ClockHandle(pub Clock);

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// The routes, for tests without a socket and for [`run`].
pub fn router(state: ListenerState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/health", get(health))
        .route(HOOKS_ROUTE, post(receive))
        .with_state(state)
        // The handler enforces the limit itself (to log and answer 413 in words); this only stops
        // axum's default 2 MB limit from applying first.
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then finishes in-flight
/// requests. With `tls`, every connection is HTTPS (see [`crate::tls`]); without, plain HTTP.
///
/// This is `axum::serve` plus [`HEADER_READ_TIMEOUT`], which `axum::serve` has no setting for:
/// the same HTTP/1 connections, the peer's address as `ConnectInfo`, and the same graceful stop.
/// A TLS handshake runs in the connection's own task, so a slow or silent client never holds up
/// the accept loop; it gets [`TlsSettings::handshake_timeout`] to finish, a failed handshake is
/// only worth a debug line (scanners do it all day), and a handshake still under way when
/// `shutdown` resolves is abandoned rather than waited for.
pub async fn run(
    listener: TcpListener,
    state: ListenerState,
    tls: Option<TlsSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state), tls, shutdown).await
}

/// [`run`] for any app built on [`router`] (a relay adds its own routes beside the hooks route).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioTimer;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let http = Arc::new(http);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells handshakes under way that the listener is stopping (connections being served are
    // told by `connections`).
    let (stopping, _) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of open files, most likely: wait for some to close (as axum does).
                    tracing::error!(error = %e, "couldn't accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Taken here, before any later shutdown, so the shutdown reaches this connection however
        // long its handshake takes.
        let watcher = connections.watcher();
        let (app, http) = (app.clone(), http.clone());
        match &tls {
            None => {
                tokio::spawn(serve_connection(http, stream, app, remote, watcher));
            }
            Some(tls) => {
                let tls = tls.clone();
                let stopping = stopping.subscribe();
                tokio::spawn(async move {
                    if let Some(stream) = handshake(&tls, stream, remote, stopping).await {
                        serve_connection(http, stream, app, remote, watcher).await;
                    }
                });
            }
        }
    }
    stopping.send_replace(true);
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// The TLS handshake on `stream`, or `None` when it fails, takes too long, or the listener stops
/// first — or when it was an ACME challenge, which is closed once answered.
async fn handshake(
    tls: &TlsSettings,
    stream: TcpStream,
    remote: SocketAddr,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let accept = tokio::time::timeout(tls.handshake_timeout(), tls.acceptor().accept(stream));
    let mut stream = tokio::select! {
        handshake = accept => match handshake {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake took too long");
                None
            }
        },
        _ = stopping.wait_for(|stopping| *stopping) => None,
    }?;
    if is_acme_challenge(&stream) {
        // A certificate authority checking the name (automatic HTTPS): the handshake was the
        // whole answer. Closed here, never read as HTTP.
        tracing::debug!(%remote, "answered an ACME TLS-ALPN-01 challenge");
        let close = tokio::io::AsyncWriteExt::shutdown(&mut stream);
        let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
        return None;
    }
    Some(stream)
}

/// The handshake chose ALPN `acme-tls/1`: the client offered it alone (an ACME certificate
/// authority's TLS-ALPN-01 check) and the config lists it ([`crate::acme`]).
fn is_acme_challenge(stream: &tokio_rustls::server::TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN)
}

/// Serves HTTP/1 on one connection (plain or TLS), each request carrying the peer's address.
async fn serve_connection<S>(
    http: Arc<hyper::server::conn::http1::Builder>,
    stream: S,
    app: Router,
    remote: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;

    let service = app.map_request(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request
    });
    let connection = http.serve_connection(
        TokioIo::new(stream),
        hyper_util::service::TowerToHyperService::new(service),
    );
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}
