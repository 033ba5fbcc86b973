//! Several `clientele relay serve` processes on one PostgreSQL database behave as one relay
//! (issue 21), as an operator runs them: each instance its own process and data folder, the
//! database URL and the shared key in the environment (`CLIENTELE_DATABASE_URL`,
//! `CLIENTELE_RELAY_KEY`), a private PostgreSQL cluster the test starts (`clientele_tests::pg`),
//! desks joined with the real `clientele relay join`. Skipped without PostgreSQL unless
//! `CLIENTELE_REQUIRE_PG=1` (as `make test` sets it).

use chrono::Utc;
use clientele_core::Provider;
use clientele_tests::pg::{PASSWORD, PgCluster};
use clientele_tests::relay::{
    ARRIVE, Desk, Relay, admin_with_every_provider, api_get, dedupe_key, delivery, send, unique,
};
use clientele_tests::{Workspace, agent, post, signed, test_secret};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A private cluster with an empty `relay` database, and the key every instance shares.
struct Shared {
    pg: PgCluster,
    url: String,
    key: String,
}

fn shared() -> Option<Shared> {
    match PgCluster::available() {
        Ok(_) => {
            let pg = PgCluster::start();
            pg.create_database("relay");
            let url = pg.url("relay");
            Some(Shared {
                pg,
                url,
                key: "5e".repeat(32),
            })
        }
        Err(why) => {
            assert!(PgCluster::may_skip(), "CLIENTELE_REQUIRE_PG=1, but {why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

impl Shared {
    /// A workspace whose commands reach the shared database, as the relay machine's shell would.
    fn workspace(&self) -> Workspace {
        let mut ws = Workspace::new();
        ws.secrets
            .push(("CLIENTELE_DATABASE_URL".into(), self.url.clone()));
        ws.secrets
            .push(("CLIENTELE_RELAY_KEY".into(), self.key.clone()));
        ws
    }

    /// One more relay instance on the database, on a free port, with its own data folder.
    fn instance(&self) -> Relay {
        Relay::start_in(self.workspace(), "127.0.0.1:0", &[])
    }

    /// `SELECT` one value from the relay's database.
    fn sql(&self, query: &str) -> String {
        self.pg.psql("relay", query)
    }

    /// How many deliveries the relay holds, and how many distinct ones.
    fn stored(&self) -> (i64, i64) {
        let text = self.sql("SELECT COUNT(*) || ' ' || COUNT(DISTINCT dedupe_key) FROM deliveries");
        let mut parts = text.split_whitespace().map(|n| n.parse::<i64>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    }
}

/// Waits for `condition`, polling, up to `deadline`.
fn wait_until(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_instances_on_one_database_behave_as_one_relay() {
    let Some(db) = shared() else { return };
    let a = db.instance();
    let b = db.instance();
    // The admin desk joins through A and adds every provider's connection there.
    let _admin = admin_with_every_provider(&a);
    // A code made on the relay machine (its command line on the database) pairs through B.
    let desk = Desk::join(Workspace::new(), &b.url(), &a.pair("desk", false), &[]);
    // The desk pulls from A while deliveries arrive at B only: woken when B commits.
    let _serving = desk.ws.serve();
    // B knows A's connections (it reads them from the database on first sight).
    let mut sent_to_b = Vec::new();
    for (n, p) in Provider::ALL.into_iter().enumerate() {
        let (body, headers) = delivery(p, n, Utc::now());
        let (status, text) = send(&b.url(), p, &body, &headers);
        assert_eq!(status, 200, "B takes {p:?}: {text}");
        sent_to_b.push(dedupe_key(p, &body));
    }
    let have = desk.wait_for_keys(&sent_to_b, ARRIVE);
    let have = unique(&have);
    for key in &sent_to_b {
        assert!(have.contains(key), "the desk joined through B got {key}");
    }

    // The same delivery at both instances at once: both answer 200, it is stored once.
    let before = db.stored();
    let (body, headers) = delivery(Provider::Tiquo, 900, Utc::now());
    let answers = Arc::new(Mutex::new(Vec::new()));
    let posts: Vec<_> = [a.url(), b.url()]
        .into_iter()
        .map(|base| {
            let (body, headers, answers) = (body.clone(), headers.clone(), answers.clone());
            std::thread::spawn(move || {
                let answer = send(&base, Provider::Tiquo, &body, &headers);
                answers.lock().unwrap().push(answer);
            })
        })
        .collect();
    for post in posts {
        post.join().unwrap();
    }
    for (status, text) in answers.lock().unwrap().iter() {
        assert_eq!(*status, 200, "both instances acknowledge it: {text}");
    }
    let after = db.stored();
    assert_eq!(after.0, before.0 + 1, "stored once: {before:?} → {after:?}");
    let key = dedupe_key(Provider::Tiquo, &body);
    let have = desk.wait_for_keys(std::slice::from_ref(&key), ARRIVE);
    assert_eq!(have.iter().filter(|k| **k == key).count(), 1, "{have:?}");

    // Revoking on the relay machine refuses the desk at both instances.
    let token = desk.token();
    for relay in [&a, &b] {
        let (status, _) = api_get(&format!("{}/v1/device", relay.url()), Some(&token));
        assert_eq!(status, 200, "paired: {}", relay.url());
    }
    a.ws.ok(&["relay", "revoke", "desk"]);
    for relay in [&a, &b] {
        let (status, _) = api_get(&format!("{}/v1/device", relay.url()), Some(&token));
        assert_eq!(status, 401, "revoked everywhere: {}", relay.url());
    }
    // Both instances list the same desks, from the one database.
    let devices = b.ws.json(&["relay", "devices"]);
    let names: BTreeSet<_> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["desk".to_string(), "office".to_string()]),
        "{devices}"
    );
}

/// Sends `count` deliveries alternately to `bases`, from `senders` threads, each retried (as
/// providers retry) until acknowledged or `give_up` passes; returns every acknowledged dedupe key
/// and every status seen.
fn burst_with_retries(
    bases: &[String],
    count: usize,
    senders: usize,
    tag: &str,
    give_up: Duration,
) -> (Vec<String>, Vec<u16>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + give_up;
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let (acknowledged, statuses) = (acknowledged.clone(), statuses.clone());
            let (bases, tag) = (bases.to_vec(), tag.to_string());
            std::thread::spawn(move || {
                let agent = agent();
                for i in (s..count).step_by(senders) {
                    let p = Provider::ALL[i % Provider::ALL.len()];
                    let at = Utc::now();
                    let body = clientele_core::providers::sample_body(
                        p,
                        &format!("{tag}-{i}"),
                        &format!("{tag}-{i}@example.com"),
                        at,
                    );
                    let mut attempt = 0usize;
                    loop {
                        // Retries go to the next instance, as a load balancer would send them.
                        let base = &bases[(i + attempt) % bases.len()];
                        let headers = signed(p, &test_secret(p), &body, Utc::now());
                        let url = format!("{base}/hooks/{}/main", p.id());
                        let (status, _) = post(&agent, &url, &headers, &body);
                        statuses.lock().unwrap().push(status);
                        if status == 200 {
                            acknowledged.lock().unwrap().push(dedupe_key(p, &body));
                            break;
                        }
                        if Instant::now() > until {
                            break;
                        }
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let statuses = statuses.lock().unwrap().clone();
    (acknowledged, statuses)
}

#[test]
fn every_acknowledged_delivery_reaches_the_desk_once_through_an_instance_killed_and_postgres_restarted()
 {
    let Some(mut db) = shared() else { return };
    let a = db.instance();
    let b = db.instance();
    let _admin = admin_with_every_provider(&a);
    let desk = Desk::join(Workspace::new(), &a.url(), &a.pair("desk", false), &[]);
    let _serving = desk.ws.serve();
    let bases = [a.url(), b.url()];

    // A burst split between the instances; B is killed (SIGKILL) once it is under way.
    let sender = {
        let bases = bases.to_vec();
        std::thread::spawn(move || {
            burst_with_retries(&bases, 1_200, 8, "kill", Duration::from_secs(120))
        })
    };
    wait_until(ARRIVE, "part of the burst stored", || db.stored().0 >= 200);
    let b = b.kill_and_restart();
    let (acknowledged_kill, _) = sender.join().unwrap();
    assert_eq!(
        acknowledged_kill.len(),
        1_200,
        "every delivery was acknowledged by one instance or the other in the end"
    );

    // PostgreSQL itself goes away mid-burst: the instances answer 503 (providers retry), reconnect
    // when it is back, and lose nothing they acknowledged.
    let bases = [a.url(), b.url()];
    let sender = {
        let bases = bases.to_vec();
        std::thread::spawn(move || {
            burst_with_retries(&bases, 1_200, 8, "pgdown", Duration::from_secs(180))
        })
    };
    let before = db.stored().0;
    wait_until(ARRIVE, "part of the second burst stored", || {
        db.stored().0 >= before + 200
    });
    db.pg.kill();
    // While it is down, a delivery is refused with 503 and words a provider's log can show.
    let (body, headers) = delivery(Provider::Plain, 7_777, Utc::now());
    let (status, text) = send(&a.url(), Provider::Plain, &body, &headers);
    assert_eq!(status, 503, "the database is down: {text}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("postgres"),
        "{text}"
    );
    db.pg.restart();
    let (acknowledged_down, statuses) = sender.join().unwrap();
    assert_eq!(acknowledged_down.len(), 1_200, "every retry acknowledged");
    assert!(
        statuses.contains(&503),
        "some deliveries met the database down (else the restart came too late to test anything)"
    );
    // And the instances took up again without a restart of their own.
    let (status, text) = send(&a.url(), Provider::Plain, &body, &headers);
    assert_eq!(status, 200, "after PostgreSQL is back: {text}");

    let mut expected = acknowledged_kill;
    expected.extend(acknowledged_down);
    expected.push(dedupe_key(Provider::Plain, &body));
    let have = desk.wait_for_keys(&expected, Duration::from_secs(180));
    let have_set = unique(&have);
    let missing: Vec<_> = expected.iter().filter(|k| !have_set.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged deliveries never reached the desk: {:?}",
        missing.len(),
        missing.iter().take(10).collect::<Vec<_>>()
    );
    let (rows, distinct) = db.stored();
    assert_eq!(rows, distinct, "the relay stored no delivery twice");
}

#[test]
fn the_relay_on_postgres_says_plainly_what_is_wrong_at_start() {
    let Some(db) = shared() else { return };
    let run = |env: &[(&str, String)]| {
        let ws = Workspace::new();
        let mut cmd = ws.command(&["relay", "serve", "--bind", "127.0.0.1:0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run clientele");
        assert!(!out.status.success(), "it refuses to start");
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!text.contains(PASSWORD), "no password: {text}");
        text
    };
    // No shared key: refused, naming the variable and --key-file.
    let text = run(&[("CLIENTELE_DATABASE_URL", db.url.clone())]);
    assert!(
        text.contains("CLIENTELE_RELAY_KEY") && text.contains("--key-file"),
        "{text}"
    );
    let key = ("CLIENTELE_RELAY_KEY", db.key.clone());
    // The wrong password: names the user, never the password.
    let wrong = db.url.replace(PASSWORD, "not-the-password");
    let text = run(&[("CLIENTELE_DATABASE_URL", wrong), key.clone()]);
    assert!(
        text.contains("password") && !text.contains("not-the-password"),
        "{text}"
    );
    // A database that doesn't exist.
    let missing = db.url.replace("/relay", "/nosuchdb");
    let text = run(&[("CLIENTELE_DATABASE_URL", missing), key.clone()]);
    assert!(text.contains("nosuchdb"), "{text}");
    // Nothing listening there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgres://relay:{PASSWORD}@127.0.0.1:{port}/relay");
    let text = run(&[("CLIENTELE_DATABASE_URL", nowhere), key.clone()]);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    // Not a database URL at all.
    let text = run(&[("CLIENTELE_DATABASE_URL", "relay.example.com".into()), key]);
    assert!(text.contains("postgres://"), "{text}");
}
