//! Packing the bodies of a database written before bodies were packed (schema 6 and earlier):
//! what migration 7's upgrade step calls, inside its transaction.

use crate::StoreError;
use crate::pack::{BODY_AS_RECEIVED, store_body};
use rusqlite::params;

/// How many bodies are read and rewritten at a time (bounded memory, progress between batches).
const BATCH: i64 = 2_000;

/// Packs every body stored as received (`body_codec = 0`) that packs smaller, in id order, in
/// batches, inside the caller's transaction; reports `(done, total)` after each batch, `total`
/// being the bodies stored as received when it started. Returns how many were packed. Erased
/// (empty) bodies and bodies that don't pack smaller stay as they are. Running it again does
/// nothing more than re-check the bodies that stayed.
pub(crate) fn pack_stored_bodies(
    tx: &rusqlite::Transaction<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    let total: i64 = tx.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE body_codec = ?1",
        [BODY_AS_RECEIVED],
        |r| r.get(0),
    )?;
    let total = total as u64;
    progress(0, total);
    let mut read = tx.prepare_cached(
        "SELECT id, body FROM deliveries WHERE id > ?1 AND body_codec = ?2 ORDER BY id LIMIT ?3",
    )?;
    let mut write =
        tx.prepare_cached("UPDATE deliveries SET body = ?2, body_codec = ?3 WHERE id = ?1")?;
    let (mut after, mut done, mut packed) = (0i64, 0u64, 0u64);
    loop {
        let batch: Vec<(i64, Vec<u8>)> = read
            .query_map(params![after, BODY_AS_RECEIVED, BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (id, body) in &batch {
            let (codec, stored) = store_body(body);
            if codec != BODY_AS_RECEIVED {
                write.execute(params![id, stored, codec])?;
                packed += 1;
            }
        }
        after = last;
        done += batch.len() as u64;
        progress(done.min(total), total);
    }
    Ok(packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{connect, delivery, temp_store};
    use clientele_core::Provider;

    /// Bodies stored as received (as schema 6 wrote them) are packed, read back byte for byte,
    /// and the database's deliveries shrink.
    #[test]
    fn packs_bodies_stored_as_received_and_reads_them_back() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let c = connect(&mut w, Provider::Vagaro, "main");
        let bodies: Vec<Vec<u8>> = (0..4500)
            .map(|i| {
                format!(
                    r#"{{"id":"{i}","createdDate":"2024-03-15T09:00:00Z","type":"customer","action":"updated","payload":{{"customerId":"va_{i}","firstName":"Ana","lastName":"Number{i}","email":"ana{i}@example.com","mobilePhone":"+4479111{i:05}"}}}}"#
                )
                .into_bytes()
            })
            .chain([b"{}".to_vec(), b"\xff\x00 not json".to_vec()])
            .collect();
        let new: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| delivery(c, &format!("k{i}"), b))
            .collect();
        w.ingest(&new, &[]).unwrap();
        drop(w);
        // As a schema-6 database holds them.
        let mut conn = rusqlite::Connection::open(store.path()).unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let tx = conn.transaction().unwrap();
        for (id, body) in ids.iter().zip(&bodies) {
            tx.execute(
                "UPDATE deliveries SET body = ?2, body_codec = 0 WHERE id = ?1",
                params![id, body],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let stored_bytes = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT SUM(length(body)) FROM deliveries", [], |r| r.get(0))
                .unwrap()
        };
        let before = stored_bytes(&conn);

        let tx = conn.transaction().unwrap();
        let mut reports = Vec::new();
        let packed =
            pack_stored_bodies(&tx, &mut |done, total| reports.push((done, total))).unwrap();
        tx.commit().unwrap();
        assert_eq!(packed, 4500, "all but the two that don't pack smaller");
        assert_eq!(reports.first(), Some(&(0, 4502)));
        assert_eq!(reports.last(), Some(&(4502, 4502)));
        assert_eq!(reports.len(), 1 + 3, "in batches");
        let after = stored_bytes(&conn);
        assert!(after * 4 < before * 3, "{before} bytes became {after}");

        let reader = store.reader().unwrap();
        for (id, body) in ids.iter().zip(&bodies) {
            assert_eq!(&reader.delivery(*id).unwrap().body, body);
        }
        // Again: nothing left to pack.
        let tx = conn.transaction().unwrap();
        assert_eq!(pack_stored_bodies(&tx, &mut |_, _| {}).unwrap(), 0);
    }

    /// Measures packing on a COPY of a real data set (it is changed in place):
    /// `CLIENTELE_PACK_DB=/tmp/copy/clientele.db cargo test --release -p clientele-store
    /// measure_packing -- --ignored --nocapture`. Prints the space `deliveries` and its indexes
    /// take before and after (dbstat, after a VACUUM), bytes per body, and pack/unpack cost per
    /// body at levels 1 and 3.
    #[test]
    #[ignore = "a measurement, not a check: it needs a copy of a real data set (CLIENTELE_PACK_DB) and changes it"]
    fn measure_packing() {
        let Some(path) = std::env::var_os("CLIENTELE_PACK_DB") else {
            panic!("set CLIENTELE_PACK_DB to a COPY of a clientele.db");
        };
        let path = std::path::PathBuf::from(path);
        drop(crate::Store::open(&path).unwrap()); // migrates to the current schema
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let sizes = |conn: &rusqlite::Connection, when: &str| {
            conn.execute_batch("VACUUM").unwrap();
            let mut stmt = conn
                .prepare(
                    "SELECT name, SUM(pgsize) FROM dbstat
                     WHERE name = 'deliveries' OR name IN
                        (SELECT name FROM sqlite_schema WHERE tbl_name = 'deliveries')
                     GROUP BY name ORDER BY name",
                )
                .unwrap();
            let rows: Vec<(String, i64)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let (n, bodies, stored): (i64, i64, i64) = conn
                .query_row(
                    "SELECT COUNT(*), SUM(length(body)), SUM(length(body)) FROM deliveries",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            let file = std::fs::metadata(&path).unwrap().len();
            for (name, bytes) in &rows {
                println!(
                    "measure: {when} {name} mb={:.1} bytes_per_delivery={:.0}",
                    *bytes as f64 / 1048576.0,
                    *bytes as f64 / n as f64
                );
            }
            println!(
                "measure: {when} deliveries={n} stored_body_bytes_avg={:.0} body_bytes={bodies} file_mb={:.1}",
                stored as f64 / n as f64,
                file as f64 / 1048576.0
            );
        };
        sizes(&conn, "before");
        let raw: Vec<Vec<u8>> = conn
            .prepare("SELECT body FROM deliveries WHERE body_codec = 0 ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let raw_total: usize = raw.iter().map(Vec::len).sum();
        let started = std::time::Instant::now();
        let packed: usize = raw
            .iter()
            .map(|b| crate::pack::pack(crate::pack::Dict::Bodies, b).len())
            .sum();
        println!(
            "measure: pack::pack pack_us={:.2} bytes_avg={:.0}",
            started.elapsed().as_secs_f64() * 1e6 / raw.len() as f64,
            packed as f64 / raw.len() as f64
        );
        // Each level three times, interleaved: the machine is shared and noisy.
        for level in [-1, 1, 3, -1, 1, 3, -1, 1, 3] {
            let dictionary =
                zstd::dict::EncoderDictionary::copy(crate::pack::Dict::Bodies.bytes(), level);
            let mut c = zstd::bulk::Compressor::with_prepared_dictionary(&dictionary).unwrap();
            c.include_checksum(false).unwrap();
            let started = std::time::Instant::now();
            let packed: usize = raw.iter().map(|b| c.compress(b).unwrap().len()).sum();
            let us = started.elapsed().as_secs_f64() * 1e6 / raw.len() as f64;
            println!(
                "measure: level={level} pack_us={us:.2} bytes_avg={:.0} raw_avg={:.0}",
                packed as f64 / raw.len() as f64,
                raw_total as f64 / raw.len() as f64
            );
        }
        let tx = conn.transaction().unwrap();
        let started = std::time::Instant::now();
        let packed = pack_stored_bodies(&tx, &mut |_, _| {}).unwrap();
        tx.commit().unwrap();
        println!(
            "measure: pack_stored_bodies packed={packed} of {} seconds={:.2} (with the writes)",
            raw.len(),
            started.elapsed().as_secs_f64()
        );
        let stored: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT body_codec, body FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let started = std::time::Instant::now();
        let mut same = true;
        for ((codec, blob), original) in stored.into_iter().zip(&raw) {
            same &= &crate::stored::body(codec, blob).unwrap() == original;
        }
        println!(
            "measure: unpack_us={:.2} byte_for_byte={same}",
            started.elapsed().as_secs_f64() * 1e6 / raw.len() as f64
        );
        assert!(same);
        sizes(&conn, "after");
    }
}
