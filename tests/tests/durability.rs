//! Kill -9 in the middle of a burst of concurrent deliveries: every delivery that was answered
//! `200` is in the store after a restart, and the derived data is consistent (re-deriving it from
//! the deliveries gives the same people and timelines).
//!
//! `make test` runs the quick variant (a few kills); `make faults` runs it 20 times via
//! `CLIENTELE_KILL9_RUNS`.

use chrono::Utc;
use clientele_core::{Provider, providers};
use clientele_tests::{Workspace, agent, post, signed};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "tiquo-durability-secret";

/// A small, dependency-free pseudo-random source; the seed is printed so a failure can be replayed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn derived(ws: &Workspace) -> Vec<Value> {
    let people = ws.json(&["customers", "list"]);
    people
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ws.json(&["customers", "show", &p["id"].to_string()]))
        .collect()
}

#[test]
fn no_acknowledged_delivery_is_lost_when_killed_mid_burst() {
    let runs: usize = std::env::var("CLIENTELE_KILL9_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill9 seed {seed}");
    let mut ws = Workspace::new();
    ws.add_connection(Provider::Tiquo, "main", Some(SECRET));
    let acked_total = Arc::new(Mutex::new(BTreeSet::new()));
    for run in 0..runs {
        let server = ws.serve();
        let url = server.url("/hooks/tiquo/main");
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (url, stop, acked) = (url.clone(), stop.clone(), acked_total.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let now = Utc::now();
                        // Shared emails so people link, several events per customer.
                        let body = providers::sample_body(
                            Provider::Tiquo,
                            &format!("cust_{run}_{w}_{}", i % 5),
                            &format!("person{}@example.com", i % 11),
                            now + chrono::Duration::milliseconds(i),
                        );
                        let key: Value = serde_json::from_slice(&body).unwrap();
                        let headers = signed(Provider::Tiquo, SECRET, &body, now);
                        let (status, _) = post(&agent, &url, &headers, &body);
                        if status == 200 {
                            acked
                                .lock()
                                .unwrap()
                                .insert(key["id"].as_str().unwrap().to_string());
                        } else if status == 0 {
                            break; // the server is gone
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        let delay = 100 + next(&mut seed) % 400;
        std::thread::sleep(Duration::from_millis(delay));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        let stored: BTreeSet<String> = ws.dedupe_keys().into_iter().collect();
        let acked = acked_total.lock().unwrap().clone();
        let lost: Vec<&String> = acked.difference(&stored).collect();
        eprintln!(
            "faults: kill9 run={run} after_ms={delay} acked={} stored={} lost={}",
            acked.len(),
            stored.len(),
            lost.len()
        );
        assert!(
            lost.is_empty(),
            "run {run}: acknowledged deliveries lost after kill -9: {lost:?}"
        );
        assert!(
            !acked.is_empty(),
            "run {run}: the burst must have delivered something before the kill"
        );
    }
    // Derived data after the crashes equals a rebuild from the deliveries.
    let after_restart = derived(&ws);
    ws.ok(&["reprocess"]);
    assert_eq!(
        derived(&ws),
        after_restart,
        "re-deriving after the crashes must give the same result"
    );
    let acked = acked_total.lock().unwrap().len();
    println!("faults: kill9 runs={runs} acked={acked} lost=0");
}

/// A supervisor (systemd, a deploy script, a test) may stop the listener the moment it says it is
/// listening: that stop is graceful — the pipeline finishes, "stopped" is logged, the exit is 0 —
/// every time. (The handlers for SIGTERM and Ctrl-C were once set up just after the listener said
/// so, and a SIGTERM in between killed it outright.)
#[test]
fn a_stop_the_moment_it_listens_is_graceful() {
    let ws = Workspace::new();
    for attempt in 1..=12 {
        let server = clientele_tests::Server::start(ws.command(&ws.serve_args(&[])));
        let (status, log) = server.stop_with_log();
        assert!(status.success(), "attempt {attempt}: {status:?}\n{log}");
        assert!(
            log.lines().any(|l| l == "stopped"),
            "attempt {attempt}: {log}"
        );
    }
}
