//! `read_bench`: the reading benchmark of `make bench`.
//!
//! It builds a realistic data set through the real store (`clientele_tests::bench_data`: every
//! delivery signed, verified, stored with `Writer::ingest` in groups as the listener does, and
//! derived as it goes) and then measures what staff wait for, each call as the app's commands
//! make it (`clientele_engine::Operations`): on a reader connection opened for the call, and with
//! the number of people found that the Customers screen shows beside the page:
//! - opening a person (`Reader::person`: profile, linked records, whole timeline);
//! - searching by name, email or phone prefix (`Reader::people_page` with a search, 50 results
//!   and their count), and by two common first names together (each matches thousands, few or
//!   nobody both);
//! - the first page of people (`Reader::people_page` without a search, 50 results);
//! - the Activity list (`Reader::activity`: the latest 200 deliveries and refusals, each
//!   delivery with its first sentence and the name of the person it was about), for every
//!   provider and for one.
//!
//! The data set: `CLIENTELE_BENCH_PEOPLE` people (default 200,000) known to one to three of the
//! five providers, and `CLIENTELE_BENCH_DELIVERIES` deliveries (default 1,000,000) — see
//! `bench_data` for what they hold.
//!
//! Prints, one line per figure (nothing is asserted):
//!
//! ```text
//! bench: generate deliveries=… stored=… duplicates=… people=… profiles=… seconds=… deliveries_per_s=…
//! bench: timeline people=… deliveries=… p50_ms=… p95_ms=… events_avg=…
//! bench: search people=… deliveries=… p50_ms=… p95_ms=… queries=…
//! bench: search kind=name|email|phone people=… p50_ms=… p95_ms=… results_avg=…
//! bench: search kind=two_common_words people=… p50_ms=… p95_ms=… results_avg=… queries=…
//! bench: people_page people=… deliveries=… p50_ms=… p95_ms=…
//! bench: activity filter=all|provider deliveries=… p50_ms=… p95_ms=… rows_avg=… named_avg=…
//! bench: storage deliveries=… db_mb=… bodies_mb=… ratio=…
//! ```
//!
//! (`generate` only when the data set is built, not when it is reused.)
//! `CLIENTELE_BENCH_QUERIES` (default 400) sets how many of each query are timed.
//! `CLIENTELE_BENCH_DATA=DIR` keeps the data set in DIR and reuses it when it was built with the
//! same sizes (building 1,000,000 deliveries takes minutes).

use clientele_core::Provider;
use clientele_store::{ActivityFilter, ActivityRow};
use clientele_tests::bench_data::{DataSet, Rng, env_usize};
use std::time::Instant;

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Times `f` once per input; returns (p50, p95) in ms.
fn time_each<T>(inputs: &[T], mut f: impl FnMut(&T)) -> (f64, f64) {
    let mut ms: Vec<f64> = inputs
        .iter()
        .map(|i| {
            let started = Instant::now();
            f(i);
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.50), percentile(&ms, 0.95))
}

