//! Writing what arrives: genuine deliveries (the source of truth) and the capped log of refused
//! requests. One call is one transaction, so the listener can commit a whole group of deliveries
//! with one fsync.

use crate::stored::Unknown;
use crate::time::to_millis;
use crate::{StoreError, Writer};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// How many refused requests are kept. Forged traffic must not be able to fill the disk.
pub const REJECTION_CAP: i64 = 10_000;
/// Longest provider or connection name kept with a refusal (they come from the request's path).
const REJECTION_NAME_CHARS: usize = 100;
/// Longest reason kept with a refusal.
const REJECTION_REASON_CHARS: usize = 500;

/// `text` cut to `max` characters (marked with "…"). The request path is the sender's to choose:
/// without this, 10,000 refusals naming a 400 kB connection would take 4 GB (found by the
/// hostile-input fault test).
fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// A genuine delivery, ready to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub connection_id: i64,
    pub received_at: DateTime<Utc>,
    pub dedupe_key: String,
    /// Only the headers the adapters need again (never a signature or token).
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: Vec<u8>,
    /// What the verification checked, in plain words.
    pub verification: String,
    /// A "Send a test event" delivery: shown in Activity, never makes customers.
    pub is_test: bool,
}

/// A delivery's body as it will be stored: packed when that is smaller (see
/// `pack::store_body`). Made where the delivery was received (a listener's request thread), so
/// the one thread that writes doesn't spend a few microseconds a delivery compressing.
#[derive(Debug, Clone)]
pub struct StoredBody {
    codec: i64,
    bytes: Vec<u8>,
}

impl StoredBody {
    pub fn of(body: &[u8]) -> StoredBody {
        let (codec, bytes) = crate::pack::store_body(body);
        StoredBody {
            codec,
            bytes: bytes.into_owned(),
        }
    }
}

/// A refused request.
#[derive(Debug, Clone)]
pub struct NewRejection {
    pub received_at: DateTime<Utc>,
    /// The provider named in the request's path, as the sender wrote it: a `String`, not a
    /// [`Provider`](clientele_core::Provider), because a request may name a provider nobody
    /// knows (and is refused for that).
    pub provider: String,
    pub connection: String,
    /// A stable code: one of `clientele_core::Rejection::code`'s, or the listener's own
    /// (`unknown_provider`, `unknown_connection`, …).
    pub code: String,
    pub reason: String,
    pub remote_addr: Option<String>,
    pub body_bytes: Option<i64>,
}

impl NewRejection {
    /// The provider, connection and reason as they are kept: cut to their bounds (the request
    /// path is the sender's to choose). Public for the relay's PostgreSQL store, which keeps
    /// refusals the same way.
    pub fn kept_text(&self) -> (String, String, String) {
        (
            bounded(&self.provider, REJECTION_NAME_CHARS).into_owned(),
            bounded(&self.connection, REJECTION_NAME_CHARS).into_owned(),
            bounded(&self.reason, REJECTION_REASON_CHARS).into_owned(),
        )
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored {
        id: i64,
    },
    /// Seen before (same dedupe key on the same connection): counted, not stored again.
    Duplicate {
        id: i64,
        duplicates: i64,
    },
    /// About a customer staff chose to keep forgetting: acknowledged, counted in `withheld`, not
    /// stored.
    Withheld {
        suppression: i64,
    },
}

/// Where a stored delivery stands; the UI sees it as the union type `DeliveryStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DeliveryStatus {
    /// Stored, not yet read into the timeline (momentary).
    Pending,
    Processed,
    /// Genuine but unreadable: kept, and read again by `reprocess` after an update.
    NeedsAttention,
    /// A test event.
    Test,
    /// About a customer who was forgotten: its content is gone ("Forgotten" in Activity).
    Erased,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Processed => "processed",
            DeliveryStatus::NeedsAttention => "needs_attention",
            DeliveryStatus::Test => "test",
            DeliveryStatus::Erased => "erased",
        }
    }

    /// The stored outcome's status; none yet is [`DeliveryStatus::Pending`] (`pending` itself is
    /// never stored).
    pub(crate) fn from_db(s: Option<&str>) -> Result<DeliveryStatus, Unknown> {
        match s {
            None => Ok(DeliveryStatus::Pending),
            Some("processed") => Ok(DeliveryStatus::Processed),
            Some("needs_attention") => Ok(DeliveryStatus::NeedsAttention),
            Some("test") => Ok(DeliveryStatus::Test),
            Some("erased") => Ok(DeliveryStatus::Erased),
            Some(other) => Err(Unknown::new("delivery status", other)),
        }
    }
}

