//! The relay's HTTPS, from its arguments: certificate files (`--tls-cert`/`--tls-key`), a
//! certificate it gets and renews by itself (`--domain`, ACME), or none (plain HTTP, for a relay
//! behind a reverse proxy that holds the certificate: `--public-url`).
//!
//! ```ignore
//! let relay_tls = relay_tls(dir, &args)?;          // before the runtime: checks, reads, prepares
//! // … inside the runtime, once the listener is up:
//! let _acme = relay_tls.start();                   // gets/renews the certificate until dropped
//! ```

use crate::args::RelayServeArgs;
use anyhow::{Result, bail};
use clientele_server::acme::{self, AcmeDriver, AcmeSettings, AcmeTask};
use clientele_server::tls::TlsSettings;
use std::path::Path;
use std::sync::Mutex;

/// The folder under the data folder where the ACME account and certificate are kept.
pub const ACME_DIR: &str = "acme";

/// What the relay serves with, and what that implies.
#[derive(Debug)]
pub struct RelayTls {
    /// The listener's TLS (`None`: plain HTTP).
    pub tls: Option<TlsSettings>,
    /// The public address `--domain` implies: `https://NAME`, or `https://NAME:PORT` when the
    /// relay listens on another port than 443.
    pub public_url: Option<String>,
    /// The ACME driver, until [`RelayTls::start`] takes it.
    acme: Mutex<Option<AcmeDriver>>,
}

impl RelayTls {
    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// With `--domain`: starts getting (then renewing) the certificate on the current tokio
    /// runtime, telling the operator on stderr how it goes. Stops when the returned task is
    /// dropped. `None` without `--domain`, or when already started.
    pub fn start(&self) -> Option<AcmeTask> {
        let driver = self.acme.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        Some(driver.spawn(|message| eprintln!("{message}")))
    }
}

/// The relay's TLS from `args`, its ACME cache under `dir`. Prints a warning when `--domain` is
/// used on another port than 443.
pub fn relay_tls(dir: &Path, args: &RelayServeArgs) -> Result<RelayTls> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        return Ok(RelayTls {
            tls: Some(clientele_server::tls::load_tls(cert, key)?),
            public_url: None,
            acme: Mutex::new(None),
        });
    }
    let Some(domain) = &args.domain else {
        return Ok(RelayTls {
            tls: None,
            public_url: None,
            acme: Mutex::new(None),
        });
    };
    let domain = checked_domain(domain)?;
    let directory = checked_directory(&args.acme_directory)?;
    let contact_email = args.acme_email.as_deref().map(checked_email).transpose()?;
    let extra_roots = match &args.acme_ca_cert {
        Some(path) => acme::read_roots(path)?,
        None => Vec::new(),
    };
    let port = args.bind.port();
    let public_url = if port == 443 {
        format!("https://{domain}")
    } else {
        eprintln!(
            "warning: the certificate authority checks port 443 of {domain}; forward it here (the relay listens on port {port}), and pass --public-url https://{domain} if providers should use port 443."
        );
        format!("https://{domain}:{port}")
    };
    let (tls, driver) = acme::acme_tls(AcmeSettings {
        domains: vec![domain],
        contact_email,
        directory_url: directory,
        cache_dir: dir.join(ACME_DIR),
        extra_roots,
    })?;
    Ok(RelayTls {
        tls: Some(tls),
        public_url: Some(public_url),
        acme: Mutex::new(Some(driver)),
    })
}

/// `--domain`: a DNS name alone (no scheme, port or path), lower-case, without a final dot.
fn checked_domain(name: &str) -> Result<String> {
    let trimmed = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let is_name = !trimmed.is_empty()
        && trimmed.contains('.')
        && trimmed.parse::<std::net::IpAddr>().is_err()
        && trimmed.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !is_name {
        bail!(
            "--domain must be the relay's name alone, such as relay.example.com (got '{name}'). A certificate authority issues certificates for names, not for addresses."
        );
    }
    Ok(trimmed)
}

