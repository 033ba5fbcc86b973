//! Behind a trusted reverse proxy, the sender's address comes from the proxy's
//! `X-Forwarded-For`: the rejection log records it and Vagaro's allow-list is checked against it.
//! The same header from a peer that isn't a trusted proxy changes nothing.
//!
//! Every test client connects from 127.0.0.1, so "through the proxy" means a listener that trusts
//! 127.0.0.1, and "not through the proxy" one that trusts another address.

mod support;

use clientele_core::Provider;
use clientele_server::client_addr::TrustedProxies;
use support::{Server, Setup, certificates, client_for, start, unsigned_connection, within};

const SENDER: &str = "203.0.113.9";

fn trusting(list: &str) -> TrustedProxies {
    list.parse().expect("test proxies")
}

async fn post(server: &Server, client: &reqwest::Client, url: String) -> reqwest::Response {
    within(
        "POST",
        client
            .post(url)
            .header("x-forwarded-for", SENDER)
            .body(r#"{"id":"evt-1"}"#)
            .send(),
    )
    .await
    .unwrap_or_else(|e| panic!("POST to {}: {e}", server.addr))
}

#[tokio::test]
async fn through_a_trusted_proxy_the_log_records_the_forwarded_sender() {
    // Over HTTPS: the peer's address reaches the route the same way as over plain HTTP.
    let certs = certificates();
    let server = start(Setup {
        tls: Some(certs.tls()),
        trusted_proxies: trusting("127.0.0.1"),
        ..Default::default()
    })
    .await;
    let client = client_for(&server, &certs.ca);

    let response = post(
        &server,
        &client,
        server.url("https", "/hooks/vagaro/nobody"),
    )
    .await;
    assert_eq!(response.status(), 404);
    let rejections = server.rejections().await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].code, "unknown_connection");
    assert_eq!(rejections[0].remote_addr.as_deref(), Some(SENDER));
    server.stop().await;
}

#[tokio::test]
async fn from_a_peer_that_is_not_a_trusted_proxy_the_header_is_ignored() {
    let certs = certificates();
    let server = start(Setup {
        trusted_proxies: trusting("10.0.0.2"),
        ..Default::default()
    })
    .await;
    let client = client_for(&server, &certs.ca);

    let response = post(&server, &client, server.url("http", "/hooks/vagaro/nobody")).await;
    assert_eq!(response.status(), 404);
    let rejections = server.rejections().await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].remote_addr.as_deref(), Some("127.0.0.1"));
    server.stop().await;
}

#[tokio::test]
async fn vagaro_s_allow_list_is_checked_against_the_forwarded_sender() {
    let certs = certificates();
    let salon = || unsigned_connection(Provider::Vagaro, "salon", &[SENDER]);

    // Through the proxy: the sender is on the list, so the delivery is stored.
    let proxied = start(Setup {
        trusted_proxies: trusting("127.0.0.1"),
        connections: vec![salon()],
        ..Default::default()
    })
    .await;
    let client = client_for(&proxied, &certs.ca);
    let response = post(
        &proxied,
        &client,
        proxied.url("http", "/hooks/vagaro/salon"),
    )
    .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert!(proxied.rejections().await.is_empty());
    proxied.stop().await;

    // Not through a trusted proxy: the header can't put a sender on the list.
    let direct = start(Setup {
        connections: vec![salon()],
        ..Default::default()
    })
    .await;
    let client = client_for(&direct, &certs.ca);
    let response = post(&direct, &client, direct.url("http", "/hooks/vagaro/salon")).await;
    assert_eq!(response.status(), 401);
    let rejections = direct.rejections().await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].code, "address_not_allowed");
    assert_eq!(rejections[0].remote_addr.as_deref(), Some("127.0.0.1"));
    direct.stop().await;
}

/// A relay sends its own test event to its public address from its own address, which is never
/// on Vagaro's list: carrying the process's test token, it is exempt from the list (and stored as
/// a test); a wrong token gets no such pass.
#[tokio::test]
async fn the_process_s_own_test_event_is_exempt_from_the_allow_list() {
    let certs = certificates();
    let server = start(Setup {
        connections: vec![unsigned_connection(Provider::Vagaro, "salon", &[SENDER])],
        test_token: Some("own-test-token".into()),
        ..Default::default()
    })
    .await;
    let client = client_for(&server, &certs.ca);
    let send = |token: &'static str, id: &'static str| {
        client
            .post(server.url("http", "/hooks/vagaro/salon"))
            .header(clientele_server::TEST_HEADER, token)
            .body(format!(r#"{{"id":"{id}"}}"#))
            .send()
    };
    let own = within("POST", send("own-test-token", "evt-own"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200, "{:?}", own.text().await);
    let forged = within("POST", send("guessed", "evt-forged")).await.unwrap();
    assert_eq!(forged.status(), 401);
    let rejections = server.rejections().await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert_eq!(rejections[0].code, "address_not_allowed");
    server.stop().await;
}
