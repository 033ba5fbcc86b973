//! Data folders written by the schema-6 and schema-7 releases (`tests/fixtures/store-v6` and
//! `store-v7`, each made by `make_store_fixture` with that build) opened by this build: each is
//! converted, and every customer, timeline, message, connection, decision and export profile
//! reads as that release showed them (and, from schema 7, its exports write the same files).
//! And the command line says what it is doing while it converts.

use clientele_tests::guard::{ProcessGuard, Signal};
use clientele_tests::store_fixture;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn expected(name: &str) -> Value {
    expected_of(6, name)
}

fn expected_of(schema: i64, name: &str) -> Value {
    let path = store_fixture::dir_of(schema).join("expected").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| {
        panic!("{}: {e}", path.display());
    })
}

fn pragma(db: &Path, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

#[test]
fn a_data_folder_from_the_schema_6_release_keeps_every_customer_and_timeline() {
    keeps_every_customer_and_timeline(6);
}

/// Schema 8 keeps people's email and name unpacked for exports (`people.plain_fields`): the
/// conversion fills every person's, and the exports read from them write the same files,
/// byte for byte, as the schema-7 release wrote from the whole profiles.
#[test]
fn a_data_folder_from_the_schema_7_release_keeps_every_customer_timeline_and_export() {
    let ws = keeps_every_customer_and_timeline(7);
    let db = ws.path().join(clientele_store::DATABASE_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (people, unwritten, named): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(plain_fields IS NULL),
                    sum(json_extract(plain_fields, '$.full_name') IS NOT NULL)
             FROM people",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((people, unwritten), (39, 0), "every person's plain fields");
    assert!(named > 30, "{named} people with a name");
    drop(conn);
    let exports = store_fixture::dir_of(7).join("exports");
    for name in ["mailing", "timeline"] {
        let out = ws.path().join(format!("{name}.csv"));
        ws.ok(&["export", "--profile", name, "--out", out.to_str().unwrap()]);
        let expected = std::fs::read(exports.join(format!("{name}.csv"))).unwrap();
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "{name}.csv differs after the upgrade:\n{}",
            String::from_utf8_lossy(&std::fs::read(&out).unwrap())
        );
    }
}

/// Opens (and so converts) a copy of the schema-`schema` fixture and compares everything the
/// old build printed about it; returns the converted copy.
fn keeps_every_customer_and_timeline(schema: i64) -> clientele_tests::Workspace {
    let ws = store_fixture::copy_of(schema);
    let db = ws.path().join(clientele_store::DATABASE_FILE);
    assert_eq!(
        pragma(&db, "user_version"),
        schema,
        "the fixture is schema {schema}"
    );

    // The first command opens (and converts) it.
    let out = ws.run(&["customers", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        pragma(&db, "user_version"),
        clientele_store::SCHEMA_VERSION,
        "converted to this build's schema"
    );
    assert_eq!(pragma(&db, "freelist_count"), 0, "the space was given back");

    // Everything the old build printed, the new one prints the same. (Nothing differs
    // legitimately yet; if a new layout numbers something differently, normalize exactly that
    // here, with why.)
    let outputs = store_fixture::outputs(&ws);
    let mut names: Vec<String> = outputs.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut files: Vec<String> = std::fs::read_dir(store_fixture::dir_of(schema).join("expected"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(names, files, "the same people, and nothing else missing");
    let people = outputs
        .iter()
        .filter(|(n, _)| n.starts_with("customer-"))
        .count();
    assert_eq!(people, 39, "every customer of the fixture");
    for (name, value) in &outputs {
        assert!(
            *value == expected_of(schema, name),
            "{name} differs after the upgrade:\n{}",
            serde_json::to_string_pretty(value).unwrap()
        );
    }
    ws
}

/// A slow conversion (a debug build's test slow-down standing in for a million messages): the
/// command line says what is happening, how far, and at the end how long it took and what space
/// it gave back — plain lines on standard error, a few at most per interval.
#[test]
fn the_command_line_shows_how_the_update_goes() {
    let ws = store_fixture::copy();
    let out = ws
        .command(&["customers", "list", "--json"])
        .env("CLIENTELE_TEST_SLOW_UPGRADE_MS", "4500")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let progress: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("Updating your data for this version of Clientele"))
        .collect();
    // From schema 6 there are two code steps (7 and 8), each stretched by 4.5 s: about 9 s,
    // and a line for each step's start, the space given back, and every 2 s or so between.
    assert!(
        !progress.is_empty() && progress.len() <= 7,
        "a line every 2 s or so while it lasts:\n{err}"
    );
    assert!(
        progress.iter().any(|l| l.contains(" of 237 messages (")),
        "how far, in messages:\n{err}"
    );
    let last = lines
        .iter()
        .find(|l| l.starts_with("Updated in "))
        .unwrap_or_else(|| panic!("no closing line:\n{err}"));
    assert!(last.contains(" s"), "{last}");
    // What it printed on standard output is still the list.
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, expected("customers-list.json"));
}

/// A quick update says nothing: the lines are for waits people would notice.
#[test]
fn a_quick_update_is_quiet() {
    let ws = store_fixture::copy();
    let out = ws.run(&["customers", "list", "--json"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Updating your data"), "{err}");
}

/// Killed halfway through converting (a power cut, a user closing a laptop): the file is the
/// old one, byte for byte, and the next start converts it.
#[test]
fn killed_halfway_the_old_file_is_untouched_and_the_next_start_converts_it() {
    let ws = store_fixture::copy();
    let db = ws.path().join(clientele_store::DATABASE_FILE);
    let original = std::fs::read(&db).unwrap();
    let mut cmd = ws.command(&["customers", "list", "--json"]);
    cmd.env("CLIENTELE_TEST_SLOW_UPGRADE_MS", "60000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ProcessGuard::spawn("clientele", &mut cmd, Duration::ZERO).unwrap();
    // Wait until it is converting: its first progress line (at about a second).
    let stderr = child.child_mut().stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("Updating your data") => break,
            Ok(_) => {}
            Err(_) => panic!("it never said it was updating"),
        }
    }
    child.signal(Signal::Kill);
    assert!(child.wait_within(Duration::from_secs(30)).is_some());
    // Read the file as SQLite would after the crash, then as bytes.
    assert_eq!(pragma(&db, "user_version"), 6);
    assert!(
        std::fs::read(&db).unwrap() == original,
        "the database file changed"
    );
    let list = ws.json(&["customers", "list"]);
    assert_eq!(list, expected("customers-list.json"));
    assert_eq!(pragma(&db, "user_version"), clientele_store::SCHEMA_VERSION);
}

/// `clientele serve` converts before it listens, and its log (standard error) says so in the
/// same words; then it receives as usual.
#[test]
fn serve_logs_the_update_then_listens() {
    let ws = store_fixture::copy();
    let mut cmd = ws.command(&ws.serve_args(&[]));
    cmd.env("CLIENTELE_TEST_SLOW_UPGRADE_MS", "3000");
    let server = clientele_tests::Server::start(cmd);
    let (status, log) = server.stop_with_log();
    assert!(status.success(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("Updating your data for this version of Clientele…")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.starts_with("Updated in ")), "{log}");
}
