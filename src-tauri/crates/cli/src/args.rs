//! The command line's shape: every command, flag and help text (`clientele --help`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use clientele_core::Provider;
use clientele_secrets::{EnvStore, KeychainStore, SecretStore};
use clientele_server::listener::DEFAULT_BODY_LIMIT;
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

impl SecretsMode {
    /// Where this mode keeps secrets.
    pub fn store(self) -> Arc<dyn SecretStore> {
        match self {
            SecretsMode::Keychain => Arc::new(KeychainStore::new(KeychainStore::default_service())),
            SecretsMode::Env => Arc::new(EnvStore::new()),
        }
    }
}
