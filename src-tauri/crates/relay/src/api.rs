//! The relay's own routes, served beside the hooks route on the same port: `POST /pair` and the
//! `/v1/` API desks pull from (the calls and their JSON are in
//! `clientele_core::relay_protocol`).
//!
//! Every `/v1/` request needs a device token; a wrong one counts as a failed guess for the
//! sender's address, and so does a wrong pairing code ([`GuessThrottle`]). Tokens are looked up
//! by their SHA-256 hash (an index lookup: no secret is compared byte by byte in memory).

use crate::code::PairingCode;
use crate::store::{RelayStore, StoreEvent};
use crate::throttle::GuessThrottle;
use crate::token::DeviceToken;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use clientele_core::Provider;
use clientele_core::hand::HandChange;
use clientele_core::relay_protocol::{
    Ack, AddRemoteConnection, ApiErrorBody, ChangeAccepted, ChangesPage, DeviceInfo,
    FeedConnectionInfo, MAX_CHANGES_PAGE, MAX_PAGE, MAX_WAIT_SECONDS, Page, PairRequest, Paired,
    Policy, PulledChange, PulledDelivery, RemoteConnection, RemoteRejection, TestOutcome,
    UpdateRemoteConnection,
};
use clientele_ingest::Notice;
use clientele_server::Clock;
use clientele_store::{ClaimRefused, Device, StoreError};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// A page when the desk doesn't say.
pub const DEFAULT_PAGE: usize = 500;
/// How often a waiting pull looks at a shared database again even when no instance said it
/// committed (the safety net under PostgreSQL's notifications).
const RECHECK_SHARED: Duration = Duration::from_secs(2);
/// How often a device's last-seen time is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(30);
/// Longest device name.
const MAX_DEVICE_NAME: usize = 64;

/// What an admin desk may do to the relay's connections. The engine implements it with the same
/// rules as the desk's own Providers screen (one set of rules, not a copy).
pub trait RelayAdmin: Send + Sync + std::fmt::Debug {
    fn connections(&self, public_url: &str) -> Result<Vec<RemoteConnection>, ApiError>;
    fn add_connection(
        &self,
        add: AddRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError>;
    fn remove_connection(&self, provider: Provider, name: &str) -> Result<(), ApiError>;
    /// Replaces a connection's settings (such as when its deleted customers are forgotten).
    fn update_connection(
        &self,
        provider: Provider,
        name: &str,
        update: UpdateRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError>;
    /// Sends a signed test event for the connection to the relay's public address, over real
    /// HTTP(S) as a provider would, and says what that proved (or what to fix).
    fn send_test_event(&self, provider: Provider, name: &str) -> Result<TestOutcome, ApiError>;
    /// The relay's refusals after `after`, oldest first.
    fn rejections(&self, after: i64, limit: usize) -> Result<Vec<RemoteRejection>, ApiError>;
}

/// Which address a request came from, given its headers and its TCP peer.
pub type ClientIp = Arc<dyn Fn(&HeaderMap, Option<SocketAddr>) -> Option<IpAddr> + Send + Sync>;

/// What the routes need.
#[derive(Clone)]
pub struct RelayState {
    pub store: Arc<dyn RelayStore>,
    /// The pipeline's notices: a stored delivery wakes the pulls that are waiting.
    pub notices: broadcast::Sender<Notice>,
    /// Where providers post to, without a trailing slash.
    pub public_url: Arc<str>,
    /// Wrong pairing codes, by address.
    pub code_throttle: Arc<GuessThrottle>,
    /// Unknown tokens, by address. Apart from codes, so a desk's good token never wipes out its
    /// address's wrong codes.
    pub token_throttle: Arc<GuessThrottle>,
    pub admin: Arc<dyn RelayAdmin>,
    pub clock: Clock,
    /// Becomes true when the relay is stopping: waiting pulls answer at once.
    pub closing: watch::Receiver<bool>,
    /// Which address a request came from (the proxy's forwarding header when trusted).
    pub client_ip: ClientIp,
    /// The newest hand change accepted: waiting pulls answer at once when it moves, so desks
    /// apply a change (a forget) without waiting for the next delivery.
    changes: Arc<watch::Sender<i64>>,
    /// When each device's last-seen time was last written.
    touched: Arc<Mutex<HashMap<i64, Instant>>>,
}

impl std::fmt::Debug for RelayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayState")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl RelayState {
    pub fn new(
        store: Arc<dyn RelayStore>,
        notices: broadcast::Sender<Notice>,
        public_url: &str,
        admin: Arc<dyn RelayAdmin>,
        closing: watch::Receiver<bool>,
    ) -> RelayState {
        RelayState {
            store,
            notices,
            public_url: public_url.trim_end_matches('/').into(),
            code_throttle: Arc::new(GuessThrottle::new()),
            token_throttle: Arc::new(GuessThrottle::new()),
            admin,
            clock: clientele_server::system_clock(),
            closing,
            client_ip: Arc::new(|_, peer| peer.map(|p| p.ip())),
            changes: Arc::new(watch::channel(0).0),
            touched: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// An error as the API answers it: a status and `{code, message}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ApiErrorBody,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ApiErrorBody {
                code: code.into(),
                message: message.into(),
            },
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// The store failed: the details go to the log, the desk gets a sentence.
    pub fn store(e: &StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m.clone()),
            StoreError::Invalid(m) => ApiError::invalid(m.clone()),
            other => {
                tracing::error!(error = %other, "the relay's store failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The relay couldn't read its database just now. Try again shortly.",
                )
            }
        }
    }

    fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This computer's access to the relay was removed, or it was never paired. Pair it again with a new code.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The relay's routes (to merge with the listener's).
pub fn router(state: RelayState) -> Router {
    let admin = Router::new()
        .route("/v1/connections", get(connections).post(add_connection))
        .route(
            "/v1/connections/{provider}/{name}",
            axum::routing::delete(remove_connection).patch(update_connection),
        )
        .route("/v1/connections/{provider}/{name}/test", post(test_event))
        .route("/v1/rejections", get(rejections))
        .route_layer(middleware::from_fn(require_admin));
    let v1 = Router::new()
        .route("/v1/deliveries", get(deliveries))
        .route("/v1/ack", post(ack))
        .route("/v1/device", get(device))
        .route("/v1/changes", get(changes).post(post_change))
        .route("/v1/policy", get(policy).put(put_policy))
        .merge(admin)
        // Any other /v1/ path: 401 without a token too, never a hint of what exists.
        .route("/v1/{*rest}", axum::routing::any(not_found))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/pair", post(pair))
        .merge(v1)
        .with_state(state)
}

fn client(state: &RelayState, request: &Request) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a);
    (state.client_ip)(request.headers(), peer)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a relay task failed");
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            "The relay failed to answer. Try again shortly.",
        ))
    })
}

/// Runs a call on `store`, off the async threads; a store failure becomes the API's plain "try
/// again".
async fn read<T: Send + 'static>(
    store: &Arc<dyn RelayStore>,
    query: impl FnOnce(&dyn RelayStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = store.clone();
    blocking(move || query(&*store).map_err(|e| ApiError::store(&e))).await
}

fn too_many(retry_after: u64) -> ApiError {
    ApiError {
        retry_after: Some(retry_after),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many wrong codes or tokens came from this address. Wait {retry_after} seconds and try again."
            ),
        )
    }
}

async fn authenticate(
    State(state): State<RelayState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = client(&state, &request);
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    // No token at all is not a guess: just 401.
    let Some(presented) = presented else {
        return ApiError::unauthorized().into_response();
    };
    if let Some(ip) = ip
        && let Err(wait) = state.token_throttle.check(ip, Instant::now())
    {
        return too_many(wait.seconds()).into_response();
    }
    let found = match DeviceToken::parse(&presented) {
        None => None,
        Some(token) => {
            let hash = token.hash();
            match read(&state.store, move |r| r.device_by_token(&hash)).await {
                Ok(found) => found,
                Err(e) => return e.into_response(),
            }
        }
    };
    let Some(device) = found else {
        if let Some(ip) = ip {
            let _ = state.token_throttle.failed(ip, Instant::now());
        }
        return ApiError::unauthorized().into_response();
    };
    if let Some(ip) = ip {
        state.token_throttle.succeeded(ip);
    }
    touch(&state, &device);
    request.extensions_mut().insert(device);
    next.run(request).await
}

/// Writes the device's last-seen time, at most every [`TOUCH_EVERY`], off the request's path.
fn touch(state: &RelayState, device: &Device) {
    let due = {
        let mut touched = state.touched.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let due = touched
            .get(&device.id)
            .is_none_or(|t| now.duration_since(*t) >= TOUCH_EVERY);
        if due {
            touched.insert(device.id, now);
        }
        due
    };
    if due {
        let (store, id, now) = (state.store.clone(), device.id, (state.clock)());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.touch_device(id, now) {
                tracing::warn!(error = %e, "couldn't note when a device was last seen");
            }
        });
    }
}

