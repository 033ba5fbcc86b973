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
    /// Run a relay on an always-on server, or pair this computer with one.
    #[command(subcommand)]
    Relay(RelayCommand),
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

/// The relay's default listening address: every interface, so providers on the internet reach it.
pub const DEFAULT_RELAY_BIND: &str = "0.0.0.0:8788";

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Run the relay: receive providers' webhooks and keep them for the desks paired with it.
    Serve(RelayServeArgs),
    /// Make a one-time pairing code for a desk (valid 15 minutes, usable once).
    Pair {
        #[command(flatten)]
        db: RelayDatabase,
        /// What to call the desk ("Front desk").
        #[arg(long)]
        name: String,
        /// Let the desk add and remove the relay's connections.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the desks paired with this relay.
    Devices {
        #[command(flatten)]
        db: RelayDatabase,
        #[arg(long)]
        json: bool,
    },
    /// End a desk's access at once.
    Revoke {
        name: String,
        #[command(flatten)]
        db: RelayDatabase,
    },
    /// List the relay's connections.
    Connections {
        #[command(flatten)]
        db: RelayDatabase,
        #[arg(long)]
        json: bool,
    },
    /// Remove one of the relay's connections.
    #[command(subcommand)]
    Connection(RelayConnectionCommand),
    /// Pair this computer with a relay, using the code its operator gave you.
    Join {
        /// The relay's address, e.g. https://relay.example.com
        url: String,
        /// The pairing code, e.g. K7QF-2MXD
        code: String,
        /// This computer's name on the relay (default: the name the code was made for).
        #[arg(long)]
        name: Option<String>,
        /// Trust this certificate (PEM) for the relay, when it uses its own.
        #[arg(long, value_name = "PEM")]
        ca_cert: Option<PathBuf>,
    },
    /// Show the relay this computer pulls from, and whether it can be reached.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop pulling from the relay (everything already pulled is kept).
    Leave,
    /// Pull everything waiting at the relay now, then build the timelines.
    Pull {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RelayConnectionCommand {
    /// Remove a connection from the relay (what it received is kept).
    Remove {
        provider: Provider,
        name: String,
        #[command(flatten)]
        db: RelayDatabase,
    },
}

/// Where a relay keeps its data: the data folder (default), or a PostgreSQL database that any
/// number of relay instances share.
#[derive(Debug, Clone, Default, Args)]
pub struct RelayDatabase {
    /// Keep everything in this PostgreSQL database instead of the data folder:
    /// postgres://USER[:PASSWORD]@HOST:PORT/DATABASE. With a password, prefer the environment
    /// variable: other users of the machine can read command lines.
    #[arg(long = "database", env = "CLIENTELE_DATABASE_URL", value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RelayServeArgs {
    #[command(flatten)]
    pub db: RelayDatabase,
    /// The file holding the key the relay seals connection secrets with (64 hexadecimal
    /// characters), instead of CLIENTELE_RELAY_KEY. Every instance sharing a database needs the
    /// same key.
    #[arg(long, env = "CLIENTELE_RELAY_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CLIENTELE_RELAY_BIND", default_value = DEFAULT_RELAY_BIND)]
    pub bind: SocketAddr,
    /// The address providers use, when a reverse proxy is in front (e.g. https://relay.example.com).
    #[arg(long, env = "CLIENTELE_RELAY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(
        long,
        env = "CLIENTELE_RELAY_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "CLIENTELE_RELAY_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// A reverse proxy's address: take the client's address from its X-Forwarded-For header
    /// (repeatable; in the environment, separated by commas).
    #[arg(
        long = "trust-proxy",
        env = "CLIENTELE_RELAY_TRUST_PROXY",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub trust_proxy: Vec<IpAddr>,
    /// Delete deliveries older than this many days once every paired desk has them.
    #[arg(long, env = "CLIENTELE_RELAY_KEEP_DAYS", value_name = "N")]
    pub keep_days: Option<u32>,
    /// Largest accepted message, in bytes.
    #[arg(long, env = "CLIENTELE_RELAY_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
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
    /// When the provider deletes a customer: keep their history (`off`, the default) or forget
    /// them DAYS after the deletion (0: as soon as it arrives).
    ForgetDeleted {
        provider: Provider,
        name: String,
        #[arg(value_name = "DAYS|off")]
        after: Limit,
    },
    /// Send a signed test message through a connection (needs `clientele serve` running for
    /// this computer's own connections; the relay's are tested at the relay).
    Test { provider: Provider, name: String },
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
    /// Show two people as one from now on (a decision made by hand: it survives reprocessing
    /// and new deliveries, reaches every desk joined to the relay, and can be undone).
    Merge {
        id: i64,
        other: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show one of a person's records as a person of its own, apart from everyone its email or
    /// phone would link it to (now and in later deliveries). Can be undone.
    Split {
        id: i64,
        /// The record, as `customers show` lists it: PROVIDER/CONNECTION/CUSTOMER-ID.
        #[arg(long)]
        record: clientele_core::hand::RecordRef,
        #[arg(long)]
        json: bool,
    },
    /// List the changes made by hand (merges and splits), newest first.
    Decisions {
        #[arg(long)]
        json: bool,
    },
    /// Undo a change made by hand (its ID from `customers decisions`).
    Undo {
        decision_id: i64,
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Forget(ForgetCommand),
}

/// Forgetting customers for good (`clientele customers forget …`).
#[derive(Debug, Subcommand)]
pub enum ForgetCommand {
    /// Forget a customer for good: their records, every message about them, their place in
    /// incremental exports. Asks first on a terminal; elsewhere needs --yes.
    Forget {
        /// The customer's id (see `clientele customers list`).
        id: i64,
        /// Go on forgetting them: later messages about their records are acknowledged to the
        /// provider and not kept.
        #[arg(long)]
        keep_forgetting: bool,
        /// Don't ask: forget now.
        #[arg(long)]
        yes: bool,
        /// Print what was forgotten as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The erasure log: when customers were forgotten, how many, by which computer, why.
    Erasures {
        #[arg(long)]
        json: bool,
    },
    /// What is being kept forgotten (later messages acknowledged, not kept).
    KeepForgetting {
        #[arg(long)]
        json: bool,
    },
    /// Stop keeping a forget's customers forgotten: later messages about them are kept again.
    StopForgetting {
        /// The forget's id, as `clientele customers keep-forgetting` lists it.
        forget_id: String,
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
    /// Country for phone numbers written without a country code (e.g. GB, US, BR); reads the
    /// numbers of earlier messages again with it (while a listener runs, too).
    DefaultCountry { code: String },
    /// List Vagaro's business ids seen in customers' records, with the names given to them.
    Businesses {
        #[arg(long)]
        json: bool,
    },
    /// Name a Vagaro business id (an empty NAME forgets the name).
    BusinessName { id: String, name: String },
    /// Forget customers with no activity for a while, and drop old refused requests (both off
    /// unless set; applied every hour while Clientele receives). Without options: show them.
    Retention {
        /// Forget customers with no activity for this many months, or `off`.
        #[arg(long, value_name = "MONTHS|off")]
        inactive_months: Option<Limit>,
        /// Drop refused requests older than this many days, or `off`.
        #[arg(long, value_name = "DAYS|off")]
        rejections_days: Option<Limit>,
        /// Apply the settings now, and say what that forgot.
        #[arg(long)]
        apply: bool,
        #[arg(long)]
        json: bool,
    },
}

/// A number of months or days, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u32>);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Limit, String> {
        match s.trim().to_lowercase().as_str() {
            "off" | "never" => Ok(Limit(None)),
            n => n
                .parse()
                .map(|n| Limit(Some(n)))
                .map_err(|_| format!("'{s}' is neither a number nor off")),
        }
    }
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
