//! `export_bench`: the export benchmark of `make bench`.
//!
//! Timeline rows to CSV the way users export them — `clientele export --profile NAME --out PATH`,
//! the release binary, as a process of its own — against `sqlite3 -csv` writing the same
//! columns of the same rows from the same database file, to a file in the same folder.
//!
//! The data set is `read_bench`'s (`clientele_tests::bench_data`, built through the real store;
//! `CLIENTELE_BENCH_DATA` shares it). The profile has six columns — when, provider, what
//! happened, summary, and the person's current email and name:
//!
//! ```json
//! {"name": "bench-events-N", "rows": "events",
//!  "columns": [{"header": "When", "source": "occurred_at"}, {"header": "Provider", "source": "provider"},
//!              {"header": "What", "source": "kind"}, {"header": "Summary", "source": "summary"},
//!              {"header": "Email", "source": "email"}, {"header": "Name", "source": "full_name"}],
//!  "filters": {"event_time": {"to": "…"}}, "format": {"type": "csv"}}
//! ```
//!
//! Two sizes: `CLIENTELE_BENCH_EXPORT_ROWS` (default 1,000,000; the whole timeline when it has
//! fewer — the default data set's 1,000,000 deliveries make 950,000 events) and a tenth of that,
//! so the peak memory of both shows whether memory stays flat as rows grow. A size smaller than
//! the timeline is cut from the oldest events with the profile's `event_time.to` (the same
//! `occurred_at <` bound in the SQL).
//!
//! What the two do differently (the comparison is of the whole job, so this is on purpose):
//! - Both: start a process, open the database, read the events in time order through the same
//!   index and join order (events → records → connections, then the person), format the time as
//!   ISO 8601 in UTC (`2025-01-31T09:00:00Z`), and write CSV with a header row to a file.
//! - Clientele also: checks the store is up to date, counts the rows first (for its progress
//!   bar), reads each event's person's current `email` and `full_name` as JSON (since schema 8
//!   from `people.plain_fields`, the merged profile's values kept unpacked; before, from the
//!   packed profile itself; sqlite3 reads the person's first email and name from the other
//!   plain columns, as it can't read a packed profile), writes the
//!   provider's display name (`ResDiary`; sqlite3 writes the id `resdiary`), neutralizes formulas
//!   (text starting with `=`, `+`, `-`, `@` gets a leading `'`), writes Excel's flavour of CSV
//!   (the default: a UTF-8 BOM and CRLF line ends; sqlite3 writes LF and quotes more fields),
//!   writes into a temporary file renamed into place, and records the run in the export history.
//!
//! Each size runs `CLIENTELE_BENCH_RUNS` times (default 3), Clientele and sqlite3 alternately
//! after one untimed sqlite3 pass that brings the database into the page cache; the medians are
//! printed, with the highest peak resident memory of each program over its runs (`ru_maxrss`
//! from wait4, exact; each is started from a small launcher, see `procs::MeasuredCommand`):
//!
//! ```text
//! bench: export rows=… seconds=… sqlite3_seconds=… ratio=… rss_mb=… sqlite3_rss_mb=… file_mb=… runs=…
//! ```
//!
//! `ratio` is Clientele's time over sqlite3's (the target is ≤ 1.5). Nothing is asserted about
//! speed; the program fails only if the two files don't hold the same number of rows.
//! `CLIENTELE_BIN` and `SQLITE3` (default `sqlite3` on the PATH) choose the programs.

use chrono::DateTime;
use clientele_tests::bench_data::{DataSet, env_usize};
use clientele_tests::procs::{Measured, MeasuredCommand, serve_measure_request};
use clientele_tests::sibling_bin;
use serde_json::json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What both programs write: Clientele's columns, and the SQL that reads the same values.
const COLUMNS: [(&str, &str, &str); 6] = [
    (
        "When",
        "occurred_at",
        "strftime('%Y-%m-%dT%H:%M:%SZ', e.occurred_at / 1000, 'unixepoch')",
    ),
    ("Provider", "provider", "c.provider"),
    ("What", "kind", "e.kind"),
    ("Summary", "summary", "e.summary"),
    // Since schema 7 a person's merged profile is packed (zstd), which `sqlite3` can't read: the
    // baseline takes the person's first email and name from their plain columns — the same
    // people's values, without the JSON Clientele reads them from (a cheaper baseline, so a
    // stricter ratio).
    ("Email", "email", "json_extract(p.emails, '$[0]')"),
    ("Name", "full_name", "p.display_name"),
];

