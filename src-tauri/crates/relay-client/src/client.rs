//! [`RelayClient`]: the relay's API (see `clientele_core::relay_protocol`) over HTTPS, with
//! errors a desk can show: the relay can't be reached, its certificate isn't trusted, this
//! desk's access was removed, or it answered something that isn't the relay's API.
//!
//! TLS is rustls with the ring provider. The relay's certificate is checked against the
//! platform's trusted roots, or, when the desk joined with `--ca-cert`, against that certificate
//! only (a self-signed relay).

use crate::trust;
use clientele_core::Provider;
use clientele_core::hand::HandChange;
use clientele_core::relay_protocol::{
    Ack, AddRemoteConnection, ApiErrorBody, ChangeAccepted, ChangesPage, DeviceInfo,
    MAX_WAIT_SECONDS, Page, PairRequest, Paired, Policy, RemoteConnection, RemoteRejection,
    TestOutcome, UpdateRemoteConnection,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any call but a waiting pull may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a waiting pull gets beyond its wait.
const PULL_GRACE: Duration = Duration::from_secs(15);

/// Why a call to the relay failed, in words for the window and the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("That relay address isn't valid: {0}")]
    BadAddress(String),
    #[error("Clientele couldn't reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "The relay at {url} didn't prove who it is: its certificate isn't trusted by this computer ({reason}). If the relay uses its own certificate, join with --ca-cert."
    )]
    Certificate { url: String, reason: String },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    NotAdmin { message: String },
    /// The relay refused with its own `{code, message}`.
    #[error("{message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "The address {url} answered, but not like a Clientele relay ({reason}). Check the address."
    )]
    NotARelay { url: String, reason: String },
    #[error("The certificate file couldn't be used: {0}")]
    CaCert(String),
}

impl ClientError {
    /// The desk's access is gone for good (revoked): retrying won't help.
    pub fn is_revoked(&self) -> bool {
        matches!(self, ClientError::Unauthorized { .. })
    }
}

/// A relay's API, for one desk.
#[derive(Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: reqwest::Url,
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("url", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses and checks a relay address: `https://…` (or `http://…`, for a relay on this machine
/// or behind the operator's own network), without a query.
pub fn parse_url(url: &str) -> Result<reqwest::Url, ClientError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(trimmed).map_err(|e| ClientError::BadAddress(e.to_string()))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(ClientError::BadAddress(
            "it must start with https:// (for example https://relay.example.com)".into(),
        ));
    }
    Ok(parsed)
}

