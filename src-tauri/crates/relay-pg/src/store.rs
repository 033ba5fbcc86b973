//! [`RelayStore`] for [`PgStore`]: each method does what the SQLite store's method it mirrors does
//! (named in its comment), made safe for several instances writing at once.
//!
//! **Why the feed never skips.** Desks pull "deliveries after id N". With several instances
//! writing, ids are handed out before commit, so an instance that took id 7 and commits after
//! another's id 8 would let a desk read 8, move past 7, and never see it. So every transaction
//! that adds deliveries or refusals first takes [`FEED_LOCK`] and holds it until it commits: ids
//! are handed out and made visible one transaction at a time, in order. Each transaction is one
//! group of deliveries, so the lock is taken once per group, not per delivery. Hand changes do
//! the same under [`CHANGES_LOCK`].
//!
//! Erasing and forgetting take [`FEED_LOCK`] too, so a delivery arriving meanwhile is screened
//! against what they committed: a retry of an erased delivery finds its keyed dedupe key, and one
//! about a record kept forgotten finds the suppression — or it committed first, and the forget's
//! scan of stored deliveries finds it.

use crate::{CHANGES_LOCK, CHANNEL, FEED_LOCK, PgStore};
use chrono::{DateTime, Utc};
use clientele_core::hand::{HandChange, HandChangeKind};
use clientele_core::relay_protocol::Policy;
use clientele_core::{ConnectionSettings, Provider};
use clientele_relay::store::{RelayStore, StoreEvent};
use clientele_store::{
    AcceptedChange, ClaimRefused, Connection, ConnectionStats, DeliveryToCheck, Device,
    ERASURE_KEY, FeedConnection, FeedItem, ForgetHashes, IngestOutcome, NewConnection, NewDelivery,
    NewRejection, REJECTION_CAP, RETENTION_HELD_BY_RELAY, RETENTION_INACTIVE_MONTHS,
    RETENTION_REJECTIONS_DAYS, RejectionRow, SealedRow, StoreError, SuppressionScreen,
    erased_dedupe_key, from_millis, new_erasure_key, parse_erasure_key, to_millis,
    validate_connection_name,
};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

/// How often a device's `last_seen` is written at most (as the SQLite store).
const LAST_SEEN_RESOLUTION_MS: i64 = 30_000;

const CONNECTION_COLUMNS: &str =
    "id, provider, name, settings, requires_secret, paused, created_at";

/// A device's columns, without how far behind it is (`0`; see the SQLite store).
const DEVICE_COLUMNS: &str =
    "d.id, d.name, d.admin, d.paired_at, d.last_seen, d.acked, d.revoked_at, 0::BIGINT";
/// [`DEVICE_COLUMNS`] with how far behind the device is, for listings.
const DEVICE_COLUMNS_BEHIND: &str =
    "d.id, d.name, d.admin, d.paired_at, d.last_seen, d.acked, d.revoked_at,
     (SELECT COUNT(*) FROM deliveries WHERE id > d.acked)";

/// A provider id as stored (written from [`Provider::id`]).
fn provider(text: &str) -> Result<Provider, StoreError> {
    Provider::ALL
        .into_iter()
        .find(|p| p.id() == text)
        .ok_or_else(|| {
            StoreError::Corrupt(format!(
                "the stored provider '{text}' is not one this version of Clientele knows (was the data written by a newer version?)"
            ))
        })
}

fn connection_from(r: &Row) -> Result<Connection, StoreError> {
    let settings: String = r.get(3);
    Ok(Connection {
        id: r.get(0),
        provider: provider(r.get(1))?,
        name: r.get(2),
        settings: serde_json::from_str(&settings)?,
        requires_secret: r.get(4),
        paused: r.get(5),
        created_at: from_millis(r.get(6)),
        // A relay receives itself; only desks have connections that arrive through a relay.
        via_relay: false,
    })
}

fn device_from(r: &Row) -> Device {
    Device {
        id: r.get(0),
        name: r.get(1),
        admin: r.get(2),
        paired_at: from_millis(r.get(3)),
        last_seen: r.get::<_, Option<i64>>(4).map(from_millis),
        acked: r.get(5),
        revoked_at: r.get::<_, Option<i64>>(6).map(from_millis),
        behind: r.get(7),
    }
}

fn not_found(provider: Provider, name: &str) -> StoreError {
    StoreError::NotFound(format!(
        "There is no {} connection called '{name}'.",
        provider.display_name()
    ))
}

