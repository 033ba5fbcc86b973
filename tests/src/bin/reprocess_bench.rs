//! `reprocess_bench`: how fast Clientele derives timelines, profiles and people from stored
//! deliveries, against the two costs no derivation can avoid, all measured in one run on one file
//! (`make bench`, `make bench-reprocess`). Prints (nothing is asserted):
//!
//! ```text
//! bench: reprocess deliveries=… seconds=… deliveries_per_s=… floor_seconds=… parse_seconds=… to_floor=… cpu_s=… rss_mb=… events=… source_profiles=… people=… person_terms=… identity_keys=… delivery_outcomes=… derived_mb=…
//! ```
//!
//! - `seconds`: the wall time of the release `clientele reprocess` (the real binary, a process of
//!   its own, `--secrets env`) on a copy of the reading data set (`bench_data`: by default
//!   1,000,000 deliveries over 200,000 people, `CLIENTELE_BENCH_PEOPLE` /
//!   `CLIENTELE_BENCH_DELIVERIES`, kept in `CLIENTELE_BENCH_DATA`) — opening the folder, deleting
//!   what was derived, deriving every delivery again in one transaction, committing, and closing
//!   (SQLite's checkpoint at the last close included). The copy is opened through the store first
//!   (so any migration runs before, not inside, the timed command) and synced to disk. `cpu_s` and
//!   `rss_mb` are that process's CPU time and peak memory. `deliveries_per_s` is the stored
//!   deliveries over `seconds`.
//! - `floor_seconds`: the `sqlite3` command-line shell writing the same rows into a scratch
//!   database: every table derivation writes ([`DERIVED`]), created with the schema's own
//!   `CREATE TABLE` (its keys and `UNIQUE` constraints), filled with `INSERT … SELECT *` from the
//!   reprocessed copy (attached), then the schema's other indexes created — the cheapest way to
//!   the same tables and indexes — in one transaction, WAL, `synchronous=FULL` as the store's
//!   writer uses for `reprocess`, and the closing checkpoint. Triggers are left out.
//! - `parse_seconds`: every stored delivery read from the copy and parsed once through the real
//!   adapters (`clientele_core::providers::parse`) with its connection's provider and settings
//!   and the kept headers, as derivation does (erased and test deliveries are skipped, as
//!   derivation skips them), on one thread, in this process. A body kept compressed
//!   (`deliveries.body_codec`) is unpacked first, inside the timing ([`raw_body`]).
//! - `to_floor`: `seconds / (floor_seconds + parse_seconds)`: how far derivation is from what no
//!   derivation can avoid.
//! - The row counts of the derived tables after the reprocess, so two runs (or two builds) can be
//!   compared; `derived_mb` is those tables' size in the copy (`dbstat`).
//!
//! Every file read is warm in the page cache (each step reads what the one before it wrote or
//! read). The copies are made in the system's temporary folder and removed at the end.

use clientele_core::{ConnectionSettings, Provider, providers};
use clientele_tests::bench_data::DataSet;
use clientele_tests::clientele_bin;
use clientele_tests::procs::{self, MeasuredCommand};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The tables derivation writes (`Writer::reprocess` empties and refills them). A table missing
/// from the schema (a later migration may rename one) is skipped.
const DERIVED: &[&str] = &[
    "events",
    "source_profiles",
    "people",
    "person_terms",
    "identity_keys",
    "delivery_outcomes",
];

