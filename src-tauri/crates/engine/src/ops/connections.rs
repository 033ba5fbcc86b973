//! The Providers screen and `clientele connection`: connections, their secrets and their
//! health. The test event is in [`super::test_event`].

use super::{Operations, iso, provider};
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::{DateTime, Duration, Local, TimeZone, Utc};
use clientele_core::{ConnectionSettings, Provider, Sensitive};
use clientele_secrets::env_var_name;
use clientele_server::webhook_path;
use clientele_store::{Connection, NewConnection};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The port the listener uses unless Settings say otherwise.
pub const DEFAULT_PORT: u16 = 8787;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RejectionView {
    pub received_at: String,
    pub reason: String,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectionHealth {
    pub last_delivery_at: Option<String>,
    pub deliveries_today: u32,
    pub rejections_today: u32,
    pub recent_rejections: Vec<RejectionView>,
    pub quiet_warning: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectionView {
    pub provider: Provider,
    pub provider_name: String,
    pub name: String,
    pub webhook_url: String,
    pub requires_secret: bool,
    pub secret_set: bool,
    pub paused: bool,
    pub created_at: String,
    /// Its messages arrive through the relay (which holds its secret).
    pub via_relay: bool,
    /// When the provider deletes a customer: `None` keeps their history; `Some(n)` forgets them
    /// `n` days later (see `Operations::set_forget_deleted`).
    pub forget_deleted_after_days: Option<u32>,
    pub health: ConnectionHealth,
}

/// The Connect flow's request. It carries a secret, so it has no derived `Debug`.
#[derive(Clone, Deserialize, TS)]
#[ts(export)]
pub struct NewConnectionRequest {
    pub provider: String,
    pub name: String,
    /// `None` only when the user chose "this provider can't sign messages".
    pub secret: Option<String>,
}

impl std::fmt::Debug for NewConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewConnectionRequest")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

/// Where a new connection's secret comes from (`Sensitive` prints as "(redacted)").
#[derive(Debug)]
pub enum NewSecret {
    /// Pasted or piped in: saved in the secret store.
    Given(Sensitive<String>),
    /// Already where the secret store reads it (an environment variable): checked, not written.
    AlreadySet,
    /// The provider can't sign: deliveries are accepted unchecked.
    Unsigned,
}

/// A new connection, from the window or the command line.
#[derive(Debug)]
pub struct AddConnection {
    pub provider: Provider,
    pub name: String,
    pub secret: NewSecret,
    pub settings: ConnectionSettings,
}

impl Operations {
    /// The listener's base URL as providers should use it.
    fn base_url(&self) -> String {
        let status = self.listener.read().unwrap_or_else(|p| p.into_inner());
        status.address.clone().map_or_else(
            || format!("http://127.0.0.1:{DEFAULT_PORT}"),
            |a| format!("http://{a}"),
        )
    }

    pub fn connections(&self, now: DateTime<Utc>) -> ApiResult<Vec<ConnectionView>> {
        let reader = self.store.reader()?;
        let start_of_day = Local
            .from_local_datetime(
                &now.with_timezone(&Local)
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default(),
            )
            .earliest()
            .map_or(now - Duration::hours(24), |t| t.with_timezone(&Utc));
        let base = self.base_url();
        let relay_base = self.relay_link()?.map(|link| link.public_url);
        reader
            .connections()?
            .into_iter()
            .map(|c| {
                let stats = reader.connection_stats(c.id, c.provider, &c.name, start_of_day)?;
                let rejections = reader.rejections_for(c.provider, &c.name, 5)?;
                // The relay's connections keep their secret on the relay.
                let secret_set =
                    !c.requires_secret || c.via_relay || self.secret_is_set(c.provider, &c.name);
                let base = match (&relay_base, c.via_relay) {
                    (Some(relay), true) => relay.as_str(),
                    _ => base.as_str(),
                };
                Ok(ConnectionView {
                    provider: c.provider,
                    provider_name: c.provider.display_name().into(),
                    webhook_url: format!("{base}{}", webhook_path(c.provider, &c.name)),
                    via_relay: c.via_relay,
                    forget_deleted_after_days: c.settings.forget_deleted_after_days,
                    requires_secret: c.requires_secret,
                    secret_set,
                    paused: c.paused,
                    created_at: iso(c.created_at),
                    health: ConnectionHealth {
                        last_delivery_at: stats.last_delivery_at.map(iso),
                        deliveries_today: stats.deliveries_since as u32,
                        rejections_today: stats.rejections_since as u32,
                        recent_rejections: rejections
                            .into_iter()
                            .map(|r| RejectionView {
                                received_at: iso(r.received_at),
                                // Plain words, as the Activity list says them.
                                reason: clientele_core::verify::refusal_words(
                                    &r.code,
                                    c.provider.display_name(),
                                    &r.reason,
                                )
                                .plain,
                                code: r.code,
                            })
                            .collect(),
                        quiet_warning: quiet_warning(c.provider, &stats.recent_arrivals, now),
                    },
                    name: c.name,
                })
            })
            .collect()
    }

    /// Checks that `name` (trimmed) can name a new connection of `provider`: well formed, and
    /// not the name of one it has — nor one that differs only in case or punctuation, since
    /// the two would share one environment variable (`CLIENTELE_SECRET_TIQUO_MAIN_SHOP` for both
    /// `main-shop` and `Main_Shop`). Returns the trimmed name.
    pub fn check_new_connection(&self, p: Provider, name: &str) -> ApiResult<String> {
        check_new_name(&self.store.reader()?.connections()?, p, name)
    }

    /// Adds a connection, with every rule in one place: the name ([`Self::check_new_connection`]),
    /// the secret (saved first, and removed again if the connection can't be stored), and the
    /// listener told at once.
    pub fn add_connection_with(
        &self,
        request: AddConnection,
        now: DateTime<Utc>,
    ) -> ApiResult<Connection> {
        let p = request.provider;
        let name = self.check_new_connection(p, &request.name)?;
        if let Some((_, relay)) = self.relay_admin()? {
            return self.add_relay_connection(&relay, request, name, now);
        }
        let saved_secret = match &request.secret {
            NewSecret::Given(secret) => {
                if secret.expose().trim().is_empty() {
                    return Err(AppError::new(
                        ErrorCode::SecretEmpty,
                        format!(
                            "Paste the {} from {} first.",
                            p.secret_word(),
                            p.display_name()
                        ),
                    ));
                }
                self.secrets.set(p, &name, secret)?;
                true
            }
            NewSecret::AlreadySet => {
                if !self.secrets.is_set(p, &name)? {
                    return Err(self.no_secret_set(p, &name));
                }
                false
            }
            NewSecret::Unsigned => false,
        };
        let added = self.store.writer()?.add_connection(
            &NewConnection {
                provider: p,
                name: name.clone(),
                settings: request.settings,
                requires_secret: !matches!(request.secret, NewSecret::Unsigned),
            },
            now,
        );
        let added = match added {
            Ok(added) => added,
            Err(e) => {
                if saved_secret {
                    let _ = self.secrets.delete(p, &name);
                }
                return Err(e.into());
            }
        };
        self.connections_changed()?;
        Ok(added)
    }

    /// "No signing secret is set for Tiquo connection 'main' in environment variables."
    fn no_secret_set(&self, p: Provider, name: &str) -> AppError {
        AppError::new(
            ErrorCode::SecretUnavailable,
            format!(
                "No {} is set for {} connection '{name}' in {}.",
                p.secret_word(),
                p.display_name(),
                self.secrets.describe()
            ),
        )
    }

    /// On an admin desk: adds the connection at the relay. The secret goes there over the
    /// authenticated channel and never touches this computer's disk; this desk keeps a row for
    /// the connection (marked as the relay's) so its list and its pulled deliveries know it.
    fn add_relay_connection(
        &self,
        relay: &clientele_relay_client::RelayClient,
        request: AddConnection,
        name: String,
        now: DateTime<Utc>,
    ) -> ApiResult<Connection> {
        let p = request.provider;
        let secret = match request.secret {
            NewSecret::Given(secret) => Some(secret),
            NewSecret::AlreadySet => Some(
                self.secrets
                    .get(p, &name)?
                    .ok_or_else(|| self.no_secret_set(p, &name))?,
            ),
            NewSecret::Unsigned => None,
        };
        if secret
            .as_ref()
            .is_some_and(|s| s.expose().trim().is_empty())
        {
            return Err(AppError::new(
                ErrorCode::SecretEmpty,
                format!(
                    "Paste the {} from {} first.",
                    p.secret_word(),
                    p.display_name()
                ),
            ));
        }
        let add = clientele_core::relay_protocol::AddRemoteConnection {
            provider: p,
            name: name.clone(),
            secret: secret.map(|s| s.expose().trim().to_string()),
            settings: request.settings.clone(),
        };
        super::relay::block_on(relay.add_connection(&add))?;
        self.store
            .writer()?
            .relay_connection(p, &name, &request.settings, now)?;
        self.store
            .reader()?
            .connection(p, &name)?
            .ok_or_else(|| AppError::no_connection(p, &name))
    }

    /// The address providers post to for a connection: the relay's public one for the relay's
    /// connections, this computer's listener for its own.
    pub fn webhook_url(&self, connection: &Connection) -> ApiResult<String> {
        let base = match (connection.via_relay, self.relay_link()?) {
            (true, Some(link)) => link.public_url,
            _ => self.base_url(),
        };
        Ok(format!(
            "{base}{}",
            webhook_path(connection.provider, &connection.name)
        ))
    }

    /// The Connect flow's "Add": [`Self::add_connection_with`], answered as the Providers
    /// screen shows it.
    pub fn add_connection(
        &self,
        request: NewConnectionRequest,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        let p = provider(&request.provider)?;
        let added = self.add_connection_with(
            AddConnection {
                provider: p,
                name: request.name,
                secret: request
                    .secret
                    .map_or(NewSecret::Unsigned, |s| NewSecret::Given(Sensitive::new(s))),
                settings: ConnectionSettings::default(),
            },
            now,
        )?;
        self.connection_view(p, &added.name, now)
    }

    fn connection_view(
        &self,
        p: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        self.connections(now)?
            .into_iter()
            .find(|c| c.provider == p && c.name == name)
            .ok_or_else(|| AppError::no_connection(p, name))
    }

    pub fn replace_secret(&self, provider_id: &str, name: &str, secret: String) -> ApiResult<()> {
        let p = provider(provider_id)?;
        if self.store.reader()?.connection(p, name)?.is_none() {
            return Err(AppError::no_connection(p, name));
        }
        self.secrets.set(p, name, &Sensitive::new(secret))?;
        self.connections_changed()?;
        Ok(())
    }

    /// Removes a connection (its deliveries and customers are kept) and deletes its secret.
    /// When the secret couldn't be deleted, says why (the connection is removed all the same).
    pub fn remove_connection(
        &self,
        provider_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<Option<String>> {
        let p = provider(provider_id)?;
        let here = self.store.reader()?.connection(p, name)?;
        if here.as_ref().is_none_or(|c| c.via_relay)
            && let Some((_, relay)) = self.relay_admin()?
        {
            super::relay::block_on(relay.remove_connection(p, name))?;
            self.store.writer()?.drop_relay_connection(p, name, now)?;
            return Ok(None);
        }
        if here.as_ref().is_some_and(|c| c.via_relay) {
            return Err(AppError::new(
                ErrorCode::RelayNotAdmin,
                format!(
                    "{} '{name}' is the relay's connection: only a desk that manages the relay's connections can remove it.",
                    p.display_name()
                ),
            ));
        }
        self.store.writer()?.remove_connection(p, name, now)?;
        let secret_kept = self.secrets.delete(p, name).err().map(|e| {
            tracing::warn!(error = %e, "couldn't delete a removed connection's secret");
            e.to_string()
        });
        self.connections_changed()?;
        Ok(secret_kept)
    }

    /// Whether the connection's secret is where the secret store looks (false when it can't
    /// tell, e.g. the keychain is locked).
    pub fn secret_is_set(&self, p: Provider, name: &str) -> bool {
        self.secrets.is_set(p, name).unwrap_or(false)
    }

    pub fn set_paused(
        &self,
        provider_id: &str,
        name: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<ConnectionView> {
        let p = provider(provider_id)?;
        self.store.writer()?.set_paused(p, name, paused)?;
        self.connections_changed()?;
        self.connection_view(p, name, now)
    }
}

/// "Nothing for longer than usual": more than three times the typical gap between the latest
/// messages, and at least a day.
/// Checks that `name` (trimmed) can name a new connection of `p` beside `existing`: well formed,
/// and not the name of one it has — nor one that differs only in case or punctuation, since the
/// two would share one environment variable. Returns the trimmed name. (The desk's Providers
/// screen and a relay's admin desks follow the same rule.)
pub(crate) fn check_new_name(
    existing: &[Connection],
    p: Provider,
    name: &str,
) -> ApiResult<String> {
    let name = name.trim().to_string();
    clientele_store::validate_connection_name(&name)?;
    let wanted = env_var_name(p, &name);
    if let Some(clash) = existing
        .iter()
        .find(|c| c.provider == p && env_var_name(p, &c.name) == wanted)
    {
        let message = if clash.name == name {
            format!(
                "There is already a {} connection called '{name}'.",
                p.display_name()
            )
        } else {
            format!(
                "There is already a {} connection called '{}'. Choose a name that differs by more than capital letters or punctuation.",
                p.display_name(),
                clash.name
            )
        };
        return Err(AppError::new(ErrorCode::ConnectionNameTaken, message));
    }
    Ok(name)
}

fn quiet_warning(p: Provider, arrivals: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<String> {
    let last = *arrivals.first()?;
    if arrivals.len() < 3 {
        return None;
    }
    let mut gaps: Vec<i64> = arrivals
        .windows(2)
        .map(|w| (w[0] - w[1]).num_seconds().max(0))
        .collect();
    gaps.sort_unstable();
    let typical = gaps[gaps.len() / 2];
    let silent = (now - last).num_seconds();
    (silent > (typical * 3).max(24 * 3600)).then(|| {
        format!(
            "Nothing from {} for {} — usually every {}. Check the connection in {}.",
            p.display_name(),
            human_duration(silent),
            human_duration(typical.max(60)),
            p.display_name()
        )
    })
}

fn human_duration(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "days")
    } else if secs >= 2 * 3_600 {
        (secs / 3_600, "hours")
    } else {
        ((secs / 60).max(1), "minutes")
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_warning_only_when_unusually_long() {
        let now = Utc::now();
        let hourly: Vec<_> = (0..10).map(|h| now - Duration::hours(h + 1)).collect();
        assert_eq!(quiet_warning(Provider::Vagaro, &hourly, now), None);
        let stale: Vec<_> = (0..10)
            .map(|h| now - Duration::days(3) - Duration::hours(h))
            .collect();
        let warning = quiet_warning(Provider::Vagaro, &stale, now)
            .expect("three days of silence after hourly messages");
        assert!(
            warning.contains("Nothing from Vagaro for 3 days"),
            "{warning}"
        );
    }
}
