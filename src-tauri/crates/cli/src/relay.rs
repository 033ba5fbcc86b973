//! `clientele relay …`: running a relay (serve, pair, devices, revoke, connections) and joining
//! one from a desk (join, status, leave, pull). The relay-side commands other than `serve` work
//! while the relay is serving: they only touch its database, whose lock SQLite manages.

use crate::args::{RelayCommand, RelayConnectionCommand, SecretsMode};
use crate::connection::{ConnectionRow, print_connections};
use crate::print::{print_json, print_table};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clientele_engine::ops::relay::RelayState;
use clientele_engine::relay::RelayConnections;
use clientele_engine::{Engine, Operations};
use clientele_relay::code::{CODE_LIFETIME, PairingCode};
use clientele_relay::store::RelayStore;
use clientele_server::webhook_path;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

pub fn run(dir: &Path, mode: SecretsMode, cmd: RelayCommand) -> Result<()> {
    match cmd {
        RelayCommand::Serve(args) => crate::relay_serve::serve(dir, *args),
        RelayCommand::Pair {
            name,
            admin,
            json,
            db,
        } => pair(&*crate::relay_db::open(dir, &db)?, &name, admin, json),
        RelayCommand::Devices { json, db } => devices(&*crate::relay_db::open(dir, &db)?, json),
        RelayCommand::Revoke { name, db } => {
            let store = crate::relay_db::open(dir, &db)?;
            if !store.revoke_device(&name, Utc::now())? {
                bail!("no paired device is called '{name}' (see `clientele relay devices`)");
            }
            println!("'{name}' can no longer pull from this relay.");
            Ok(())
        }
        RelayCommand::Connections { json, db } => {
            connections(crate::relay_db::open(dir, &db)?, json)
        }
        RelayCommand::Connection(RelayConnectionCommand::Remove { provider, name, db }) => {
            let store = crate::relay_db::open(dir, &db)?;
            RelayConnections::without_key(store).remove(provider, &name, Utc::now())?;
            println!(
                "Removed {} connection '{name}' from the relay. What it received is kept.",
                provider.display_name()
            );
            Ok(())
        }
        RelayCommand::Join {
            url,
            code,
            name,
            ca_cert,
        } => {
            let ca = match ca_cert {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("couldn't read {}", path.display()))?,
                ),
                None => None,
            };
            let ops = operations(dir, mode)?;
            let joined = ops.join_relay(&url, &code, name.as_deref(), ca, Utc::now())?;
            println!("Joined relay {} as {}", joined.url, joined.name);
            if let Some(token) = joined.token_to_show {
                eprintln!(
                    "This computer reads secrets from the environment, so keep its relay key there (it is shown only this once):"
                );
                println!("CLIENTELE_RELAY_TOKEN={}", token.expose());
            }
            if joined.admin {
                println!("This computer may add and remove the relay's connections.");
            }
            Ok(())
        }
        RelayCommand::Status { json } => {
            let status = operations(dir, mode)?.relay_status(true)?;
            if json {
                #[derive(Serialize)]
                struct Status {
                    url: Option<String>,
                    name: Option<String>,
                    admin: bool,
                    connected: bool,
                    state: RelayState,
                    error: Option<String>,
                    public_url: Option<String>,
                    last_pull_at: Option<String>,
                    received: i64,
                }
                return print_json(&Status {
                    connected: status.state == RelayState::Connected,
                    url: status.url,
                    name: status.name,
                    admin: status.admin,
                    state: status.state,
                    error: status.error,
                    public_url: status.public_url,
                    last_pull_at: status.last_pull_at,
                    received: status.received,
                });
            }
            match status.state {
                RelayState::NotJoined => {
                    println!("This computer isn't joined to a relay.");
                    return Ok(());
                }
                RelayState::Connected => println!(
                    "Connected to relay {} as {}.",
                    status.url.unwrap_or_default(),
                    status.name.unwrap_or_default()
                ),
                RelayState::Revoked => println!(
                    "The relay {} removed this computer's access: {}",
                    status.url.unwrap_or_default(),
                    status.error.unwrap_or_default()
                ),
                _ => println!(
                    "Can't reach relay {}: {}",
                    status.url.unwrap_or_default(),
                    status.error.unwrap_or_default()
                ),
            }
            println!(
                "Received from the relay: {} messages; last pull: {}.",
                status.received,
                status.last_pull_at.as_deref().unwrap_or("never")
            );
            Ok(())
        }
        RelayCommand::Leave => {
            if operations(dir, mode)?.leave_relay()? {
                println!(
                    "This computer no longer receives through the relay. Everything already received is kept."
                );
            } else {
                println!("This computer isn't joined to a relay.");
            }
            Ok(())
        }
        RelayCommand::Pull { json } => {
            let mut printer = crate::upgrade::Printer::new();
            let engine = Engine::start_with_progress(dir, mode.store(), |p| printer.show(p))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("couldn't start the network runtime")?;
            let pulled = runtime.block_on(async {
                let pulled = engine.pull_once().await;
                engine.shutdown().await;
                pulled
            });
            drop(runtime);
            engine.shutdown_blocking();
            let pulled = pulled?;
            if json {
                print_json(&serde_json::json!({ "pulled": pulled }))
            } else {
                println!("Pulled {pulled} deliveries");
                Ok(())
            }
        }
    }
}