/// The TLS settings: the platform's roots, or only `ca_pem`'s certificates — a relay presenting
/// exactly one of them is trusted as itself, one presenting a certificate issued by one of them
/// is checked as usual (name, dates, chain).
fn tls_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = trust::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::CaCert(e.to_string()))?;
    let config = match ca_pem {
        None => builder
            .with_platform_verifier()
            .map_err(|e| ClientError::CaCert(e.to_string()))?
            .with_no_client_auth(),
        Some(pem) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let mut pinned = Vec::new();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| ClientError::CaCert(e.to_string()))?;
                // A certificate that isn't a usable CA is still trusted as itself (pinned).
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
            if pinned.is_empty() {
                return Err(ClientError::CaCert(
                    "it has no certificate in it (expected a PEM file: -----BEGIN CERTIFICATE-----)"
                        .into(),
                ));
            }
            let issued: Option<Arc<dyn rustls::client::danger::ServerCertVerifier>> =
                if roots.is_empty() {
                    None
                } else {
                    Some(
                        rustls::client::WebPkiServerVerifier::builder_with_provider(
                            Arc::new(roots),
                            provider.clone(),
                        )
                        .build()
                        .map_err(|e| ClientError::CaCert(e.to_string()))?,
                    )
                };
            let verifier = trust::PinnedOr {
                verifier: issued,
                pinned,
                provider,
                pinned_only: Arc::default(),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

impl RelayClient {
    /// A client for the relay at `url`, trusting `ca_pem` (PEM text) if given.
    pub fn new(url: &str, ca_pem: Option<&str>) -> Result<RelayClient, ClientError> {
        let base = parse_url(url)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(ca_pem)?)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("clientele/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::CaCert(e.to_string()))?;
        Ok(RelayClient {
            http,
            base,
            token: None,
        })
    }

    /// The same client, calling with this device token.
    pub fn with_token(mut self, token: &str) -> RelayClient {
        self.token = Some(token.into());
        self
    }

    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// A new connection pool (after the computer woke: the old connections are likely dead).
    pub fn fresh(&self, ca_pem: Option<&str>) -> Result<RelayClient, ClientError> {
        let fresh = RelayClient::new(self.base.as_str(), ca_pem)?;
        Ok(RelayClient {
            token: self.token.clone(),
            ..fresh
        })
    }

    fn endpoint(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        let base_path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base_path}{path}"));
        url
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, self.endpoint(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Exchanges a pairing code for a device token.
    pub async fn pair(&self, code: &str, name: Option<&str>) -> Result<Paired, ClientError> {
        let request = PairRequest {
            code: code.to_string(),
            name: name.map(str::to_string),
        };
        self.call(
            self.request(reqwest::Method::POST, "/pair")
                .json(&request)
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Deliveries after `cursor`, waiting up to `wait` for one when there are none.
    pub async fn pull(
        &self,
        cursor: &str,
        limit: usize,
        wait: Duration,
    ) -> Result<Page, ClientError> {
        let wait = wait.min(Duration::from_secs(MAX_WAIT_SECONDS));
        let limit = limit.to_string();
        let seconds = wait.as_secs().to_string();
        self.call(
            self.request(reqwest::Method::GET, "/v1/deliveries")
                .query(&[
                    ("after", cursor),
                    ("limit", limit.as_str()),
                    ("wait", seconds.as_str()),
                ])
                .timeout(wait + PULL_GRACE),
        )
        .await
    }

    /// Tells the relay this desk has stored everything up to `cursor`.
    pub async fn ack(&self, cursor: &str) -> Result<(), ClientError> {
        self.call_empty(
            self.request(reqwest::Method::POST, "/v1/ack")
                .json(&Ack {
                    cursor: cursor.to_string(),
                })
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Who this token is, and how far behind.
    pub async fn device(&self) -> Result<DeviceInfo, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, "/v1/device")
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    pub async fn connections(&self) -> Result<Vec<RemoteConnection>, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, "/v1/connections")
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    pub async fn add_connection(
        &self,
        add: &AddRemoteConnection,
    ) -> Result<RemoteConnection, ClientError> {
        self.call(
            self.request(reqwest::Method::POST, "/v1/connections")
                .json(add)
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    pub async fn remove_connection(
        &self,
        provider: Provider,
        name: &str,
    ) -> Result<(), ClientError> {
        self.call_empty(
            self.request(
                reqwest::Method::DELETE,
                &format!("/v1/connections/{}/{name}", provider.id()),
            )
            .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Has the relay send itself a signed test event for a connection.
    pub async fn send_test_event(
        &self,
        provider: Provider,
        name: &str,
    ) -> Result<TestOutcome, ClientError> {
        self.call(
            self.request(
                reqwest::Method::POST,
                &format!("/v1/connections/{}/{name}/test", provider.id()),
            )
            .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Replaces the settings of one of the relay's connections (admin desks).
    pub async fn update_connection(
        &self,
        provider: Provider,
        name: &str,
        update: &UpdateRemoteConnection,
    ) -> Result<RemoteConnection, ClientError> {
        self.call(
            self.request(
                reqwest::Method::PATCH,
                &format!("/v1/connections/{}/{name}", provider.id()),
            )
            .json(update)
            .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Sends a hand change. The relay keeps it once (by its uid) and, for a forget, has forgotten
    /// its own copy of those customers when this returns.
    pub async fn send_change(&self, change: &HandChange) -> Result<ChangeAccepted, ClientError> {
        self.call(
            self.request(reqwest::Method::POST, "/v1/changes")
                .json(change)
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// The hand changes after `after` (the relay's id), oldest first.
    pub async fn changes(&self, after: i64, limit: usize) -> Result<ChangesPage, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, "/v1/changes")
                .query(&[("after", after.to_string()), ("limit", limit.to_string())])
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// The retention policy the relay holds for every desk.
    pub async fn policy(&self) -> Result<Policy, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, "/v1/policy")
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// Sets the retention policy for every desk (admin desks).
    pub async fn set_policy(&self, policy: &Policy) -> Result<Policy, ClientError> {
        self.call(
            self.request(reqwest::Method::PUT, "/v1/policy")
                .json(policy)
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    /// The relay's refusals after `after` (its log's id), oldest first.
    pub async fn rejections(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<RemoteRejection>, ClientError> {
        self.call(
            self.request(reqwest::Method::GET, "/v1/rejections")
                .query(&[("after", after.to_string()), ("limit", limit.to_string())])
                .timeout(CALL_TIMEOUT),
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::NotARelay {
            url: self.url().to_string(),
            reason: format!("its answer wasn't understood: {e}"),
        })
    }

    async fn call_empty(&self, request: reqwest::RequestBuilder) -> Result<(), ClientError> {
        self.send(request).await.map(drop)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let refused: Option<ApiErrorBody> = serde_json::from_slice(&body).ok();
        Err(match (status, refused) {
            (StatusCode::UNAUTHORIZED, Some(r)) => ClientError::Unauthorized { message: r.message },
            (StatusCode::FORBIDDEN, Some(r)) if r.code == "not_admin" => {
                ClientError::NotAdmin { message: r.message }
            }
            (status, Some(r)) => ClientError::Refused {
                status: status.as_u16(),
                code: r.code,
                message: r.message,
            },
            (status, None) => ClientError::NotARelay {
                url: self.url().to_string(),
                reason: format!("it answered {status}"),
            },
        })
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        transport_error(self.url(), e)
    }
}

/// What a failed request to `url` means: its certificate wasn't trusted, or it couldn't be
/// reached (and why, in words).
pub(crate) fn transport_error(url: &str, e: &reqwest::Error) -> ClientError {
    let url = url.to_string();
    // The certificate problem is deep in the error's sources.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return ClientError::Certificate {
                url,
                reason: tls.to_string(),
            };
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return ClientError::Certificate {
                url,
                reason: tls.to_string(),
            };
        }
        // Some layers keep only the words of the TLS error.
        let words = s.to_string();
        if words.contains("certificate") {
            return ClientError::Certificate { url, reason: words };
        }
        source = s.source();
    }
    let reason = if e.is_timeout() {
        "it didn't answer in time".to_string()
    } else if e.is_connect() {
        "nothing answered at that address".to_string()
    } else if e.is_decode() || e.is_body() {
        "the answer was cut off".to_string()
    } else {
        e.to_string()
    };
    ClientError::Unreachable { url, reason }
}