/// One size's measurements.
struct Figures {
    rows: u64,
    clientele: Vec<Measured>,
    sqlite3: Vec<Measured>,
    file_bytes: u64,
}

fn main() {
    // This program also starts the measured commands (see `MeasuredCommand`).
    serve_measure_request();
    let runs = env_usize("CLIENTELE_BENCH_RUNS", 3).max(1);
    let target = env_usize("CLIENTELE_BENCH_EXPORT_ROWS", 1_000_000).max(10) as u64;
    let clientele = sibling_bin("CLIENTELE_BIN", "clientele");
    let sqlite3 =
        std::env::var_os("SQLITE3").map_or_else(|| PathBuf::from("sqlite3"), PathBuf::from);
    if Command::new(&sqlite3)
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        panic!(
            "{} not found: install the Debian package sqlite3 (`make apt` does) or set SQLITE3",
            sqlite3.display()
        );
    }
    let data = DataSet::open_or_build("export_bench");
    let db = data.store.path().to_path_buf();
    // Outputs go beside the data folder: the same disk as the database, outside Clientele's folder.
    let parent = data.dir.parent().unwrap_or(Path::new("."));
    let out = tempfile::tempdir_in(parent).expect("a folder for the exported files");

    let raw =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database");
    let total: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM events e JOIN source_profiles sp ON sp.id = e.source_profile_id
             JOIN connections c ON c.id = sp.connection_id",
            [],
            |r| r.get(0),
        )
        .expect("count events");
    let total = total.max(0) as u64;
    eprintln!(
        "export_bench: {total} timeline events in {} people, {} deliveries",
        data.people, data.deliveries
    );
    let full = target.min(total);
    let mut sizes = vec![full / 10, full];
    sizes.retain(|n| *n > 0);
    sizes.dedup();

    // The cut for `n` rows: events before the whole second of the n-th oldest (so `to` is a
    // plain time and both programs compare the same integer).
    let cut = |n: u64| -> Option<i64> {
        if n >= total {
            return None;
        }
        let at: i64 = raw
            .query_row(
                "SELECT occurred_at FROM events INDEXED BY events_time
                 ORDER BY occurred_at LIMIT 1 OFFSET ?1",
                [n as i64],
                |r| r.get(0),
            )
            .expect("the n-th event's time");
        Some(at.div_euclid(1000))
    };
    let cuts: Vec<(u64, Option<i64>)> = sizes.iter().map(|n| (*n, cut(*n))).collect();
    drop(raw);

    // One untimed pass over the largest size: the database in the page cache for everyone.
    if let Some((_, largest)) = cuts.last() {
        let warm = out.path().join("warm-up.csv");
        run_sqlite3(&sqlite3, &db, *largest, &warm);
        let _ = std::fs::remove_file(&warm);
    }

    for (n, cut) in cuts {
        let name = format!("bench-events-{n}");
        import_profile(&clientele, &data.dir, out.path(), &name, cut);
        let mut f = Figures {
            rows: 0,
            clientele: Vec::new(),
            sqlite3: Vec::new(),
            file_bytes: 0,
        };
        for run in 0..runs {
            let ours = out.path().join("clientele.csv");
            let theirs = out.path().join("sqlite3.csv");
            let (m, rows) = run_clientele(&clientele, &data.dir, out.path(), &name, &ours);
            let s = run_sqlite3(&sqlite3, &db, cut, &theirs);
            let (our_lines, their_lines) = (lines(&ours), lines(&theirs));
            assert_eq!(
                our_lines, their_lines,
                "clientele wrote {our_lines} lines and sqlite3 {their_lines}: they must write the same rows"
            );
            assert_eq!(
                our_lines,
                rows + 1,
                "clientele reported {rows} rows but wrote {our_lines} lines (with the header)"
            );
            f.rows = rows;
            f.file_bytes = std::fs::metadata(&ours).map_or(0, |m| m.len());
            eprintln!(
                "export_bench: rows={rows} run={} seconds={:.2} sqlite3_seconds={:.2} rss_mb={:.1} sqlite3_rss_mb={:.1}",
                run + 1,
                m.seconds,
                s.seconds,
                mb(m.peak_rss_kb),
                mb(s.peak_rss_kb)
            );
            f.clientele.push(m);
            f.sqlite3.push(s);
            let _ = std::fs::remove_file(&ours);
            let _ = std::fs::remove_file(&theirs);
        }
        let ours = median(f.clientele.iter().map(|m| m.seconds).collect());
        let theirs = median(f.sqlite3.iter().map(|m| m.seconds).collect());
        let peak = |ms: &[Measured]| mb(ms.iter().map(|m| m.peak_rss_kb).max().unwrap_or(0));
        println!(
            "bench: export rows={} seconds={ours:.2} sqlite3_seconds={theirs:.2} ratio={:.2} rss_mb={:.1} sqlite3_rss_mb={:.1} file_mb={:.1} runs={runs}",
            f.rows,
            ours / theirs,
            peak(&f.clientele),
            peak(&f.sqlite3),
            f.file_bytes as f64 / 1_048_576.0
        );
    }
}

