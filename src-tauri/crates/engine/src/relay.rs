//! Running as a relay: the same [`Engine`] — data folder lock, store, connections, pipeline,
//! listener — with connection secrets sealed in the relay's database instead of a keychain, a
//! pipeline that stores without deriving (its desks derive what they pull), and the relay's own
//! routes (`POST /pair`, `/v1/`) served beside the hooks route on one port.

use crate::engine::{Engine, StartError};
use crate::error::{AppError, ErrorCode};
use crate::ops::Operations;
use crate::ops::connections::{AddConnection, NewSecret};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use clientele_core::relay_protocol::{
    AddRemoteConnection, RemoteConnection, RemoteRejection, TestOutcome, UpdateRemoteConnection,
};
use clientele_core::{Provider, Sensitive};
use clientele_relay::api::{ApiError, RelayAdmin};
use clientele_relay::sealed::{RelayKey, SealedSecrets};
use clientele_relay_client::ClientError;
use clientele_relay_client::own_address::post_like_a_provider;
use clientele_secrets::SecretStore;
use clientele_server::webhook_path;
use clientele_store::Store;
use std::path::Path;
use std::sync::Arc;

/// The settings key keeping the relay's public address, for commands run beside it.
pub const PUBLIC_URL_SETTING: &str = "relay.public_url";

/// The relay's secret store: connection secrets sealed under the relay's key (the key file in
/// the data folder, created on first use, or `CLIENTELE_RELAY_KEY`). Also says where the key
/// came from, for the start-up line.
pub fn sealed_secrets_with_source(
    data_dir: &Path,
    store: &Store,
) -> Result<(Arc<dyn SecretStore>, String), AppError> {
    let (key, source) = RelayKey::load_or_create(data_dir)
        .map_err(|e| AppError::new(ErrorCode::InvalidInput, e.to_string()))?;
    Ok((
        Arc::new(SealedSecrets::new(store.clone(), key)),
        source.to_string(),
    ))
}

/// [`sealed_secrets_with_source`] without the source.
pub fn sealed_secrets(data_dir: &Path, store: &Store) -> Result<Arc<dyn SecretStore>, AppError> {
    sealed_secrets_with_source(data_dir, store).map(|(s, _)| s)
}

/// How `clientele relay serve` listens.
#[derive(Debug)]
pub struct RelayListen {
    /// Where providers post to (`<public_url>/hooks/…`); default: the address it listens on.
    pub public_url: Option<String>,
    pub tls: Option<clientele_server::tls::TlsSettings>,
    pub trusted_proxies: clientele_server::client_addr::TrustedProxies,
    /// Delete deliveries older than this that every paired desk has.
    pub keep_days: Option<u32>,
}

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes, every [`RETENTION_EVERY`] (and once at start), deliveries older than `days` that
/// every paired desk has acknowledged.
pub(crate) async fn retention(store: Store, days: u32) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        let store = store.clone();
        let cutoff = Utc::now() - Duration::days(i64::from(days));
        let deleted = tokio::task::spawn_blocking(move || {
            store
                .writer()
                .and_then(|mut w| w.delete_acknowledged(cutoff))
        })
        .await;
        match deleted {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                deleted = n,
                days,
                "retention: deleted old deliveries every desk has"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "retention couldn't delete old deliveries"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}

impl Engine {
    /// Listens as a relay: the hooks route and the relay's own routes on one port. Returns the
    /// address bound and the public address it hands out.
    pub async fn listen_relay(
        &self,
        addr: std::net::SocketAddr,
        options: RelayListen,
    ) -> std::io::Result<(std::net::SocketAddr, String)> {
        self.listen_with(
            addr,
            crate::engine::Serving {
                tls: options.tls,
                trusted_proxies: options.trusted_proxies,
                relay: Some(crate::engine::RelayServing {
                    public_url: options.public_url,
                    keep_days: options.keep_days,
                }),
            },
        )
        .await
        .map(|(bound, public_url)| (bound, public_url.unwrap_or_default()))
    }

    /// Starts a relay over `data_dir`; returns it and where its key came from.
    pub fn start_relay(data_dir: &Path) -> Result<(Engine, String), StartError> {
        let store = Store::open_dir(data_dir)?;
        let (secrets, source) =
            sealed_secrets_with_source(data_dir, &store).map_err(StartError::Store)?;
        let engine = Engine::start_with(data_dir, secrets, clientele_ingest::Derivation::Off)?;
        Ok((engine, source))
    }
}

/// An address providers could reach from the internet (not loopback, private, link-local or
/// unspecified). Without `--public-url`, a relay listening on another kind has no address to
/// hand out that providers can use.
pub fn is_public_address(addr: std::net::SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_documentation())
        }
        std::net::IpAddr::V6(ip) => !(ip.is_loopback() || ip.is_unspecified()),
    }
}

