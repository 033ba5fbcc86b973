//! `POST /hooks/{provider}/{connection}`: where providers send their webhooks.
//!
//! Statuses are the contract with providers' retry logic:
//! - `200` once the delivery is durably stored, or when it is a duplicate of a stored one;
//! - `401` forged, unsigned (when a secret is set) or outside the replay window — never retried
//!   usefully, and recorded with a plain reason;
//! - `404` unknown provider or connection; `413` body over the limit;
//! - `503` when it can't be stored right now (disk full, paused, secret unavailable), so the
//!   provider retries later and nothing is lost. The body never carries the store's own words.
//!
//! A genuine delivery that can't be *read* is still a `200`: it is stored and marked
//! "needs attention" by derivation, to be read again after an update.

use crate::client_addr::client_addr;
use crate::connections::LiveConnection;
use crate::listener::ListenerState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clientele_core::{Inbound, Provider, providers};
use clientele_store::{IngestOutcome, NewDelivery, NewRejection};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// The route, as axum spells it.
pub(crate) const HOOKS_ROUTE: &str = "/hooks/{provider}/{connection}";

/// Header carrying the running process's test-event token: a test event takes the real path but
/// is marked as a test, and only the process that knows the token can mark one.
pub const TEST_HEADER: &str = "x-clientele-test";

/// The path a provider posts to for one connection: `/hooks/{provider}/{connection}`.
pub fn webhook_path(provider: Provider, name: &str) -> String {
    format!("/hooks/{}/{name}", provider.id())
}

fn answer(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message.into()})),
    )
        .into_response()
}

pub(crate) async fn receive(
    State(state): State<ListenerState>,
    Path((provider_id, connection_name)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Present when served through `run`; absent in socket-less router tests. Behind a trusted
    // reverse proxy the peer is the proxy, and the sender is named in its header: the log and the
    // allow-list both want the sender.
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| client_addr(peer.ip(), &headers, &state.trusted_proxies));
    let now = (state.clock.0)();
    let reject = |code: &str, reason: String, body_bytes: Option<usize>| {
        state.ingest.reject(NewRejection {
            received_at: now,
            provider: provider_id.clone(),
            connection: connection_name.clone(),
            code: code.to_string(),
            reason,
            remote_addr: remote.map(|ip| ip.to_string()),
            body_bytes: body_bytes.map(|n| n as i64),
        });
    };

    let Ok(provider) = provider_id.parse::<Provider>() else {
        let reason = format!("Clientele doesn't know a provider called '{provider_id}'.");
        reject("unknown_provider", reason.clone(), None);
        return answer(StatusCode::NOT_FOUND, reason);
    };
    let too_large = || {
        let reason = format!(
            "The message was larger than the {} limit.",
            human_size(state.body_limit)
        );
        reject("too_large", reason.clone(), None);
        answer(StatusCode::PAYLOAD_TOO_LARGE, reason)
    };
    // A length announced over the limit is refused at once, rather than after waiting (up to the
    // request timeout) for a body that will be refused anyway.
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > state.body_limit as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, state.body_limit).await {
        Ok(body) => body,
        Err(e) => {
            if is_length_limit(&e) {
                return too_large();
            }
            return answer(
                StatusCode::BAD_REQUEST,
                "The message could not be read completely.",
            );
        }
    };

    let live = match state.connections.loaded(provider, &connection_name) {
        Some(live) => Some(live),
        None => {
            // Not loaded: maybe just added; reloading reads the database and the keychain.
            let registry = state.connections.clone();
            let name = connection_name.clone();
            tokio::task::spawn_blocking(move || registry.get(provider, &name))
                .await
                .ok()
                .flatten()
        }
    };
    let Some(mut live) = live else {
        let reason = format!(
            "There is no {} connection called '{connection_name}'. Check the address pasted into {}.",
            provider.display_name(),
            provider.display_name()
        );
        reject("unknown_connection", reason.clone(), Some(body.len()));
        return answer(StatusCode::NOT_FOUND, reason);
    };
    if live.connection.paused {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "This connection is paused; the provider will send the message again later.",
        );
    }
    if live.missing_secret() {
        // Refresh in case the secret was just saved, then decide.
        live = refresh(&state, provider, &connection_name)
            .await
            .unwrap_or(live);
        if live.missing_secret() {
            let reason = live
                .secret_problem
                .clone()
                .unwrap_or_else(|| "The secret for this connection isn't available.".into());
            reject("secret_unavailable", reason.clone(), Some(body.len()));
            return answer(StatusCode::SERVICE_UNAVAILABLE, reason);
        }
    }

    // This process's own test event is exempt from the sender allow-list (a relay sends it from
    // its own address, which is never a provider's); its signature is checked as any other's.
    let is_test = is_test_event(&state, &headers);
    let sender = if is_test { None } else { remote };
    let mut verified = check(&live, &headers, &body, sender, now);
    if verified.is_err() && live.secret.is_some() {
        // The secret may have been replaced since it was loaded.
        if let Some(fresh) = refresh(&state, provider, &connection_name).await
            && fresh.secret != live.secret
        {
            verified = check(&fresh, &headers, &body, sender, now);
            live = fresh;
        }
    }
    let verified = match verified {
        Ok(v) => v,
        Err(rejection) => {
            reject(rejection.code(), rejection.to_string(), Some(body.len()));
            return answer(StatusCode::UNAUTHORIZED, rejection.to_string());
        }
    };

    let delivery = NewDelivery {
        connection_id: live.connection.id,
        received_at: now,
        dedupe_key: verified.dedupe_key,
        headers: providers::kept_headers(&headers),
        body: body.to_vec(),
        verification: verified.check,
        is_test,
    };
    match state.ingest.deliver(delivery).await {
        Ok(IngestOutcome::Stored { id }) => (
            StatusCode::OK,
            Json(json!({"status": "stored", "delivery": id})),
        )
            .into_response(),
        Ok(IngestOutcome::Duplicate { id, .. }) => (
            StatusCode::OK,
            Json(json!({"status": "duplicate", "delivery": id})),
        )
            .into_response(),
        // About a customer staff chose to keep forgetting: the provider may stop sending it.
        Ok(IngestOutcome::Withheld { .. }) => {
            (StatusCode::OK, Json(json!({"status": "withheld"}))).into_response()
        }
        // Shutting down, the disk full, the database unavailable: words safe for a provider's
        // delivery log (the store's own error is in Clientele's log).
        Err(e) => answer(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn check(
    live: &LiveConnection,
    headers: &HeaderMap,
    body: &Bytes,
    remote: Option<std::net::IpAddr>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<clientele_core::Verified, clientele_core::Rejection> {
    let inbound = Inbound {
        headers,
        body,
        remote_ip: remote,
    };
    clientele_core::verify::verify(
        live.connection.provider,
        &live.connection.settings,
        live.secret.as_ref(),
        &inbound,
        now,
    )
}

async fn refresh(
    state: &ListenerState,
    provider: Provider,
    name: &str,
) -> Option<Arc<LiveConnection>> {
    let registry = state.connections.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || registry.refresh_secret(provider, &name))
        .await
        .ok()
        .flatten()
}

/// True when the request carries this process's test token (compared in constant time).
fn is_test_event(state: &ListenerState, headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    let (Some(token), Some(sent)) = (state.test_token.as_ref(), headers.get(TEST_HEADER)) else {
        return false;
    };
    bool::from(token.expose().as_bytes().ct_eq(sent.as_bytes()))
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util_limited::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    e.to_string().contains("length limit")
}

mod http_body_util_limited {
    pub use http_body_util::LengthLimitError;
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}