fn main() {
    // This program also starts the measured command (see `MeasuredCommand`).
    procs::serve_measure_request();
    let data = DataSet::open_or_build("reprocess_bench");
    {
        // Everything the data set holds, in its one file (no other process has it open).
        let raw = rusqlite::Connection::open(data.store.path()).expect("open the data set");
        raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint the data set");
    }
    let work = tempfile::tempdir().expect("temp dir");
    let copy_dir = work.path().join("desk");
    std::fs::create_dir(&copy_dir).expect("a folder for the copy");
    let copy = copy_dir.join(clientele_store::DATABASE_FILE);
    std::fs::copy(data.store.path(), &copy).expect("copy the data set");
    drop(data);
    // Any migration runs here, not in the timed command; then everything is on disk, as a desk's
    // database is (otherwise the command's fsyncs would write out the fresh copy).
    drop(clientele_store::Store::open_dir(&copy_dir).expect("open the copy"));
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .expect("sync the copy");

    eprintln!("reprocess_bench: clientele reprocess of {}", copy.display());
    let out = tempfile::NamedTempFile::new().expect("a file for the output");
    let mut m = MeasuredCommand::new(clientele_bin());
    m.cmd
        .arg("--data-dir")
        .arg(&copy_dir)
        .args(["--secrets", "env", "reprocess"])
        .env_remove("CLIENTELE_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("reopen the output file"));
    let reprocess = m.run().expect("run clientele reprocess");
    let said = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert!(
        reprocess.status.success(),
        "clientele reprocess failed ({}): {said}",
        reprocess.status
    );

    let db = rusqlite::Connection::open_with_flags(
        &copy,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the copy");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).expect("count") };
    let deliveries = count("SELECT COUNT(*) FROM deliveries");
    let tables: Vec<&str> = DERIVED
        .iter()
        .copied()
        .filter(|t| {
            count(&format!(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '{t}'"
            )) == 1
        })
        .collect();
    let counts: Vec<(&str, i64)> = tables
        .iter()
        .map(|t| (*t, count(&format!("SELECT COUNT(*) FROM \"{t}\""))))
        .collect();
    let derived_bytes = derived_size(&copy, &tables);

    eprintln!("reprocess_bench: sqlite3 copying the derived tables");
    let floor_seconds = floor(&db, &copy, &tables, work.path());

    eprintln!("reprocess_bench: parsing every stored body");
    let (parse_seconds, parsed) = parse_all(&db);
    assert_eq!(
        parsed.0 + parsed.1,
        deliveries as usize,
        "every delivery is parsed or skipped"
    );

    let counts_text: Vec<String> = counts.iter().map(|(t, n)| format!("{t}={n}")).collect();
    println!(
        "bench: reprocess deliveries={deliveries} seconds={:.2} deliveries_per_s={:.0} floor_seconds={floor_seconds:.2} parse_seconds={parse_seconds:.2} to_floor={:.1} cpu_s={:.1} rss_mb={:.0} {} derived_mb={:.1}",
        reprocess.seconds,
        deliveries as f64 / reprocess.seconds.max(1e-9),
        reprocess.seconds / (floor_seconds + parse_seconds).max(1e-9),
        reprocess.cpu_seconds,
        reprocess.peak_rss_kb as f64 / 1024.0,
        counts_text.join(" "),
        derived_bytes as f64 / 1e6,
    );
    eprintln!(
        "reprocess_bench: parsed={} skipped={} (erased or test); clientele said: {}",
        parsed.0,
        parsed.1,
        said.trim()
    );
}

/// The derived tables' size in the file (their pages and their indexes'), from `dbstat` through
/// the `sqlite3` shell (the bundled SQLite is built without it); 0 when it can't say.
fn derived_size(db: &Path, tables: &[&str]) -> i64 {
    let list: Vec<String> = tables.iter().map(|t| format!("'{t}'")).collect();
    let sql = format!(
        "SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d JOIN sqlite_schema s ON s.name = d.name
         WHERE s.tbl_name IN ({});",
        list.join(",")
    );
    Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// `sqlite3` writing `tables` from `source` into a fresh database in `dir`, with the schema's
/// tables and indexes, in one durable transaction; its wall time.
fn floor(db: &rusqlite::Connection, source: &Path, tables: &[&str], dir: &Path) -> f64 {
    let schema = |kind: &str| -> Vec<String> {
        let mut stmt = db
            .prepare(
                "SELECT sql FROM sqlite_schema WHERE type = ?1 AND tbl_name = ?2 AND sql IS NOT NULL
                 ORDER BY rowid",
            )
            .expect("read the schema");
        tables
            .iter()
            .flat_map(|t| {
                stmt.query_map(rusqlite::params![kind, t], |r| r.get::<_, String>(0))
                    .expect("read the schema")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("read the schema")
            })
            .collect()
    };
    let mut script = String::from(
        "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = FULL;\nPRAGMA foreign_keys = OFF;\n",
    );
    script.push_str(&format!(
        "ATTACH '{}' AS src;\nBEGIN IMMEDIATE;\n",
        source.display().to_string().replace('\'', "''")
    ));
    for create in schema("table") {
        script.push_str(&create);
        script.push_str(";\n");
    }
    for t in tables {
        script.push_str(&format!(
            "INSERT INTO main.\"{t}\" SELECT * FROM src.\"{t}\";\n"
        ));
    }
    for index in schema("index") {
        script.push_str(&index);
        script.push_str(";\n");
    }
    script.push_str("COMMIT;\nDETACH src;\n");
    let scratch = dir.join("floor.db");
    let script_file = dir.join("floor.sql");
    std::fs::write(&script_file, &script).expect("write the floor's script");
    let started = Instant::now();
    let output = Command::new("sqlite3")
        .arg(&scratch)
        .arg(format!(".read '{}'", script_file.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run sqlite3 (Debian's sqlite3 package)");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "sqlite3 failed ({}): {}\nscript:\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Check it copied everything.
    let scratch_db = rusqlite::Connection::open(&scratch).expect("open the floor's database");
    for t in tables {
        let q = format!("SELECT COUNT(*) FROM \"{t}\"");
        let copied: i64 = scratch_db.query_row(&q, [], |r| r.get(0)).expect("count");
        let original: i64 = db.query_row(&q, [], |r| r.get(0)).expect("count");
        assert_eq!(copied, original, "sqlite3 copied all of {t}");
    }
    drop(scratch_db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
    }
    seconds
}

/// Reads every stored delivery and parses it once, as derivation does; the wall time and how
/// many were (parsed, skipped).
fn parse_all(db: &rusqlite::Connection) -> (f64, (usize, usize)) {
    let codec = has_column(db, "deliveries", "body_codec");
    let started = Instant::now();
    let mut connections = std::collections::HashMap::new();
    {
        let mut stmt = db
            .prepare("SELECT id, provider, settings FROM connections")
            .expect("read connections");
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .expect("read connections");
        for row in rows {
            let (id, provider, settings) = row.expect("a connection");
            let provider: Provider = provider.parse().expect("a known provider");
            let settings: ConnectionSettings =
                serde_json::from_str(&settings).expect("connection settings");
            connections.insert(id, (provider, settings));
        }
    }
    let sql = format!(
        "SELECT connection_id, headers, body, is_test, erased_at IS NOT NULL, {}
         FROM deliveries ORDER BY id",
        if codec { "body_codec" } else { "NULL" }
    );
    let mut stmt = db.prepare(&sql).expect("read deliveries");
    let mut rows = stmt.query([]).expect("read deliveries");
    let (mut parsed, mut skipped, mut unreadable) = (0usize, 0usize, 0usize);
    while let Some(row) = rows.next().expect("a delivery") {
        let is_test: bool = row.get(3).expect("is_test");
        let erased: bool = row.get(4).expect("erased");
        if is_test || erased {
            skipped += 1;
            continue;
        }
        let connection: i64 = row.get(0).expect("connection_id");
        let (provider, settings) = &connections[&connection];
        let headers: String = row.get(1).expect("headers");
        let stored = row.get_ref(2).expect("body");
        let stored = stored
            .as_blob()
            .or_else(|_| stored.as_bytes())
            .expect("body");
        let body = raw_body(row.get_ref(5).expect("body_codec"), stored);
        let headers = header_map(&headers);
        match providers::parse(*provider, settings, &headers, &body) {
            Ok(p) => {
                std::hint::black_box(p);
            }
            Err(_) => unreadable += 1,
        }
        parsed += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    if unreadable > 0 {
        eprintln!("reprocess_bench: {unreadable} bodies didn't parse (needs attention)");
    }
    (seconds, (parsed, skipped))
}

/// The body as received, read as the store reads it (`pack::stored_body`).
fn raw_body<'a>(
    codec: rusqlite::types::ValueRef<'_>,
    stored: &'a [u8],
) -> std::borrow::Cow<'a, [u8]> {
    use rusqlite::types::ValueRef;
    match codec {
        ValueRef::Null => stored.into(),
        ValueRef::Integer(codec) => clientele_store::pack::stored_body(codec, stored.to_vec())
            .expect("a stored body reads")
            .into(),
        other => panic!("unexpected body_codec {other:?}"),
    }
}

fn has_column(db: &rusqlite::Connection, table: &str, column: &str) -> bool {
    db.query_row(
        &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
        [column],
        |r| r.get::<_, i64>(0),
    )
    .expect("read the schema")
        == 1
}

/// The header map a delivery arrived with, from its kept pairs (as the store rebuilds it).
fn header_map(stored: &str) -> HeaderMap {
    let pairs: Vec<(String, String)> = serde_json::from_str(stored).expect("kept headers");
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in &pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}
