//! Automatic HTTPS for the relay (`--domain relay.example.com`): the listener gets its certificate
//! from an ACME certificate authority (Let's Encrypt by default) and renews it by itself.
//!
//! The challenge is TLS-ALPN-01: the authority connects to port 443 of the name with the ALPN
//! protocol `acme-tls/1` alone, and the listener answers that one handshake with a special
//! self-signed certificate, on the same port that serves HTTPS — no port 80, no second listener.
//! [rustls-acme](rustls_acme) does the ACME side; its certificate resolver sits in the listener's
//! rustls config ([`acme_tls`]) and its state stream, driven by [`AcmeDriver`], orders the
//! certificate, renews it when a third of its life is left, and retries with a growing wait when
//! the authority can't be reached or can't reach the relay — the relay keeps serving meanwhile.
//!
//! The account key and the certificate (with its key) are kept in a private folder
//! ([`AcmeSettings::cache_dir`], mode 0700, files 0600), so a restart serves the saved
//! certificate at once and doesn't ask the authority again (Let's Encrypt limits how many
//! certificates a name may get in a week).

use crate::tls::{ACME_TLS_ALPN, TlsSettings, crypto_provider};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_acme::acme::{AcmeError as Protocol, Problem};
use rustls_acme::{AcmeConfig, AcmeState, EventError, EventOk, OrderError};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Let's Encrypt's production directory, the default authority.
pub const LETS_ENCRYPT_DIRECTORY: &str = rustls_acme::acme::LETS_ENCRYPT_PRODUCTION_DIRECTORY;

/// What the relay needs to get its certificate by itself.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The names the certificate is for (the relay's public name first).
    pub domains: Vec<String>,
    /// Where the authority writes about expiring certificates or account problems (optional).
    pub contact_email: Option<String>,
    /// The ACME directory URL ([`LETS_ENCRYPT_DIRECTORY`], or a test authority's).
    pub directory_url: String,
    /// Where the account key and the certificate are kept (created private).
    pub cache_dir: PathBuf,
    /// Root certificates trusted for the directory besides the machine's own (a test authority
    /// such as pebble serves its directory with a certificate of its own).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// Why automatic HTTPS can't start. The messages are meant for the operator as they are.
#[derive(Debug, thiserror::Error)]
pub enum AcmeSetupError {
    #[error("Clientele couldn't make the private folder {} for its certificate: {}", path.display(), crate::tls::plain_io(source))]
    CacheDir { path: PathBuf, source: io::Error },
    #[error("Clientele couldn't read the certificate file {}: {}", path.display(), crate::tls::plain_io(source))]
    ReadRoots { path: PathBuf, source: io::Error },
    #[error(
        "The certificate file {} has no certificate in it ({detail}). It should hold PEM text that starts with '-----BEGIN CERTIFICATE-----'.",
        path.display()
    )]
    NoRoots { path: PathBuf, detail: String },
    #[error(
        "Clientele can't check the certificate authority's address: this machine has no trusted root certificates ({0}). Install them (on Debian: apt-get install ca-certificates)."
    )]
    Roots(String),
    #[error("The TLS settings for automatic HTTPS can't be made ({0}).")]
    Tls(String),
}

/// Reads the PEM certificates in `path` (for [`AcmeSettings::extra_roots`]).
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, AcmeSetupError> {
    let bytes = std::fs::read(path).map_err(|source| AcmeSetupError::ReadRoots {
        path: path.to_path_buf(),
        source,
    })?;
    let no_roots = |detail: String| AcmeSetupError::NoRoots {
        path: path.to_path_buf(),
        detail,
    };
    let roots = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_roots(e.to_string()))?;
    if roots.is_empty() {
        return Err(no_roots("none found".into()));
    }
    Ok(roots)
}

