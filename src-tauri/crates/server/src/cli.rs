//! The headless `clientele` command: run the listener, manage connections, and read what was
//! received — for servers, CI, benchmarks and people who prefer a terminal. Every listing has
//! `--json`; errors go to stderr with a non-zero exit.

use crate::connections::ConnectionRegistry;
use crate::data_dir::{self, DataDirLock};
use crate::ingest;
use crate::listener::{self, ClockHandle, DEFAULT_BODY_LIMIT, ListenerState};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Local, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clientele_core::{ConnectionSettings, Provider, Sensitive};
use clientele_secrets::{EnvStore, KeychainStore, SecretStore, env_var_name};
use clientele_store::{NewConnection, Store};
use serde::Serialize;
use std::io::{IsTerminal, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// The default listening address: this computer only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8787";

#[derive(Debug, Parser)]
#[command(
    name = "clientele",
    version,
    about = "Receive, check and keep customer webhooks from Tiquo, ResDiary, Vagaro, Plain, Zupy and Standard Webhooks senders."
)]
pub struct Cli {
    /// Folder for Clientele's data (default: CLIENTELE_DATA_DIR, else ~/.local/share/clientele).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where connection secrets are kept.
    #[arg(long, global = true, value_enum, default_value_t = SecretsMode::Keychain)]
    pub secrets: SecretsMode,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretsMode {
    /// The system keychain (Secret Service on Linux).
    Keychain,
    // The help text as an attribute, not a doc comment: rustdoc would read `<PROVIDER>` as HTML.
    #[value(help = "Environment variables CLIENTELE_SECRET_<PROVIDER>_<CONNECTION>")]
    Env,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook listener.
    Serve(ServeArgs),
    /// Add, list or remove provider connections.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// List and show customers.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// List received deliveries, or refused requests.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// Rebuild timelines, profiles and people from the stored deliveries.
    Reprocess,
    /// Change settings.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Run an export profile: write its CSV or Excel file.
    Export(ExportArgs),
    /// Import, list, show or remove export profiles, and see their runs.
    #[command(subcommand)]
    ExportProfile(ExportProfileCommand),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The export profile to run (see `clientele export-profile list`).
    #[arg(long, value_name = "NAME")]
    pub profile: String,
    /// The file to write, or an existing folder to write the profile's file name in
    /// (default: the profile's file name in the current folder).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Write every row, even when the profile only exports what changed.
    #[arg(long)]
    pub full: bool,
    /// Print the run as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportProfileCommand {
    /// Create a profile from a JSON file (`-` reads standard input), or replace the profile
    /// with the same name.
    Import { file: PathBuf },
    /// List export profiles.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a profile; with --json, the JSON that `import` reads.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile (its history is kept).
    Remove { name: String },
    /// Past runs, newest first: of one profile, or of all.
    History {
        name: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but 127.0.0.1 lets other computers send to Clientele.
    #[arg(long, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Largest accepted message, in bytes.
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection. With --secrets keychain the secret is read from standard input.
    Add {
        provider: Provider,
        name: String,
        /// Accept unsigned deliveries (only for providers that can't sign).
        #[arg(long)]
        no_secret: bool,
        /// Standard Webhooks: JSON pointer to the customer id (default /data/id).
        #[arg(long, value_name = "POINTER")]
        customer_pointer: Option<String>,
        /// Only accept deliveries from these addresses (repeatable).
        #[arg(long = "allow-ip", value_name = "IP")]
        allow_ips: Vec<IpAddr>,
    },
    /// List connections.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection (its deliveries and customers are kept) and delete its secret.
    Remove { provider: Provider, name: String },
}

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// List people, most recently active first.
    List {
        /// Match the start of names, emails, phone numbers or customer ids.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Show one person: profile, linked records and timeline.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// List refused requests instead.
        #[arg(long)]
        rejected: bool,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Country for phone numbers written without a country code (e.g. GB, US, BR).
    DefaultCountry { code: String },
}

/// Runs the command line; the caller prints the error and exits non-zero on `Err`.
pub fn run(cli: Cli) -> Result<()> {
    let dir = data_dir::resolve(cli.data_dir.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve(&dir, cli.secrets, args),
        Command::Connection(cmd) => connection(&dir, cli.secrets, cmd),
        Command::Customers(cmd) => customers(&dir, cmd),
        Command::Deliveries(cmd) => deliveries(&dir, cmd),
        Command::Reprocess => reprocess(&dir),
        Command::Settings(SettingsCommand::DefaultCountry { code }) => {
            let store = Store::open_dir(&dir)?;
            store.writer()?.set_default_country(&code)?;
            println!(
                "Default country set to {}. Run `clientele reprocess` to apply it to earlier messages.",
                code.to_uppercase()
            );
            Ok(())
        }
        Command::Export(args) => export(&dir, args),
        Command::ExportProfile(cmd) => export_profile(&dir, cmd),
    }
}

fn secret_store(mode: SecretsMode) -> Arc<dyn SecretStore> {
    match mode {
        SecretsMode::Keychain => Arc::new(KeychainStore::new(KeychainStore::default_service())),
        SecretsMode::Env => Arc::new(EnvStore::new()),
    }
}

fn serve(dir: &std::path::Path, mode: SecretsMode, args: ServeArgs) -> Result<()> {
    let _lock = DataDirLock::acquire(dir)?;
    let store = Store::open_dir(dir)?;
    let registry = Arc::new(ConnectionRegistry::load(store.clone(), secret_store(mode))?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clientele-http")
        .build()
        .context("couldn't start the network runtime")?;
    let (ingest, pipeline) = ingest::start(&store)?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("couldn't listen on {} (is another program using that port?)", args.bind))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: listening on {addr}: other computers that can reach this one may send messages to Clientele. Use --bind 127.0.0.1:PORT to keep it to this computer."
            );
        }
        for live in registry.all() {
            if let Some(problem) = &live.secret_problem {
                eprintln!(
                    "warning: {} connection '{}': {problem}",
                    live.connection.provider.display_name(),
                    live.connection.name
                );
            }
        }
        if registry.all().is_empty() {
            eprintln!("No connections yet. Add one with, for example: clientele connection add tiquo main");
        }
        println!("listening on http://{addr}");
        std::io::stdout().flush().ok();
        let state = ListenerState {
            connections: registry.clone(),
            ingest: ingest.clone(),
            body_limit: args.body_limit,
            clock: ClockHandle(crate::system_clock()),
            test_token: None,
        };
        listener::run(listener, state, shutdown_signal()).await?;
        anyhow::Ok(())
    });
    drop(ingest);
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    pipeline.join();
    eprintln!("stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

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

fn connection(dir: &std::path::Path, mode: SecretsMode, cmd: ConnectionCommand) -> Result<()> {
    let store = Store::open_dir(dir)?;
    let secrets = secret_store(mode);
    match cmd {
        ConnectionCommand::Add {
            provider,
            name,
            no_secret,
            customer_pointer,
            allow_ips,
        } => {
            clientele_store::validate_connection_name(&name)?;
            let existing = store.reader()?.connections()?;
            // Names that differ only in case or punctuation would share one environment variable
            // (CLIENTELE_SECRET_TIQUO_MAIN_SHOP for both main-shop and Main_Shop).
            if let Some(clash) = existing.iter().find(|c| {
                c.provider == provider
                    && env_var_name(provider, &c.name) == env_var_name(provider, &name)
            }) {
                bail!(
                    "there is already a {} connection called '{}'; choose a name that differs by more than case or punctuation",
                    provider.display_name(),
                    clash.name
                );
            }
            if !no_secret {
                match mode {
                    SecretsMode::Keychain => {
                        let secret = read_secret(provider, &name)?;
                        secrets.set(provider, &name, &secret)?;
                    }
                    SecretsMode::Env => {
                        if !secrets.is_set(provider, &name)? {
                            bail!(
                                "set {} to the {} first (or use --no-secret)",
                                env_var_name(provider, &name),
                                provider.secret_word()
                            );
                        }
                    }
                }
            }
            let added = store.writer()?.add_connection(
                &NewConnection {
                    provider,
                    name: name.clone(),
                    settings: ConnectionSettings {
                        customer_ref_pointer: customer_pointer,
                        allowed_ips: allow_ips,
                    },
                    requires_secret: !no_secret,
                },
                Utc::now(),
            );
            let added = match added {
                Ok(c) => c,
                Err(e) => {
                    if !no_secret && mode == SecretsMode::Keychain {
                        let _ = secrets.delete(provider, &name);
                    }
                    return Err(e.into());
                }
            };
            println!(
                "Added {} connection '{}'.",
                provider.display_name(),
                added.name
            );
            println!(
                "Paste this address into {}: http://{DEFAULT_BIND}{}",
                provider.display_name(),
                webhook_path(provider, &added.name)
            );
            if no_secret {
                println!(
                    "Deliveries to it are NOT checked: anyone who knows the address can send to it."
                );
            }
            Ok(())
        }
        ConnectionCommand::List { json } => {
            #[derive(Serialize)]
            struct Row {
                provider: Provider,
                name: String,
                webhook_path: String,
                requires_secret: bool,
                secret_set: Option<bool>,
                paused: bool,
                created_at: DateTime<Utc>,
            }
            let rows: Vec<Row> = store
                .reader()?
                .connections()?
                .into_iter()
                .map(|c| Row {
                    secret_set: c
                        .requires_secret
                        .then(|| secrets.is_set(c.provider, &c.name).unwrap_or(false)),
                    webhook_path: webhook_path(c.provider, &c.name),
                    provider: c.provider,
                    name: c.name,
                    requires_secret: c.requires_secret,
                    paused: c.paused,
                    created_at: c.created_at,
                })
                .collect();
            if json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                println!(
                    "No connections yet. Add one with: clientele connection add PROVIDER NAME"
                );
                return Ok(());
            }
            print_table(
                &["PROVIDER", "NAME", "ADDRESS PATH", "SECRET", "PAUSED"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.provider.display_name().to_string(),
                            r.name.clone(),
                            r.webhook_path.clone(),
                            match r.secret_set {
                                None => "none (unchecked)".into(),
                                Some(true) => "set".into(),
                                Some(false) => "MISSING".into(),
                            },
                            if r.paused { "yes".into() } else { "no".into() },
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ConnectionCommand::Remove { provider, name } => {
            store
                .writer()?
                .remove_connection(provider, &name, Utc::now())?;
            if let Err(e) = secrets.delete(provider, &name)
                && mode == SecretsMode::Keychain
            {
                eprintln!(
                    "warning: the connection was removed but its secret couldn't be deleted: {e}"
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

pub fn webhook_path(provider: Provider, name: &str) -> String {
    format!("/hooks/{}/{name}", provider.id())
}

/// When no listener holds the data folder, derive whatever a stopped one left pending, so reads
/// are current. When one is running, it does this itself.
/// When one is running, wait a moment for it to derive what was already stored.
fn catch_up(dir: &std::path::Path, store: &Store) -> Result<()> {
    let reader = store.reader()?;
    let Some(target) = reader.newest_delivery_id()? else {
        return Ok(());
    };
    if reader.derived_through()? >= target {
        return Ok(());
    }
    if let Ok(_lock) = DataDirLock::acquire(dir) {
        store.writer()?.derive_all()?;
        return Ok(());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while reader.derived_through()? < target && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

fn customers(dir: &std::path::Path, cmd: CustomersCommand) -> Result<()> {
    let store = Store::open_dir(dir)?;
    catch_up(dir, &store)?;
    let reader = store.reader()?;
    match cmd {
        CustomersCommand::List {
            search,
            limit,
            json,
        } => {
            let people = reader.people(search.as_deref(), limit, 0)?;
            for shared in reader.shared_keys()? {
                eprintln!(
                    "note: the {} {} is shared by {} records, so it doesn't link anyone.",
                    shared.kind, shared.value, shared.profiles
                );
            }
            if json {
                return print_json(&people);
            }
            if people.is_empty() {
                match search {
                    Some(s) => println!("No customers match '{s}'."),
                    None => println!(
                        "No customers yet. They appear here when a connected provider sends a message."
                    ),
                }
                return Ok(());
            }
            print_table(
                &["ID", "NAME", "EMAIL", "PHONE", "FROM", "LAST ACTIVITY"],
                people
                    .iter()
                    .map(|p| {
                        let mut providers: Vec<&str> = p
                            .sources
                            .iter()
                            .map(|s| {
                                s.provider
                                    .parse::<Provider>()
                                    .map_or("?", Provider::display_name)
                            })
                            .collect();
                        providers.dedup();
                        vec![
                            p.id.to_string(),
                            if p.deleted {
                                format!("{} (deleted)", p.display_name)
                            } else {
                                p.display_name.clone()
                            },
                            p.emails.join(", "),
                            p.phones.join(", "),
                            providers.join(", "),
                            p.last_event_at.map(local_time).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        CustomersCommand::Show { id, json } => {
            let person = reader.person(id)?;
            if json {
                return print_json(&person);
            }
            println!(
                "{}{}",
                person.display_name,
                if person.deleted { " (deleted)" } else { "" }
            );
            println!();
            for (field, value) in &person.profile_sources {
                println!(
                    "  {:<24} {}  ({}, {})",
                    clientele_core::fields::label(field),
                    value_text(&value.value),
                    provider_name(&value.provider),
                    local_time(value.at)
                );
            }
            println!();
            println!("Records:");
            for s in &person.sources {
                println!(
                    "  {} '{}' customer {}{}{}",
                    provider_name(&s.provider),
                    s.connection,
                    s.customer_ref,
                    if s.deleted_at.is_some() {
                        " (deleted)"
                    } else {
                        ""
                    },
                    s.linked_because
                        .as_deref()
                        .map(|r| format!(" — {r}"))
                        .unwrap_or_default()
                );
            }
            println!();
            println!("Timeline (oldest first):");
            for e in &person.timeline {
                println!(
                    "  {}  {}  · {}",
                    local_time(e.occurred_at),
                    e.summary,
                    provider_name(&e.provider)
                );
                for c in &e.changes {
                    println!(
                        "      {}: {} → {}",
                        clientele_core::fields::label(&c.field),
                        value_text(&c.old),
                        value_text(&c.new)
                    );
                }
            }
            Ok(())
        }
    }
}

fn deliveries(dir: &std::path::Path, cmd: DeliveriesCommand) -> Result<()> {
    let store = Store::open_dir(dir)?;
    catch_up(dir, &store)?;
    let reader = store.reader()?;
    let DeliveriesCommand::List {
        rejected,
        limit,
        json,
    } = cmd;
    if rejected {
        let rows = reader.rejections(limit)?;
        if json {
            return print_json(&rows);
        }
        if rows.is_empty() {
            println!("Nothing has been refused.");
            return Ok(());
        }
        print_table(
            &["RECEIVED", "PROVIDER", "CONNECTION", "REASON"],
            rows.iter()
                .map(|r| {
                    vec![
                        local_time(r.received_at),
                        r.provider.clone(),
                        r.connection.clone(),
                        r.reason.clone(),
                    ]
                })
                .collect(),
        );
        return Ok(());
    }
    let rows = reader.deliveries(limit)?;
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No messages received yet.");
        return Ok(());
    }
    print_table(
        &[
            "ID",
            "PROVIDER",
            "CONNECTION",
            "RECEIVED",
            "STATUS",
            "DUPLICATES",
            "KEY",
        ],
        rows.iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    provider_name(&r.provider).to_string(),
                    r.connection.clone(),
                    local_time(r.received_at),
                    r.status.as_str().to_string(),
                    r.duplicates.to_string(),
                    r.dedupe_key.clone(),
                ]
            })
            .collect(),
    );
    Ok(())
}

fn reprocess(dir: &std::path::Path) -> Result<()> {
    let _lock = DataDirLock::acquire(dir)?;
    let store = Store::open_dir(dir)?;
    let interactive = std::io::stderr().is_terminal();
    let report = store.writer()?.reprocess(|done, total| {
        if interactive {
            eprint!("\rRe-processing: {done} of {total} messages");
        }
    })?;
    if interactive {
        eprintln!();
    }
    let people = store.reader()?.people_count()?;
    println!(
        "Re-processed {} messages: {} timeline events, {} people, {} needing attention.",
        report.deliveries, report.events, people, report.needs_attention
    );
    Ok(())
}

fn export(dir: &std::path::Path, args: ExportArgs) -> Result<()> {
    use clientele_store::export::{ExportRequest, run_export};
    use std::sync::atomic::{AtomicBool, Ordering};
    let store = Store::open_dir(dir)?;
    catch_up(dir, &store)?;
    let saved = store.reader()?.export_profile(&args.profile)?;
    let now = Utc::now();
    let out = match args.out {
        None => std::env::current_dir()
            .context("couldn't read the current folder")?
            .join(saved.profile.file_name_at(now)),
        Some(path) if path.is_dir() => path.join(saved.profile.file_name_at(now)),
        Some(path) => path,
    };
    // Ctrl+C cancels cleanly: the temporary file is removed and the run recorded as cancelled.
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        cancel.store(true, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    let interactive = std::io::stderr().is_terminal();
    let mut progress = |p: clientele_store::export::ExportProgress| {
        if interactive {
            eprint!("\rExporting: {} of {} rows read", p.scanned, p.total);
        }
    };
    let result = run_export(
        &store,
        &ExportRequest {
            profile: &saved.name,
            out: &out,
            now,
            full: args.full,
        },
        &mut progress,
        &cancel,
    );
    if interactive {
        eprintln!();
    }
    let run = result?;
    if args.json {
        return print_json(&run);
    }
    println!(
        "Wrote {} {} to {}",
        run.rows,
        if run.rows == 1 { "row" } else { "rows" },
        run.file
    );
    Ok(())
}

fn export_profile(dir: &std::path::Path, cmd: ExportProfileCommand) -> Result<()> {
    use clientele_core::export::ExportProfile;
    use clientele_store::export::Saved;
    let store = Store::open_dir(dir)?;
    match cmd {
        ExportProfileCommand::Import { file } => {
            let (text, shown) = if file.as_os_str() == "-" {
                let mut buf = String::new();
                std::io::stdin()
                    .read_to_string(&mut buf)
                    .context("couldn't read the profile from standard input")?;
                (buf, "standard input".to_string())
            } else {
                (
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("couldn't read {}", file.display()))?,
                    file.display().to_string(),
                )
            };
            let profile = ExportProfile::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{shown} isn't a valid export profile: {e}"))?;
            let saved = store.writer()?.save_export_profile(&profile, Utc::now())?;
            println!(
                "{} export profile '{}'.",
                match saved {
                    Saved::Created => "Created",
                    Saved::Replaced => "Replaced",
                },
                profile.name
            );
            Ok(())
        }
        ExportProfileCommand::List { json } => {
            #[derive(Serialize)]
            struct Row {
                name: String,
                rows: String,
                format: String,
                columns: usize,
                incremental: bool,
                created_at: DateTime<Utc>,
                updated_at: DateTime<Utc>,
                last_run: Option<clientele_store::export::ExportRun>,
                profile: ExportProfile,
            }
            let reader = store.reader()?;
            let rows: Vec<Row> = reader
                .export_profiles()?
                .into_iter()
                .map(|p| {
                    Ok(Row {
                        last_run: reader.export_runs(Some(&p.name), Some(1))?.pop(),
                        rows: p.profile.rows.as_str().to_string(),
                        format: p.profile.format.extension().to_string(),
                        columns: p.profile.columns.len(),
                        incremental: p.profile.incremental,
                        created_at: p.created_at,
                        updated_at: p.updated_at,
                        name: p.name,
                        profile: p.profile,
                    })
                })
                .collect::<Result<_>>()?;
            if json {
                return print_json(&rows);
            }
            if rows.is_empty() {
                println!(
                    "No export profiles yet. Import one with: clientele export-profile import FILE"
                );
                return Ok(());
            }
            print_table(
                &["NAME", "ROWS", "FORMAT", "COLUMNS", "LAST RUN"],
                rows.iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.rows.clone(),
                            format!(
                                "{}{}",
                                r.format,
                                if r.incremental { " (changes only)" } else { "" }
                            ),
                            r.columns.to_string(),
                            r.last_run
                                .as_ref()
                                .map(|run| {
                                    format!(
                                        "{} {} ({} rows)",
                                        local_time(run.started_at),
                                        run.outcome.as_str(),
                                        run.rows
                                    )
                                })
                                .unwrap_or_else(|| "never".into()),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ExportProfileCommand::Show { name, json } => {
            let saved = store.reader()?.export_profile(&name)?;
            if json {
                println!("{}", saved.profile.to_json_pretty());
                return Ok(());
            }
            let p = &saved.profile;
            println!("{}", p.name);
            println!(
                "  One row per {}, {} file, named like {}",
                match p.rows {
                    clientele_core::export::RowKind::People => "person",
                    clientele_core::export::RowKind::Events => "timeline event",
                },
                p.format.extension().to_uppercase(),
                p.file_name_at(Utc::now())
            );
            if p.incremental {
                println!("  Only rows that changed since the last successful run");
            }
            if !p.filters.is_empty() {
                println!(
                    "  Filters: {}",
                    serde_json::to_string(&p.filters).unwrap_or_default()
                );
            }
            println!();
            print_table(
                &["COLUMN", "SOURCE", "TRANSFORM"],
                p.columns
                    .iter()
                    .map(|c| {
                        vec![
                            c.header.clone(),
                            c.source.clone(),
                            if c.transform.is_identity() {
                                String::new()
                            } else {
                                serde_json::to_string(&c.transform).unwrap_or_default()
                            },
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        ExportProfileCommand::Remove { name } => {
            store.writer()?.delete_export_profile(&name)?;
            println!("Removed export profile '{name}'. Its history is kept.");
            Ok(())
        }
        ExportProfileCommand::History { name, limit, json } => {
            let reader = store.reader()?;
            if let Some(name) = &name {
                reader.export_profile(name)?;
            }
            let runs = reader.export_runs(name.as_deref(), limit)?;
            if json {
                return print_json(&runs);
            }
            if runs.is_empty() {
                println!("No exports have run yet.");
                return Ok(());
            }
            print_table(
                &["STARTED", "PROFILE", "OUTCOME", "ROWS", "SECONDS", "FILE"],
                runs.iter()
                    .map(|r| {
                        vec![
                            local_time(r.started_at),
                            r.profile.clone(),
                            match &r.error {
                                Some(e) => format!("{}: {e}", r.outcome.as_str()),
                                None => r.outcome.as_str().to_string(),
                            },
                            r.rows.to_string(),
                            r.duration_ms
                                .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
                                .unwrap_or_default(),
                            r.file.clone(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
    }
}

fn provider_name(id: &str) -> &'static str {
    id.parse::<Provider>()
        .map_or("Unknown", Provider::display_name)
}

fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(empty)".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}
