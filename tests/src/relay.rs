//! The relay's black-box helpers: a real `clientele relay serve` on a free loopback port, pairing
//! codes made by the real `clientele relay pair`, and desks (their own data folders) that join it
//! with the real `clientele relay join`.

use crate::{Server, Workspace, agent, post, secret_env, signed, test_secret};
use chrono::{DateTime, Utc};
use clientele_core::{Provider, providers};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

/// How long a desk gets to have what the relay received: generous, for a debug build on a busy
/// two-core machine (the live path takes milliseconds).
pub const ARRIVE: Duration = Duration::from_secs(90);

/// A sample delivery of `p` for customer number `n`, signed with the test secret at `at`.
pub fn delivery(p: Provider, n: usize, at: DateTime<Utc>) -> (Vec<u8>, Vec<(String, String)>) {
    let body = providers::sample_body(
        p,
        &format!("{}-cus-{n}", p.id()),
        &format!("guest{n}@{}.example.com", p.id()),
        at,
    );
    let headers = signed(p, &test_secret(p), &body, at);
    (body, headers)
}

/// Posts to `base`'s hooks route for `p`'s `main` connection.
pub fn send(base: &str, p: Provider, body: &[u8], headers: &[(String, String)]) -> (u16, String) {
    post(
        &agent(),
        &format!("{base}/hooks/{}/main", p.id()),
        headers,
        body,
    )
}

/// An admin desk that has added a `main` connection for every provider to `relay`, each secret
/// from its environment (`--secrets env`), as an operator would.
pub fn admin_with_every_provider(relay: &Relay) -> Desk {
    let mut ws = Workspace::new();
    for p in Provider::ALL {
        ws.secrets.push((secret_env(p, "main"), test_secret(p)));
    }
    let desk = Desk::join(ws, &relay.url(), &relay.pair("office", true), &[]);
    for p in Provider::ALL {
        let out = desk.ws.ok(&["connection", "add", p.id(), "main"]);
        assert!(
            out.contains(&format!("{}/hooks/{}/main", relay.url(), p.id())),
            "the address shown is the relay's: {out}"
        );
    }
    desk
}

pub fn unique(keys: &[String]) -> BTreeSet<String> {
    let set: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(
        set.len(),
        keys.len(),
        "a delivery was stored twice: {keys:?}"
    );
    set
}

/// Sends `count` deliveries (round-robin over providers) to `relay` from `senders` threads;
/// returns the dedupe keys of those answered 200.
pub fn burst(base: &str, count: usize, senders: usize, tag: &str) -> Vec<String> {
    burst_counting(base, count, senders, tag, Arc::default())
}

/// [`burst`], counting the answers in `answered` as they come.
pub fn burst_counting(
    base: &str,
    count: usize,
    senders: usize,
    tag: &str,
    answered: Arc<AtomicUsize>,
) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let base = Arc::new(base.to_string());
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let (acknowledged, base, tag, answered) = (
                acknowledged.clone(),
                base.clone(),
                tag.to_string(),
                answered.clone(),
            );
            std::thread::spawn(move || {
                for i in (s..count).step_by(senders) {
                    let p = Provider::ALL[i % Provider::ALL.len()];
                    let at = Utc::now();
                    let body = providers::sample_body(
                        p,
                        &format!("{tag}-{i}"),
                        &format!("{tag}-{i}@example.com"),
                        at,
                    );
                    let headers = signed(p, &test_secret(p), &body, at);
                    let (status, _) = send(&base, p, &body, &headers);
                    if status == 200 {
                        acknowledged.lock().unwrap().push((p, body));
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    acknowledged
        .into_iter()
        .map(|(p, body)| dedupe_key(p, &body))
        .collect()
}

/// The dedupe key a delivery is stored under (what `deliveries list` shows): the one the
/// providers' own verification gives it.
pub fn dedupe_key(p: Provider, body: &[u8]) -> String {
    let at = Utc::now();
    let mut headers = http::HeaderMap::new();
    for (k, v) in signed(p, &test_secret(p), body, at) {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let inbound = clientele_core::Inbound {
        headers: &headers,
        body,
        remote_ip: None,
    };
    let secret = clientele_core::Sensitive::new(test_secret(p));
    providers::verify(p, &Default::default(), Some(&secret), &inbound, at)
        .expect("a freshly signed sample verifies")
        .dedupe_key
}

/// A raw GET to the relay's API with an optional bearer token.
pub fn api_get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = agent().get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    match request.call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}