async fn require_admin(
    Extension(device): Extension<Device>,
    request: Request,
    next: Next,
) -> Response {
    if !device.admin {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "This computer may read from the relay but not change its connections. Whoever runs the relay can pair it again as an admin desk (clientele relay pair --admin).",
        )
        .into_response();
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "The relay has no such page.",
    )
}

/// A device name: what people call the computer ("Front desk").
pub fn validate_device_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_DEVICE_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(format!(
            "A computer's name has 1 to {MAX_DEVICE_NAME} characters, for example Front desk."
        )));
    }
    Ok(name)
}

async fn pair(State(state): State<RelayState>, request: Request) -> Result<Json<Paired>, ApiError> {
    let ip = client(&state, &request);
    if let Some(ip) = ip
        && let Err(wait) = state.code_throttle.check(ip, Instant::now())
    {
        return Err(too_many(wait.seconds()));
    }
    let body = axum::body::to_bytes(request.into_body(), 16 * 1024)
        .await
        .map_err(|_| ApiError::invalid("The pairing request was too large."))?;
    let asked: PairRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("The pairing request wasn't understood."))?;
    let failed = |e: ApiError| {
        if let Some(ip) = ip {
            let _ = state.code_throttle.failed(ip, Instant::now());
        }
        e
    };
    let code =
        PairingCode::parse(&asked.code).map_err(|e| failed(ApiError::invalid(e.to_string())))?;
    let rename = match &asked.name {
        Some(name) => Some(validate_device_name(name)?.to_string()),
        None => None,
    };
    let token = DeviceToken::generate().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a device token");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The relay couldn't make an access key just now. Try again shortly.",
        )
    })?;
    let (store, code_hash, token_hash, now) = (
        state.store.clone(),
        code.hash(),
        token.hash(),
        (state.clock)(),
    );
    let claimed = blocking(move || {
        store
            .claim_pairing_code(&code_hash, &token_hash, rename.as_deref(), now)
            .map_err(|e| ApiError::store(&e))
    })
    .await?;
    let device = match claimed {
        Ok(device) => device,
        Err(refused) => {
            let (status, code, message) = match refused {
                ClaimRefused::Unknown => (
                    StatusCode::FORBIDDEN,
                    "code_unknown",
                    "The relay doesn't know that code. Check it, or ask for a new one.",
                ),
                ClaimRefused::Used => (
                    StatusCode::FORBIDDEN,
                    "code_used",
                    "That code was already used. Ask for a new one.",
                ),
                ClaimRefused::Expired => (
                    StatusCode::FORBIDDEN,
                    "code_expired",
                    "That code has expired (codes last 15 minutes). Ask for a new one.",
                ),
                ClaimRefused::NameTaken => (
                    StatusCode::CONFLICT,
                    "name_taken",
                    "Another computer paired with the relay already has that name. Choose another name.",
                ),
            };
            return Err(failed(ApiError::new(status, code, message)));
        }
    };
    if let Some(ip) = ip {
        state.code_throttle.succeeded(ip);
    }
    tracing::info!(device = %device.name, admin = device.admin, "a desk paired");
    Ok(Json(Paired {
        token: token.expose().to_string(),
        device: DeviceInfo {
            name: device.name,
            admin: device.admin,
            behind: device.behind,
            public_url: state.public_url.to_string(),
        },
        public_url: state.public_url.to_string(),
    }))
}

#[derive(Debug, Deserialize)]
struct PullQuery {
    after: Option<String>,
    limit: Option<usize>,
    wait: Option<u64>,
}

fn parse_cursor(cursor: Option<&str>) -> Result<i64, ApiError> {
    match cursor {
        None | Some("") => Ok(0),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid("That cursor isn't one the relay gave out.")),
    }
}