/// The listener's TLS settings for `settings`, whose certificate comes from the authority, and
/// the driver that gets it (not started yet: see [`AcmeDriver::spawn`]).
///
/// Until the first certificate is there (read from the cache folder, or issued), handshakes fail
/// for lack of one; the ALPN protocols are `http/1.1` and `acme-tls/1`, and the listener closes a
/// challenge connection right after its handshake (see [`crate::listener::serve`]).
pub fn acme_tls(settings: AcmeSettings) -> Result<(TlsSettings, AcmeDriver), AcmeSetupError> {
    make_private_dir(&settings.cache_dir)?;
    let provider = crypto_provider();
    let verifier = if settings.extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(
            settings.extra_roots.iter().cloned(),
            provider.clone(),
        )
    }
    .map_err(|e| AcmeSetupError::Roots(e.to_string()))?;
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeSetupError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let cache = PrivateCache {
        dir: settings.cache_dir.clone(),
        validity: Arc::new(Mutex::new(None)),
    };
    let validity = cache.validity.clone();
    let has_saved = cache
        .cert_path(&settings.domains, &settings.directory_url)
        .exists();
    let state = AcmeConfig::new_with_client_config(&settings.domains, Arc::new(client))
        .directory(&settings.directory_url)
        .contact(settings.contact_email.iter().map(|e| format!("mailto:{e}")))
        .cache(cache)
        .state();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeSetupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(state.resolver());
    // Ordinary clients get HTTP/1.1 (the server's preference wins when a client offers both); only
    // a handshake offering `acme-tls/1` alone is the authority's challenge.
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    let driver = AcmeDriver {
        state,
        names: settings.domains.join(", "),
        directory: settings.directory_url,
        cache_dir: settings.cache_dir,
        validity,
        has_saved,
    };
    Ok((TlsSettings::new(Arc::new(config)), driver))
}

/// Gets and renews the certificate: rustls-acme's state stream, polled in a task of its own.
pub struct AcmeDriver {
    state: AcmeState<io::Error>,
    /// The certificate's names, for messages.
    names: String,
    directory: String,
    cache_dir: PathBuf,
    /// The dates of the certificate last read from or saved in the cache.
    validity: Arc<Mutex<Option<Validity>>>,
    /// A certificate for these names and this authority was saved by an earlier run.
    has_saved: bool,
}

impl std::fmt::Debug for AcmeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeDriver")
            .field("names", &self.names)
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

/// The running driver; dropping it (or [`AcmeTask::abort`]) stops it.
#[derive(Debug)]
pub struct AcmeTask(tokio::task::JoinHandle<()>);

