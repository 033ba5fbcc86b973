//! `clientele connection add | list | remove`.

use crate::args::{ConnectionCommand, DEFAULT_BIND, SecretsMode};
use crate::print::{print_json, print_table};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clientele_core::{ConnectionSettings, Provider, Sensitive};
use clientele_engine::ops::connections::{AddConnection, NewSecret};
use clientele_engine::{ErrorCode, Operations};
use clientele_secrets::env_var_name;
use clientele_server::webhook_path;
use clientele_store::Connection;
use serde::Serialize;
use std::io::{IsTerminal, Read};

pub fn run(ops: &Operations, mode: SecretsMode, cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::Add {
            provider,
            name,
            no_secret,
            customer_pointer,
            allow_ips,
        } => {
            // The name first, so nobody pastes a secret for a connection that can't be added.
            let name = ops.check_new_connection(provider, &name)?;
            let secret = match (no_secret, mode) {
                (true, _) => NewSecret::Unsigned,
                (false, SecretsMode::Keychain) => NewSecret::Given(read_secret(provider, &name)?),
                (false, SecretsMode::Env) => NewSecret::AlreadySet,
            };
            let added = ops.add_connection_with(
                AddConnection {
                    provider,
                    name: name.clone(),
                    secret,
                    settings: ConnectionSettings {
                        customer_ref_pointer: customer_pointer,
                        allowed_ips: allow_ips,
                        forget_deleted_after_days: None,
                    },
                },
                Utc::now(),
            );
            let added = match added {
                Ok(added) => added,
                Err(e) if e.code == ErrorCode::SecretUnavailable && mode == SecretsMode::Env => {
                    bail!(
                        "set {} to the {} first (or use --no-secret)",
                        env_var_name(provider, &name),
                        provider.secret_word()
                    );
                }
                Err(e) => return Err(e.into()),
            };
            println!(
                "Added {} connection '{}'.",
                provider.display_name(),
                added.name
            );
            let address = if added.via_relay {
                ops.webhook_url(&added)?
            } else {
                format!(
                    "http://{DEFAULT_BIND}{}",
                    webhook_path(provider, &added.name)
                )
            };
            println!(
                "Paste this address into {}: {address}",
                provider.display_name()
            );
            if no_secret {
                println!(
                    "Deliveries to it are NOT checked: anyone who knows the address can send to it."
                );
            }
            Ok(())
        }
        ConnectionCommand::List { json } => {
            let rows: Vec<ConnectionRow> = ops
                .store()
                .reader()?
                .connections()?
                .into_iter()
                .map(|c| {
                    let address = if c.via_relay {
                        ops.webhook_url(&c)?
                    } else {
                        format!("http://{DEFAULT_BIND}{}", webhook_path(c.provider, &c.name))
                    };
                    let secret_set = c.via_relay || ops.secret_is_set(c.provider, &c.name);
                    Ok(ConnectionRow::new(c, address, secret_set))
                })
                .collect::<Result<_>>()?;
            print_connections(
                &rows,
                json,
                "No connections yet. Add one with: clientele connection add PROVIDER NAME",
            )
        }
        ConnectionCommand::ForgetDeleted {
            provider,
            name,
            after,
        } => {
            ops.set_forget_deleted(provider, &name, after.0)?;
            match after.0 {
                None => println!(
                    "When {} deletes a customer of '{name}', Clientele keeps their history.",
                    provider.display_name()
                ),
                Some(0) => println!(
                    "When {} deletes a customer of '{name}', Clientele forgets them for good as soon as it hears.",
                    provider.display_name()
                ),
                Some(days) => println!(
                    "When {} deletes a customer of '{name}', Clientele forgets them for good {days} days later.",
                    provider.display_name()
                ),
            }
            Ok(())
        }
        ConnectionCommand::Test { provider, name } => {
            let result = ops.send_test_event(provider.id(), &name, Utc::now())?;
            if !result.ok {
                bail!("{}", result.message);
            }
            println!("{}", result.message);
            Ok(())
        }
        ConnectionCommand::Remove { provider, name } => {
            let secret_kept = ops.remove_connection(provider.id(), &name, Utc::now())?;
            if let Some(problem) = secret_kept
                && mode == SecretsMode::Keychain
            {
                eprintln!(
                    "warning: the connection was removed but its secret couldn't be deleted: {problem}"
                );
            }
            println!(
                "Removed {} connection '{name}'. Its messages and customers are kept.",
                provider.display_name()
            );
            Ok(())
        }
    }
}

/// The secret, pasted at a prompt that doesn't echo it, or piped in.
fn read_secret(provider: Provider, name: &str) -> Result<Sensitive<String>> {
    let word = provider.secret_word();
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!(
            "Paste the {word} from {} for '{name}' (it won't be shown): ",
            provider.display_name()
        ))
        .context("couldn't read the secret")?
    } else {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("couldn't read the secret from standard input")?;
        buf
    };
    let secret = secret.trim().to_string();
    if secret.is_empty() {
        bail!(
            "no {word} was given. Paste it when asked, or pipe it in: echo \"$SECRET\" | clientele connection add {} {name}",
            provider.id()
        );
    }
    Ok(Sensitive::new(secret))
}

/// A connection as `connection list` and `relay connections` print it.
#[derive(Debug, Serialize)]
pub(crate) struct ConnectionRow {
    provider: Provider,
    name: String,
    webhook_path: String,
    /// The whole address providers post to (the relay's, for its connections).
    address: String,
    /// Its messages arrive through the relay.
    via_relay: bool,
    requires_secret: bool,
    secret_set: Option<bool>,
    paused: bool,
    created_at: DateTime<Utc>,
}

impl ConnectionRow {
    /// `c` posted to at `address`; `secret_set` matters only when it requires one.
    pub(crate) fn new(c: Connection, address: String, secret_set: bool) -> ConnectionRow {
        ConnectionRow {
            webhook_path: webhook_path(c.provider, &c.name),
            address,
            via_relay: c.via_relay,
            secret_set: c.requires_secret.then_some(secret_set),
            provider: c.provider,
            name: c.name,
            requires_secret: c.requires_secret,
            paused: c.paused,
            created_at: c.created_at,
        }
    }
}

/// Prints `rows` as JSON or a table (`empty` when there are none).
pub(crate) fn print_connections(rows: &[ConnectionRow], json: bool, empty: &str) -> Result<()> {
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("{empty}");
        return Ok(());
    }
    print_table(
        &["PROVIDER", "NAME", "ADDRESS", "SECRET", "PAUSED"],
        rows.iter()
            .map(|r| {
                vec![
                    r.provider.display_name().to_string(),
                    r.name.clone(),
                    r.address.clone(),
                    match (r.secret_set, r.via_relay) {
                        (None, _) => "none (unchecked)".into(),
                        (Some(_), true) => "kept by the relay".into(),
                        (Some(true), false) => "set".into(),
                        (Some(false), false) => "MISSING".into(),
                    },
                    if r.paused { "yes".into() } else { "no".into() },
                ]
            })
            .collect(),
    );
    Ok(())
}