async fn deliveries(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Query(query): Query<PullQuery>,
) -> Result<Json<Page>, ApiError> {
    let after = parse_cursor(query.after.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECONDS));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribe before reading: a delivery stored between the read and the wait still wakes us.
    let mut stored = state.notices.subscribe();
    let mut changed = state.changes.subscribe();
    let mut closing = state.closing.clone();
    // Another instance sharing the database committing (PostgreSQL); re-checked every
    // RECHECK_SHARED as well, in case a notification was lost.
    let mut elsewhere = state.store.subscribe();
    let shared = elsewhere.is_some();
    loop {
        let page = read(&state.store, move |r| r.feed(after, limit)).await?;
        if !page.is_empty() {
            // Revoked while waiting: nothing more leaves the relay for this token.
            still_paired(&state, &device).await?;
            return page_of(&state, page, limit).await.map(Json);
        }
        if *closing.borrow() {
            break;
        }
        tokio::select! {
            woke = stored.recv() => match woke {
                Ok(Notice::Stored { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
            _ = closing.changed() => break,
            // A hand change arrived: the desk applies it before its next page.
            _ = changed.changed() => break,
            event = other_instance(&mut elsewhere) => match event {
                Some(StoreEvent::Changes) => break,
                Some(StoreEvent::Deliveries | StoreEvent::Connections) | None => {}
            },
            () = tokio::time::sleep(RECHECK_SHARED), if shared => {}
        }
    }
    Ok(Json(Page {
        deliveries: Vec::new(),
        connections: Vec::new(),
        next: after.to_string(),
        more: false,
    }))
}

/// What another instance sharing the database committed; `None` when a notification may have been
/// lost (look again). Never resolves when the store isn't shared.
async fn other_instance(
    events: &mut Option<broadcast::Receiver<StoreEvent>>,
) -> Option<StoreEvent> {
    let Some(receiver) = events else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Ok(event) => Some(event),
        Err(broadcast::error::RecvError::Lagged(_)) => None,
        Err(broadcast::error::RecvError::Closed) => {
            // The store stopped listening: rely on the periodic re-check from now on.
            *events = None;
            None
        }
    }
}

async fn still_paired(state: &RelayState, device: &Device) -> Result<(), ApiError> {
    let id = device.id;
    let active = read(&state.store, move |r| r.device_active(id)).await?;
    if active {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

async fn page_of(
    state: &RelayState,
    items: Vec<clientele_store::FeedItem>,
    limit: usize,
) -> Result<Page, ApiError> {
    let names: BTreeSet<(Provider, String)> = items
        .iter()
        .map(|d| (d.provider, d.connection.clone()))
        .collect();
    let names: Vec<_> = names.into_iter().collect();
    let connections = read(&state.store, move |r| r.feed_connections(&names)).await?;
    let more = items.len() >= limit;
    let next = items.last().map(|d| d.id).unwrap_or_default().to_string();
    let base64 = base64::engine::general_purpose::STANDARD;
    Ok(Page {
        deliveries: items
            .into_iter()
            .map(|d| PulledDelivery {
                provider: d.provider,
                connection: d.connection,
                received_at: d.received_at,
                dedupe_key: d.dedupe_key,
                headers: d.headers,
                body: base64.encode(&d.body),
                verification: d.verification,
                is_test: d.is_test,
            })
            .collect(),
        connections: connections
            .into_iter()
            .map(|c| FeedConnectionInfo {
                provider: c.provider,
                name: c.name,
                settings: c.settings,
            })
            .collect(),
        next,
        more,
    })
}

async fn ack(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Json(ack): Json<Ack>,
) -> Result<StatusCode, ApiError> {
    let upto = parse_cursor(Some(&ack.cursor))?;
    read(&state.store, move |store| {
        store.acknowledge(device.id, upto)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn device(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let id = device.id;
    let behind = read(&state.store, move |r| r.device_behind(id)).await?;
    Ok(Json(DeviceInfo {
        name: device.name,
        admin: device.admin,
        behind,
        public_url: state.public_url.to_string(),
    }))
}

async fn connections(
    State(state): State<RelayState>,
) -> Result<Json<Vec<RemoteConnection>>, ApiError> {
    let (admin, url) = (state.admin.clone(), state.public_url.clone());
    blocking(move || admin.connections(&url)).await.map(Json)
}

async fn add_connection(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Json(add): Json<AddRemoteConnection>,
) -> Result<Json<RemoteConnection>, ApiError> {
    let (admin, url) = (state.admin.clone(), state.public_url.clone());
    let (provider, name) = (add.provider, add.name.clone());
    let added = blocking(move || admin.add_connection(add, &url)).await?;
    tracing::info!(device = %device.name, provider = %provider, connection = %name, "an admin desk added a connection");
    Ok(Json(added))
}

async fn remove_connection(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Path((provider, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let provider: Provider = provider.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The relay has no such connection.",
        )
    })?;
    let admin = state.admin.clone();
    let gone = name.clone();
    blocking(move || admin.remove_connection(provider, &gone)).await?;
    tracing::info!(device = %device.name, provider = %provider, connection = %name, "an admin desk removed a connection");
    Ok(StatusCode::NO_CONTENT)
}

async fn test_event(
    State(state): State<RelayState>,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Json<TestOutcome>, ApiError> {
    let provider: Provider = provider.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The relay has no such connection.",
        )
    })?;
    let admin = state.admin.clone();
    blocking(move || admin.send_test_event(provider, &name))
        .await
        .map(Json)
}

fn unknown_connection() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "The relay has no such connection.",
    )
}

async fn update_connection(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Path((provider, name)): Path<(String, String)>,
    Json(update): Json<UpdateRemoteConnection>,
) -> Result<Json<RemoteConnection>, ApiError> {
    let provider: Provider = provider.parse().map_err(|_| unknown_connection())?;
    let (admin, url) = (state.admin.clone(), state.public_url.clone());
    let changed = name.clone();
    let updated =
        blocking(move || admin.update_connection(provider, &changed, update, &url)).await?;
    tracing::info!(device = %device.name, provider = %provider, connection = %name, "an admin desk changed a connection's settings");
    Ok(Json(updated))
}

#[derive(Debug, Deserialize)]
struct ChangesQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// `GET /v1/changes`: the hand changes after `after`, oldest first.
async fn changes(
    State(state): State<RelayState>,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let after = query.after.unwrap_or(0).max(0);
    let limit = query
        .limit
        .unwrap_or(MAX_CHANGES_PAGE)
        .clamp(1, MAX_CHANGES_PAGE);
    // One more than asked says whether more are waiting.
    let mut found = read(&state.store, move |r| r.changes_after(after, limit + 1)).await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next = found.last().map_or(after, |(id, _)| *id);
    Ok(Json(ChangesPage {
        changes: found
            .into_iter()
            .map(|(id, change)| PulledChange { id, change })
            .collect(),
        next,
        more,
    }))
}

/// `POST /v1/changes`: a desk's hand change. A forget is carried out on the relay's own copy
/// before the answer; a change the relay has already is answered as before.
async fn post_change(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    body: axum::body::Bytes,
) -> Result<Json<ChangeAccepted>, ApiError> {
    let change: HandChange = serde_json::from_slice(&body)
        .map_err(|_| ApiError::invalid("The relay didn't understand that change."))?;
    crate::changes::validate(&change).map_err(ApiError::invalid)?;
    let (now, name) = ((state.clock)(), device.name.clone());
    let accepted = read(&state.store, move |store| {
        crate::changes::accept(store, &change, &name, now)
    })
    .await?;
    if accepted.change.new {
        state.changes.send_replace(accepted.change.id);
        tracing::info!(device = %device.name, id = accepted.change.id, "a desk shared a hand change");
    }
    Ok(Json(ChangeAccepted {
        id: accepted.change.id,
    }))
}

/// `GET /v1/policy`: the retention policy every desk applies.
async fn policy(State(state): State<RelayState>) -> Result<Json<Policy>, ApiError> {
    read(&state.store, |r| r.retention_policy()).await.map(Json)
}

/// `PUT /v1/policy`: an admin desk sets the retention policy.
async fn put_policy(
    State(state): State<RelayState>,
    Extension(device): Extension<Device>,
    Json(policy): Json<Policy>,
) -> Result<Json<Policy>, ApiError> {
    if !device.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "Only a desk that manages the relay can change how long customers are kept. Ask whoever runs the relay, or change it on an admin desk.",
        ));
    }
    if policy.retention_inactive_months == Some(0) || policy.retention_rejections_days == Some(0) {
        return Err(ApiError::invalid(
            "Keep customers and refused requests for at least one month or day, or turn it off.",
        ));
    }
    read(&state.store, move |store| {
        store.store_retention_policy(&policy)
    })
    .await?;
    // Desks waiting for deliveries come round and read it.
    state.changes.send_modify(|_| {});
    tracing::info!(device = %device.name, "an admin desk changed the retention policy");
    Ok(Json(policy))
}

#[derive(Debug, Deserialize)]
struct RejectionsQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

async fn rejections(
    State(state): State<RelayState>,
    Query(query): Query<RejectionsQuery>,
) -> Result<Json<Vec<RemoteRejection>>, ApiError> {
    let admin = state.admin.clone();
    let limit = query.limit.unwrap_or(200).clamp(1, 1_000);
    let after = query.after.unwrap_or(0).max(0);
    blocking(move || admin.rejections(after, limit))
        .await
        .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_only_the_relay_s_own() {
        assert_eq!(parse_cursor(None).unwrap(), 0);
        assert_eq!(parse_cursor(Some("")).unwrap(), 0);
        assert_eq!(parse_cursor(Some("42")).unwrap(), 42);
        for bad in ["-1", "abc", "1.5", "99999999999999999999"] {
            let e = parse_cursor(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn device_names_are_what_people_call_computers() {
        assert_eq!(validate_device_name("  Front desk ").unwrap(), "Front desk");
        assert!(validate_device_name("Caixa 2 — recepção").is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert!(validate_device_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_carry_retry_after_when_asked_to_wait() {
        let response = too_many(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