/// A retention setting as stored: a positive number, or off.
fn retention_number(value: Option<String>) -> Option<u32> {
    value.and_then(|v| v.parse().ok()).filter(|n| *n > 0)
}

impl RelayStore for PgStore {
    fn describe(&self) -> String {
        self.url.shown().to_string()
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    // `Writer::ingest` (`ingest::insert_deliveries`, `forget::screen`, `insert_rejections`).
    fn ingest(
        &self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; deliveries.len()];
            if deliveries.is_empty() {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
                    .await?;
            } else {
                // What is forgotten: a retry of an erased delivery is a duplicate, and a delivery
                // about a record kept forgotten is withheld. Read after the lock (a forget takes
                // it too, so none can slip between), but sent with it in one round trip: the
                // server runs pipelined statements in order.
                // Prepared once per connection, so each is one message, sent in this order.
                let (lock, key, screen) = tokio::try_join!(
                    tx.prepare_cached("SELECT pg_advisory_xact_lock($1)"),
                    tx.prepare_cached("SELECT value FROM settings WHERE key = $1"),
                    tx.prepare_cached(
                        "SELECT id, salt, record_hash FROM suppressions WHERE lifted_at IS NULL",
                    ),
                )?;
                let (_, erasure_key, suppressions) = tokio::try_join!(
                    tx.execute(&lock, &[&FEED_LOCK]),
                    tx.query_opt(&key, &[&ERASURE_KEY]),
                    tx.query(&screen, &[]),
                )?;
                let erasure_key = erasure_key.and_then(|r| parse_erasure_key(r.get(0)).ok());
                let suppressions = SuppressionScreen::new(
                    suppressions.iter().map(|r| (r.get(0), r.get(1), r.get(2))),
                );
                let duplicate = tx
                    .prepare_cached(
                        "UPDATE deliveries SET duplicates = duplicates + 1, last_duplicate_at = $3
                         WHERE connection_id = $1 AND dedupe_key = $2 RETURNING id, duplicates",
                    )
                    .await?;
                // Erased deliveries this group retries: one query for the whole group.
                let mut erased_keys: Vec<Option<String>> = vec![None; deliveries.len()];
                if let Some(key) = &erasure_key {
                    let connections: Vec<i64> =
                        deliveries.iter().map(|d| d.connection_id).collect();
                    let keys: Vec<String> = deliveries
                        .iter()
                        .map(|d| erased_dedupe_key(key, &d.dedupe_key))
                        .collect();
                    let found: std::collections::HashSet<(i64, String)> = tx
                        .query(
                            "SELECT d.connection_id, d.dedupe_key FROM deliveries d
                             JOIN unnest($1::bigint[], $2::text[]) AS u(c, k)
                               ON d.connection_id = u.c AND d.dedupe_key = u.k",
                            &[&connections, &keys],
                        )
                        .await?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect();
                    for (i, (c, k)) in connections.into_iter().zip(keys).enumerate() {
                        if found.contains(&(c, k.clone())) {
                            erased_keys[i] = Some(k);
                        }
                    }
                }
                let mut connections: HashMap<i64, Option<(Provider, String, ConnectionSettings)>> =
                    HashMap::new();
                // Everything else goes in with one statement, in the group's order.
                let mut candidates = Vec::new();
                for (i, d) in deliveries.iter().enumerate() {
                    let received_at = to_millis(d.received_at);
                    if let Some(erased) = &erased_keys[i] {
                        let r = tx
                            .query_one(&duplicate, &[&d.connection_id, erased, &received_at])
                            .await?;
                        outcomes[i] = Some(IngestOutcome::Duplicate {
                            id: r.get(0),
                            duplicates: r.get(1),
                        });
                        continue;
                    }
                    if !suppressions.is_empty() && !d.is_test {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            connections.entry(d.connection_id)
                        {
                            let found = tx
                                .query_opt(
                                    "SELECT provider, name, settings FROM connections
                                     WHERE id = $1",
                                    &[&d.connection_id],
                                )
                                .await?;
                            let found = match found {
                                Some(r) => Some((
                                    provider(r.get(0))?,
                                    r.get::<_, String>(1),
                                    serde_json::from_str(r.get(2))?,
                                )),
                                None => None,
                            };
                            slot.insert(found);
                        }
                        if let Some(Some((provider, name, settings))) =
                            connections.get(&d.connection_id)
                            && let Some(suppression) =
                                suppressions.withholding(*provider, name, settings, d)
                        {
                            tx.execute(
                                "INSERT INTO withheld (connection_id, received_at, suppression_id)
                                 VALUES ($1, $2, $3)",
                                &[&d.connection_id, &received_at, &suppression],
                            )
                            .await?;
                            outcomes[i] = Some(IngestOutcome::Withheld { suppression });
                            continue;
                        }
                    }
                    candidates.push(i);
                }
                if !candidates.is_empty() {
                    let pick = |f: &dyn Fn(&NewDelivery) -> i64| -> Vec<i64> {
                        candidates.iter().map(|&i| f(&deliveries[i])).collect()
                    };
                    let connection_ids = pick(&|d| d.connection_id);
                    let received = pick(&|d| to_millis(d.received_at));
                    let keys: Vec<&str> = candidates
                        .iter()
                        .map(|&i| deliveries[i].dedupe_key.as_str())
                        .collect();
                    let headers = candidates
                        .iter()
                        .map(|&i| serde_json::to_string(&deliveries[i].headers))
                        .collect::<Result<Vec<String>, _>>()?;
                    let bodies: Vec<&[u8]> = candidates
                        .iter()
                        .map(|&i| deliveries[i].body.as_slice())
                        .collect();
                    let verifications: Vec<&str> = candidates
                        .iter()
                        .map(|&i| deliveries[i].verification.as_str())
                        .collect();
                    let tests: Vec<bool> =
                        candidates.iter().map(|&i| deliveries[i].is_test).collect();
                    let insert = tx
                        .prepare_cached(
                            "INSERT INTO deliveries (connection_id, received_at, dedupe_key,
                                                     headers, body, verification, is_test)
                             SELECT c, r, k, h, b, v, t
                             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                                         $5::bytea[], $6::text[], $7::bool[])
                                  WITH ORDINALITY AS u(c, r, k, h, b, v, t, n)
                             ORDER BY n
                             ON CONFLICT (connection_id, dedupe_key) DO NOTHING
                             RETURNING id, connection_id, dedupe_key",
                        )
                        .await?;
                    // The notice goes with the insert, in the same round trip: delivered to
                    // every listening instance when this commits (if the group held only
                    // duplicates, a waiting pull looks once for nothing).
                    let notify = tx
                        .prepare_cached("SELECT pg_notify($1, 'deliveries')")
                        .await?;
                    let columns: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                        &connection_ids,
                        &received,
                        &keys,
                        &headers,
                        &bodies,
                        &verifications,
                        &tests,
                    ];
                    let (inserted, _) = tokio::try_join!(
                        tx.query(&insert, &columns),
                        tx.execute(&notify, &[&CHANNEL]),
                    )?;
                    let mut stored: HashMap<(i64, String), i64> = inserted
                        .iter()
                        .map(|r| ((r.get(1), r.get(2)), r.get(0)))
                        .collect();
                    for &i in &candidates {
                        let d = &deliveries[i];
                        // The first of a key in the group was stored; any other is a duplicate
                        // of it, or of one stored before (by any instance: the lock orders us
                        // after it).
                        outcomes[i] = Some(
                            match stored.remove(&(d.connection_id, d.dedupe_key.clone())) {
                                Some(id) => IngestOutcome::Stored { id },
                                None => {
                                    let r = tx
                                        .query_one(
                                            &duplicate,
                                            &[
                                                &d.connection_id,
                                                &d.dedupe_key,
                                                &to_millis(d.received_at),
                                            ],
                                        )
                                        .await?;
                                    IngestOutcome::Duplicate {
                                        id: r.get(0),
                                        duplicates: r.get(1),
                                    }
                                }
                            },
                        );
                    }
                }
            }
            let outcomes: Vec<IngestOutcome> = outcomes
                .into_iter()
                .map(|o| o.expect("every delivery has an outcome"))
                .collect();
            if !rejections.is_empty() {
                let insert = tx
                    .prepare_cached(
                        "INSERT INTO rejections (received_at, provider, connection, code, reason,
                                                 remote_addr, body_bytes)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .await?;
                for r in rejections {
                    let (provider, connection, reason) = r.kept_text();
                    tx.execute(
                        &insert,
                        &[
                            &to_millis(r.received_at),
                            &provider,
                            &connection,
                            &r.code,
                            &reason,
                            &r.remote_addr,
                            &r.body_bytes,
                        ],
                    )
                    .await?;
                }
                tx.execute(
                    "DELETE FROM rejections WHERE id <= (SELECT MAX(id) FROM rejections) - $1",
                    &[&REJECTION_CAP],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    // `Reader::rejections_after`.
    fn rejections_after(&self, after: i64, limit: usize) -> Result<Vec<RejectionRow>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, received_at, provider, connection, code, reason, remote_addr
                     FROM rejections WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &(limit as i64)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| RejectionRow {
                    id: r.get(0),
                    received_at: from_millis(r.get(1)),
                    provider: r.get(2),
                    connection: r.get(3),
                    code: r.get(4),
                    reason: r.get(5),
                    remote_addr: r.get(6),
                })
                .collect())
        })
    }

    // `Reader::delivery`, compared.
    fn delivery_matches(
        &self,
        id: i64,
        provider: Provider,
        name: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "SELECT c.provider, c.name, d.body
                     FROM deliveries d JOIN connections c ON c.id = d.connection_id
                     WHERE d.id = $1",
                    &[&id],
                )
                .await?;
            Ok(row.is_some_and(|r| {
                r.get::<_, &str>(0) == provider.id()
                    && r.get::<_, &str>(1) == name
                    && r.get::<_, &[u8]>(2) == body
            }))
        })
    }

    // `Reader::connections`: by provider then name, in byte order (as SQLite sorts).
    fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE removed_at IS NULL
                         ORDER BY provider COLLATE \"C\", name COLLATE \"C\""
                    ),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(connection_from).collect::<Result<_, _>>()?)
        })
    }

    fn connection(&self, provider: Provider, name: &str) -> Result<Option<Connection>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {CONNECTION_COLUMNS} FROM connections
                         WHERE provider = $1 AND name = $2 AND removed_at IS NULL"
                    ),
                    &[&provider.id(), &name],
                )
                .await?;
            Ok(row.as_ref().map(connection_from).transpose()?)
        })
    }

    // `Writer::add_connection`, in one statement: of two instances adding the same name at
    // once, one adds it and the other is told it is taken.
    fn add_connection(
        &self,
        new: &NewConnection,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        validate_connection_name(&new.name)?;
        let settings = serde_json::to_string(&new.settings)?;
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!(
                        "INSERT INTO connections (provider, name, settings, requires_secret,
                                                  created_at)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (provider, name) DO UPDATE SET
                            settings = excluded.settings,
                            requires_secret = excluded.requires_secret,
                            paused = false, removed_at = NULL
                         WHERE connections.removed_at IS NOT NULL
                         RETURNING {CONNECTION_COLUMNS}"
                    ),
                    &[
                        &new.provider.id(),
                        &new.name,
                        &settings,
                        &new.requires_secret,
                        &to_millis(now),
                    ],
                )
                .await?;
            match row {
                Some(r) => Ok(connection_from(&r)?),
                None => Err(StoreError::Invalid(format!(
                    "There is already a {} connection called '{}'.",
                    new.provider.display_name(),
                    new.name
                ))
                .into()),
            }
        })
    }

    // `Writer::remove_connection`.
    fn remove_connection(
        &self,
        provider: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    &format!(
                        "UPDATE connections SET removed_at = $3
                         WHERE provider = $1 AND name = $2 AND removed_at IS NULL
                         RETURNING {CONNECTION_COLUMNS}"
                    ),
                    &[&provider.id(), &name, &to_millis(now)],
                )
                .await?;
            match row {
                Some(r) => Ok(connection_from(&r)?),
                None => Err(not_found(provider, name).into()),
            }
        })
    }

    fn connections_changed(&self) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            let notify = c
                .prepare_cached("SELECT pg_notify($1, 'connections')")
                .await?;
            c.execute(&notify, &[&CHANNEL]).await?;
            Ok(())
        })
    }

    // `Writer::replace_connection_settings`.
    fn replace_connection_settings(
        &self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> Result<bool, StoreError> {
        let settings = serde_json::to_string(settings)?;
        self.block(async {
            let c = self.client().await?;
            Ok(c.execute(
                "UPDATE connections SET settings = $3
                 WHERE provider = $1 AND name = $2 AND removed_at IS NULL",
                &[&provider.id(), &name, &settings],
            )
            .await?
                > 0)
        })
    }

    // `Reader::connection_stats`.
    fn connection_stats(
        &self,
        connection: &Connection,
        since: DateTime<Utc>,
    ) -> Result<ConnectionStats, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let recent_arrivals: Vec<DateTime<Utc>> = c
                .query(
                    "SELECT received_at FROM deliveries WHERE connection_id = $1 AND NOT is_test
                     ORDER BY id DESC LIMIT 20",
                    &[&connection.id],
                )
                .await?
                .iter()
                .map(|r| from_millis(r.get(0)))
                .collect();
            let deliveries_since: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM deliveries
                     WHERE connection_id = $1 AND NOT is_test AND received_at >= $2",
                    &[&connection.id, &to_millis(since)],
                )
                .await?
                .get(0);
            let rejections_since: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM rejections
                     WHERE provider = $1 AND connection = $2 AND received_at >= $3",
                    &[
                        &connection.provider.id(),
                        &connection.name,
                        &to_millis(since),
                    ],
                )
                .await?
                .get(0);
            Ok(ConnectionStats {
                last_delivery_at: recent_arrivals.first().copied(),
                deliveries_since,
                rejections_since,
                recent_arrivals,
            })
        })
    }

    fn sealed_secret(&self, account: &str) -> Result<Option<SealedRow>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                "SELECT nonce, ciphertext FROM sealed_secrets WHERE account = $1",
                &[&account],
            )
            .await?
            .map(|r| SealedRow {
                nonce: r.get(0),
                ciphertext: r.get(1),
            }))
        })
    }

    fn put_sealed_secret(&self, account: &str, row: &SealedRow) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO sealed_secrets (account, nonce, ciphertext) VALUES ($1, $2, $3)
                 ON CONFLICT (account) DO UPDATE SET nonce = excluded.nonce,
                    ciphertext = excluded.ciphertext",
                &[&account, &row.nonce, &row.ciphertext],
            )
            .await?;
            Ok(())
        })
    }

    fn delete_sealed_secret(&self, account: &str) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute("DELETE FROM sealed_secrets WHERE account = $1", &[&account])
                .await?;
            Ok(())
        })
    }

    // `Writer::add_pairing_code`.
    fn add_pairing_code(
        &self,
        code_hash: &[u8],
        name: &str,
        admin: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            let paired: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM relay_devices
                                    WHERE name = $1 AND revoked_at IS NULL)",
                    &[&name],
                )
                .await?
                .get(0);
            if paired {
                return Err(StoreError::Invalid(format!(
                    "A device called '{name}' is already paired. Choose another name, or end its access first with `clientele relay revoke {name}`."
                ))
                .into());
            }
            // Old codes are of no use to anyone: keep the table small.
            c.execute(
                "DELETE FROM relay_pairing_codes WHERE expires_at < $1",
                &[&(to_millis(now) - 86_400_000)],
            )
            .await?;
            c.execute(
                "INSERT INTO relay_pairing_codes (code_hash, device_name, admin, created_at,
                                                  expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &code_hash,
                    &name,
                    &admin,
                    &to_millis(now),
                    &to_millis(expires_at),
                ],
            )
            .await?;
            Ok(())
        })
    }

    // `Writer::claim_pairing_code`. The code's row is locked while it is claimed, so a second
    // claim (on any instance) waits and then finds it used; a name taken meanwhile by another
    // code is refused by the unique index of active names.
    fn claim_pairing_code(
        &self,
        code_hash: &[u8],
        token_hash: &[u8],
        rename: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Device, ClaimRefused>, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let found = tx
                .query_opt(
                    "SELECT device_name, admin, expires_at, used_at FROM relay_pairing_codes
                     WHERE code_hash = $1 FOR UPDATE",
                    &[&code_hash],
                )
                .await?;
            let Some(found) = found else {
                return Ok(Err(ClaimRefused::Unknown));
            };
            let (made_for, admin, expires_at, used_at): (String, bool, i64, Option<i64>) =
                (found.get(0), found.get(1), found.get(2), found.get(3));
            if used_at.is_some() {
                return Ok(Err(ClaimRefused::Used));
            }
            if expires_at <= to_millis(now) {
                return Ok(Err(ClaimRefused::Expired));
            }
            let name = rename.unwrap_or(&made_for).to_string();
            let taken: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM relay_devices
                                    WHERE name = $1 AND revoked_at IS NULL)",
                    &[&name],
                )
                .await?
                .get(0);
            if taken {
                return Ok(Err(ClaimRefused::NameTaken));
            }
            tx.execute(
                "UPDATE relay_pairing_codes SET used_at = $2 WHERE code_hash = $1",
                &[&code_hash, &to_millis(now)],
            )
            .await?;
            // A new device starts at the beginning: it gets the relay's whole history.
            let paired = tx
                .query_one(
                    &format!(
                        "INSERT INTO relay_devices AS d (name, token_hash, admin, paired_at,
                                                         last_seen)
                         VALUES ($1, $2, $3, $4, $4) RETURNING {DEVICE_COLUMNS}"
                    ),
                    &[&name, &token_hash, &admin, &to_millis(now)],
                )
                .await;
            let device = match paired {
                Ok(r) => device_from(&r),
                Err(e)
                    if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                        && e.as_db_error().and_then(|d| d.constraint())
                            == Some("relay_devices_active_name") =>
                {
                    return Ok(Err(ClaimRefused::NameTaken));
                }
                Err(e) => return Err(e.into()),
            };
            tx.commit().await?;
            Ok(Ok(device))
        })
    }

    fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<Device>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM relay_devices d
                     WHERE d.token_hash = $1 AND d.revoked_at IS NULL"
                ))
                .await?;
            Ok(c.query_opt(&st, &[&token_hash])
                .await?
                .map(|r| device_from(&r)))
        })
    }

    fn device_active(&self, id: i64) -> Result<bool, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM relay_devices
                                    WHERE id = $1 AND revoked_at IS NULL)",
                )
                .await?;
            Ok(c.query_one(&st, &[&id]).await?.get(0))
        })
    }

    fn device_behind(&self, id: i64) -> Result<i64, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_one(
                "SELECT COUNT(*) FROM deliveries
                 WHERE id > (SELECT acked FROM relay_devices WHERE id = $1)",
                &[&id],
            )
            .await?
            .get(0))
        })
    }

    // `Reader::devices`: every device ever paired, by name (byte order) then id.
    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query(
                &format!(
                    "SELECT {DEVICE_COLUMNS_BEHIND} FROM relay_devices d
                     ORDER BY d.name COLLATE \"C\", d.id"
                ),
                &[],
            )
            .await?
            .iter()
            .map(device_from)
            .collect())
        })
    }

    fn revoke_device(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.execute(
                "UPDATE relay_devices SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                &[&name, &to_millis(now)],
            )
            .await?
                > 0)
        })
    }

    fn touch_device(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE relay_devices SET last_seen = $2
                     WHERE id = $1 AND (last_seen IS NULL OR last_seen < $2::BIGINT - $3::BIGINT)",
                )
                .await?;
            c.execute(&st, &[&id, &to_millis(now), &LAST_SEEN_RESOLUTION_MS])
                .await?;
            Ok(())
        })
    }

    // Never backwards, never past the newest delivery: one statement.
    fn acknowledge(&self, id: i64, upto: i64) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE relay_devices
                     SET acked = GREATEST(acked,
                                          LEAST($2, (SELECT COALESCE(MAX(id), 0) FROM deliveries)))
                     WHERE id = $1",
                )
                .await?;
            c.execute(&st, &[&id, &upto]).await?;
            Ok(())
        })
    }

    fn newest_delivery_id(&self) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(c.query_one("SELECT MAX(id) FROM deliveries", &[])
                .await?
                .get(0))
        })
    }

    // `Reader::feed`.
    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT d.id, c.provider, c.name, d.received_at, d.dedupe_key, d.headers,
                            d.body, d.verification, d.is_test
                     FROM deliveries d JOIN connections c ON c.id = d.connection_id
                     WHERE d.id > $1 AND d.erased_at IS NULL ORDER BY d.id LIMIT $2",
                )
                .await?;
            let rows = c.query(&st, &[&after, &(limit as i64)]).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in &rows {
                items.push(FeedItem {
                    id: r.get(0),
                    provider: provider(r.get(1))?,
                    connection: r.get(2),
                    received_at: from_millis(r.get(3)),
                    dedupe_key: r.get(4),
                    headers: serde_json::from_str(r.get(5))?,
                    body: r.get(6),
                    verification: r.get(7),
                    is_test: r.get(8),
                });
            }
            Ok(items)
        })
    }

    // `Reader::feed_connections`: removed connections too (their deliveries are still pulled).
    fn feed_connections(
        &self,
        names: &[(Provider, String)],
    ) -> Result<Vec<FeedConnection>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT settings FROM connections WHERE provider = $1 AND name = $2",
                )
                .await?;
            let mut found = Vec::with_capacity(names.len());
            for (provider, name) in names {
                if let Some(r) = c.query_opt(&st, &[&provider.id(), name]).await? {
                    found.push(FeedConnection {
                        provider: *provider,
                        name: name.clone(),
                        settings: serde_json::from_str(r.get(0))?,
                    });
                }
            }
            Ok(found)
        })
    }

    // `Writer::delete_acknowledged` (a relay derives nothing, so there are no outcomes to keep).
    fn delete_acknowledged(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let everyone: Option<i64> = tx
                .query_one(
                    "SELECT MIN(acked) FROM relay_devices WHERE revoked_at IS NULL",
                    &[],
                )
                .await?
                .get(0);
            let Some(everyone) = everyone else {
                return Ok(0);
            };
            let deleted = tx
                .execute(
                    "DELETE FROM deliveries
                     WHERE id <= $1 AND received_at < $2
                       AND id < (SELECT MAX(id) FROM deliveries)",
                    &[&everyone, &to_millis(cutoff)],
                )
                .await?;
            tx.commit().await?;
            Ok(deleted as usize)
        })
    }

    fn change_id(&self, uid: &str) -> Result<Option<i64>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(
                c.query_opt("SELECT id FROM relay_changes WHERE uid = $1", &[&uid])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    // `Writer::accept_change`.
    fn accept_change(
        &self,
        change: &HandChange,
        device: &str,
        now: DateTime<Utc>,
    ) -> Result<AcceptedChange, StoreError> {
        let text = serde_json::to_string(change)?;
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            if matches!(
                change.what,
                HandChangeKind::Forget { .. } | HandChangeKind::StopForgetting { .. }
            ) {
                // Suppressions change: arriving deliveries wait for this (see the module docs).
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
                    .await?;
            }
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHANGES_LOCK])
                .await?;
            let known = tx
                .query_opt(
                    "SELECT id FROM relay_changes WHERE uid = $1",
                    &[&change.uid],
                )
                .await?;
            if let Some(r) = known {
                return Ok(AcceptedChange {
                    id: r.get(0),
                    new: false,
                    decisions_deleted: 0,
                });
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO relay_changes (uid, change, device, accepted_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&change.uid, &text, &device, &to_millis(now)],
                )
                .await?
                .get(0);
            let mut decisions_deleted = 0;
            match &change.what {
                HandChangeKind::Forget { forget } => {
                    let hashes = ForgetHashes::decode(forget).ok_or_else(|| {
                        StoreError::Invalid("A forget must name records by salted hashes.".into())
                    })?;
                    // Inserted above first: the rows deleted here are older, never the newest.
                    let decided = tx
                        .query(
                            "SELECT id, change FROM relay_changes
                             WHERE id < $1 AND change LIKE '%\"change\":\"decide\"%'",
                            &[&id],
                        )
                        .await?;
                    for r in &decided {
                        let Ok(earlier) = serde_json::from_str::<HandChange>(r.get(1)) else {
                            continue;
                        };
                        if let HandChangeKind::Decide { decision } = &earlier.what
                            && decision.records().into_iter().any(|r| hashes.names(r))
                        {
                            tx.execute(
                                "DELETE FROM relay_changes WHERE id = $1",
                                &[&r.get::<_, i64>(0)],
                            )
                            .await?;
                            decisions_deleted += 1;
                        }
                    }
                    if forget.keep_forgetting {
                        let insert = tx
                            .prepare(
                                "INSERT INTO suppressions (forget_uid, salt, record_hash,
                                                           created_at)
                                 VALUES ($1, $2, $3, $4)
                                 ON CONFLICT (forget_uid, record_hash) DO NOTHING",
                            )
                            .await?;
                        for hash in &hashes.records {
                            tx.execute(
                                &insert,
                                &[&change.uid, &hashes.salt, &hash.as_slice(), &to_millis(now)],
                            )
                            .await?;
                        }
                    }
                }
                HandChangeKind::StopForgetting { forget } => {
                    tx.execute(
                        "UPDATE suppressions SET lifted_at = $2
                         WHERE forget_uid = $1 AND lifted_at IS NULL",
                        &[forget, &to_millis(now)],
                    )
                    .await?;
                }
                HandChangeKind::Decide { .. } | HandChangeKind::Undo { .. } => {}
            }
            tx.execute("SELECT pg_notify($1, 'changes')", &[&CHANNEL])
                .await?;
            tx.commit().await?;
            Ok(AcceptedChange {
                id,
                new: true,
                decisions_deleted,
            })
        })
    }

    // `Reader::changes_after`: a row that doesn't read as a change (a newer relay's) is skipped.
    fn changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, HandChange)>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, change FROM relay_changes WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .await?;
            Ok(c.query(&st, &[&after, &(limit as i64)])
                .await?
                .iter()
                .filter_map(|r| Some((r.get(0), serde_json::from_str(r.get(1)).ok()?)))
                .collect())
        })
    }

    // `relay_changes::deliveries_to_check`.
    fn deliveries_to_check(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryToCheck>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT d.id, c.provider, c.name, c.settings, d.headers, d.body
                     FROM deliveries d JOIN connections c ON c.id = d.connection_id
                     WHERE d.id > $1 AND d.erased_at IS NULL AND NOT d.is_test
                     ORDER BY d.id LIMIT $2",
                    &[&after, &(limit as i64)],
                )
                .await?;
            let mut found = Vec::with_capacity(rows.len());
            for r in &rows {
                found.push(DeliveryToCheck {
                    id: r.get(0),
                    provider: provider(r.get(1))?,
                    connection: r.get(2),
                    settings: serde_json::from_str(r.get(3))?,
                    headers: serde_json::from_str(r.get(4))?,
                    body: r.get(5),
                });
            }
            Ok(found)
        })
    }

    // `Writer::erase_deliveries` (`forget::erase_delivery`), under the feed's lock so a retry
    // arriving meanwhile meets the keyed dedupe key.
    fn erase_deliveries(&self, ids: &[i64], at: DateTime<Utc>) -> Result<i64, StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
                .await?;
            let stored = tx
                .query_opt("SELECT value FROM settings WHERE key = $1", &[&ERASURE_KEY])
                .await?;
            let key = match stored {
                Some(r) => parse_erasure_key(r.get(0))?,
                None => {
                    let key = new_erasure_key()?;
                    tx.execute(
                        "INSERT INTO settings (key, value) VALUES ($1, $2)
                         ON CONFLICT (key) DO NOTHING",
                        &[&ERASURE_KEY, &hex_of(&key)],
                    )
                    .await?;
                    let kept = tx
                        .query_one("SELECT value FROM settings WHERE key = $1", &[&ERASURE_KEY])
                        .await?;
                    parse_erasure_key(kept.get(0))?
                }
            };
            let at = to_millis(at);
            let mut erased = 0;
            for id in ids {
                let dedupe = tx
                    .query_opt(
                        "SELECT dedupe_key FROM deliveries WHERE id = $1 AND erased_at IS NULL",
                        &[id],
                    )
                    .await?;
                let Some(dedupe) = dedupe else { continue };
                tx.execute(
                    "UPDATE deliveries SET body = ''::bytea, headers = '[]', verification = '',
                                           erased_at = $2, dedupe_key = $3
                     WHERE id = $1",
                    &[id, &at, &erased_dedupe_key(&key, dedupe.get(0))],
                )
                .await?;
                erased += 1;
            }
            tx.commit().await?;
            Ok(erased)
        })
    }

    // PostgreSQL manages its own files: `VACUUM` the tables a forget rewrote, so the dead row
    // versions holding the erased bytes are reclaimed. Stopped (false) at `deadline`.
    fn wipe_forgotten(&self, deadline: Duration) -> Result<bool, StoreError> {
        let timeout_ms = deadline.as_millis().clamp(1_000, i32::MAX as u128);
        self.block(async {
            let c = self.client().await?;
            c.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
                .await?;
            let vacuumed = c.batch_execute("VACUUM deliveries, relay_changes").await;
            let reset = c.batch_execute("RESET statement_timeout").await;
            match vacuumed {
                Ok(()) => {
                    reset?;
                    Ok(true)
                }
                Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {
                    reset?;
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn retention_policy(&self) -> Result<Policy, StoreError> {
        Ok(Policy {
            retention_inactive_months: retention_number(self.setting(RETENTION_INACTIVE_MONTHS)?),
            retention_rejections_days: retention_number(self.setting(RETENTION_REJECTIONS_DAYS)?),
        })
    }

    // `Writer::store_retention_policy(policy, false)`: the relay holds the policy itself.
    fn store_retention_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.block(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            for (key, value) in [
                (RETENTION_INACTIVE_MONTHS, policy.retention_inactive_months),
                (RETENTION_REJECTIONS_DAYS, policy.retention_rejections_days),
                (RETENTION_HELD_BY_RELAY, None),
            ] {
                match value.filter(|n| *n > 0) {
                    Some(n) => {
                        tx.execute(
                            "INSERT INTO settings (key, value) VALUES ($1, $2)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            &[&key, &n.to_string()],
                        )
                        .await?
                    }
                    None => {
                        tx.execute("DELETE FROM settings WHERE key = $1", &[&key])
                            .await?
                    }
                };
            }
            tx.execute("SELECT pg_notify($1, 'changes')", &[&CHANNEL])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.block(async {
            let c = self.client().await?;
            Ok(
                c.query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
                    .await?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.block(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await?;
            Ok(())
        })
    }
}

/// Lower-case hex, as the SQLite store keeps the erasure key.
fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