impl AcmeTask {
    pub fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for AcmeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AcmeDriver {
    /// Starts getting (and then renewing) the certificate in a task on the current tokio runtime.
    /// Each step worth telling the operator is passed to `report` as a sentence; failures are
    /// retried, never fatal.
    pub fn spawn(self, report: impl Fn(&str) + Send + 'static) -> AcmeTask {
        AcmeTask(tokio::spawn(self.run(report)))
    }

    async fn run(mut self, report: impl Fn(&str) + Send + 'static) {
        let names = self.names.clone();
        let directory = self.directory.clone();
        if !self.has_saved {
            report(&format!(
                "asking {directory} for a certificate for {names}…"
            ));
        }
        // When to say that renewal starts (rustls-acme renews once two thirds of the certificate's
        // life have passed, and says nothing when it starts).
        let mut renew_at: Option<DateTime<Utc>> = None;
        // Consecutive failures, to tell how long rustls-acme waits before it tries again.
        let mut failures: u32 = 0;
        loop {
            let event = match renew_at {
                Some(at) => {
                    let wait = (at - Utc::now()).to_std().unwrap_or_default();
                    tokio::select! {
                        event = self.state.next() => event,
                        () = tokio::time::sleep(wait) => {
                            renew_at = None;
                            report(&format!("asking {directory} to renew the certificate for {names}…"));
                            continue;
                        }
                    }
                }
                None => self.state.next().await,
            };
            let Some(event) = event else { return };
            let validity = *self.validity.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                Ok(EventOk::DeployedCachedCert) => {
                    let until = validity.map(|v| v.until_text()).unwrap_or_default();
                    report(&format!(
                        "using the certificate for {names} saved in {}{until}",
                        self.cache_dir.display()
                    ));
                    match validity.map(|v| v.renew_at()) {
                        Some(at) if at <= Utc::now() => report(&format!(
                            "it is due for renewal: asking {directory} for a new certificate for {names}…"
                        )),
                        at => renew_at = at,
                    }
                }
                // Told once it is saved (next), with its dates.
                Ok(EventOk::DeployedNewCert) => failures = 0,
                Ok(EventOk::CertCacheStore) => {
                    let until = validity.map(|v| v.until_text()).unwrap_or_default();
                    report(&format!("certificate for {names} obtained{until}"));
                    renew_at = validity.map(|v| v.renew_at());
                }
                Ok(EventOk::AccountCacheStore) => {
                    tracing::debug!(dir = %self.cache_dir.display(), "ACME account key saved");
                }
                Err(EventError::Order(e)) => {
                    let wait = Duration::from_secs(1 << failures.min(16));
                    failures += 1;
                    let (why, unreachable) = order_problem(&e);
                    let check = if unreachable {
                        format!(
                            "Check this machine's internet connection and the authority's address ({directory})"
                        )
                    } else {
                        format!(
                            "Check that the DNS of {names} points to this machine and that port 443 of {names} reaches this relay"
                        )
                    };
                    report(&format!(
                        "couldn't get a certificate for {names} from {directory}: {why}. {check}. The relay keeps serving and tries again in {}.",
                        plain_duration(wait)
                    ));
                }
                Err(EventError::CertCacheStore(e)) => {
                    let until = validity.map(|v| v.until_text()).unwrap_or_default();
                    report(&format!(
                        "certificate for {names} obtained{until}, but it couldn't be saved in {} ({}): the relay serves it, and will ask for a new one at its next start",
                        self.cache_dir.display(),
                        crate::tls::plain_io(&e)
                    ));
                    renew_at = validity.map(|v| v.renew_at());
                }
                Err(EventError::AccountCacheStore(e)) => report(&format!(
                    "the ACME account key couldn't be saved in {} ({}); a new account will be made at the next start",
                    self.cache_dir.display(),
                    crate::tls::plain_io(&e)
                )),
                Err(EventError::CertCacheLoad(e) | EventError::AccountCacheLoad(e)) => {
                    report(&format!(
                        "couldn't read the saved certificate or account in {} ({}); asking {directory} again…",
                        self.cache_dir.display(),
                        crate::tls::plain_io(&e)
                    ))
                }
                Err(EventError::CachedCertParse(e)) => report(&format!(
                    "the certificate saved in {} can't be used ({e}); asking {directory} for a new one…",
                    self.cache_dir.display()
                )),
                Err(EventError::NewCertParse(e)) => {
                    let wait = Duration::from_secs(1 << failures.min(16));
                    failures += 1;
                    report(&format!(
                        "the certificate {directory} issued for {names} can't be used ({e}); trying again in {}",
                        plain_duration(wait)
                    ))
                }
            }
        }
    }
}

/// What went wrong with an order, in the authority's words where it gave some; and whether the
/// authority couldn't be reached at all (rather than refusing or failing the challenge).
fn order_problem(e: &OrderError) -> (String, bool) {
    fn problem(p: &Option<Problem>) -> Option<String> {
        p.as_ref().and_then(|p| p.detail.clone())
    }
    match e {
        OrderError::Acme(Protocol::HttpRequest(http)) => match http_problem(http) {
            Some(text) => (text, false),
            None => (
                format!(
                    "the certificate authority can't be reached ({})",
                    transport_problem(&http.to_string())
                ),
                true,
            ),
        },
        OrderError::BadAuth(auth) => {
            let why = auth.challenges.iter().find_map(|c| problem(&c.error));
            let text = match why {
                Some(why) => {
                    format!("it couldn't check that this relay answers for the name ({why})")
                }
                None => format!(
                    "it couldn't check that this relay answers for the name (authorization {:?})",
                    auth.status
                ),
            };
            (text, false)
        }
        OrderError::TooManyAttemptsAuth(domain) => (
            format!("it didn't confirm that this relay answers for {domain} in time"),
            false,
        ),
        OrderError::BadOrder(order) => match problem(&order.error) {
            Some(why) => (format!("it refused the order ({why})"), false),
            None => ("it refused the order".into(), false),
        },
        other => (other.to_string(), false),
    }
}

