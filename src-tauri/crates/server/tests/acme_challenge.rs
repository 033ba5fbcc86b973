//! The ACME TLS-ALPN-01 challenge on the listener's port (automatic HTTPS): a handshake that offers
//! `acme-tls/1` alone is the certificate authority checking the name, and is closed right after
//! the handshake — never read as HTTP — while clients offering HTTP/1.1 are served as usual.

mod support;

use clientele_server::tls::{ACME_TLS_ALPN, TlsSettings, crypto_provider, server_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use support::{Certificates, Setup, certificates, start, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test certificate, with ALPN as automatic HTTPS configures it.
fn acme_like_tls(certs: &Certificates) -> TlsSettings {
    let chain = CertificateDer::pem_file_iter(&certs.cert)
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_file(&certs.key).expect("key");
    let mut config = server_config(chain, key).expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    TlsSettings::new(Arc::new(config))
}

/// Connects offering `alpn`, sends a request for /health, and returns the negotiated protocol
/// and everything the server sent back before closing.
async fn ask(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> (Option<Vec<u8>>, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("CA");
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("the handshake completes");
    let protocol = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    // The write may fail once the server has closed; what matters is what comes back.
    let _ = tls
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    (protocol, String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_challenge_handshake_is_closed_and_never_served_http() {
    let certs = certificates();
    let server = start(Setup {
        tls: Some(acme_like_tls(&certs)),
        ..Default::default()
    })
    .await;

    let (protocol, answer) = within(
        "a challenge connection",
        ask(server.addr, &certs.ca, &[ACME_TLS_ALPN]),
    )
    .await;
    assert_eq!(protocol.as_deref(), Some(ACME_TLS_ALPN));
    assert!(
        answer.is_empty(),
        "a challenge connection must carry no HTTP, got: {answer:?}"
    );

    // A client offering both gets HTTP/1.1 (the server's preference) and is served.
    let (protocol, answer) = within(
        "an ordinary connection",
        ask(server.addr, &certs.ca, &[ACME_TLS_ALPN, b"http/1.1"]),
    )
    .await;
    assert_eq!(protocol.as_deref(), Some(&b"http/1.1"[..]));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer:?}");
    server.stop().await;
}
