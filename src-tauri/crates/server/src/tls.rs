//! HTTPS served by the listener itself, for the relay (`--tls-cert PEM --tls-key PEM`).
//!
//! Providers only post to `https://` addresses, and a relay on the internet may have no reverse
//! proxy in front of it to hold the certificate — so the listener can speak TLS on its own. It
//! uses rustls (no OpenSSL to install or keep patched) with the *ring* crypto provider, which
//! builds with a C compiler alone (aws-lc-rs, rustls' default, also wants cmake and, on some
//! platforms, nasm). The provider is passed to the config explicitly, so nothing depends on a
//! process-wide default being installed first, or on which one another crate picked.
//!
//! The files are what a certificate authority or `certbot` hands out: a PEM certificate chain
//! (the server's certificate first) and a PEM private key (PKCS#8, PKCS#1/RSA or SEC1/EC). What
//! goes wrong with them is said in words an operator can act on, naming the file.

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to finish the TLS handshake before its connection is closed; the
/// same reasoning, and the same figure, as [`crate::listener::HEADER_READ_TIMEOUT`].
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocol of an ACME TLS-ALPN-01 challenge (RFC 8737): a certificate authority
/// checking, for automatic HTTPS ([`crate::acme`]), that this listener answers for its name. Such
/// a connection ends with its handshake; it never carries HTTP.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What the listener needs to serve HTTPS: the server's certificate and key, ready for use.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ServerConfig>,
    handshake_timeout: Duration,
    /// The certificate chain served (the server's own first), when known: a relay trusts exactly
    /// this certificate when it sends itself a test at its public address.
    certificates: Vec<CertificateDer<'static>>,
}

impl TlsSettings {
    /// Serves with `config` as it is (its ALPN included); see [`load_tls`] for the usual way.
    pub fn new(config: Arc<ServerConfig>) -> TlsSettings {
        TlsSettings {
            config,
            handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            certificates: Vec::new(),
        }
    }

    /// Notes the certificate chain `config` serves (see [`TlsSettings::certificates`]).
    pub fn with_certificates(mut self, certificates: Vec<CertificateDer<'static>>) -> TlsSettings {
        self.certificates = certificates;
        self
    }

    /// The certificate chain served, the server's own first; empty when not known.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// Replaces [`TLS_HANDSHAKE_TIMEOUT`] (tests use a shorter or a longer one).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsSettings {
        self.handshake_timeout = timeout;
        self
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    pub fn server_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// Leaves out the config, which holds the private key.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field(
                "alpn",
                &self
                    .config
                    .alpn_protocols
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>(),
            )
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why the certificate or the key can't be used. The messages name the file and are meant for
/// the operator as they are.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("Clientele couldn't read the {what} file {}: {}", path.display(), plain_io(source))]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "The {what} file {} isn't a readable PEM file ({detail}). Clientele reads PEM files: text that starts with a '-----BEGIN' line.",
        path.display()
    )]
    NotPem {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error(
        "The certificate file {} has no certificate in it. It should hold PEM text that starts with '-----BEGIN CERTIFICATE-----'.",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "The key file {} has no private key in it. It should hold PEM text that starts with '-----BEGIN PRIVATE KEY-----' (or 'BEGIN RSA PRIVATE KEY', 'BEGIN EC PRIVATE KEY').",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "The key in {} is protected with a passphrase, which Clientele can't enter. Save it without one (for example: openssl pkey -in encrypted.pem -out key.pem) and keep that file readable only by Clientele.",
        path.display()
    )]
    EncryptedKey { path: PathBuf },
    #[error(
        "The key in {} can't be used ({detail}). Use an RSA, ECDSA (P-256 or P-384) or Ed25519 key.",
        path.display()
    )]
    UnusableKey { path: PathBuf, detail: String },
    #[error("The certificate in {} can't be used ({detail}).", path.display())]
    UnusableCertificate { path: PathBuf, detail: String },
    #[error(
        "The key in {} doesn't match the certificate in {}. Check that both files belong to the same certificate: the key is the one its certificate request was made with.",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "The certificate in {} and the key in {} can't be used together ({detail}).",
        cert.display(),
        key.display()
    )]
    Refused {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// Reads the PEM certificate chain at `cert_pem` and the PEM private key at `key_pem`, and makes
/// the listener's TLS settings (HTTP/1.1 only, as the listener serves).
pub fn load_tls(cert_pem: &Path, key_pem: &Path) -> Result<TlsSettings, TlsError> {
    let certs = read_certificates(cert_pem)?;
    let key = read_key(key_pem)?;
    let config = server_config(certs.clone(), key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: cert_pem.to_path_buf(),
                key: key_pem.to_path_buf(),
            }
        }
        // The ring provider's words for a key it can't load.
        rustls::Error::General(detail) => TlsError::UnusableKey {
            path: key_pem.to_path_buf(),
            detail,
        },
        rustls::Error::InvalidCertificate(e) => TlsError::UnusableCertificate {
            path: cert_pem.to_path_buf(),
            detail: e.to_string(),
        },
        other => TlsError::Refused {
            cert: cert_pem.to_path_buf(),
            key: key_pem.to_path_buf(),
            detail: other.to_string(),
        },
    })?;
    Ok(TlsSettings::new(Arc::new(config)).with_certificates(certs))
}

/// A server config for `certs` (the server's certificate first) and `key`, with the ring
/// provider and ALPN `http/1.1`. rustls checks that the key belongs to the first certificate.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The crypto provider Clientele's TLS is built on: *ring*, for the listener here and for any
/// client that should match it (tests, a desk reaching its relay), passed to each config rather
/// than installed process-wide.
///
/// rustls 0.23.48 deprecated `ring::default_provider` because *ring* has no post-quantum key
/// exchange (X25519MLKEM768); classical X25519 and the NIST curves are what it offers. That
/// deprecation is about a preference, not a defect, and the only other provider is the one this
/// crate avoids (aws-lc-rs, for its build requirements), hence the `allow`, kept to this one place.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn not_pem(what: &'static str, path: &Path, e: pem::Error) -> TlsError {
    TlsError::NotPem {
        what,
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem("certificate", path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key", path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            // PEM has no section kind for it, so it reads as "no key"; say what it is instead.
            let encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
            if bytes.windows(encrypted.len()).any(|w| w == encrypted) {
                Err(TlsError::EncryptedKey {
                    path: path.to_path_buf(),
                })
            } else {
                Err(TlsError::NoKey {
                    path: path.to_path_buf(),
                })
            }
        }
        Err(e) => Err(not_pem("key", path, e)),
    }
}

/// The system's words for an I/O error without the "(os error 2)" that follows them.
pub(crate) fn plain_io(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_encoding_is_read() {
        // What openssl, certbot and cloud consoles write: PKCS#8, and RSA's and EC's own forms.
        let dir = tempfile::tempdir().expect("temporary folder");
        for label in ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"] {
            let path = dir.path().join("key.pem");
            // The content is not checked here (rustls does that later), only the kind.
            std::fs::write(
                &path,
                format!("-----BEGIN {label}-----\nMAA=\n-----END {label}-----\n"),
            )
            .expect("write");
            let key = read_key(&path).unwrap_or_else(|e| panic!("{label}: {e}"));
            let read_as = match key {
                PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
                PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                _ => "something else",
            };
            assert_eq!(read_as, label);
        }
    }

    #[test]
    fn io_errors_lose_their_error_number() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(plain_io(&e), "No such file or directory");
        assert_eq!(plain_io(&std::io::Error::other("odd (x)")), "odd (x)");
    }
}