/// A connection failure in plain words (the HTTP client's own text is a debug dump).
fn transport_problem(text: &str) -> String {
    let has = |needle: &str| text.contains(needle);
    if has("ConnectionRefused") {
        "the connection was refused".into()
    } else if has("TimedOut") || has("timed out") {
        "it didn't answer in time".into()
    } else if has("certificate") || has("Certificate") {
        "its certificate isn't trusted here; for a test authority, pass its root with --acme-ca-cert"
            .into()
    } else if has("Dns") || has("lookup") || has("resolve") || has("InvalidDnsName") {
        "its name couldn't be looked up".into()
    } else {
        text.to_string()
    }
}

/// The authority's own explanation of an HTTP error (RFC 8555 problem document), if any.
fn http_problem(e: &dyn std::fmt::Display) -> Option<String> {
    problem_in_message(&e.to_string()).map(|d| format!("the certificate authority answered: {d}"))
}

/// rustls-acme keeps an error answer's body only in its message, as a quoted string after the
/// status: `… non 2xx http status: 400 "{\n  \"type\": …}"`; the detail of that document.
fn problem_in_message(text: &str) -> Option<String> {
    let quoted = &text[text.find('"')?..];
    let body: String = serde_json::from_str(quoted).ok()?;
    let problem: Problem = serde_json::from_str(&body).ok()?;
    problem.detail
}

fn plain_duration(d: Duration) -> String {
    match d.as_secs() {
        1 => "1 second".into(),
        s if s < 120 => format!("{s} seconds"),
        s if s < 7200 => format!("{} minutes", s / 60),
        s => format!("{} hours", s / 3600),
    }
}

/// A certificate's dates.
#[derive(Debug, Clone, Copy)]
struct Validity {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl Validity {
    /// From the first certificate in `pem` (rustls-acme's cache text: the key, then the chain).
    fn of_pem(pem: &[u8]) -> Option<Validity> {
        let first = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&first).ok()?;
        let v = cert.validity();
        Some(Validity {
            from: DateTime::from_timestamp(v.not_before.timestamp(), 0)?,
            until: DateTime::from_timestamp(v.not_after.timestamp(), 0)?,
        })
    }

    /// When rustls-acme renews it: a third of its life before it ends.
    fn renew_at(self) -> DateTime<Utc> {
        self.until - (self.until - self.from) / 3
    }

    fn until_text(self) -> String {
        format!(", valid until {}", self.until.format("%Y-%m-%d %H:%M UTC"))
    }
}

/// rustls-acme's cache in a private folder: each file written whole (a temporary file renamed
/// over it) and readable by the relay's user alone, as they hold private keys.
struct PrivateCache {
    dir: PathBuf,
    validity: Arc<Mutex<Option<Validity>>>,
}

impl PrivateCache {
    /// One file per set of names and authority (a staging certificate is never served for
    /// production, nor one for other names).
    fn cert_path(&self, domains: &[String], directory: &str) -> PathBuf {
        self.dir
            .join(format!("certificate-{}.pem", key(domains, directory)))
    }

    fn account_path(&self, contact: &[String], directory: &str) -> PathBuf {
        self.dir
            .join(format!("account-{}.key", key(contact, directory)))
    }

    fn note_validity(&self, pem: &[u8]) {
        *self.validity.lock().unwrap_or_else(|p| p.into_inner()) = Validity::of_pem(pem);
    }
}

fn key(items: &[String], directory: &str) -> String {
    let mut hash = Sha256::new();
    for item in items {
        hash.update(item.as_bytes());
        hash.update([0]);
    }
    hash.update(directory.as_bytes());
    hex::encode(&hash.finalize()[..12])
}

