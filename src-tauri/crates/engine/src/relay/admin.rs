//! What admin desks (and `clientele relay connections` on the relay machine) do to the relay's
//! connections, over any [`RelayStore`], with the rules of the desk's own Providers screen.

use crate::error::{AppError, ErrorCode};
use crate::ops::connections::check_new_name;
use crate::ops::test_event::signed_test_event;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use clientele_core::relay_protocol::{
    AddRemoteConnection, RemoteConnection, RemoteRejection, TestOutcome, UpdateRemoteConnection,
};
use clientele_core::{Provider, Sensitive};
use clientele_relay::api::{ApiError, RelayAdmin};
use clientele_relay::store::RelayStore;
use clientele_relay_client::ClientError;
use clientele_relay_client::own_address::post_like_a_provider;
use clientele_secrets::{KeychainStore, SecretStore};
use clientele_server::connections::ConnectionRegistry;
use clientele_server::webhook_path;
use clientele_store::{Connection, NewConnection};
use std::sync::Arc;

/// The relay's connections and their sealed secrets.
#[derive(Debug, Clone)]
pub struct RelayConnections {
    store: Arc<dyn RelayStore>,
    /// Seals new secrets (needs the relay's key); `None` on the command line, which only lists
    /// and removes (neither needs the key).
    secrets: Option<Arc<dyn SecretStore>>,
    /// The serving relay's live view, reloaded after each change.
    registry: Option<Arc<ConnectionRegistry>>,
}

impl RelayConnections {
    pub fn new(store: Arc<dyn RelayStore>, secrets: Arc<dyn SecretStore>) -> RelayConnections {
        RelayConnections {
            store,
            secrets: Some(secrets),
            registry: None,
        }
    }

    /// For commands beside the relay: listing and removing, without the relay's key.
    pub fn without_key(store: Arc<dyn RelayStore>) -> RelayConnections {
        RelayConnections {
            store,
            secrets: None,
            registry: None,
        }
    }

    pub(crate) fn with_registry(mut self, registry: Arc<ConnectionRegistry>) -> RelayConnections {
        self.registry = Some(registry);
        self
    }

    /// Whether a sealed secret is kept for the connection (without opening it).
    pub fn secret_is_set(&self, p: Provider, name: &str) -> bool {
        self.store
            .sealed_secret(&KeychainStore::account(p, name))
            .is_ok_and(|row| row.is_some())
    }

    /// Every connection, as admin desks see it, with addresses under `public_url`.
    pub fn list(&self, public_url: &str) -> Result<Vec<RemoteConnection>, AppError> {
        self.store
            .connections()?
            .into_iter()
            .map(|c| self.view(c, public_url))
            .collect()
    }

    /// The connection (not removed), if there is one.
    pub fn find(&self, p: Provider, name: &str) -> Result<Connection, AppError> {
        self.store
            .connection(p, name)?
            .ok_or_else(|| AppError::no_connection(p, name))
    }

    /// Adds a connection: the name checked as the desk checks it, the secret sealed first (and
    /// removed again if the connection can't be stored).
    pub fn add(
        &self,
        add: AddRemoteConnection,
        public_url: &str,
        now: DateTime<Utc>,
    ) -> Result<RemoteConnection, AppError> {
        let p = add.provider;
        let name = check_new_name(&self.store.connections()?, p, &add.name)?;
        let saved = match &add.secret {
            Some(secret) => {
                if secret.trim().is_empty() {
                    return Err(AppError::new(
                        ErrorCode::SecretEmpty,
                        format!(
                            "Paste the {} from {} first.",
                            p.secret_word(),
                            p.display_name()
                        ),
                    ));
                }
                let Some(secrets) = &self.secrets else {
                    return Err(AppError::new(
                        ErrorCode::InvalidInput,
                        "Connections with a secret are added from an admin desk.",
                    ));
                };
                secrets.set(p, &name, &Sensitive::new(secret.clone()))?;
                true
            }
            None => false,
        };
        let added = self.store.add_connection(
            &NewConnection {
                provider: p,
                name: name.clone(),
                settings: add.settings,
                requires_secret: add.secret.is_some(),
            },
            now,
        );
        let added = match added {
            Ok(added) => added,
            Err(e) => {
                if saved {
                    let _ = self
                        .store
                        .delete_sealed_secret(&KeychainStore::account(p, &name));
                }
                return Err(e.into());
            }
        };
        self.changed()?;
        self.view(added, public_url)
    }

