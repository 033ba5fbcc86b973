//! A relay checking its own public address: it posts a signed test event there over real
//! HTTP(S), exactly as a provider would — through DNS, the firewall, any proxy in front of it and
//! TLS — rather than handing it to its hooks route in-process, which would prove nothing about
//! the address providers are given.
//!
//! The relay's certificate is trusted two ways: as the platform trusts any site (a certificate
//! from a public authority, such as a proxy's Let's Encrypt one), or as exactly the certificate
//! the relay serves itself (`--tls-cert`, which may be its own, self-signed). The handshake's
//! signatures are checked either way, so only the holder of the key gets through. Redirects are
//! not followed: providers count them as failures (Plain does).

use crate::ClientError;
use crate::client::transport_error;
use crate::trust;
pub use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long the whole request may take: well under a desk's own wait for the relay's answer.
pub const OWN_ADDRESS_TIMEOUT: Duration = Duration::from_secs(15);

/// What the public address answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// Its certificate was trusted only because it is the relay's own: the platform doesn't
    /// trust it (self-signed, or from a private authority), and providers may well refuse it.
    pub own_certificate_only: bool,
}

/// Posts `body` with `headers` to `url` as a provider would; `own` is the certificate chain the
/// relay serves (empty when it serves plain HTTP, e.g. behind a proxy).
pub async fn post_like_a_provider(
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    own: &[CertificateDer<'static>],
) -> Result<Answer, ClientError> {
    let own_only = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(own, own_only.clone())?)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(OWN_ADDRESS_TIMEOUT)
        .user_agent(concat!("clientele-relay-test/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::CaCert(e.to_string()))?;
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| transport_error(url, &e))?;
    Ok(Answer {
        status,
        body,
        own_certificate_only: own_only.load(Ordering::Relaxed),
    })
}

fn tls_config(
    own: &[CertificateDer<'static>],
    own_only: Arc<AtomicBool>,
) -> Result<rustls::ClientConfig, ClientError> {
    let provider = trust::provider();
    // A machine with no trusted roots at all (a bare container) can still check its own.
    let platform = rustls_platform_verifier::Verifier::new(provider.clone())
        .inspect_err(|e| tracing::warn!(error = %e, "no trusted root certificates on this machine"))
        .ok();
    // What the platform trusts, and else the relay's own certificate as itself (noted: providers
    // may well refuse it).
    let verifier = trust::PinnedOr {
        verifier: platform
            .map(|p| Arc::new(p) as Arc<dyn rustls::client::danger::ServerCertVerifier>),
        pinned: own.first().cloned().into_iter().collect(),
        provider: provider.clone(),
        pinned_only: own_only,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::CaCert(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}
