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
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
pub use rustls::pki_types::CertificateDer;
use rustls::pki_types::{ServerName, UnixTime};
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
    // ring, as everywhere in Clientele (see `client::tls_config`).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // A machine with no trusted roots at all (a bare container) can still check its own.
    let platform = rustls_platform_verifier::Verifier::new(provider.clone())
        .inspect_err(|e| tracing::warn!(error = %e, "no trusted root certificates on this machine"))
        .ok();
    let verifier = OwnOrPlatform {
        own: own.first().cloned(),
        platform,
        provider: provider.clone(),
        own_only,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::CaCert(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Trusts what the platform trusts, and else the relay's own certificate as itself (noting
/// that it did).
#[derive(Debug)]
struct OwnOrPlatform {
    own: Option<CertificateDer<'static>>,
    platform: Option<rustls_platform_verifier::Verifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    own_only: Arc<AtomicBool>,
}

impl ServerCertVerifier for OwnOrPlatform {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let platform = match &self.platform {
            Some(platform) => platform.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        match platform {
            Err(_)
                if self
                    .own
                    .as_ref()
                    .is_some_and(|own| own.as_ref() == end_entity.as_ref()) =>
            {
                self.own_only.store(true, Ordering::Relaxed);
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
