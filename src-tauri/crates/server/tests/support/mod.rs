//! What the listener's socket tests share: a listener on `127.0.0.1:0` over a store in a temporary
//! folder, certificates made on the spot (a CA of the test's own and a server certificate it
//! signed), and an HTTPS client that trusts a chosen CA.

// Each test file uses a part of this.
#![allow(dead_code)]

use clientele_core::ConnectionSettings;
use clientele_ingest::IngestHandle;
use clientele_secrets::MemoryStore;
use clientele_server::client_addr::TrustedProxies;
use clientele_server::connections::ConnectionRegistry;
use clientele_server::listener::{self, ClockHandle, DEFAULT_BODY_LIMIT, ListenerState};
use clientele_server::tls::{self, TlsSettings};
use clientele_store::{NewConnection, RejectionRow, Store};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The most any step may take: generous for a debug build on two busy cores, while something
/// that never happens (a hang, a handshake the listener waits on) still fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `future`, or a failure naming `what` once [`DEADLINE`] passes.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: nothing after {DEADLINE:?}"),
    }
}

/// A CA made for one test, and a server certificate it signed for `localhost` and `127.0.0.1`,
/// written as PEM files the way an operator would have them.
pub struct Certificates {
    pub dir: TempDir,
    pub ca: CertificateDer<'static>,
    /// The server's certificate chain (its certificate only).
    pub cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub key: PathBuf,
    /// The DER of the server's key (for tests that rewrite it in another encoding).
    pub key_der: Vec<u8>,
}

pub fn certificates() -> Certificates {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Clientele test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
    Certificates {
        ca: ca.der().clone(),
        cert: cert_path,
        key: key_path,
        key_der: key.serialize_der(),
        dir,
    }
}

impl Certificates {
    /// The listener's TLS settings from the files, as the relay command will make them.
    pub fn tls(&self) -> TlsSettings {
        tls::load_tls(&self.cert, &self.key).expect("the test certificate loads")
    }
}

/// What a test listener starts with.
#[derive(Default)]
pub struct Setup {
    pub tls: Option<TlsSettings>,
    pub trusted_proxies: TrustedProxies,
    /// Connections added to the store before the listener starts.
    pub connections: Vec<NewConnection>,
    /// The process's test token (marks its own test events).
    pub test_token: Option<String>,
}

/// A listener serving a store in a temporary folder; stopped (gracefully) by [`Server::stop`].
pub struct Server {
    pub addr: SocketAddr,
    pub store: Store,
    ingest: IngestHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _data: TempDir,
}

pub async fn start(setup: Setup) -> Server {
    let data = tempfile::tempdir().expect("temporary folder");
    let store = Store::open_dir(data.path()).expect("store");
    {
        let mut writer = store.writer().expect("writer");
        for connection in &setup.connections {
            writer
                .add_connection(connection, chrono::Utc::now())
                .expect("add connection");
        }
    }
    let registry =
        ConnectionRegistry::load(store.clone(), Arc::new(MemoryStore::new())).expect("connections");
    let (ingest, _pipeline) = clientele_ingest::start(&store).expect("pipeline");
    let state = ListenerState {
        connections: Arc::new(registry),
        ingest: ingest.clone(),
        body_limit: DEFAULT_BODY_LIMIT,
        clock: ClockHandle(clientele_server::system_clock()),
        test_token: setup
            .test_token
            .map(|t| std::sync::Arc::new(clientele_core::Sensitive::new(t))),
        trusted_proxies: setup.trusted_proxies,
    };
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(listener::run(tcp, state, setup.tls, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        store,
        ingest,
        stop: Some(stop),
        task,
        _data: data,
    }
}

impl Server {
    /// `scheme://localhost:port{path}`; clients resolve `localhost` to [`Server::addr`].
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    /// Refused requests, newest first, once everything queued is stored.
    pub async fn rejections(&self) -> Vec<RejectionRow> {
        within("flush", self.ingest.flush())
            .await
            .expect("the pipeline stores what is queued");
        self.store
            .reader()
            .expect("reader")
            .rejections(None)
            .expect("rejections")
    }

    /// Stops the listener and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within("the listener's stop", &mut self.task)
            .await
            .expect("the listener task")
            .expect("the listener stops cleanly");
    }
}

/// An HTTPS (and plain HTTP) client trusting only `ca`, on the same *ring* provider as the
/// listener, that finds `localhost` at `server`. This is how reqwest 0.13 (feature
/// `rustls-no-provider`) takes a CA of one's own without a process-wide provider.
pub fn client_for(server: &Server, ca: &CertificateDer<'static>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .expect("the CA is a usable trust anchor");
    let mut config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .resolve("localhost", server.addr)
        .build()
        .expect("client")
}

/// A connection without a secret (its deliveries are accepted unchecked), optionally limited to
/// senders at `allowed_ips`.
pub fn unsigned_connection(
    provider: clientele_core::Provider,
    name: &str,
    allowed_ips: &[&str],
) -> NewConnection {
    NewConnection {
        provider,
        name: name.to_string(),
        settings: ConnectionSettings {
            allowed_ips: allowed_ips
                .iter()
                .map(|ip| ip.parse().expect("test address"))
                .collect(),
            ..Default::default()
        },
        requires_secret: false,
    }
}