/// `--acme-directory`: an `https://` URL.
fn checked_directory(url: &str) -> Result<String> {
    let trimmed = url.trim();
    if !trimmed.starts_with("https://") || trimmed.len() <= "https://".len() {
        bail!(
            "--acme-directory must be the certificate authority's ACME directory, an https:// address such as {} (got '{url}')",
            acme::LETS_ENCRYPT_DIRECTORY
        );
    }
    Ok(trimmed.to_string())
}

/// `--acme-email`: an address (a `mailto:` in front is taken off).
fn checked_email(email: &str) -> Result<String> {
    let trimmed = email.trim();
    let address = trimmed.strip_prefix("mailto:").unwrap_or(trimmed);
    let ok = address
        .split_once('@')
        .is_some_and(|(who, host)| !who.is_empty() && host.contains('.'))
        && !address.contains([' ', ',', '<', '>']);
    if !ok {
        bail!("--acme-email must be an email address, such as admin@example.com (got '{email}')");
    }
    Ok(address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, RelayCommand};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<RelayServeArgs, clap::Error> {
        let mut all = vec!["clientele", "relay", "serve"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Relay(RelayCommand::Serve(args)) => Ok(*args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn names_are_checked_and_tidied() {
        assert_eq!(
            checked_domain(" Relay.Example.COM. ").expect("a name"),
            "relay.example.com"
        );
        for bad in [
            "https://relay.example.com",
            "relay.example.com:443",
            "localhost",
            "203.0.113.5",
            "relay..example.com",
            "-relay.example.com",
            "",
        ] {
            let e = checked_domain(bad).expect_err(bad).to_string();
            assert!(e.contains("--domain"), "{e}");
        }
    }

    #[test]
    fn emails_and_directories_are_checked() {
        assert_eq!(
            checked_email("mailto:ops@example.com").expect("email"),
            "ops@example.com"
        );
        assert!(checked_email("ops").is_err());
        assert!(checked_email("a@b.c, d@e.f").is_err());
        assert!(checked_directory("http://acme.example.com/dir").is_err());
        assert!(checked_directory("https://127.0.0.1:14000/dir").is_ok());
    }

    #[test]
    fn domain_excludes_certificate_files_but_takes_a_forwarded_address() {
        let e = parse(&[
            "--domain",
            "relay.example.com",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .expect_err("--domain with certificate files");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
        assert!(e.to_string().contains("cannot be used with"), "{e}");
        // Port 443 forwarded to another port here: the address providers use says so.
        let args = parse(&[
            "--domain",
            "relay.example.com",
            "--public-url",
            "https://relay.example.com",
        ])
        .expect("--domain with the address port 443 is forwarded from");
        assert_eq!(
            args.public_url.as_deref(),
            Some("https://relay.example.com")
        );
        let e = parse(&["--acme-email", "ops@example.com"]).expect_err("email alone");
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{e}"
        );
    }

    #[test]
    fn the_default_authority_is_lets_encrypt_production() {
        let args = parse(&["--domain", "relay.example.com"]).expect("parses");
        assert_eq!(
            args.acme_directory,
            "https://acme-v02.api.letsencrypt.org/directory"
        );
    }

    #[test]
    fn a_domain_implies_its_https_address_and_keeps_its_files_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary folder");
        let on = |bind: &str| {
            let args = parse(&["--domain", "relay.example.com", "--bind", bind]).expect("parses");
            relay_tls(dir.path(), &args).expect("settings")
        };
        let standard = on("0.0.0.0:443");
        assert_eq!(
            standard.public_url.as_deref(),
            Some("https://relay.example.com")
        );
        assert_eq!(standard.scheme(), "https");
        let other = on("127.0.0.1:8443");
        assert_eq!(
            other.public_url.as_deref(),
            Some("https://relay.example.com:8443")
        );
        let mode = std::fs::metadata(dir.path().join(ACME_DIR))
            .expect("the ACME folder is made")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let plain = relay_tls(dir.path(), &parse(&[]).expect("parses")).expect("settings");
        assert!(plain.tls.is_none() && plain.public_url.is_none());
        assert!(plain.start().is_none());
    }
}