impl Writer {
    /// Stores `deliveries` and `rejections` in one durable transaction. The returned outcomes are
    /// in the order of `deliveries`. On error nothing of the group is stored, and the caller must
    /// answer every one of them with a retryable status.
    pub fn ingest(
        &mut self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.ingest_stored(deliveries, None, rejections)
    }

    /// [`Writer::ingest`] with each delivery's body already made ready to store: `bodies[i]` is
    /// [`StoredBody::of`] `deliveries[i].body` (None: made here).
    pub fn ingest_stored(
        &mut self,
        deliveries: &[NewDelivery],
        bodies: Option<&[StoredBody]>,
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        if bodies.is_some_and(|b| b.len() != deliveries.len()) {
            return Err(StoreError::Invalid(
                "every delivery needs its stored body".into(),
            ));
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let outcomes = insert_deliveries(&tx, deliveries, bodies)?;
        insert_rejections(&tx, rejections)?;
        tx.commit()?;
        Ok(outcomes)
    }
}

/// Logs `rejections` inside the caller's transaction, keeping the log to [`REJECTION_CAP`].
pub(crate) fn insert_rejections(
    tx: &rusqlite::Transaction<'_>,
    rejections: &[NewRejection],
) -> Result<(), StoreError> {
    if rejections.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO rejections
            (received_at, provider, connection, code, reason, remote_addr, body_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for r in rejections {
        insert.execute(params![
            to_millis(r.received_at),
            bounded(&r.provider, REJECTION_NAME_CHARS),
            bounded(&r.connection, REJECTION_NAME_CHARS),
            r.code,
            bounded(&r.reason, REJECTION_REASON_CHARS),
            r.remote_addr,
            r.body_bytes
        ])?;
    }
    tx.execute(
        "DELETE FROM rejections WHERE id <= (SELECT MAX(id) FROM rejections) - ?1",
        [REJECTION_CAP],
    )?;
    Ok(())
}

/// Inserts `deliveries` (or counts each duplicate) inside the caller's transaction; the outcomes
/// are in the order of `deliveries`.
pub(crate) fn insert_deliveries(
    tx: &rusqlite::Transaction<'_>,
    deliveries: &[NewDelivery],
    bodies: Option<&[StoredBody]>,
) -> Result<Vec<IngestOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(deliveries.len());
    // Insert, or (rarely) count the duplicate. Not one `INSERT … ON CONFLICT DO UPDATE …
    // RETURNING`: SQLite runs that through a temporary table and a statement journal for every
    // row, which made it the writer's costliest step under load.
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries
            (connection_id, received_at, dedupe_key, headers, body, verification, is_test,
             body_codec)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (connection_id, dedupe_key) DO NOTHING",
    )?;
    // Anything forgotten: a retry of an erased delivery is a duplicate, and a delivery about a
    // record kept forgotten is withheld.
    let mut screen = crate::forget::screen(tx)?;
    for (index, d) in deliveries.iter().enumerate() {
        if let Some(screen) = screen.as_mut() {
            match screen.check(tx, d)? {
                Some(crate::forget::Screened::Erased(id)) => {
                    let duplicates = tx
                        .prepare_cached(
                            "UPDATE deliveries SET duplicates = duplicates + 1, last_duplicate_at = ?2
                             WHERE id = ?1 RETURNING duplicates",
                        )?
                        .query_row(params![id, to_millis(d.received_at)], |r| r.get(0))?;
                    outcomes.push(IngestOutcome::Duplicate { id, duplicates });
                    continue;
                }
                Some(crate::forget::Screened::Withheld(suppression)) => {
                    tx.prepare_cached(
                        "INSERT INTO withheld (connection_id, received_at, suppression_id)
                         VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        d.connection_id,
                        to_millis(d.received_at),
                        suppression
                    ])?;
                    outcomes.push(IngestOutcome::Withheld { suppression });
                    continue;
                }
                None => {}
            }
        }
        let headers = serde_json::to_string(&d.headers)?;
        let received_at = to_millis(d.received_at);
        // Packed when that is smaller (nearly always: a JSON body takes about a third); a
        // duplicate, rare, packs for nothing.
        let (codec, body) = match bodies.and_then(|b| b.get(index)) {
            Some(stored) => (stored.codec, std::borrow::Cow::Borrowed(&stored.bytes[..])),
            None => crate::pack::store_body(&d.body),
        };
        let inserted = insert.execute(params![
            d.connection_id,
            received_at,
            d.dedupe_key,
            headers,
            body,
            d.verification,
            d.is_test,
            codec
        ])?;
        outcomes.push(if inserted == 1 {
            IngestOutcome::Stored {
                id: tx.last_insert_rowid(),
            }
        } else {
            let (id, duplicates) = tx
                .prepare_cached(
                    "UPDATE deliveries SET duplicates = duplicates + 1, last_duplicate_at = ?3
                     WHERE connection_id = ?1 AND dedupe_key = ?2
                     RETURNING id, duplicates",
                )?
                .query_row(params![d.connection_id, d.dedupe_key, received_at], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            IngestOutcome::Duplicate { id, duplicates }
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{connect, delivery, temp_store};
    use clientele_core::Provider;

    #[test]
    fn duplicates_are_counted_not_stored_and_bodies_kept_byte_for_byte() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let c = connect(&mut w, Provider::Tiquo, "main");
        let body = b"{ \"id\": \"evt_1\" ,\r\n \"x\": \"\xc3\xa9\" }\n";
        let out = w
            .ingest(
                &[delivery(c, "evt_1", body), delivery(c, "evt_1", body)],
                &[],
            )
            .unwrap();
        let IngestOutcome::Stored { id } = out[0] else {
            panic!("first copy must be stored: {out:?}")
        };
        assert_eq!(out[1], IngestOutcome::Duplicate { id, duplicates: 1 });
        let again = w.ingest(&[delivery(c, "evt_1", body)], &[]).unwrap();
        assert_eq!(again[0], IngestOutcome::Duplicate { id, duplicates: 2 });
        let detail = store.reader().unwrap().delivery(id).unwrap();
        assert_eq!(detail.body, body.to_vec());
        assert_eq!(detail.row.duplicates, 2);
        assert_eq!(store.reader().unwrap().deliveries(None).unwrap().len(), 1);
    }

    #[test]
    fn bodies_made_ready_by_the_sender_are_stored_as_ingest_would_store_them() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let c = connect(&mut w, Provider::Tiquo, "main");
        // One that packs smaller, one that doesn't (too short), one empty.
        let json = format!("{{\"id\": \"evt_1\", \"note\": \"{}\"}}", "ab".repeat(200));
        let bodies: [&[u8]; 3] = [json.as_bytes(), b"{}", b""];
        let deliveries: Vec<NewDelivery> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| delivery(c, &format!("evt_{i}"), body))
            .collect();
        let ready: Vec<StoredBody> = bodies.iter().map(|b| StoredBody::of(b)).collect();
        assert_eq!(ready[0].codec, crate::pack::BODY_PACKED);
        assert_eq!(ready[1].codec, crate::pack::BODY_AS_RECEIVED);
        // A list that doesn't match the deliveries is refused, and nothing is stored.
        assert!(matches!(
            w.ingest_stored(&deliveries, Some(&ready[..2]), &[]),
            Err(StoreError::Invalid(_))
        ));
        assert!(store.reader().unwrap().deliveries(None).unwrap().is_empty());
        let out = w.ingest_stored(&deliveries, Some(&ready), &[]).unwrap();
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        for (outcome, body) in out.iter().zip(bodies) {
            let IngestOutcome::Stored { id } = *outcome else {
                panic!("stored: {outcome:?}")
            };
            assert_eq!(store.reader().unwrap().delivery(id).unwrap().body, body);
            let (codec, stored): (i64, Vec<u8>) = conn
                .query_row(
                    "SELECT body_codec, body FROM deliveries WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((codec, stored.into()), crate::pack::store_body(body));
        }
    }

    #[test]
    fn rejection_names_and_reasons_are_bounded() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let long = "é".repeat(50_000);
        let rejection = NewRejection {
            received_at: Utc::now(),
            provider: long.clone(),
            connection: long.clone(),
            code: "unknown_provider".into(),
            reason: format!("Clientele doesn't know a provider called '{long}'."),
            remote_addr: None,
            body_bytes: None,
        };
        w.ingest(&[], &[rejection]).unwrap();
        let kept = store.reader().unwrap().rejections(None).unwrap();
        assert_eq!(kept[0].provider.chars().count(), REJECTION_NAME_CHARS + 1);
        assert_eq!(kept[0].connection.chars().count(), REJECTION_NAME_CHARS + 1);
        assert_eq!(kept[0].reason.chars().count(), REJECTION_REASON_CHARS + 1);
        assert!(kept[0].reason.starts_with("Clientele doesn't know"));
        assert_eq!(bounded("short", 100), "short");
    }

    #[test]
    fn rejection_log_is_capped() {
        let (_dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let rejection = NewRejection {
            received_at: Utc::now(),
            provider: "tiquo".into(),
            connection: "main".into(),
            code: "bad_signature".into(),
            reason: "The signature didn't match.".into(),
            remote_addr: None,
            body_bytes: Some(10),
        };
        let many = vec![rejection; (REJECTION_CAP + 50) as usize];
        w.ingest(&[], &many).unwrap();
        let kept = store.reader().unwrap().rejections(None).unwrap();
        assert_eq!(kept.len() as i64, REJECTION_CAP);
    }
}
