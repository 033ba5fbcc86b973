//! `forget_bench`: forgetting one person in the reading data set (`make bench`).
//!
//! The data set (`clientele_tests::bench_data`, by default 1,000,000 deliveries over 200,000
//! people) is copied first — it is shared with the other benchmarks and must not change — and
//! marked as written with `secure_delete` on, as a database this version created is. Then one
//! person, picked at random among those with more than one record, is forgotten as
//! `clientele customers forget` does it (`Writer::forget` finds the records by hashing every
//! source profile's reference with the forget's salt, then erases; `Writer::wipe_forgotten`
//! truncates the WAL). For comparison, a full `VACUUM` of the copy: what the first forget on a
//! database from before `secure_delete` costs once, and what it would cost to give the freed
//! space back to the file system each time.
//!
//! Also: the check every group of arriving deliveries makes for anything forgotten, when nothing
//! is (`screen_us`: the two indexed reads of `forget::screen`, timed 10,000 times).
//!
//! Prints (nothing is asserted):
//!
//! ```text
//! bench: forget people=… deliveries=… records=… erased=… seconds=… transaction_seconds=… wipe_seconds=… vacuum_seconds=… db_mb=… screen_us=…
//! ```

use chrono::Utc;
use clientele_core::hand::{ErasureReason, RecordRef, record_hash};
use clientele_store::{ForgetRequest, Store};
use clientele_tests::bench_data::{DataSet, Rng};
use std::time::{Duration, Instant};

fn main() {
    let data = DataSet::open_or_build("forget_bench");
    let copy = tempfile::tempdir().expect("temp dir");
    {
        // A clean copy: everything checkpointed into the one file.
        let raw = rusqlite::Connection::open(data.store.path()).expect("open");
        raw.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }
    let db = copy.path().join(clientele_store::DATABASE_FILE);
    std::fs::copy(data.store.path(), &db).expect("copy the data set");
    // On disk before anything is timed, as a desk's database is: otherwise the forget's fsyncs
    // would write out the whole fresh copy (3 GB at a million deliveries).
    std::fs::File::open(&db)
        .and_then(|f| f.sync_all())
        .expect("sync the copy");
    let db_mb = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let store = Store::open_dir(copy.path()).expect("open the copy");
    let raw = rusqlite::Connection::open(&db).expect("open");
    raw.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES ('secure_delete_since', '0')",
        [],
    )
    .expect("mark");

    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).expect("count") };
    let people = count("SELECT COUNT(*) FROM people");
    let deliveries = count("SELECT COUNT(*) FROM deliveries");
    let candidates: Vec<i64> = raw
        .prepare(
            "SELECT person_id FROM source_profiles WHERE person_id IS NOT NULL
             GROUP BY person_id HAVING COUNT(*) > 1 ORDER BY person_id LIMIT 5000",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("people");
    let mut rng = Rng(0x5eed_f0f9);
    let person = candidates[rng.below(candidates.len().max(1))];
    let scope = store
        .reader()
        .expect("reader")
        .forget_scope(person)
        .expect("scope");

    let salt = b"forget-bench-salt".to_vec();
    let request = ForgetRequest {
        uid: "bench-forget".into(),
        at: Utc::now(),
        computer: "bench".into(),
        reason: ErasureReason::Request,
        record_hashes: scope
            .records
            .iter()
            .map(|r: &RecordRef| record_hash(&salt, r))
            .collect(),
        salt,
        keep_forgetting: true,
    };
    let mut writer = store.writer().expect("writer");
    let started = Instant::now();
    let report = writer.forget(&request).expect("forget");
    let transaction = started.elapsed();
    let wipe = writer
        .wipe_forgotten(Duration::from_secs(10))
        .expect("wipe");
    let total = started.elapsed();
    assert!(
        !wipe.vacuumed,
        "the copy is marked: no VACUUM in the measured forget"
    );

    // The per-group check when nothing is kept forgotten (the other database: nothing erased).
    let fresh = rusqlite::Connection::open(data.store.path()).expect("open");
    let runs = 10_000;
    let screen_started = Instant::now();
    for _ in 0..runs {
        let erased: bool = fresh
            .prepare_cached("SELECT 1 FROM settings WHERE key = 'erasure_key'")
            .and_then(|mut s| s.exists([]))
            .expect("screen");
        let suppressing: bool = fresh
            .prepare_cached("SELECT 1 FROM suppressions WHERE lifted_at IS NULL LIMIT 1")
            .and_then(|mut s| s.exists([]))
            .expect("screen");
        std::hint::black_box((erased, suppressing));
    }
    let screen_us = screen_started.elapsed().as_secs_f64() * 1e6 / runs as f64;

    let vacuum_started = Instant::now();
    raw.execute_batch("VACUUM").expect("vacuum");
    let vacuum = vacuum_started.elapsed();

    println!(
        "bench: forget people={people} deliveries={deliveries} records={} erased={} seconds={:.3} transaction_seconds={:.3} wipe_seconds={:.3} vacuum_seconds={:.1} db_mb={db_mb:.0} screen_us={screen_us:.2} checkpointed={}",
        report.records,
        report.deliveries,
        total.as_secs_f64(),
        transaction.as_secs_f64(),
        (total - transaction).as_secs_f64(),
        vacuum.as_secs_f64(),
        wipe.checkpointed
    );
}
