//! The puller against relays that misbehave: down, answering garbage, sending a page that can't
//! be read, or refusing the desk. Each gives a plain state, stores nothing wrong, moves no cursor,
//! and never panics. The "relay" here is a real HTTP server on 127.0.0.1 answering what a broken
//! one would; the store and pipeline are the real ones.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::Utc;
use clientele_relay_client::{LinkState, PullStatus, Puller, RelayClient};
use clientele_store::{RelayLink, Store};
use std::time::Duration;
use tokio::sync::watch;

/// Generous: a debug build on two busy cores.
const DEADLINE: Duration = Duration::from_secs(60);

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

struct Desk {
    _dir: tempfile::TempDir,
    store: Store,
    ingest: clientele_ingest::IngestHandle,
    _pipeline: clientele_ingest::Pipeline,
}

fn desk(url: &str) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).unwrap();
    store
        .writer()
        .unwrap()
        .set_relay_link(&RelayLink {
            url: url.into(),
            device_name: "desk".into(),
            admin: false,
            ca_cert: None,
            public_url: url.into(),
            joined_at: Utc::now(),
            cursor: "0".into(),
            last_pull_at: None,
            received: 0,
            rejections_cursor: 0,
        })
        .unwrap();
    let (ingest, pipeline) = clientele_ingest::start(&store).unwrap();
    Desk {
        _dir: dir,
        store,
        ingest,
        _pipeline: pipeline,
    }
}

/// Runs a puller against `url` until its state satisfies `done`; returns that state.
async fn pull_until(url: &str, done: impl Fn(&LinkState) -> bool) -> (PullStatus, Desk) {
    let desk = desk(url);
    let client = RelayClient::new(url, None).unwrap().with_token("clt_test");
    let (status_tx, mut status) = watch::channel(PullStatus::default());
    let puller = Puller::new(
        client,
        None,
        desk.store.clone(),
        desk.ingest.clone(),
        "0".into(),
        status_tx,
    );
    let (stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(puller.run(stop_rx));
    let reached = tokio::time::timeout(DEADLINE, status.wait_for(|s| done(&s.state)))
        .await
        .expect("the puller reached the expected state")
        .expect("the puller is running")
        .clone();
    stop.send(true).unwrap();
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the puller stops when told")
        .expect("the puller didn't panic");
    (reached, desk)
}

fn nothing_stored(desk: &Desk) {
    let reader = desk.store.reader().unwrap();
    assert!(reader.deliveries(None).unwrap().is_empty());
    assert_eq!(
        reader.relay_link().unwrap().unwrap().cursor,
        "0",
        "the cursor didn't move"
    );
}

fn unreachable_with(words: &'static str) -> impl Fn(&LinkState) -> bool {
    move |s| matches!(s, LinkState::Unreachable { error, .. } if error.contains(words))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_is_unreachable_since_a_time() {
    // A port nothing listens on (bound, then closed).
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let (status, desk) = pull_until(&url, unreachable_with("couldn't reach")).await;
    let LinkState::Unreachable { since, .. } = status.state else {
        unreachable!()
    };
    assert!(since <= Utc::now());
    nothing_stored(&desk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_answering_garbage_is_named_as_not_a_relay() {
    let url = serve(Router::new().route(
        "/v1/deliveries",
        get(|| async { "<html>Welcome to nginx!</html>" }),
    ))
    .await;
    let (_, desk) = pull_until(&url, unreachable_with("not like a Clientele relay")).await;
    nothing_stored(&desk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_cannot_be_read_stores_nothing_and_keeps_the_cursor() {
    let page = serde_json::json!({
        "deliveries": [{
            "provider": "tiquo", "connection": "main",
            "received_at": "2026-12-07T09:00:00Z", "dedupe_key": "evt_1",
            "headers": [], "body": "%%% not base64 %%%", "verification": "checked"
        }],
        "connections": [{"provider": "tiquo", "name": "main", "settings": {}}],
        "next": "1", "more": false
    });
    let url = serve(Router::new().route(
        "/v1/deliveries",
        get(move || {
            let page = page.clone();
            async move { axum::Json(page) }
        }),
    ))
    .await;
    let (_, desk) = pull_until(&url, unreachable_with("base64")).await;
    nothing_stored(&desk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_whose_access_was_removed_says_so_and_stops() {
    let url = serve(Router::new().route(
        "/v1/deliveries",
        get(|| async {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({
                    "code": "unauthorized",
                    "message": "This computer's access to the relay was removed."
                })),
            )
        }),
    ))
    .await;
    let (status, desk) = pull_until(&url, |s| matches!(s, LinkState::Revoked { .. })).await;
    let LinkState::Revoked { message } = status.state else {
        unreachable!()
    };
    assert!(message.contains("removed"), "{message}");
    nothing_stored(&desk);
}
