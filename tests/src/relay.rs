//! The relay's black-box helpers: a real `clientele relay serve` on a free loopback port, pairing
//! codes made by the real `clientele relay pair`, and desks (their own data folders) that join it
//! with the real `clientele relay join`.

use crate::{Server, Workspace};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A running relay and its data folder.
#[derive(Debug)]
pub struct Relay {
    pub ws: Workspace,
    pub server: Server,
    /// The extra `relay serve` arguments it was started with (kept for restarts).
    pub args: Vec<String>,
}

impl Relay {
    /// Starts a relay over a new data folder on a free port.
    pub fn start(extra: &[&str]) -> Relay {
        Relay::start_in(Workspace::new(), "127.0.0.1:0", extra)
    }

    /// Starts a relay over a new data folder on a free loopback port, told with `--public-url`
    /// that its public address is that port (`scheme` `http` or `https`), as an operator tells a
    /// relay the name providers use. Without it a loopback relay knows no address providers can
    /// reach, and its test event says so.
    pub fn start_public(scheme: &str, extra: &[&str]) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let public = format!("{scheme}://127.0.0.1:{port}");
        let mut args = vec!["--public-url", public.as_str()];
        args.extend_from_slice(extra);
        Relay::start_in(Workspace::new(), &format!("127.0.0.1:{port}"), &args)
    }

    /// Starts a relay over `ws` listening on `bind`.
    pub fn start_in(ws: Workspace, bind: &str, extra: &[&str]) -> Relay {
        let mut args = vec!["relay", "serve", "--bind", bind];
        args.extend_from_slice(extra);
        let server = Server::start_expecting(ws.command(&args), "relay listening on ");
        Relay {
            ws,
            server,
            args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The relay's address (`http://127.0.0.1:PORT` or `https://…`).
    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// A one-time pairing code for a desk called `name`.
    pub fn pair(&self, name: &str, admin: bool) -> String {
        let mut args = vec!["relay", "pair", "--name", name];
        if admin {
            args.push("--admin");
        }
        let made = self.ws.json(&args);
        made["code"]
            .as_str()
            .expect("pair --json gives the code")
            .to_string()
    }

    /// Kills the relay (SIGKILL) and starts it again on the same address and data folder.
    pub fn kill_and_restart(self) -> Relay {
        let bind = self.server.addr.clone();
        let Relay { ws, server, args } = self;
        server.kill9();
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        Relay::start_in(ws, &bind, &extra)
    }
}

/// A desk's data folder, joined to a relay. Its device token (printed once with `--secrets env`)
/// is kept in its environment like an operator would.
#[derive(Debug)]
pub struct Desk {
    pub ws: Workspace,
}

impl Desk {
    /// Joins `relay_url` with `code`; panics (with the output) if that fails.
    pub fn join(ws: Workspace, relay_url: &str, code: &str, extra: &[&str]) -> Desk {
        let mut desk = Desk { ws };
        let mut args = vec!["relay", "join", relay_url, code];
        args.extend_from_slice(extra);
        let out = desk.ws.ok(&args);
        let token = out
            .lines()
            .find_map(|l| l.strip_prefix("CLIENTELE_RELAY_TOKEN="))
            .unwrap_or_else(|| panic!("with --secrets env, join prints the token once: {out}"));
        desk.ws
            .secrets
            .push(("CLIENTELE_RELAY_TOKEN".into(), token.trim().to_string()));
        desk
    }

    pub fn token(&self) -> String {
        self.ws
            .secrets
            .iter()
            .find(|(k, _)| k == "CLIENTELE_RELAY_TOKEN")
            .map(|(_, v)| v.clone())
            .expect("a joined desk has its token")
    }

    /// The dedupe keys this desk has stored.
    pub fn dedupe_keys(&self) -> Vec<String> {
        self.ws.dedupe_keys()
    }

    /// Waits (up to `deadline`) until the desk has stored every key in `expected`; returns what it
    /// has then. Polls the real command, as a person refreshing the screen would.
    pub fn wait_for_keys(&self, expected: &[String], deadline: Duration) -> Vec<String> {
        let until = Instant::now() + deadline;
        loop {
            let have = self.dedupe_keys();
            let all = expected.iter().all(|k| have.contains(k));
            if all || Instant::now() > until {
                return have;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn status(&self) -> Value {
        self.ws.json(&["relay", "status"])
    }
}
