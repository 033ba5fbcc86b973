//! A 100,000-row export streams: the heap the export uses stays flat however many rows it
//! writes. Measured with a counting allocator (this test binary only), so the test fails if rows
//! are ever collected in memory — by the query, the mapping, or the writers.
//!
//! The store is filled with a bulk insert into the real schema (going through 100,000 webhook
//! deliveries would take minutes in a debug build); the export then runs through the real store
//! code.

#![allow(unsafe_code)] // the counting allocator below

use chrono::Utc;
use clientele_core::export::ExportProfile;
use clientele_store::export::{ExportRequest, RunOutcome, run_export};
use clientele_store::{Store, pack};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, counting live bytes and the high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROWS: i64 = 100_000;
/// Heap growth allowed during an export, whatever its size. Collecting the rows would take
/// well over 10× this (each row's cells alone are ~150 bytes; the file is ~12 MB).
const HEAP_BUDGET: usize = 4 * 1024 * 1024;

/// Inserts `ROWS` people, each with one source record, straight into the schema — generated
/// inside SQLite, which is much faster than 200,000 statements from a debug build.
fn bulk_people(store: &Store) {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute_batch(&format!(
        r#"
        BEGIN;
        INSERT INTO connections (id, provider, name, requires_secret, created_at)
        VALUES (1, 'tiquo', 'shop', 0, 0);
        CREATE TEMP TABLE n AS
          WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {ROWS})
          SELECT id,
                 CASE WHEN id % 1000 = 0 THEN '=HYPERLINK("http://x/' || id || '","click")'
                      ELSE 'Customer Número ' || id END AS name,
                 'customer' || id || '@example.com' AS email,
                 '+4479' || printf('%08d', id) AS phone,
                 1704067200000 + id * 60000 AS at
          FROM n;
        INSERT INTO source_profiles (id, connection_id, customer_ref, person_id, state,
                                     first_event_at, last_event_at)
          SELECT id, 1, 'cust_' || id, id, '{{}}', at, at FROM n;
        INSERT INTO people (id, display_name, emails, phones, profile, first_event_at,
                            last_event_at, deleted)
          SELECT id, name, json_array(email), json_array(phone),
                 json_object(
                   'full_name', json_object('value', name, 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'email', json_object('value', email, 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'phone', json_object('value', phone, 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'postal_code', json_object('value', printf('%05d', id % 100000), 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'loyalty_points', json_object('value', id % 500, 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'tags', json_object('value', json_array('VIP', 'newsletter'), 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z'),
                   'created_at', json_object('value', '2023-12-31T10:00:00Z', 'provider', 'tiquo', 'connection', 'shop', 'at', '2024-01-01T00:00:00Z')
                 ),
                 at, at, 0
          FROM n;
        DROP TABLE n;
        COMMIT;
        "#
    ))
    .unwrap();
    // The store keeps merged profiles packed: pack what SQLite wrote as text.
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut read = tx
            .prepare("SELECT id, profile FROM people ORDER BY id")
            .unwrap();
        let mut write = tx
            .prepare("UPDATE people SET profile = ?2 WHERE id = ?1")
            .unwrap();
        let rows: Vec<(i64, String)> = read
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, profile) in rows {
            let packed = pack::pack(pack::Dict::Profiles, profile.as_bytes());
            write.execute(rusqlite::params![id, packed]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Ten columns for CSV; five for XLSX (text, number, date), which is several times slower per
/// cell in a debug build — the memory behaviour is the same.
fn profile(format: &str) -> ExportProfile {
    let columns = if format == "csv" {
        r#"{"header": "Id", "source": "id"},
           {"header": "Name", "source": "full_name", "transform": {"trim": true}},
           {"header": "Email", "source": "email"},
           {"header": "Phone", "source": "phone"},
           {"header": "Postcode", "source": "postal_code"},
           {"header": "Points", "source": "loyalty_points"},
           {"header": "Tags", "source": "tags", "transform": {"join": "|"}},
           {"header": "Since", "source": "created_at"},
           {"header": "Last seen", "source": "last_seen"},
           {"header": "From", "source": "providers"}"#
    } else {
        r#"{"header": "Id", "source": "id"},
           {"header": "Name", "source": "full_name"},
           {"header": "Postcode", "source": "postal_code"},
           {"header": "Points", "source": "loyalty_points"},
           {"header": "Last seen", "source": "last_seen"}"#
    };
    ExportProfile::from_json(&format!(
        r#"{{"name": "big-{format}", "rows": "people", "format": {{"type": "{format}"}},
            "columns": [{columns}]}}"#
    ))
    .unwrap()
}

/// Runs `format` over the big store; returns (rows written, peak heap growth, progress calls).
fn export(store: &Store, dir: &std::path::Path, format: &str) -> (u64, usize, usize) {
    let p = profile(format);
    store
        .writer()
        .unwrap()
        .save_export_profile(&p, Utc::now())
        .unwrap();
    let out = dir.join(format!("big.{format}"));
    let mut calls = 0;
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let run = run_export(
        store,
        &ExportRequest {
            profile: &p.name,
            out: &out,
            now: Utc::now(),
            full: false,
        },
        &mut |progress| {
            calls += 1;
            assert!(progress.total == ROWS as u64, "{progress:?}");
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    let growth = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    assert_eq!(run.outcome, RunOutcome::Succeeded);
    (run.rows, growth, calls)
}

#[test]
fn a_100k_row_export_streams_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(&dir.path().join("data")).unwrap();
    bulk_people(&store);

    let (rows, growth, calls) = export(&store, dir.path(), "csv");
    assert_eq!(rows, ROWS as u64);
    assert!(
        calls >= (ROWS / 1000) as usize,
        "progress is reported as rows stream: {calls} calls"
    );
    assert!(
        growth < HEAP_BUDGET,
        "CSV export grew the heap by {growth} bytes for {ROWS} rows: rows are being collected"
    );
    // Read back: every row, in order, with the right cells.
    let bytes = std::fs::read(dir.path().join("big.csv")).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let mut reader = csv::ReaderBuilder::new().from_reader(&bytes[3..]);
    let mut n = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let id = i as i64 + 1;
        assert_eq!(&record[0], id.to_string());
        assert_eq!(&record[4], format!("{:05}", id % 100_000));
        if id % 1000 == 0 {
            assert!(record[1].starts_with("'=HYPERLINK"), "{record:?}");
        }
        n += 1;
    }
    assert_eq!(n, ROWS);

    let (rows, growth, _) = export(&store, dir.path(), "xlsx");
    assert_eq!(rows, ROWS as u64);
    assert!(
        growth < HEAP_BUDGET,
        "XLSX export grew the heap by {growth} bytes for {ROWS} rows: rows are being collected"
    );
    let size = std::fs::metadata(dir.path().join("big.xlsx"))
        .unwrap()
        .len();
    assert!(size > 1_000_000, "a real workbook: {size} bytes");
}
