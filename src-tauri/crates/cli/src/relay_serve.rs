//! `clientele relay serve`: the relay, until Ctrl+C or SIGTERM.

use crate::args::RelayServeArgs;
use anyhow::{Context, Result, bail};
use clientele_engine::relay::{PUBLIC_URL_SETTING, Relay, RelayListen};
use clientele_relay::store::RelayStore;
use clientele_server::client_addr::TrustedProxies;
use std::io::Write;
use std::path::Path;

pub fn serve(dir: &Path, args: RelayServeArgs) -> Result<()> {
    let relay_tls = crate::relay_tls::relay_tls(dir, &args)?;
    let tls = relay_tls.tls.clone();
    let scheme = relay_tls.scheme();
    let public_url = args
        .public_url
        .as_deref()
        .map(checked_public_url)
        .transpose()?
        .or_else(|| relay_tls.public_url.clone());
    let (relay, key_source) = match crate::relay_db::url(&args.db) {
        Some(url) => {
            // The key first: a relay that can't seal secrets shouldn't touch the database.
            clientele_relay::sealed::RelayKey::load_shared(args.key_file.as_deref())?;
            let store = crate::relay_db::connect(url, args.db.ca_cert.as_deref())?;
            eprintln!("relay data: {}", store.describe());
            Relay::start_shared(store, args.key_file.as_deref())?
        }
        None => {
            eprintln!("relay data: {}", dir.display());
            let mut printer = crate::upgrade::Printer::new();
            Relay::start_in_folder_with_progress(dir, args.key_file.as_deref(), |p| {
                printer.show(p)
            })?
        }
    };
    let relay = relay.with_body_limit(args.body_limit);
    eprintln!("relay key: {key_source}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clientele-relay")
        .build()
        .context("couldn't start the network runtime")?;
    let result = runtime.block_on(async {
        let options = RelayListen {
            public_url,
            tls,
            trusted_proxies: TrustedProxies::new(args.trust_proxy.iter().copied()),
            keep_days: args.keep_days,
            background: Vec::new(),
        };
        let (addr, public_url) = relay
            .listen(args.bind, options)
            .await
            .with_context(|| {
                format!(
                    "couldn't listen on {} (is another program using that port?)",
                    args.bind
                )
            })?;
        let _acme = relay_tls.start();
        // For commands run beside it (`relay connections`); the relay serves without it.
        let (store, saved) = (relay.store().clone(), public_url.clone());
        let kept =
            tokio::task::spawn_blocking(move || store.set_setting(PUBLIC_URL_SETTING, &saved))
                .await;
        if !matches!(kept, Ok(Ok(()))) {
            eprintln!("warning: couldn't note the relay's public address for the command line");
        }
        let told_public_url = args.public_url.is_some() || relay_tls.public_url.is_some();
        if !told_public_url && !clientele_engine::relay::is_public_address(addr) {
            eprintln!(
                "warning: providers on the internet can't reach {public_url}. Put the relay on a public address, or behind a reverse proxy and pass its address with --public-url https://relay.example.com"
            );
        }
        if !told_public_url && tls_missing(scheme) {
            eprintln!(
                "warning: the relay speaks plain HTTP. On the internet, serve HTTPS: --domain (a certificate by itself), --tls-cert and --tls-key, or a reverse proxy such as Caddy in front with --public-url."
            );
        }
        let stop = crate::serve::shutdown_signal();
        println!("relay listening on {scheme}://{addr}");
        std::io::stdout().flush().ok();
        stop.await;
        relay.shutdown().await;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    relay.shutdown_blocking();
    eprintln!("stopped");
    result
}

fn tls_missing(scheme: &str) -> bool {
    scheme == "http"
}

/// `--public-url`, checked and without a trailing slash.
fn checked_public_url(url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
        && trimmed.len() > "https://".len()
        && !trimmed.contains(['?', '#', ' ']);
    if !ok {
        bail!(
            "--public-url must be the address providers use, such as https://relay.example.com (got '{url}')"
        );
    }
    Ok(trimmed.to_string())
}

/// The public address the relay last served with, for commands run beside it.
pub fn saved_public_url(store: &dyn RelayStore) -> Result<String> {
    Ok(store
        .setting(PUBLIC_URL_SETTING)?
        .unwrap_or_else(|| format!("http://{}", crate::args::DEFAULT_RELAY_BIND)))
}