/// What an admin desk may do, with the rules of the desk's own Providers screen.
pub(crate) struct Admin {
    pub(crate) operations: Arc<Operations>,
    /// Where providers post to, without a trailing slash: `--public-url`, or the address it
    /// listens on when that is a public one. `None`: no address providers can reach is known.
    pub(crate) public_url: Option<String>,
    /// The address it listens on (`https://0.0.0.0:8443`), for the words when there is no
    /// public one.
    pub(crate) listening: String,
    /// The certificate chain the relay serves itself (`--tls-cert`), trusted as itself when the
    /// test reaches it at the public address.
    pub(crate) own_certificates: Vec<clientele_relay_client::own_address::CertificateDer<'static>>,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn api_error(e: AppError) -> ApiError {
    let (status, code) = match e.code {
        ErrorCode::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ErrorCode::ConnectionNameTaken => (StatusCode::CONFLICT, "connection_name_taken"),
        ErrorCode::InvalidInput | ErrorCode::UnknownProvider | ErrorCode::SecretEmpty => {
            (StatusCode::BAD_REQUEST, "invalid_input")
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    ApiError::new(status, code, e.message)
}

impl Admin {
    /// Whether the hooks route's answer `text` names a delivery this relay stored for
    /// `connection` with exactly `body`: the public address led here, not to another server.
    fn stored_here(
        &self,
        text: &str,
        connection: &clientele_store::Connection,
        body: &[u8],
    ) -> bool {
        let Some(id) = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["delivery"].as_i64())
        else {
            return false;
        };
        self.operations
            .store()
            .reader()
            .and_then(|r| r.delivery(id))
            .is_ok_and(|d| {
                d.row.provider == connection.provider
                    && d.row.connection == connection.name
                    && d.body == body
            })
    }

    fn view(
        &self,
        c: clientele_store::Connection,
        public_url: &str,
        reader: &clientele_store::Reader,
    ) -> Result<RemoteConnection, AppError> {
        let stats =
            reader.connection_stats(c.id, c.provider, &c.name, Utc::now() - Duration::hours(24))?;
        Ok(RemoteConnection {
            address: format!("{public_url}{}", webhook_path(c.provider, &c.name)),
            secret_set: !c.requires_secret || self.operations.secret_is_set(c.provider, &c.name),
            settings: c.settings.clone(),
            requires_secret: c.requires_secret,
            paused: c.paused,
            created_at: c.created_at,
            last_delivery_at: stats.last_delivery_at,
            deliveries: stats.deliveries_since,
            rejections: stats.rejections_since,
            provider: c.provider,
            name: c.name,
        })
    }
}

impl RelayAdmin for Admin {
    fn connections(&self, public_url: &str) -> Result<Vec<RemoteConnection>, ApiError> {
        let run = || -> Result<Vec<RemoteConnection>, AppError> {
            let reader = self.operations.store().reader()?;
            reader
                .connections()?
                .into_iter()
                .map(|c| self.view(c, public_url, &reader))
                .collect()
        };
        run().map_err(api_error)
    }

    fn add_connection(
        &self,
        add: AddRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError> {
        let run = || -> Result<RemoteConnection, AppError> {
            let added = self.operations.add_connection_with(
                AddConnection {
                    provider: add.provider,
                    name: add.name.clone(),
                    secret: match &add.secret {
                        Some(secret) => NewSecret::Given(Sensitive::new(secret.clone())),
                        None => NewSecret::Unsigned,
                    },
                    settings: add.settings.clone(),
                },
                Utc::now(),
            )?;
            let reader = self.operations.store().reader()?;
            self.view(added, public_url, &reader)
        };
        run().map_err(api_error)
    }

    fn remove_connection(&self, provider: Provider, name: &str) -> Result<(), ApiError> {
        self.operations
            .remove_connection(provider.id(), name, Utc::now())
            .map(drop)
            .map_err(api_error)
    }

    fn update_connection(
        &self,
        provider: Provider,
        name: &str,
        update: UpdateRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError> {
        let run = || -> Result<RemoteConnection, AppError> {
            let updated =
                self.operations
                    .replace_connection_settings(provider, name, &update.settings)?;
            let reader = self.operations.store().reader()?;
            self.view(updated, public_url, &reader)
        };
        run().map_err(api_error)
    }

    /// Posts a signed test event to the relay's public address over real HTTP(S), as a provider
    /// would, and checks that it was stored here (see `ops::test_event`).
    fn send_test_event(&self, provider: Provider, name: &str) -> Result<TestOutcome, ApiError> {
        use crate::ops::test_event::relay_words;
        let connection = self
            .operations
            .store()
            .reader()
            .and_then(|r| r.connection(provider, name))
            .map_err(|e| api_error(e.into()))?
            .ok_or_else(|| api_error(AppError::no_connection(provider, name)))?;
        let Some(public_url) = self.public_url.clone() else {
            return Ok(relay_words::no_public_url(&self.listening));
        };
        let test = self.operations.test_event(&connection, Utc::now());
        let url = format!("{public_url}{}", test.path);
        let sent = test.body.clone();
        let own = self.own_certificates.clone();
        let answer =
            self.runtime
                .block_on(post_like_a_provider(&url, &test.headers, test.body, &own));
        Ok(match answer {
            Err(ClientError::Certificate { reason, .. }) => {
                relay_words::untrusted(&public_url, &url, &reason)
            }
            Err(ClientError::Unreachable { reason, .. }) => {
                relay_words::unreachable(provider, &public_url, &url, &reason)
            }
            Err(other) => relay_words::unreachable(provider, &public_url, &url, &other.to_string()),
            Ok(answer)
                if answer.status == 200 && self.stored_here(&answer.body, &connection, &sent) =>
            {
                relay_words::arrived(
                    provider,
                    name,
                    connection.requires_secret,
                    &public_url,
                    &url,
                    answer.own_certificate_only,
                )
            }
            Ok(answer) => relay_words::refused(&public_url, &url, answer.status, &answer.body),
        })
    }

    fn rejections(&self, after: i64, limit: usize) -> Result<Vec<RemoteRejection>, ApiError> {
        let run = || -> Result<Vec<RemoteRejection>, AppError> {
            Ok(self
                .operations
                .store()
                .reader()?
                .rejections_after(after, limit)?
                .into_iter()
                .map(|r| RemoteRejection {
                    id: r.id,
                    remote_addr: r.remote_addr,
                    received_at: r.received_at,
                    provider: r.provider,
                    connection: r.connection,
                    code: r.code,
                    reason: r.reason,
                })
                .collect())
        };
        run().map_err(api_error)
    }
}
