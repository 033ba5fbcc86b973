//! HTTPS served by the listener itself: a client trusting the server's CA gets answers, one that
//! doesn't fails the handshake, plain HTTP gets no answer, a silent client holds up neither other
//! clients nor the shutdown — and certificate and key files that can't be used are refused in
//! words that name them.

mod support;

use clientele_server::tls::{TlsError, load_tls};
use std::time::Duration;
use support::{Setup, certificates, client_for, start, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_trusting_the_ca_gets_health_over_https() {
    let certs = certificates();
    let server = start(Setup {
        tls: Some(certs.tls()),
        ..Default::default()
    })
    .await;
    let client = client_for(&server, &certs.ca);

    // By name and by address: the certificate covers both.
    for url in [
        server.url("https", "/health"),
        format!("https://{}/health", server.addr),
    ] {
        let response = within("GET /health", client.get(&url).send())
            .await
            .unwrap_or_else(|e| panic!("{url}: {}", chain(&e)));
        assert_eq!(response.status(), 200, "{url}");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["status"], "ok");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_not_trusting_the_ca_fails_the_handshake() {
    let certs = certificates();
    let stranger = certificates();
    let server = start(Setup {
        tls: Some(certs.tls()),
        ..Default::default()
    })
    .await;

    let error = within(
        "GET /health with another CA",
        client_for(&server, &stranger.ca)
            .get(server.url("https", "/health"))
            .send(),
    )
    .await
    .expect_err("a certificate from an unknown CA must not be accepted");
    let words = chain(&error);
    assert!(
        error.is_connect() && words.contains("invalid peer certificate"),
        "expected a failed certificate check, got: {words}"
    );

    // The listener carries on serving clients that do trust it.
    let ok = within(
        "GET /health after a failed handshake",
        client_for(&server, &certs.ca)
            .get(server.url("https", "/health"))
            .send(),
    )
    .await
    .expect("a trusting client still connects");
    assert_eq!(ok.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_answer() {
    let certs = certificates();
    let server = start(Setup {
        tls: Some(certs.tls()),
        ..Default::default()
    })
    .await;

    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send a plain request");
    let mut received = Vec::new();
    // The listener closes the connection (possibly after a TLS alert); a reset is a close too.
    let _ = within("the listener's close", stream.read_to_end(&mut received)).await;
    assert!(
        !received.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&received)
    );

    // And reqwest's view: no 200 over plain HTTP.
    let plain = within(
        "plain GET /health",
        client_for(&server, &certs.ca)
            .get(server.url("http", "/health"))
            .send(),
    )
    .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP was answered: {plain:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_holds_up_neither_other_clients_nor_the_shutdown() {
    let certs = certificates();
    // Far longer than DEADLINE: if the accept loop or the shutdown waited for this handshake,
    // the steps below would run out of time.
    let server = start(Setup {
        tls: Some(
            certs
                .tls()
                .with_handshake_timeout(Duration::from_secs(3600)),
        ),
        ..Default::default()
    })
    .await;

    // Connects and never starts the handshake.
    let mut silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    // Accepted after the silent one (the listener accepts in order), so answering it shows the
    // silent handshake is waiting on its own.
    let response = within(
        "GET /health beside a silent client",
        client_for(&server, &certs.ca)
            .get(server.url("https", "/health"))
            .send(),
    )
    .await
    .expect("HTTPS while another client is silent");
    assert_eq!(response.status(), 200);

    server.stop().await;
    let mut buf = [0u8; 16];
    let read = within("the silent client's close", silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the silent connection was left open: {read:?}"
    );
}

#[tokio::test]
async fn a_handshake_that_takes_too_long_is_closed() {
    let certs = certificates();
    let server = start(Setup {
        tls: Some(
            certs
                .tls()
                .with_handshake_timeout(Duration::from_millis(200)),
        ),
        ..Default::default()
    })
    .await;

    let mut silent = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    // Without a handshake timeout this waits for ever (DEADLINE fails it).
    let read = within(
        "the listener closing a silent client",
        silent.read(&mut buf),
    )
    .await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "unexpected bytes for a silent client: {read:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_ec_key_in_sec1_form_is_read_too() {
    // certbot and `openssl ecparam -genkey` write "EC PRIVATE KEY" (SEC1), not PKCS#8.
    let certs = certificates();
    let sec1 = sec1_from_pkcs8(&certs.key_der);
    let key = certs.dir.path().join("sec1.pem");
    std::fs::write(&key, pem("EC PRIVATE KEY", sec1)).expect("write");
    let server = start(Setup {
        tls: Some(load_tls(&certs.cert, &key).expect("a SEC1 key loads")),
        ..Default::default()
    })
    .await;
    let response = within(
        "GET /health with a SEC1 key",
        client_for(&server, &certs.ca)
            .get(server.url("https", "/health"))
            .send(),
    )
    .await
    .expect("HTTPS with a SEC1 key");
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[test]
fn a_missing_file_is_named_in_plain_words() {
    let certs = certificates();
    let missing = certs.dir.path().join("nowhere.pem");
    let error = load_tls(&missing, &certs.key).expect_err("no such certificate file");
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "Clientele couldn't read the certificate file {}: No such file or directory",
            missing.display()
        )
    );
    let error = load_tls(&certs.cert, &missing).expect_err("no such key file");
    assert_eq!(
        error.to_string(),
        format!(
            "Clientele couldn't read the key file {}: No such file or directory",
            missing.display()
        )
    );
}

#[test]
fn a_certificate_file_without_a_certificate_is_refused() {
    let certs = certificates();
    // The key given as the certificate: a PEM file, but no certificate in it.
    let error = load_tls(&certs.key, &certs.key).expect_err("no certificate");
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "The certificate file {} has no certificate in it.",
            certs.key.display()
        )),
        "{error}"
    );
    let empty = certs.dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    assert!(matches!(
        load_tls(&empty, &certs.key),
        Err(TlsError::NoCertificate { .. })
    ));
}

#[test]
fn a_key_file_without_a_key_is_refused() {
    let certs = certificates();
    // The certificate given as the key.
    let error = load_tls(&certs.cert, &certs.cert).expect_err("no key");
    assert!(matches!(error, TlsError::NoKey { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with(&format!(
            "The key file {} has no private key in it.",
            certs.cert.display()
        )),
        "{error}"
    );
}

#[test]
fn a_passphrase_protected_key_is_named_as_such() {
    let certs = certificates();
    let key = certs.dir.path().join("encrypted.pem");
    // Its content doesn't matter: only the label says it is encrypted.
    std::fs::write(&key, pem("ENCRYPTED PRIVATE KEY", vec![48, 0])).expect("write");
    let error = load_tls(&certs.cert, &key).expect_err("encrypted");
    assert!(matches!(error, TlsError::EncryptedKey { .. }), "{error:?}");
    assert!(error.to_string().contains("passphrase"), "{error}");
}

#[test]
fn broken_pem_is_refused() {
    let certs = certificates();
    let broken = certs.dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n").expect("write");
    let error = load_tls(&broken, &certs.key).expect_err("broken");
    assert!(matches!(error, TlsError::NotPem { .. }), "{error:?}");
    assert!(error.to_string().contains(&broken.display().to_string()));
}

#[test]
fn a_key_from_another_certificate_is_refused() {
    let certs = certificates();
    let other = certificates();
    let error = load_tls(&certs.cert, &other.key).expect_err("mismatched key");
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "The key in {} doesn't match the certificate in {}. Check that both files belong to the same certificate: the key is the one its certificate request was made with.",
            other.key.display(),
            certs.cert.display()
        )
    );
}

/// An error and its sources, for messages and assertions.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        words.push_str(": ");
        words.push_str(&e.to_string());
        source = e.source();
    }
    words
}

fn pem(label: &str, der: Vec<u8>) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The SEC1 `ECPrivateKey` inside a PKCS#8 EC key: the content of its third element, the
/// `privateKey` OCTET STRING (RFC 5208 §5).
fn sec1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (_, outer, _) = der_element(pkcs8);
    let (_, _version, rest) = der_element(outer);
    let (_, _algorithm, rest) = der_element(rest);
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey is an OCTET STRING");
    private_key.to_vec()
}

/// One DER element: its tag, its content, and what follows it.
fn der_element(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = der[0];
    let (len, header) = match der[1] {
        short if short < 0x80 => (short as usize, 2),
        long => {
            let n = (long & 0x7f) as usize;
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        }
    };
    (tag, &der[header..header + len], &der[header + len..])
}