/// Imports (or replaces) the profile `name`, cut at `cut` (epoch seconds) when given.
fn import_profile(bin: &Path, data: &Path, scratch: &Path, name: &str, cut: Option<i64>) {
    let columns: Vec<_> = COLUMNS
        .iter()
        .map(|(header, source, _)| json!({"header": header, "source": source}))
        .collect();
    let mut profile = json!({
        "name": name,
        "rows": "events",
        "columns": columns,
        "format": {"type": "csv"},
    });
    if let Some(cut) = cut {
        let to = DateTime::from_timestamp(cut, 0).expect("a time");
        profile["filters"] =
            json!({"event_time": {"to": to.format("%Y-%m-%dT%H:%M:%SZ").to_string()}});
    }
    let file = scratch.join(format!("{name}.json"));
    std::fs::write(&file, profile.to_string()).expect("write the profile");
    let mut cmd = Command::new(bin);
    clientele_args(&mut cmd, data);
    let out = cmd
        .args(["export-profile", "import"])
        .arg(&file)
        .output()
        .expect("run clientele export-profile import");
    assert!(
        out.status.success(),
        "clientele export-profile import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `clientele --data-dir DATA --secrets env …`, measured or not.
fn clientele_args(cmd: &mut Command, data: &Path) {
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--secrets", "env"])
        .env_remove("CLIENTELE_DATA_DIR")
        .stdin(Stdio::null());
}

/// `clientele export --profile NAME --out FILE --json`, measured; with the rows it reports.
fn run_clientele(
    bin: &Path,
    data: &Path,
    scratch: &Path,
    name: &str,
    file: &Path,
) -> (Measured, u64) {
    // Its output goes to files, not pipes, so nothing waits on this program to read them.
    let stdout = scratch.join("clientele-stdout.json");
    let stderr = scratch.join("clientele-stderr.txt");
    let mut m = MeasuredCommand::new(bin);
    clientele_args(&mut m.cmd, data);
    m.cmd
        .args(["export", "--profile", name, "--json", "--out"])
        .arg(file)
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"));
    let m = m.run().expect("run clientele export");
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    assert!(
        m.status.success(),
        "clientele export failed ({}): {}{text}",
        m.status,
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let run: serde_json::Value = serde_json::from_str(&text).expect("the run as JSON");
    let rows = run["rows"].as_u64().expect("the run's rows");
    (m, rows)
}

/// `sqlite3 -csv -header DB "SELECT …" > FILE`, measured: the same rows and columns, in the same
/// order, through the same index and join order as Clientele's query.
fn run_sqlite3(bin: &Path, db: &Path, cut: Option<i64>, file: &Path) -> Measured {
    let select: Vec<String> = COLUMNS
        .iter()
        .map(|(header, _, sql)| format!("{sql} AS \"{header}\""))
        .collect();
    let bound = cut.map_or(String::new(), |s| {
        format!(" AND e.occurred_at < {}", s * 1000)
    });
    let sql = format!(
        "SELECT {} FROM events e INDEXED BY events_time
         CROSS JOIN source_profiles sp CROSS JOIN connections c
         LEFT JOIN people p ON p.id = sp.person_id
         WHERE sp.id = e.source_profile_id AND c.id = sp.connection_id{bound}
         ORDER BY e.occurred_at, e.delivery_id, e.seq;",
        select.join(", ")
    );
    let mut m = MeasuredCommand::new(bin);
    m.cmd
        .args(["-csv", "-header"])
        .arg(db)
        .arg(&sql)
        .stdin(Stdio::null())
        .stdout(File::create(file).expect("sqlite3's output file"));
    let m = m.run().expect("run sqlite3");
    assert!(m.status.success(), "sqlite3 failed ({}): {sql}", m.status);
    m
}

/// Lines in a file (rows, with the header).
fn lines(path: &Path) -> u64 {
    use std::io::Read;
    let mut file = File::open(path).expect("open an exported file");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        match file.read(&mut buf).expect("read an exported file") {
            0 => return n,
            len => n += buf[..len].iter().filter(|b| **b == b'\n').count() as u64,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
