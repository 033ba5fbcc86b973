//! Which servers Clientele's TLS clients trust (the desk talking to its relay, the relay talking to
//! its PostgreSQL): what a verifier trusts (the platform's roots, or an operator's own
//! authorities), or else exactly one of a few pinned certificates — the usual self-signed one,
//! made with `openssl req -x509`, marks itself as a CA and so can't be checked as an ordinary
//! server certificate. The handshake's signatures are checked either way, so only the holder of
//! the key gets through. [`AnyCertificate`] is for the one place that asks for encryption without
//! a check (PostgreSQL's `sslmode=prefer`, as libpq does it).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The crypto provider of every client: ring rather than aws-lc-rs, so no C/cmake build is
/// needed on every machine that builds Clientele. rustls marks ring's provider deprecated because
/// it lacks post-quantum key exchange, which a desk talking to its own relay (or a relay to its
/// database) can do without for now.
pub fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusts what `verifier` trusts, and else a certificate that is exactly one of `pinned`
/// (noting in `pinned_only` that it did).
#[derive(Debug)]
pub struct PinnedOr {
    pub verifier: Option<Arc<dyn ServerCertVerifier>>,
    pub pinned: Vec<CertificateDer<'static>>,
    pub provider: Arc<CryptoProvider>,
    pub pinned_only: Arc<AtomicBool>,
}

impl ServerCertVerifier for PinnedOr {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = match &self.verifier {
            Some(verifier) => verifier.verify_server_cert(
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
        match verified {
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                self.pinned_only.store(true, Ordering::Relaxed);
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms(&self.provider))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms(&self.provider))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts any certificate, still checking the handshake's signatures: encryption against someone
/// listening, nothing more. Only where the user asked for exactly that.
#[derive(Debug)]
pub struct AnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms(&self.0))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms(&self.0))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The handshake signature algorithms of `provider`: every verifier here checks signatures the
/// same way, whatever it decides about the certificate.
fn algorithms(provider: &CryptoProvider) -> rustls::crypto::WebPkiSupportedAlgorithms {
    provider.signature_verification_algorithms
}
