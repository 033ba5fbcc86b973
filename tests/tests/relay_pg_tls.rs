//! TLS between the relay and its PostgreSQL (issue 21), against a real private cluster serving
//! TLS with a certificate this test made (`clientele_tests::pg`, `ssl=on`): `sslmode=require`
//! with the test's CA connects and works, over TLS; without the CA, a server nobody vouches for
//! is refused in a sentence naming the host and `--database-ca-cert`; a server without TLS, or
//! one that accepts only TLS while the URL says `sslmode=disable`, is refused plainly too —
//! never with the password. Then `clientele relay serve` itself, configured as an operator would.
//! Skipped without PostgreSQL unless `CLIENTELE_REQUIRE_PG=1`.

use chrono::Utc;
use clientele_core::{ConnectionSettings, Provider};
use clientele_relay::store::RelayStore;
use clientele_relay_pg::{DatabaseUrl, PgError, PgStore, TlsMode};
use clientele_store::{IngestOutcome, NewConnection, NewDelivery};
use clientele_tests::Workspace;
use clientele_tests::guard::ProcessGuard;
use clientele_tests::pg::{PASSWORD, PgCluster, PgOptions, ServerTls};
use clientele_tests::relay::Relay;
use std::time::Duration;

/// A CA made for one test, and a server certificate it signed for `localhost` and `127.0.0.1`.
struct Certificates {
    ca_pem: String,
    server: ServerTls,
}

fn certificates(names: &[&str]) -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Clientele test database CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &ca).unwrap();
    Certificates {
        ca_pem: ca.pem(),
        server: ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        },
    }
}

