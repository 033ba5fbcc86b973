//! `bench: merge …` — how long merging two people and splitting a record out of one take in the
//! reading data set (`CLIENTELE_BENCH_DELIVERIES` deliveries over `CLIENTELE_BENCH_PEOPLE`
//! people, 1,000,000 over 200,000 by default; built by `read_bench` and shared), each as one
//! `Writer::add_decision` — the decision, relinking the people it touches and rebuilding their
//! rows, in one committed transaction — on a copy of the data set so it stays as built.
//!
//! Prints:
//! bench: merge people=… deliveries=… merges=… splits=… p50_ms=… p95_ms=… merge_p95_ms=… split_p95_ms=… undo_p95_ms=…

use chrono::Utc;
use clientele_core::hand::{Decision, RecordRef};
use clientele_store::Store;
use clientele_tests::bench_data::{DataSet, Rng, env_usize};
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut ms: Vec<f64>) -> Vec<f64> {
    ms.sort_by(f64::total_cmp);
    ms
}

fn main() {
    let rounds = env_usize("CLIENTELE_BENCH_HAND_ROUNDS", 100).max(1);
    let data = DataSet::open_or_build("hand_bench");
    // A copy: decisions would change the shared data set for the other benchmarks.
    let copy = tempfile::tempdir().expect("temp dir");
    {
        let raw = rusqlite::Connection::open(data.store.path()).expect("open");
        raw.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .expect("checkpoint");
    }
    std::fs::copy(
        data.store.path(),
        copy.path().join(clientele_store::DATABASE_FILE),
    )
    .expect("copy the data set");
    // On disk before anything is timed (the decisions' fsyncs would write the fresh copy out).
    std::fs::File::open(copy.path().join(clientele_store::DATABASE_FILE))
        .and_then(|f| f.sync_all())
        .expect("sync the copy");
    let store = Store::open_dir(copy.path()).expect("open the copy");
    let raw = rusqlite::Connection::open(store.path()).expect("open");
    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).expect("count") };
    let people_total = count("SELECT COUNT(*) FROM people");
    let deliveries_total = count("SELECT COUNT(*) FROM deliveries");
    let people: Vec<i64> = raw
        .prepare("SELECT id FROM people ORDER BY random() LIMIT ?1")
        .expect("prepare")
        .query_map([(rounds * 2) as i64], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // People with more than one record, to split one out.
    let several: Vec<i64> = raw
        .prepare(
            "SELECT person_id FROM source_profiles WHERE person_id IS NOT NULL
             GROUP BY person_id HAVING COUNT(*) > 1 ORDER BY random() LIMIT ?1",
        )
        .expect("prepare")
        .query_map([rounds as i64], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    drop(raw);
    let reader = store.reader().expect("reader");
    let first =
        |person: i64| -> Option<RecordRef> { reader.records_of(person).ok()?.into_iter().next() };
    let mut w = store.writer().expect("writer");
    let mut rng = Rng(0x5EED_0F4A_4D00_0001);
    let mut uid = 0u64;
    let mut timed = |w: &mut clientele_store::Writer, decision: &Decision| -> (f64, String) {
        uid += 1;
        let id = format!("bench-{uid}-{}", rng.below(1 << 30));
        let started = Instant::now();
        w.add_decision(&id, decision, Utc::now(), "Bench")
            .expect("decide");
        (started.elapsed().as_secs_f64() * 1000.0, id)
    };
    let mut merges = Vec::new();
    let mut undos = Vec::new();
    for pair in people.chunks(2) {
        let [a, b] = pair else { continue };
        let (Some(a), Some(b)) = (first(*a), first(*b)) else {
            continue;
        };
        let (ms, id) = timed(&mut w, &Decision::Merge { records: [a, b] });
        merges.push(ms);
        // Undo every other one, so later rounds meet both kinds of people.
        if merges.len() % 2 == 0 {
            let started = Instant::now();
            w.undo_decision(&id, Utc::now(), "Bench").expect("undo");
            undos.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mut splits = Vec::new();
    for person in &several {
        let Some(record) = first(*person) else {
            continue;
        };
        splits.push(timed(&mut w, &Decision::Split { record }).0);
    }
    let all = sorted(merges.iter().chain(&splits).copied().collect());
    let (merges, splits, undos) = (sorted(merges), sorted(splits), sorted(undos));
    println!(
        "bench: merge people={people_total} deliveries={deliveries_total} merges={} splits={} p50_ms={:.2} p95_ms={:.2} merge_p95_ms={:.2} split_p95_ms={:.2} undo_p95_ms={:.2}",
        merges.len(),
        splits.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.95),
        percentile(&merges, 0.95),
        percentile(&splits, 0.95),
        percentile(&undos, 0.95),
    );
}
