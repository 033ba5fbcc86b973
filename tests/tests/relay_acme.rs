//! Automatic HTTPS end to end: a real `clientele relay serve --domain` gets its certificate from a
//! real ACME server (pebble, Let's Encrypt's test server), which checks the TLS-ALPN-01 challenge
//! on the relay's own port for real (no PEBBLE_VA_ALWAYS_VALID); pebble's DNS answers come from
//! `pebble-challtestsrv` (every name is 127.0.0.1). Then an HTTPS client trusting only pebble's
//! root reaches the relay by its name, and a restarted relay serves the saved certificate without
//! asking pebble again.
//!
//! Runs where pebble is installed (Debian package `pebble`), and must run with
//! CLIENTELE_REQUIRE_ACME=1; skips with a reason otherwise.

use clientele_tests::guard::ProcessGuard;
use clientele_tests::relay::Relay;
use clientele_tests::{Server, Workspace};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "relay.example.com";
/// Getting a certificate takes a few seconds; a debug build on two busy cores, and rustls-acme's
/// polling of the authorization (1, 2, 4… seconds), get plenty more.
const DEADLINE: Duration = Duration::from_secs(120);

fn pebble() -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var("CLIENTELE_REQUIRE_ACME").is_ok_and(|v| v == "1");
    let find = |name: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    match (find("pebble"), find("pebble-challtestsrv")) {
        (Some(pebble), Some(dns)) => Some((pebble, dns)),
        _ if required => {
            panic!("CLIENTELE_REQUIRE_ACME=1 but pebble isn't installed (apt-get install pebble)")
        }
        _ => {
            eprintln!(
                "skipped: pebble (Debian package `pebble`) isn't installed; set CLIENTELE_REQUIRE_ACME=1 to require it"
            );
            None
        }
    }
}

/// A loopback port free for TCP (and, with `udp`, for UDP too, as DNS needs).
fn free_port(udp: bool) -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = tcp.local_addr().expect("address").port();
        if !udp || UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until something listens on `port` (TCP), failing with `log`'s text after the deadline.
fn wait_listening(what: &str, port: u16, guard: &mut ProcessGuard, log: &Path) {
    let until = Instant::now() + DEADLINE;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Some(status) = guard.try_wait() {
            panic!("{what} exited ({status}): {}", read(log));
        }
        assert!(
            Instant::now() < until,
            "{what} isn't listening on port {port} after {DEADLINE:?}: {}",
            read(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Polls `server`'s log until it has `needle`; returns the log.
fn wait_for_log(server: &Server, needle: &str, pebble_log: &Path) -> String {
    let until = Instant::now() + DEADLINE;
    loop {
        let log = server.log_text();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < until,
            "the relay didn't say {needle:?} within {DEADLINE:?}.\nrelay:\n{log}\npebble:\n{}",
            read(pebble_log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// pebble's own listening certificate (its package ships none): a CA of the test's and a
/// certificate for 127.0.0.1 it signed, as PEM files in `dir`.
fn pebble_listener_certificate(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        DnType::CommonName,
        "Clientele test CA for pebble's listener",
    );
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("certificate");
    std::fs::write(dir.join("listener-ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.join("listener-cert.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("listener-key.pem"), key.serialize_pem()).expect("write");
}

fn pem_roots(pem: &[u8]) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.expect("PEM certificate")).expect("a root");
    }
    assert!(!roots.is_empty(), "no certificate in the PEM");
    roots
}

/// An HTTPS client trusting only `roots` (ring, as the relay uses), reaching DOMAIN at `relay`.
fn client(roots: rustls::RootCertStore, relay: Option<SocketAddr>) -> reqwest::Client {
    #[allow(deprecated)] // ring, as the relay itself uses
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(30));
    if let Some(addr) = relay {
        builder = builder.resolve(DOMAIN, addr);
    }
    builder.build().expect("client")
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// GET /health on the relay by its name, trusting `roots` only.
fn health(roots: rustls::RootCertStore, relay: SocketAddr) -> Result<u16, String> {
    let url = format!("https://{DOMAIN}:{}/health", relay.port());
    block_on(async {
        client(roots, Some(relay))
            .get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(&format!(": {s}"));
                    source = s.source();
                }
                text
            })
    })
}