/// A cluster started with `options`, with an empty `relay` database; `None` (skip) without
/// PostgreSQL.
fn cluster(options: PgOptions) -> Option<PgCluster> {
    match PgCluster::available() {
        Ok(_) => {
            let pg = PgCluster::start_with(options);
            pg.create_database("relay");
            Some(pg)
        }
        Err(why) => {
            assert!(PgCluster::may_skip(), "CLIENTELE_REQUIRE_PG=1, but {why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A cluster serving TLS with `certs`' server certificate.
fn tls_cluster(certs: &Certificates, hostssl_only: bool) -> Option<PgCluster> {
    cluster(PgOptions {
        tls: Some(certs.server.clone()),
        hostssl_only,
        ..PgOptions::default()
    })
}

/// How many of the relay's connections to the database are (TLS, plain).
fn relay_connections(pg: &PgCluster) -> (i64, i64) {
    let text = pg.psql(
        "postgres",
        "SELECT COUNT(*) FILTER (WHERE s.ssl) || ' ' || COUNT(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'clientele-relay'",
    );
    let mut parts = text.split_whitespace().map(|n| n.parse::<i64>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// Stores a delivery through `store` and reads it back from the feed.
fn ingest_and_feed(store: &dyn RelayStore) {
    let connection = store
        .add_connection(
            &NewConnection {
                provider: Provider::Tiquo,
                name: "Main".into(),
                settings: ConnectionSettings::default(),
                requires_secret: true,
            },
            Utc::now(),
        )
        .unwrap()
        .id;
    let outcome = store
        .ingest(
            &[NewDelivery {
                connection_id: connection,
                received_at: Utc::now(),
                dedupe_key: "tls-1".into(),
                headers: vec![],
                body: br#"{"key":"tls-1"}"#.to_vec(),
                verification: "test".into(),
                is_test: false,
            }],
            &[],
        )
        .unwrap();
    let [IngestOutcome::Stored { id }] = outcome[..] else {
        panic!("a new delivery is stored: {outcome:?}")
    };
    let feed = store.feed(0, 100).unwrap();
    assert_eq!(feed.iter().map(|f| f.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(feed[0].body, br#"{"key":"tls-1"}"#.to_vec());
}

fn assert_no_password(said: &str) {
    assert!(!said.contains(PASSWORD), "the password leaked: {said}");
}

#[test]
fn require_with_the_test_ca_connects_over_tls_and_works() {
    let certs = certificates(&["localhost", "127.0.0.1"]);
    let Some(pg) = tls_cluster(&certs, true) else {
        return;
    };
    for mode in ["require", "verify-full", "verify-ca"] {
        let url = DatabaseUrl::parse(&format!("{}?sslmode={mode}", pg.url("relay")))
            .unwrap()
            .with_ca_cert(certs.ca_pem.as_bytes())
            .unwrap();
        assert_eq!(url.tls_mode(), TlsMode::Verify);
        let store = PgStore::connect(&url).unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        if mode == "require" {
            ingest_and_feed(&store);
        } else {
            assert_eq!(store.feed(0, 100).unwrap().len(), 1, "sslmode={mode}");
        }
        let (tls, plain) = relay_connections(&pg);
        assert!(
            tls >= 2,
            "the listener and a pooled connection use TLS ({tls})"
        );
        assert_eq!(plain, 0, "no plain connection");
        drop(store);
    }

    // The CA without an sslmode means "check" too.
    let url = DatabaseUrl::parse(&pg.url("relay"))
        .unwrap()
        .with_ca_cert(certs.ca_pem.as_bytes())
        .unwrap();
    assert_eq!(url.tls_mode(), TlsMode::Verify);
    assert!(PgStore::connect(&url).is_ok());
    // And with sslmode=disable it contradicts the URL.
    let disabled = DatabaseUrl::parse(&format!("{}?sslmode=disable", pg.url("relay"))).unwrap();
    let said = disabled
        .with_ca_cert(certs.ca_pem.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(said.contains("sslmode=disable"), "{said}");
}

#[test]
fn prefer_by_default_encrypts_without_checking() {
    // No sslmode, no CA: TLS when the server offers it, the certificate unchecked (libpq's
    // `prefer`), so a database on this machine with its own certificate works as before.
    let certs = certificates(&["localhost", "127.0.0.1"]);
    let Some(pg) = tls_cluster(&certs, false) else {
        return;
    };
    let url = DatabaseUrl::parse(&pg.url("relay")).unwrap();
    assert_eq!(url.tls_mode(), TlsMode::Prefer);
    let store = PgStore::connect(&url).unwrap();
    ingest_and_feed(&store);
    let (tls, plain) = relay_connections(&pg);
    assert!(tls >= 2 && plain == 0, "({tls} TLS, {plain} plain)");
}

#[test]
fn a_certificate_nobody_vouches_for_is_refused_plainly() {
    let certs = certificates(&["localhost", "127.0.0.1"]);
    let Some(pg) = tls_cluster(&certs, false) else {
        return;
    };
    let address = format!("127.0.0.1:{}", pg.port);

    // require without the CA: this machine's roots don't know the test's CA.
    let url = DatabaseUrl::parse(&format!("{}?sslmode=require", pg.url("relay"))).unwrap();
    let err = PgStore::connect(&url).unwrap_err();
    assert!(matches!(err, PgError::Untrusted { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains(&address), "names the server: {said}");
    assert!(
        said.contains("--database-ca-cert"),
        "says what to do: {said}"
    );
    assert!(
        said.contains("authority this relay doesn't trust"),
        "{said}"
    );
    assert_no_password(&said);

    // Another CA than the one that signed the server's certificate: refused as well.
    let other = certificates(&["localhost", "127.0.0.1"]);
    let url = url.with_ca_cert(other.ca_pem.as_bytes()).unwrap();
    let err = PgStore::connect(&url).unwrap_err();
    assert!(matches!(err, PgError::Untrusted { .. }), "{err:?}");

    // The right CA, but a URL naming the server differently than its certificate does.
    let by_name = format!(
        "postgres://clientele:{PASSWORD}@localhost:{}/relay?sslmode=verify-full",
        pg.port
    );
    assert!(
        PgStore::connect(
            &DatabaseUrl::parse(&by_name)
                .unwrap()
                .with_ca_cert(certs.ca_pem.as_bytes())
                .unwrap()
        )
        .is_ok(),
        "localhost is on the certificate"
    );
    let named = certificates(&["db.example.internal"]);
    let Some(pg) = tls_cluster(&named, false) else {
        return;
    };
    let url = DatabaseUrl::parse(&format!("{}?sslmode=require", pg.url("relay")))
        .unwrap()
        .with_ca_cert(named.ca_pem.as_bytes())
        .unwrap();
    let said = PgStore::connect(&url).unwrap_err().to_string();
    assert!(
        said.contains("made out for another name than 127.0.0.1"),
        "{said}"
    );
    assert_no_password(&said);
}

#[test]
fn require_against_a_server_without_tls_is_refused_plainly() {
    let Some(pg) = cluster(PgOptions::default()) else {
        return;
    };
    let url = DatabaseUrl::parse(&format!("{}?sslmode=require", pg.url("relay"))).unwrap();
    let err = PgStore::connect(&url).unwrap_err();
    assert!(matches!(err, PgError::TlsNotOffered { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains(&format!("127.0.0.1:{}", pg.port)), "{said}");
    assert!(said.contains("doesn't offer TLS"), "{said}");
    assert_no_password(&said);
    // Without TLS asked for, the same server is fine.
    assert!(PgStore::connect(&DatabaseUrl::parse(&pg.url("relay")).unwrap()).is_ok());
}

#[test]
fn a_server_accepting_only_tls_refuses_sslmode_disable_plainly() {
    let certs = certificates(&["localhost", "127.0.0.1"]);
    let Some(pg) = tls_cluster(&certs, true) else {
        return;
    };
    let url = DatabaseUrl::parse(&format!("{}?sslmode=disable", pg.url("relay"))).unwrap();
    assert_eq!(url.tls_mode(), TlsMode::Disable);
    let err = PgStore::connect(&url).unwrap_err();
    assert!(matches!(err, PgError::RefusedUnencrypted { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains("sslmode=disable"), "{said}");
    assert!(said.contains("hostssl"), "{said}");
    assert_no_password(&said);

    // An sslmode nobody knows is a sentence too.
    let said = DatabaseUrl::parse(&format!("{}?sslmode=always", pg.url("relay")))
        .unwrap_err()
        .to_string();
    assert!(said.contains("sslmode=always"), "{said}");
    assert!(said.contains("verify-full"), "{said}");
}

#[test]
fn relay_serve_reaches_a_tls_database_with_its_ca() {
    let certs = certificates(&["localhost", "127.0.0.1"]);
    let Some(pg) = tls_cluster(&certs, true) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("db-ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let ca = ca.display().to_string();
    let url = format!("{}?sslmode=require", pg.url("relay"));

    // As an operator starts it: the URL on the command line, the key in the environment.
    let mut ws = Workspace::new();
    ws.secrets
        .push(("CLIENTELE_RELAY_KEY".into(), "5e".repeat(32)));
    let relay = Relay::start_in(
        ws,
        "127.0.0.1:0",
        &["--database", &url, "--database-ca-cert", &ca],
    );
    let (tls, plain) = relay_connections(&pg);
    assert!(tls >= 1 && plain == 0, "({tls} TLS, {plain} plain)");
    drop(relay);

    // Without the CA it stops at once, saying what to do, without the password.
    let mut ws = Workspace::new();
    ws.secrets
        .push(("CLIENTELE_RELAY_KEY".into(), "5e".repeat(32)));
    let log = files.path().join("refused.log");
    let mut refused = ws.command(&[
        "relay",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--database",
        &url,
    ]);
    refused
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    // Guarded and waited for with a deadline: a relay that wrongly connects would serve forever.
    let mut refused = ProcessGuard::spawn("relay serve", &mut refused, Duration::from_secs(5))
        .expect("start relay serve");
    let status = refused
        .wait_within(Duration::from_secs(60))
        .expect("a relay that can't trust its database stops");
    assert!(!status.success());
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("--database-ca-cert"), "{said}");
    assert!(said.contains(&format!("127.0.0.1:{}", pg.port)), "{said}");
    assert_no_password(&said);

    // And CLIENTELE_DATABASE_CA_CERT does what --database-ca-cert does.
    let mut ws = Workspace::new();
    ws.secrets
        .push(("CLIENTELE_RELAY_KEY".into(), "5e".repeat(32)));
    ws.secrets.push(("CLIENTELE_DATABASE_URL".into(), url));
    ws.secrets
        .push(("CLIENTELE_DATABASE_CA_CERT".into(), ca.clone()));
    let relay = Relay::start_in(ws, "127.0.0.1:0", &[]);
    drop(relay);
}