    /// Removes a connection (what it received is kept) and its sealed secret.
    pub fn remove(&self, p: Provider, name: &str, now: DateTime<Utc>) -> Result<(), AppError> {
        self.store.remove_connection(p, name, now)?;
        if let Err(e) = self
            .store
            .delete_sealed_secret(&KeychainStore::account(p, name))
        {
            tracing::warn!(error = %e, "couldn't delete a removed connection's sealed secret");
        }
        self.changed()
    }

    /// Replaces a connection's settings.
    pub fn update(
        &self,
        p: Provider,
        name: &str,
        update: UpdateRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, AppError> {
        if !self
            .store
            .replace_connection_settings(p, name, &update.settings)?
        {
            return Err(AppError::no_connection(p, name));
        }
        self.changed()?;
        let updated = self.find(p, name)?;
        self.view(updated, public_url)
    }

    fn changed(&self) -> Result<(), AppError> {
        if let Some(registry) = &self.registry {
            registry.reload()?;
        }
        // Other instances sharing the database reload theirs (the change is committed: a lost
        // notice costs only the wait until they next reload by themselves).
        if let Err(e) = self.store.connections_changed() {
            tracing::warn!(error = %e, "couldn't tell the other relay instances about a connection change");
        }
        Ok(())
    }

    fn view(&self, c: Connection, public_url: &str) -> Result<RemoteConnection, AppError> {
        let stats = self
            .store
            .connection_stats(&c, Utc::now() - Duration::hours(24))?;
        Ok(RemoteConnection {
            address: format!("{public_url}{}", webhook_path(c.provider, &c.name)),
            secret_set: !c.requires_secret || self.secret_is_set(c.provider, &c.name),
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

/// What an admin desk may do, with the rules of the desk's own Providers screen.
pub(crate) struct Admin {
    pub(crate) connections: RelayConnections,
    /// Marks the relay's own test events.
    pub(crate) test_token: Arc<Sensitive<String>>,
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
    fn stored_here(&self, text: &str, connection: &Connection, body: &[u8]) -> bool {
        let Some(id) = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v["delivery"].as_i64())
        else {
            return false;
        };
        self.connections
            .store
            .delivery_matches(id, connection.provider, &connection.name, body)
            .unwrap_or(false)
    }
}

impl RelayAdmin for Admin {
    fn connections(&self, public_url: &str) -> Result<Vec<RemoteConnection>, ApiError> {
        self.connections.list(public_url).map_err(api_error)
    }

    fn add_connection(
        &self,
        add: AddRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError> {
        self.connections
            .add(add, public_url, Utc::now())
            .map_err(api_error)
    }

    fn remove_connection(&self, provider: Provider, name: &str) -> Result<(), ApiError> {
        self.connections
            .remove(provider, name, Utc::now())
            .map_err(api_error)
    }

    fn update_connection(
        &self,
        provider: Provider,
        name: &str,
        update: UpdateRemoteConnection,
        public_url: &str,
    ) -> Result<RemoteConnection, ApiError> {
        self.connections
            .update(provider, name, update, public_url)
            .map_err(api_error)
    }

    /// Posts a signed test event to the relay's public address over real HTTP(S), as a provider
    /// would, and checks that it was stored here (see `ops::test_event`).
    fn send_test_event(&self, provider: Provider, name: &str) -> Result<TestOutcome, ApiError> {
        use crate::ops::test_event::relay_words;
        let connection = self.connections.find(provider, name).map_err(api_error)?;
        let Some(public_url) = self.public_url.clone() else {
            return Ok(relay_words::no_public_url(&self.listening));
        };
        let Some(secrets) = &self.connections.secrets else {
            return Err(api_error(AppError::new(
                ErrorCode::InvalidInput,
                "The relay can't sign a test message without its key.",
            )));
        };
        let test = signed_test_event(&**secrets, &self.test_token, &connection, Utc::now());
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
        let rows = self
            .connections
            .store
            .rejections_after(after, limit)
            .map_err(|e| api_error(e.into()))?;
        Ok(rows
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
    }
}