fn operations(dir: &Path, mode: SecretsMode) -> Result<Operations> {
    Ok(Operations::new(
        crate::upgrade::open_store(dir)?,
        mode.store(),
        dir,
    ))
}

fn pair(store: &dyn RelayStore, name: &str, admin: bool, json: bool) -> Result<()> {
    let name = clientele_relay::api::validate_device_name(name)
        .map_err(|e| anyhow::anyhow!(e.body.message))?
        .to_string();
    let code = PairingCode::generate()?;
    let now = Utc::now();
    let expires_at = now + CODE_LIFETIME;
    store.add_pairing_code(&code.hash(), &name, admin, now, expires_at)?;
    if json {
        return print_json(&serde_json::json!({
            "code": code.to_string(),
            "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "name": name,
            "admin": admin,
        }));
    }
    println!("{code}");
    eprintln!(
        "Pairing code for '{name}'{}: enter it on the desk within 15 minutes (until {}). It works once.",
        if admin { " (admin)" } else { "" },
        expires_at.with_timezone(&chrono::Local).format("%H:%M")
    );
    Ok(())
}

fn devices(store: &dyn RelayStore, json: bool) -> Result<()> {
    #[derive(Serialize)]
    struct Row {
        name: String,
        admin: bool,
        paired_at: DateTime<Utc>,
        last_seen: Option<DateTime<Utc>>,
        behind: i64,
        revoked: bool,
    }
    let rows: Vec<Row> = store
        .devices()?
        .into_iter()
        .map(|d| Row {
            name: d.name,
            admin: d.admin,
            paired_at: d.paired_at,
            last_seen: d.last_seen,
            behind: d.behind,
            revoked: d.revoked_at.is_some(),
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!(
            "No desks are paired yet. Make a code for one with: clientele relay pair --name \"Front desk\""
        );
        return Ok(());
    }
    print_table(
        &["NAME", "ADMIN", "PAIRED", "LAST SEEN", "BEHIND", "ACCESS"],
        rows.iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    if r.admin { "yes".into() } else { "no".into() },
                    r.paired_at.format("%Y-%m-%d %H:%M").to_string(),
                    r.last_seen
                        .map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
                    r.behind.to_string(),
                    if r.revoked {
                        "revoked".into()
                    } else {
                        "ok".into()
                    },
                ]
            })
            .collect(),
    );
    Ok(())
}

fn connections(store: Arc<dyn RelayStore>, json: bool) -> Result<()> {
    let public = crate::relay_serve::saved_public_url(&*store)?;
    let relay = RelayConnections::without_key(store.clone());
    let rows: Vec<ConnectionRow> = store
        .connections()?
        .into_iter()
        .map(|c| {
            let address = format!("{public}{}", webhook_path(c.provider, &c.name));
            let secret_set = relay.secret_is_set(c.provider, &c.name);
            ConnectionRow::new(c, address, secret_set)
        })
        .collect();
    print_connections(
        &rows,
        json,
        "The relay has no connections yet. Add them from an admin desk (Providers screen, or `clientele connection add`).",
    )
}