#[test]
fn a_relay_gets_its_certificate_from_an_acme_server_and_keeps_it_across_restarts() {
    let Some((pebble_bin, dns_bin)) = pebble() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary folder");
    pebble_listener_certificate(dir.path());
    let (relay_port, acme_port, management_port) =
        (free_port(false), free_port(false), free_port(false));
    let (dns_port, dns_management_port, unused_http_port) =
        (free_port(true), free_port(false), free_port(false));

    // DNS for pebble: every name is 127.0.0.1 (and has no IPv6 address, so pebble dials that).
    let dns_log = dir.path().join("challtestsrv.log");
    let mut dns = ProcessGuard::spawn(
        "pebble-challtestsrv",
        Command::new(&dns_bin)
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-management", &format!("127.0.0.1:{dns_management_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&dns_log).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("challtestsrv.err")).expect("log")),
        Duration::from_secs(5),
    )
    .expect("start pebble-challtestsrv");
    wait_listening(
        "pebble-challtestsrv",
        dns_management_port,
        &mut dns,
        &dns_log,
    );

    // pebble: its ACME directory and management on loopback ports, TLS-ALPN-01 checked on the
    // relay's port, the challenge checked at once (no random sleep) and no nonce refused on
    // purpose (rustls-acme doesn't retry those; the relay would, after a wait).
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("listener-cert.pem"),
            "privateKey": dir.path().join("listener-key.pem"),
            "httpPort": unused_http_port,
            "tlsPort": relay_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.path().join("pebble-config.json");
    std::fs::write(&config_path, config.to_string()).expect("write pebble's config");
    let pebble_log = dir.path().join("pebble.log");
    let log_file = std::fs::File::create(&pebble_log).expect("log");
    let mut pebble = ProcessGuard::spawn(
        "pebble",
        Command::new(&pebble_bin)
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file),
        Duration::from_secs(5),
    )
    .expect("start pebble");
    wait_listening("pebble", acme_port, &mut pebble, &pebble_log);
    wait_listening(
        "pebble's management",
        management_port,
        &mut pebble,
        &pebble_log,
    );

    let listener_ca = dir.path().join("listener-ca.pem");
    let directory = format!("https://127.0.0.1:{acme_port}/dir");
    let bind = format!("127.0.0.1:{relay_port}");
    let args = [
        "--domain",
        DOMAIN,
        "--acme-directory",
        directory.as_str(),
        "--acme-ca-cert",
        listener_ca.to_str().expect("path"),
        "--acme-email",
        "ops@example.com",
    ];
    let relay = Relay::start_in(Workspace::new(), &bind, &args);
    assert_eq!(relay.url(), format!("https://{bind}"));
    let log = wait_for_log(
        &relay.server,
        &format!("certificate for {DOMAIN} obtained, valid until "),
        &pebble_log,
    );
    assert!(
        log.contains(&format!(
            "asking {directory} for a certificate for {DOMAIN}…"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "the certificate authority checks port 443 of {DOMAIN}"
        )),
        "{log}"
    );
    let issued = |text: &str| text.matches("Issued certificate serial").count();
    assert_eq!(issued(&read(&pebble_log)), 1, "{}", read(&pebble_log));
    // The challenge really was checked, on the relay's port.
    assert!(
        !read(&pebble_log).contains("VA always returns valid"),
        "pebble must check the challenge"
    );

    // pebble's root for the certificates it issues (made when it started).
    let roots_url = format!("https://127.0.0.1:{management_port}/roots/0");
    let pebble_root = block_on(async {
        client(pem_roots(&std::fs::read(&listener_ca).expect("CA")), None)
            .get(&roots_url)
            .send()
            .await
            .expect("pebble's root")
            .bytes()
            .await
            .expect("pebble's root")
    });
    let relay_addr = SocketAddr::from(([127, 0, 0, 1], relay_port));

    // Trusting pebble's root only, the relay's certificate checks out for its name.
    assert_eq!(health(pem_roots(&pebble_root), relay_addr), Ok(200));
    // And it is pebble's: a client trusting another root refuses it.
    let other = health(
        pem_roots(&std::fs::read(&listener_ca).expect("CA")),
        relay_addr,
    )
    .expect_err("the relay's certificate is issued by pebble, not by the listener's CA");
    assert!(other.contains("certificate"), "{other}");

    // Account and certificate are kept private in the data folder.
    {
        use std::os::unix::fs::PermissionsExt;
        let acme_dir = relay.ws.path().join("acme");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&acme_dir), 0o700);
        let files: Vec<_> = std::fs::read_dir(&acme_dir)
            .expect("the ACME folder")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 2, "an account and a certificate: {files:?}");
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }

    // A restart serves the saved certificate and asks pebble for nothing.
    let Relay { ws, server, .. } = relay;
    server.stop();
    let pebble_said = read(&pebble_log).len();
    let relay = Relay::start_in(ws, &bind, &args);
    let log = wait_for_log(
        &relay.server,
        &format!("using the certificate for {DOMAIN} saved in "),
        &pebble_log,
    );
    assert!(!log.contains("asking "), "{log}");
    assert_eq!(health(pem_roots(&pebble_root), relay_addr), Ok(200));
    let since = &read(&pebble_log)[pebble_said..];
    assert_eq!(issued(since), 0, "no second certificate: {since}");
    assert!(!since.contains("Added order"), "no second order: {since}");
    drop(relay);
    drop(pebble);
    drop(dns);
}
