//! TLS to the database. The URL's `sslmode` says how, as libpq users write it:
//! - `disable`: no TLS.
//! - `allow`, `prefer` (the default): TLS when the server offers it, without checking its
//!   certificate — as libpq does. Whoever can intercept the connection can also answer "no TLS",
//!   so checking would protect nothing here; it keeps passive listeners out, no more.
//! - `require`, `verify-ca`, `verify-full`: TLS or no connection, and the certificate is checked
//!   — its chain up to an authority the relay trusts (the platform's, plus `--database-ca-cert`)
//!   and that it is made out for the host in the URL. libpq's `require` checks neither; ours
//!   does, deliberately: a relay on the internet must not send its password to whoever answers.
//!   `verify-ca` checks the name too (stricter than libpq).
//!
//! A CA certificate given to the relay means "check": with it, no `sslmode` (or `prefer`)
//! counts as `require`.

use crate::PgError;
use clientele_trust::{AnyCertificate, PinnedOr};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the relay uses TLS to its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `sslmode=disable`.
    Disable,
    /// `sslmode=prefer` or `allow`, or none: TLS if offered, certificate unchecked.
    Prefer,
    /// `sslmode=require`, `verify-ca` or `verify-full`: TLS with a checked certificate.
    Verify,
}

impl TlsMode {
    /// The mode a URL's `sslmode` value names.
    pub(crate) fn from_sslmode(value: &str) -> Result<TlsMode, PgError> {
        match value {
            "disable" => Ok(TlsMode::Disable),
            "allow" | "prefer" => Ok(TlsMode::Prefer),
            "require" | "verify-ca" | "verify-full" => Ok(TlsMode::Verify),
            other => Err(PgError::SslMode(other.to_string())),
        }
    }

    /// What tokio-postgres is told (it knows only these three).
    pub(crate) fn ssl_mode(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Verify => SslMode::Require,
        }
    }
}

/// Takes `sslmode` out of a URL's query (tokio-postgres doesn't know `verify-full` and the like;
/// the mode is set on its config instead). Returns the rest of the URL and the mode, if the URL
/// named one.
pub(crate) fn split_sslmode(url: &str) -> Result<(String, Option<TlsMode>), PgError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(TlsMode::from_sslmode(value)?),
            _ => kept.push(pair),
        }
    }
    let mut url = base.to_string();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    Ok((url, mode))
}

/// Reads the certificates of a PEM file's text.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, PgError> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PgError::CaCert(format!("it isn't a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(PgError::CaCert(
            "it has no certificate in it (expected a PEM file: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The connector for `mode`, trusting `extra` besides the platform's roots when it checks.
pub(crate) fn connector(
    mode: TlsMode,
    extra: &[CertificateDer<'static>],
) -> Result<MakeRustlsConnect, PgError> {
    let provider = clientele_trust::provider();
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        // Disable never uses the connector; prefer doesn't check (see the module's docs).
        TlsMode::Disable | TlsMode::Prefer => Arc::new(AnyCertificate(provider.clone())),
        TlsMode::Verify => {
            let platform = rustls_platform_verifier::Verifier::new_with_extra_roots(
                extra.iter().cloned(),
                provider.clone(),
            )
            .map_err(|e| PgError::NoRoots(e.to_string()))?;
            Arc::new(PinnedOr {
                verifier: Some(Arc::new(platform)),
                pinned: extra.to_vec(),
                provider: provider.clone(),
                pinned_only: Arc::default(),
            })
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Threads(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // PostgreSQL 17 checks the ALPN protocol when a client sends one; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

/// Why TLS with the server failed, if it did: the server's certificate wasn't trusted, the
/// server offers no TLS, or the handshake failed otherwise.
#[derive(Debug)]
pub(crate) enum TlsFailure {
    Untrusted(rustls::CertificateError),
    NotOffered,
    Other(String),
}

/// What went wrong with TLS in `e`, if that is what went wrong.
pub(crate) fn failure(e: &tokio_postgres::Error) -> Option<TlsFailure> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // tokio-rustls wraps rustls' error in an io::Error, whose source() skips it.
        let tls = s.downcast_ref::<rustls::Error>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match tls {
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(TlsFailure::Untrusted(why.clone()));
            }
            Some(other) => return Some(TlsFailure::Other(other.to_string())),
            None => {}
        }
        // tokio-postgres' own words when the server answers the TLS request with "no".
        if s.to_string() == "server does not support TLS" {
            return Some(TlsFailure::NotOffered);
        }
        source = s.source();
    }
    None
}

/// Why a certificate wasn't trusted, in a few words.
pub(crate) fn untrusted_because(why: &rustls::CertificateError, host: &str) -> String {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer => "it was issued by an authority this relay doesn't trust".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("it is made out for another name than {host}")
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it isn't valid yet".into(),
        C::Revoked => "it was revoked".into(),
        C::BadSignature
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its signature can't be checked".into()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::{DatabaseUrl, PgError, TlsMode};

    fn mode(url: &str) -> TlsMode {
        DatabaseUrl::parse(url).unwrap().tls_mode()
    }

    #[test]
    fn sslmode_as_libpq_users_write_it() {
        let base = "postgres://u:secret@db.example.com:5433/relay";
        assert_eq!(mode(base), TlsMode::Prefer);
        assert_eq!(mode(&format!("{base}?sslmode=disable")), TlsMode::Disable);
        assert_eq!(mode(&format!("{base}?sslmode=allow")), TlsMode::Prefer);
        for checked in ["require", "verify-ca", "verify-full"] {
            assert_eq!(mode(&format!("{base}?sslmode={checked}")), TlsMode::Verify);
        }
        // The other settings stay, wherever sslmode is among them.
        let url =
            DatabaseUrl::parse(&format!("{base}?connect_timeout=3&sslmode=verify-full")).unwrap();
        assert_eq!(url.tls_mode(), TlsMode::Verify);
        assert_eq!(
            url.connect_config().get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert_eq!(
            url.connect_config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(url.shown(), "postgres://u@db.example.com:5433/relay");

        let said = DatabaseUrl::parse(&format!("{base}?sslmode=on"))
            .unwrap_err()
            .to_string();
        assert!(
            said.contains("sslmode=on") && !said.contains("secret"),
            "{said}"
        );
    }

    #[test]
    fn a_ca_certificate_means_check() {
        let base = "postgres://u:secret@db.example.com/relay";
        let not_pem = DatabaseUrl::parse(base)
            .unwrap()
            .with_ca_cert(b"just text")
            .unwrap_err();
        assert!(matches!(not_pem, PgError::CaCert(_)), "{not_pem:?}");
        assert!(not_pem.to_string().contains("-----BEGIN CERTIFICATE-----"));
        let disabled = DatabaseUrl::parse(&format!("{base}?sslmode=disable"))
            .unwrap()
            .with_ca_cert(b"")
            .unwrap_err();
        assert!(matches!(disabled, PgError::CaWithoutTls), "{disabled:?}");
    }
}