fn read_if_there(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` readable by its owner alone, replacing it whole.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    make_private_dir(dir).map_err(|e| match e {
        AcmeSetupError::CacheDir { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    let temp = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)
}

/// Creates `dir` (and its parents) and makes it private to the relay's user (0700).
fn make_private_dir(dir: &Path) -> Result<(), AcmeSetupError> {
    let err = |source| AcmeSetupError::CacheDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl rustls_acme::CertCache for PrivateCache {
    type EC = io::Error;

    async fn load_cert(&self, domains: &[String], directory: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.cert_path(domains, directory);
        let pem = tokio::task::spawn_blocking(move || read_if_there(&path))
            .await
            .map_err(io::Error::other)??;
        if let Some(pem) = &pem {
            self.note_validity(pem);
        }
        Ok(pem)
    }

    async fn store_cert(&self, domains: &[String], directory: &str, pem: &[u8]) -> io::Result<()> {
        self.note_validity(pem);
        let (path, pem) = (self.cert_path(domains, directory), pem.to_vec());
        tokio::task::spawn_blocking(move || write_private(&path, &pem))
            .await
            .map_err(io::Error::other)?
    }
}

#[async_trait::async_trait]
impl rustls_acme::AccountCache for PrivateCache {
    type EA = io::Error;

    async fn load_account(
        &self,
        contact: &[String],
        directory: &str,
    ) -> io::Result<Option<Vec<u8>>> {
        let path = self.account_path(contact, directory);
        tokio::task::spawn_blocking(move || read_if_there(&path))
            .await
            .map_err(io::Error::other)?
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory: &str,
        key: &[u8],
    ) -> io::Result<()> {
        let (path, key) = (self.account_path(contact, directory), key.to_vec());
        tokio::task::spawn_blocking(move || write_private(&path, &key))
            .await
            .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_written_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary folder");
        let cache_dir = dir.path().join("acme");
        let file = cache_dir.join("account-x.key");
        write_private(&file, b"first").expect("write");
        write_private(&file, b"second").expect("write again");
        assert_eq!(std::fs::read(&file).expect("read"), b"second");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(!file.with_extension("partial").exists());
    }

    #[test]
    fn a_folder_left_open_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary folder");
        let open = dir.path().join("acme");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        make_private_dir(&open).expect("private");
        let mode = std::fs::metadata(&open)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn files_differ_by_names_and_authority() {
        let cache = PrivateCache {
            dir: PathBuf::from("/x"),
            validity: Arc::new(Mutex::new(None)),
        };
        let a = vec!["a.example.com".to_string()];
        let b = vec!["b.example.com".to_string()];
        assert_ne!(
            cache.cert_path(&a, "https://one"),
            cache.cert_path(&b, "https://one")
        );
        assert_ne!(
            cache.cert_path(&a, "https://one"),
            cache.cert_path(&a, "https://two")
        );
        assert_eq!(
            cache.cert_path(&a, "https://one"),
            cache.cert_path(&a, "https://one")
        );
    }

    #[test]
    fn renewal_is_a_third_of_the_life_before_the_end() {
        let from = DateTime::from_timestamp(0, 0).expect("time");
        let until = DateTime::from_timestamp(90 * 86_400, 0).expect("time");
        let at = Validity { from, until }.renew_at();
        assert_eq!(at, DateTime::from_timestamp(60 * 86_400, 0).expect("time"));
    }

    #[test]
    fn the_authoritys_explanation_is_kept() {
        // What pebble answers for a name it won't issue for, as rustls-acme words it.
        let body = "{\n   \"type\": \"urn:ietf:params:acme:error:rejectedIdentifier\",\n   \"detail\": \"Error creating new order :: Cannot issue for \\\"localhost\\\"\"\n}";
        let message = format!("http request error: non 2xx http status: 400 {body:?}");
        let detail = problem_in_message(&message).expect("a problem document");
        assert_eq!(
            detail,
            "Error creating new order :: Cannot issue for \"localhost\""
        );
        assert_eq!(
            problem_in_message("http request error: io error: refused"),
            None
        );
    }

    #[test]
    fn connection_failures_are_said_plainly() {
        let refused = r#"http error: ConnectError(TcpConnect(Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }))"#;
        assert_eq!(transport_problem(refused), "the connection was refused");
        assert!(
            transport_problem("io error: invalid peer certificate: UnknownIssuer")
                .contains("--acme-ca-cert")
        );
        assert_eq!(transport_problem("something new"), "something new");
        assert_eq!(plain_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(plain_duration(Duration::from_secs(65_536)), "18 hours");
    }
}