fn main() {
    let queries = env_usize("CLIENTELE_BENCH_QUERIES", 400).max(1);
    let data = DataSet::open_or_build("read_bench");
    let store = &data.store;

    // Inputs: random people, and search text taken from their own details.
    let raw = rusqlite::Connection::open(store.path()).expect("open");
    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).expect("count") };
    let people_total = count("SELECT COUNT(*) FROM people");
    let deliveries_total = count("SELECT COUNT(*) FROM deliveries");
    let mut sample: Vec<(i64, String, String, String)> = raw
        .prepare("SELECT id, display_name, emails, phones FROM people ORDER BY random() LIMIT ?1")
        .expect("prepare")
        .query_map([queries as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // The 20 most common first names, for searches of two of them together.
    let common: Vec<String> = raw
        .prepare(
            "SELECT lower(substr(display_name, 1, instr(display_name, ' ') - 1)) AS first
             FROM people WHERE instr(display_name, ' ') > 1
             GROUP BY first ORDER BY COUNT(*) DESC LIMIT 20",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    drop(raw);
    storage(store.path(), deliveries_total);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    // One page of people as `Api::search_people` reads it.
    let page = |search: Option<&str>| -> usize {
        let reader = store.reader().expect("reader");
        reader
            .people_page(search, 50, 0)
            .expect("people")
            .items
            .len()
    };

    let mut events = 0usize;
    let ids: Vec<i64> = sample.iter().map(|s| s.0).collect();
    let (p50, p95) = time_each(&ids, |id| {
        let reader = store.reader().expect("reader");
        events += reader.person(*id).expect("person").timeline.len();
    });
    println!(
        "bench: timeline people={people_total} deliveries={deliveries_total} p50_ms={p50:.2} p95_ms={p95:.2} events_avg={:.1}",
        events as f64 / ids.len() as f64
    );

    // What staff type: the start of a first or last name (or both), of an email, of a number.
    let mut by_kind: Vec<(&str, Vec<String>)> =
        vec![("name", vec![]), ("email", vec![]), ("phone", vec![])];
    for (_, name, emails, phones) in sample.drain(..) {
        let words: Vec<&str> = name.split_whitespace().collect();
        let name_query = match rng.below(3) {
            0 => words.first().map(|w| w.chars().take(3).collect::<String>()),
            1 => words.last().map(|w| w.to_string()),
            _ => Some(name.clone()),
        };
        if let Some(q) = name_query.filter(|q| !q.is_empty()) {
            by_kind[0].1.push(q);
        }
        let emails: Vec<String> = serde_json::from_str(&emails).unwrap_or_default();
        if let Some(e) = emails.first() {
            by_kind[1]
                .1
                .push(e.chars().take(4 + rng.below(8)).collect());
        }
        let phones: Vec<String> = serde_json::from_str(&phones).unwrap_or_default();
        if let Some(p) = phones.first() {
            // "07900 12…" as written nationally, 5 to 9 digits.
            let national = format!("0{}", p.trim_start_matches("+44"));
            by_kind[2]
                .1
                .push(national.chars().take(5 + rng.below(5)).collect());
        }
    }
    let mut all = Vec::new();
    for (kind, inputs) in &by_kind {
        let mut results = 0usize;
        let (p50, p95) = time_each(inputs, |q| results += page(Some(q)));
        all.extend(inputs.iter().cloned());
        println!(
            "bench: search kind={kind} people={people_total} p50_ms={p50:.2} p95_ms={p95:.2} results_avg={:.1} queries={}",
            results as f64 / inputs.len().max(1) as f64,
            inputs.len()
        );
    }
    let (p50, p95) = time_each(&all, |q| {
        page(Some(q));
    });
    println!(
        "bench: search people={people_total} deliveries={deliveries_total} p50_ms={p50:.2} p95_ms={p95:.2} queries={}",
        all.len()
    );
    // Each word alone matches thousands of people; together few or nobody.
    let pairs: Vec<String> = common
        .iter()
        .enumerate()
        .flat_map(|(i, a)| common[i + 1..].iter().map(move |b| format!("{a} {b}")))
        .collect();
    let mut results = 0usize;
    let (p50, p95) = time_each(&pairs, |q| results += page(Some(q)));
    println!(
        "bench: search kind=two_common_words people={people_total} p50_ms={p50:.2} p95_ms={p95:.2} results_avg={:.1} queries={}",
        results as f64 / pairs.len().max(1) as f64,
        pairs.len()
    );
    let pages: Vec<()> = vec![(); queries];
    let (p50, p95) = time_each(&pages, |_| {
        page(None);
    });
    println!(
        "bench: people_page people={people_total} deliveries={deliveries_total} p50_ms={p50:.2} p95_ms={p95:.2}"
    );

    // The Activity screen's list, as it opens and with a provider chosen.
    for (filter, provider) in [("all", None), ("provider", Some(Provider::Vagaro))] {
        let (mut rows, mut named) = (0usize, 0usize);
        let (p50, p95) = time_each(&pages, |_| {
            let reader = store.reader().expect("reader");
            let listed = reader
                .activity(&ActivityFilter {
                    deliveries: true,
                    rejections: true,
                    provider,
                    limit: 200,
                    ..Default::default()
                })
                .expect("activity");
            rows += listed.len();
            named += listed
                .iter()
                .filter(|r| {
                    matches!(
                        r,
                        ActivityRow::Delivery {
                            person: Some(_),
                            ..
                        }
                    )
                })
                .count();
        });
        println!(
            "bench: activity filter={filter} deliveries={deliveries_total} p50_ms={p50:.2} p95_ms={p95:.2} rows_avg={:.1} named_avg={:.1}",
            rows as f64 / pages.len() as f64,
            named as f64 / pages.len() as f64
        );
    }
}

/// What the data folder holding `db` takes on disk, against the raw bodies it keeps (as received,
/// unpacked): every file
/// in the folder after a checkpoint that empties the WAL, less the database's free pages (space
/// SQLite reuses, not data). Bytes per byte of body is the figure a laptop's or a relay's disk
/// feels.
fn storage(db: &std::path::Path, deliveries: i64) {
    let raw = rusqlite::Connection::open(db).expect("open");
    raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let pragma = |name: &str| -> i64 {
        raw.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .expect("pragma")
    };
    let free = pragma("freelist_count") * pragma("page_size");
    // The raw bodies as received: a packed body counts its unpacked size.
    let mut bodies: i64 = 0;
    let mut stmt = raw
        .prepare("SELECT body_codec, body FROM deliveries")
        .expect("prepare");
    let mut rows = stmt.query([]).expect("bodies");
    while let Some(row) = rows.next().expect("a body") {
        let body = clientele_store::pack::stored_body(
            row.get(0).expect("body_codec"),
            row.get(1).expect("body"),
        )
        .expect("a stored body reads back");
        bodies += body.len() as i64;
    }
    drop(rows);
    drop(stmt);
    drop(raw);
    let folder = db.parent().expect("the data folder");
    let files: u64 = std::fs::read_dir(folder)
        .expect("the data folder")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let used = files as f64 - free as f64;
    let mb = |b: f64| b / (1024.0 * 1024.0);
    println!(
        "bench: storage deliveries={deliveries} db_mb={:.1} bodies_mb={:.1} ratio={:.2}",
        mb(used),
        mb(bodies as f64),
        used / (bodies.max(1) as f64)
    );
}
