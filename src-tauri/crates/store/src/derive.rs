//! Deriving timelines, source profiles and people from stored deliveries.
//!
//! Deliveries are read in id order (the order they were committed) and each one's events are
//! applied to the source profile they concern:
//! - an event not older than anything the profile has seen is folded in at once (the common case);
//! - an older one — a late retry, a slow provider — is stored and the whole profile is re-folded
//!   from its events in event order, so diffs and "latest value" come out as if it had arrived in
//!   time.
//!
//! Both paths use the same fold (`clientele_core::profile`), and so does [`Writer::reprocess`],
//! which is why rebuilding from `deliveries` gives the same result as live ingest.
//!
//! A pass works in one transaction and records, per delivery, its outcome in `delivery_outcomes`;
//! the highest outcome id is the watermark, so a crash mid-pass simply redoes the pass.

use crate::ingest::DeliveryStatus;
use crate::people;
use crate::pipelined::{pipelined, take_error};
use crate::stored;
use crate::{StoreError, Writer};
use clientele_core::identity::{CountryId, parse_country};
use clientele_core::profile::ProfileState;
use clientele_core::summary::summarize;
use clientele_core::{ConnectionSettings, ParsedDelivery, Provider, SourceEvent, providers};
use http::{HeaderMap, HeaderName, HeaderValue};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::time::to_millis;

/// What a derivation pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeriveReport {
    pub deliveries: usize,
    pub events: usize,
    pub needs_attention: usize,
    /// Profiles re-folded because an older event arrived late.
    pub refolded_profiles: usize,
    /// People whose row changed (or disappeared), for live updates.
    pub people_changed: BTreeSet<i64>,
}

impl DeriveReport {
    fn absorb(&mut self, other: DeriveReport) {
        self.deliveries += other.deliveries;
        self.events += other.events;
        self.needs_attention += other.needs_attention;
        self.refolded_profiles += other.refolded_profiles;
        self.people_changed.extend(other.people_changed);
    }
}

/// Deliveries read into memory and derived at a time, within a transaction.
const PASS: usize = 2_000;
/// Deliveries per transaction when [`Writer::derive_all`] catches up on many (a desk's first
/// pull from a relay, a listener's backlog). Each commit writes every page it changed to the WAL,
/// and the checkpoint copies it again; a delivery changes pages spread over the whole database
/// (its person, profile, identity keys, search terms), which few of 2,000 deliveries share but
/// many of 20,000 do. Measured on a fresh desk pulling 950,000 deliveries (`relay_bench`,
/// relay_catch_up, 4 runs each): 229–264 s (median 245) against 252–305 s (median 279) with
/// transactions of 2,000, and 0.86–0.87× in the two back-to-back pairs; the desk wrote 27 GB to
/// disk instead of 41 GB. `clientele reprocess` of the same deliveries took 211–221 s.
const DERIVE_ALL_BATCH: usize = 20_000;

/// Source profiles a pass keeps in memory before it writes them out and starts afresh. A pass
/// saves each profile it touched once, and rebuilds each person once, however many of its
/// deliveries concern them; this bounds its memory (a profile in memory is a few kilobytes).
const MAX_WORKING_PROFILES: usize = 50_000;

/// One stored delivery as derivation needs it.
struct PendingDelivery {
    id: i64,
    connection_id: i64,
    headers: String,
    body: Vec<u8>,
    is_test: bool,
    /// Forgotten: its content is gone, and it derives to nothing.
    erased: bool,
    /// How `body` was stored; it is as received once loaded.
    codec: i64,
}

/// What a pass needs of a delivery once it has been parsed.
struct DeliveryMeta {
    id: i64,
    connection_id: i64,
    is_test: bool,
    erased: bool,
}

impl PendingDelivery {
    fn meta(&self) -> DeliveryMeta {
        DeliveryMeta {
            id: self.id,
            connection_id: self.connection_id,
            is_test: self.is_test,
            erased: self.erased,
        }
    }
}

/// A connection's provider and settings, read once per pass.
struct Source {
    provider: Provider,
    settings: ConnectionSettings,
}

/// Reads a delivery with its connection's adapter; a body that doesn't read gives the reason.
fn parse(
    source: &Source,
    d: &PendingDelivery,
) -> Result<Result<ParsedDelivery, String>, StoreError> {
    let headers = header_map(&d.headers)?;
    Ok(
        providers::parse(source.provider, &source.settings, &headers, &d.body)
            .map_err(|e| e.to_string()),
    )
}

/// Below this many deliveries a pass reads and parses them itself; from it on, a second thread
/// reads and parses ahead while the pass folds and writes (a desk catching up from a relay,
/// `reprocess`, a listener's backlog).
const PREFETCH_FROM: usize = 2_000;

/// How often a pass asks whether to stop early (see [`Writer::derive_pending_until`]).
const STOP_EVERY: usize = 8;

/// A batch of deliveries read and parsed ahead.
type Batch = Vec<(DeliveryMeta, Option<Result<ParsedDelivery, String>>)>;

/// Deliveries read and parsed on two other threads, in id order, a batch at a time.
///
/// One thread reads every batch and parses every other one; the second parses the rest. Parsing
/// costs about twice what folding and writing a delivery costs the pass, so with one parsing
/// thread the pass waited half the time.
struct Prefetch {
    /// Even batches come from the reading thread, odd ones from the parsing one.
    batches: [std::sync::mpsc::Receiver<Result<Batch, StoreError>>; 2],
    next: usize,
    /// Batches the pass is done with go back to be freed where they were allocated: freeing
    /// another thread's allocations costs the allocator a lock each (a fifth of the pass's time
    /// when it freed them itself).
    done: Option<[std::sync::mpsc::Sender<Batch>; 2]>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Parses a batch of loaded deliveries.
fn parse_batch(
    sources: &HashMap<i64, Source>,
    pending: &[PendingDelivery],
    country: Option<CountryId>,
) -> Result<Batch, StoreError> {
    let mut batch = Vec::with_capacity(pending.len());
    for d in pending {
        let parsed = match sources.get(&d.connection_id) {
            Some(source) if !d.erased && !d.is_test => {
                let parsed = parse(source, d)?;
                if let Ok(parsed) = &parsed {
                    warm_phones(parsed, country);
                }
                Some(parsed)
            }
            _ => None,
        };
        batch.push((d.meta(), parsed));
    }
    Ok(batch)
}

impl Prefetch {
    /// Starts reading the deliveries after `after` (at most `max`) from the database at `path`.
    ///
    /// It reads its own snapshot through its own connection: the pass's transaction holds the
    /// write lock, so nothing it would read can change meanwhile. It also parses the phone
    /// numbers it meets (the memo is shared), so saving a profile finds them parsed.
    fn start(
        path: &std::path::Path,
        after: i64,
        max: usize,
        country: Option<CountryId>,
    ) -> Result<Prefetch, StoreError> {
        use std::sync::mpsc::{channel, sync_channel};
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (send_even, even) = sync_channel(2);
        let (send_odd, odd) = sync_channel(2);
        let (to_parse, loaded) = sync_channel::<Result<Vec<PendingDelivery>, StoreError>>(1);
        let (done_even, finished_even) = channel::<Batch>();
        let (done_odd, finished_odd) = channel::<Batch>();
        let sources: std::sync::Arc<std::sync::OnceLock<HashMap<i64, Source>>> = Default::default();
        let reader_sources = sources.clone();
        let spawn_error =
            |e: std::io::Error| StoreError::Corrupt(format!("couldn't start reading ahead: {e}"));
        let reader = std::thread::Builder::new()
            .name("derive-prefetch".into())
            .spawn(move || {
                // The batch the pass waits for next.
                let mut index = 0usize;
                let result = (|| -> Result<(), StoreError> {
                    let tx = conn.unchecked_transaction()?;
                    let mut found = HashMap::new();
                    let mut stmt = tx.prepare("SELECT id, provider, settings FROM connections")?;
                    for row in stmt.query_map([], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })? {
                        let (id, provider, settings) = row?;
                        found.insert(
                            id,
                            Source {
                                provider: stored::provider(&provider)?,
                                settings: serde_json::from_str(&settings)?,
                            },
                        );
                    }
                    let sources = reader_sources.get_or_init(|| found);
                    let mut sent = 0;
                    let mut last = after;
                    while sent < max {
                        let want = (max - sent).min(PASS);
                        let pending = load_deliveries(
                            &tx,
                            "id > ?1 ORDER BY id LIMIT ?2",
                            params![last, want as i64],
                        )?;
                        let Some(newest) = pending.last().map(|d| d.id) else {
                            break;
                        };
                        let count = pending.len();
                        sent += count;
                        last = newest;
                        let delivered = if index.is_multiple_of(2) {
                            send_even
                                .send(Ok(parse_batch(sources, &pending, country)?))
                                .is_ok()
                        } else {
                            to_parse.send(Ok(pending)).is_ok()
                        };
                        if !delivered {
                            return Ok(());
                        }
                        index += 1;
                        while let Ok(used) = finished_even.try_recv() {
                            drop(used);
                        }
                        if sent < max && count < want {
                            break;
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = result {
                    // On the side the pass waits on next.
                    let _ = if index.is_multiple_of(2) {
                        send_even.send(Err(e)).is_ok()
                    } else {
                        to_parse.send(Err(e)).is_ok()
                    };
                }
                drop(send_even);
                drop(to_parse);
                // Free what the pass hands back until it is done.
                for used in finished_even {
                    drop(used);
                }
            })
            .map_err(spawn_error)?;
        let parser = std::thread::Builder::new()
            .name("derive-parse".into())
            .spawn(move || {
                for pending in loaded {
                    let batch = pending.and_then(|pending| match sources.get() {
                        Some(sources) => parse_batch(sources, &pending, country),
                        None => Err(StoreError::Corrupt("connections were not read".into())),
                    });
                    let failed = batch.is_err();
                    if send_odd.send(batch).is_err() || failed {
                        break;
                    }
                    while let Ok(used) = finished_odd.try_recv() {
                        drop(used);
                    }
                }
                drop(send_odd);
                for used in finished_odd {
                    drop(used);
                }
            })
            .map_err(spawn_error)?;
        Ok(Prefetch {
            batches: [even, odd],
            next: 0,
            done: Some([done_even, done_odd]),
            threads: vec![reader, parser],
        })
    }

    /// The next batch in id order; None when there are no more.
    fn next_batch(&mut self) -> Option<Result<Batch, StoreError>> {
        let batch = self.batches[self.next % 2].recv().ok()?;
        self.next += 1;
        Some(batch)
    }

    /// Hands a batch the pass is done with back to the thread that made it.
    fn give_back(&self, batch: Batch) {
        if let Some(done) = &self.done {
            let _ = done[(self.next + 1) % 2].send(batch);
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Stop them (their sends fail once the receivers are gone) and wait, so the reading
        // connection is closed before the pass's transaction ends.
        for side in &mut self.batches {
            let (_, closed) = std::sync::mpsc::sync_channel(0);
            drop(std::mem::replace(side, closed));
        }
        self.done = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Parses the phone numbers in `parsed` as a profile will when its identity keys are made, so
/// the answer is in the shared memo by then.
fn warm_phones(parsed: &ParsedDelivery, country: Option<CountryId>) {
    for event in &parsed.events {
        let own = event
            .fields
            .get("country_code")
            .and_then(|c| c.as_str())
            .and_then(parse_country)
            .or(country);
        let phones = event.fields.get("phone").into_iter().chain(
            event
                .changes
                .iter()
                .flatten()
                .filter(|c| c.field == "phone")
                .flat_map(|c| [&c.old, &c.new]),
        );
        for phone in phones.filter_map(|v| v.as_str()) {
            let _ = clientele_core::identity::parse_phone(phone, own);
        }
    }
}

impl Writer {
    /// Derives up to `max_deliveries` stored-but-not-derived deliveries, in one transaction (read
    /// [`PASS`] at a time). Returns an empty report when there is nothing to do.
    ///
    /// Derived data is committed with `synchronous=NORMAL`: a process crash still loses nothing
    /// (the WAL is written before commit returns), and the next delivery commit — `FULL` —
    /// fsyncs these frames along with its own. Only a power cut between the two could drop a
    /// derivation, and it is redone from `deliveries` because its watermark is in the same
    /// transaction. This halves the fsyncs of a busy listener without weakening any `200`.
    pub fn derive_pending(&mut self, max_deliveries: usize) -> Result<DeriveReport, StoreError> {
        self.derive_pending_until(max_deliveries, &mut || false)
    }

    /// [`Writer::derive_pending`] that ends early — saving what it derived so far — once `stop`
    /// says so (asked every [`STOP_EVERY`] deliveries): a listener catching up stops when a
    /// delivery is waiting to be stored.
    pub fn derive_pending_until(
        &mut self,
        max_deliveries: usize,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<DeriveReport, StoreError> {
        let country = self.default_country()?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let bulk = max_deliveries >= PREFETCH_FROM;
        if bulk {
            self.bulk_pragmas(true)?;
        }
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut pass = Pass::new(&tx, country);
            derive_in(&mut pass, max_deliveries, &mut |_| {}, stop)?;
            let report = pass.finish()?;
            tx.commit()?;
            Ok(report)
        })();
        if bulk {
            self.bulk_pragmas(false)?;
        }
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result
    }

    /// Settings for a pass over many deliveries, and back (`on` false).
    ///
    /// - A larger page cache: a pass touches pages all over the derived tables and indexes.
    /// - Foreign keys not checked: every row a pass writes refers to a delivery, connection or
    ///   profile it has just read or written in the same transaction, and checking costs a
    ///   lookup per reference per row (derive_same.rs compares what passes write with what
    ///   derivation with the checks on writes). Other writers keep them on.
    fn bulk_pragmas(&mut self, on: bool) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "cache_size", if on { -65_536 } else { -16_000 })?;
        self.conn.pragma_update(None, "foreign_keys", !on)?;
        if !on {
            self.conn.execute_batch("PRAGMA shrink_memory")?;
        }
        Ok(())
    }

    /// Derives until nothing is pending, in transactions of up to [`DERIVE_ALL_BATCH`].
    pub fn derive_all(&mut self) -> Result<DeriveReport, StoreError> {
        let mut total = DeriveReport::default();
        loop {
            let report = self.derive_pending(DERIVE_ALL_BATCH)?;
            if report.deliveries == 0 {
                return Ok(total);
            }
            total.absorb(report);
        }
    }

    /// Rebuilds everything derived from `deliveries`, atomically: readers see the old data until
    /// the new data is complete. `progress(done, total)` is called as deliveries are read.
    pub fn reprocess(
        &mut self,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<DeriveReport, StoreError> {
        let country = self.default_country()?;
        self.bulk_pragmas(true)?;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // What is cleared here is rebuilt from the same deliveries below, so its old pages
            // need not be overwritten as they are freed (secure_delete exists for what is
            // forgotten, and a forgotten customer's derived rows were overwritten when they were
            // forgotten).
            tx.pragma_update(None, "secure_delete", false)?;
            tx.execute_batch(
                "DELETE FROM person_terms; DELETE FROM people; DELETE FROM identity_keys;
                 DELETE FROM events; DELETE FROM source_profiles; DELETE FROM delivery_outcomes;",
            )?;
            tx.pragma_update(None, "secure_delete", true)?;
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))?;
            let mut pass = Pass::new(&tx, country);
            derive_in(
                &mut pass,
                usize::MAX,
                &mut |read| progress(read, total as usize),
                &mut || false,
            )?;
            let report = pass.finish()?;
            tx.commit()?;
            Ok(report)
        })();
        self.bulk_pragmas(false)?;
        result
    }

    /// Reads one stored delivery again (after an update taught Clientele its format) and puts its
    /// events where they belong: every profile it touched before or touches now is re-folded.
    pub fn reprocess_delivery(&mut self, delivery_id: i64) -> Result<DeriveReport, StoreError> {
        let country = self.default_country()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let touched: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT DISTINCT e.source_profile_id, c.provider FROM events e
                 JOIN source_profiles sp ON sp.id = e.source_profile_id
                 JOIN connections c ON c.id = sp.connection_id
                 WHERE e.delivery_id = ?1",
            )?
            .query_map([delivery_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM events WHERE delivery_id = ?1", [delivery_id])?;
        let derived = tx.execute(
            "DELETE FROM delivery_outcomes WHERE delivery_id = ?1",
            [delivery_id],
        )?;
        let mut deliveries = load_deliveries(&tx, "id = ?1", [delivery_id])?;
        let delivery = deliveries.pop().ok_or_else(|| {
            StoreError::NotFound(format!("There is no delivery with id {delivery_id}."))
        })?;
        if derived == 0 {
            // Not derived yet: the pipeline will read it in order.
            return Ok(DeriveReport::default());
        }
        let mut pass = Pass::new(&tx, country);
        for (profile_id, provider) in touched {
            let provider = stored::provider(&provider)?;
            pass.load_profile(profile_id, provider)?;
            if let Some(working) = pass.profiles.get_mut(&profile_id) {
                working.refold = true;
            }
        }
        pass.delivery(&delivery)?;
        let report = pass.finish()?;
        tx.commit()?;
        Ok(report)
    }

    /// The business's default country for phone numbers written without a country code.
    ///
    /// Read from the settings at each pass, never remembered: the window or `clientele settings
    /// default-country` may change it while a listener's writer runs, and a writer that kept the
    /// old one would link new deliveries by it (one indexed read per pass costs nothing).
    pub fn default_country(&mut self) -> Result<Option<CountryId>, StoreError> {
        let code: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = 'default_country'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(code.as_deref().and_then(parse_country))
    }

    /// Sets the default country (ISO code such as `GB`). Takes effect for new deliveries;
    /// [`Writer::rekey_phones`] (or `reprocess`) applies it to earlier ones.
    pub fn set_default_country(&mut self, code: &str) -> Result<(), StoreError> {
        parse_country(code).ok_or_else(|| {
            StoreError::Invalid(format!(
                "'{code}' is not a country code (for example GB, US, BR)."
            ))
        })?;
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ('default_country', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [code.trim().to_uppercase()],
        )?;
        Ok(())
    }

    /// Reads the phone numbers of up to `batch` source profiles after id `after` again with the
    /// current default country, and relinks whoever that changes, in one short transaction.
    ///
    /// The default country decides only which phone numbers are valid and how they read (their
    /// identity keys), so this is everything a change of it needs — the same links, people and
    /// search terms as `reprocess` would give, without re-reading every delivery. In small
    /// batches, so a listener's writer waits at most one batch for its turn: it runs while the
    /// app receives. Profiles the listener derives meanwhile use the new country already.
    pub fn rekey_phones(&mut self, after: i64, batch: usize) -> Result<RekeyStep, StoreError> {
        let country = self.default_country()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let profiles: Vec<(i64, Vec<u8>, Option<i64>)> = tx
            .prepare_cached(
                "SELECT id, state, person_id FROM source_profiles WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after, batch as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut relink = BTreeSet::new();
        let mut rebuild = BTreeSet::new();
        for (id, state, person) in &profiles {
            let state = stored::state(state)?;
            let own = profile_country(&state).or(country);
            if people::update_identity_keys(&tx, *id, &state, own, &mut relink)? {
                relink.insert(*id);
            }
            // The search terms of a number that isn't a key (not valid, or an old one) depend on
            // the country too.
            if let Some(person) = person {
                let keyed: i64 = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM identity_keys
                         WHERE source_profile_id = ?1 AND kind = 'phone'",
                    )?
                    .query_row([id], |r| r.get(0))?;
                if state.seen("phone").count() as i64 > keyed {
                    rebuild.insert(*person);
                }
            }
        }
        let mut changed = people::relink(&tx, relink)?;
        changed.extend(rebuild);
        for person in &changed {
            people::rebuild_person(&tx, *person, country)?;
        }
        tx.commit()?;
        Ok(RekeyStep {
            profiles: profiles.len(),
            last: profiles.last().map(|p| p.0),
            people_changed: changed,
        })
    }
}

/// What one batch of [`Writer::rekey_phones`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyStep {
    /// Source profiles read in this batch; fewer than asked means the last batch.
    pub profiles: usize,
    /// The last profile read: where the next batch starts.
    pub last: Option<i64>,
    /// People whose row changed (or disappeared), for live updates.
    pub people_changed: BTreeSet<i64>,
}

/// Reads up to `max` deliveries after the watermark into `pass`; returns how many it read.
///
/// The watermark is the newest delivery with an outcome, and outcomes are written as each
/// delivery is read, so a pass that spans several calls picks up where the last one stopped.
fn derive_in(
    pass: &mut Pass<'_>,
    max: usize,
    progress: &mut dyn FnMut(usize),
    stop: &mut dyn FnMut() -> bool,
) -> Result<usize, StoreError> {
    let watermark: i64 = pass.tx.query_row(
        "SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes",
        [],
        |r| r.get(0),
    )?;
    let mut read = 0;
    let path = pass
        .tx
        .path()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from);
    if let (true, Some(path)) = (max >= PREFETCH_FROM, path) {
        let mut prefetch = Prefetch::start(&path, watermark, max, pass.country)?;
        'batches: while let Some(batch) = prefetch.next_batch() {
            let batch = batch?;
            for (delivery, parsed) in &batch {
                pass.apply(delivery, parsed.as_ref())?;
                read += 1;
                if read % STOP_EVERY == 0 && stop() {
                    progress(read);
                    break 'batches;
                }
            }
            prefetch.give_back(batch);
            if pass.profiles.len() > MAX_WORKING_PROFILES {
                pass.flush()?;
            }
            progress(read);
        }
        return Ok(read);
    }
    let mut after = watermark;
    while read < max {
        let want = (max - read).min(PASS);
        let pending = load_deliveries(
            pass.tx,
            "id > ?1 ORDER BY id LIMIT ?2",
            params![after, want as i64],
        )?;
        let mut stopped = false;
        for delivery in &pending {
            pass.delivery(delivery)?;
            read += 1;
            if read % STOP_EVERY == 0 && stop() {
                stopped = true;
                break;
            }
        }
        if pass.profiles.len() > MAX_WORKING_PROFILES {
            pass.flush()?;
        }
        progress(read);
        match pending.last() {
            Some(last) if pending.len() == want && !stopped => after = last.id,
            _ => break,
        }
    }
    Ok(read)
}

/// Loads stored deliveries for derivation; `condition` follows `WHERE`.
fn load_deliveries(
    tx: &Transaction<'_>,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT id, connection_id, headers, body, is_test, erased_at IS NOT NULL, body_codec
         FROM deliveries WHERE {condition}"
    ))?;
    let rows = stmt.query_map(values, |r| {
        Ok(PendingDelivery {
            id: r.get(0)?,
            connection_id: r.get(1)?,
            headers: r.get(2)?,
            body: r.get(3)?,
            is_test: r.get(4)?,
            erased: r.get(5)?,
            codec: r.get(6)?,
        })
    })?;
    rows.map(|row| {
        let mut d = row?;
        d.body = stored::body(d.codec, std::mem::take(&mut d.body))?;
        Ok(d)
    })
    .collect()
}

/// The events a stored delivery reads as today (None when it no longer reads: its
/// connection's settings changed, or it was forgotten).
pub(crate) fn events_of_stored(
    tx: &rusqlite::Connection,
    delivery_id: i64,
) -> Result<Option<Vec<SourceEvent>>, StoreError> {
    let (provider, settings, headers, body, codec): (String, String, String, Vec<u8>, i64) = tx
        .prepare_cached(
            "SELECT c.provider, c.settings, d.headers, d.body, d.body_codec
             FROM deliveries d JOIN connections c ON c.id = d.connection_id WHERE d.id = ?1",
        )?
        .query_row([delivery_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let body = stored::body(codec, body)?;
    let settings: ConnectionSettings = serde_json::from_str(&settings)?;
    let parsed = providers::parse(
        stored::provider(&provider)?,
        &settings,
        &header_map(&headers)?,
        &body,
    );
    Ok(parsed.ok().map(|p| p.events))
}

/// A profile being worked on in this pass.
struct Working {
    state: ProfileState,
    provider: Provider,
    refold: bool,
    /// What its stored identity keys were computed from, when it was loaded with keys that
    /// match its state (so they need no work unless these fields change).
    keyed: Option<people::IdentityInputs>,
    /// What its person's search terms and name were built from, when it was loaded (a new
    /// record has none).
    searched: Option<people::SearchInputs>,
    /// Its person when it was loaded.
    person: Option<i64>,
}

/// A profile state made ready to save by [`Pass::flush`]'s second thread.
struct SavedProfile {
    blob: Vec<u8>,
    /// Its identity keys, when what they are made from changed.
    keys: Option<BTreeSet<clientele_core::identity::IdentityKey>>,
    searched_changed: bool,
}

/// One derivation over many deliveries, in one transaction. Events are written as deliveries
/// are read; each source profile touched is saved, and each person touched rebuilt, once when
/// the pass is flushed — not once per delivery.
struct Pass<'t> {
    tx: &'t Transaction<'t>,
    country: Option<CountryId>,
    sources: HashMap<i64, Source>,
    /// Source profile ids by connection and customer id, as met in this pass.
    refs: HashMap<i64, HashMap<String, i64>>,
    /// Boxed: a state and what its keys and terms were made from are a few hundred bytes, and
    /// the map grows (and moves its entries) while a pass meets tens of thousands of profiles.
    profiles: HashMap<i64, Box<Working>>,
    report: DeriveReport,
}

impl<'t> Pass<'t> {
    fn new(tx: &'t Transaction<'t>, country: Option<CountryId>) -> Self {
        Pass {
            tx,
            country,
            sources: HashMap::new(),
            refs: HashMap::new(),
            profiles: HashMap::new(),
            report: DeriveReport::default(),
        }
    }

    fn source(&mut self, connection_id: i64) -> Result<&Source, StoreError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.sources.entry(connection_id) {
            let (provider, settings): (String, String) = self
                .tx
                .prepare_cached("SELECT provider, settings FROM connections WHERE id = ?1")?
                .query_row([connection_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            slot.insert(Source {
                provider: stored::provider(&provider)?,
                settings: serde_json::from_str(&settings)?,
            });
        }
        Ok(&self.sources[&connection_id])
    }

    fn delivery(&mut self, d: &PendingDelivery) -> Result<(), StoreError> {
        let parsed = if d.erased || d.is_test {
            None
        } else {
            let source = self.source(d.connection_id)?;
            Some(parse(source, d)?)
        };
        self.apply(&d.meta(), parsed.as_ref())
    }

    /// Folds a delivery that was read and parsed (`parsed` is None for a forgotten or test
    /// delivery).
    fn apply(
        &mut self,
        d: &DeliveryMeta,
        parsed: Option<&Result<ParsedDelivery, String>>,
    ) -> Result<(), StoreError> {
        self.report.deliveries += 1;
        if d.erased {
            return self.outcome(d.id, DeliveryStatus::Erased, None, 0);
        }
        if d.is_test {
            return self.outcome(d.id, DeliveryStatus::Test, None, 0);
        }
        let provider = self.source(d.connection_id)?.provider;
        match parsed {
            None => Err(StoreError::Corrupt("a delivery was not read".into())),
            Some(Err(error)) => {
                self.report.needs_attention += 1;
                self.outcome(d.id, DeliveryStatus::NeedsAttention, Some(error), 0)
            }
            Some(Ok(parsed)) => {
                for (seq, event) in parsed.events.iter().enumerate() {
                    self.event(d, provider, seq as i64, event)?;
                }
                self.outcome(
                    d.id,
                    DeliveryStatus::Processed,
                    None,
                    parsed.events.len() as i64,
                )
            }
        }
    }

    fn outcome(
        &self,
        delivery_id: i64,
        status: DeliveryStatus,
        error: Option<&str>,
        events: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO delivery_outcomes (delivery_id, status, error, events)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![delivery_id, status.as_str(), error, events])?;
        Ok(())
    }

    fn event(
        &mut self,
        d: &DeliveryMeta,
        provider: Provider,
        seq: i64,
        event: &SourceEvent,
    ) -> Result<(), StoreError> {
        self.report.events += 1;
        let profile_id = self.profile(d.connection_id, provider, &event.customer_ref)?;
        let working = self
            .profiles
            .get_mut(&profile_id)
            .ok_or_else(|| StoreError::Corrupt("profile vanished mid-pass".into()))?;
        let (changes, summary) = if !working.refold && working.state.accepts_in_order(event) {
            let changes = working.state.apply(event);
            let summary = summarize(provider, event, &changes);
            (stored::changes_text(&changes)?, summary)
        } else {
            // Older than what the profile has seen: the re-fold in `flush` computes these.
            working.refold = true;
            ("[]".to_string(), String::new())
        };
        self.tx
            .prepare_cached(
                "INSERT INTO events (source_profile_id, delivery_id, seq, occurred_at, kind,
                                     event_type, changes, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                profile_id,
                d.id,
                seq,
                to_millis(event.occurred_at),
                event.kind.as_str(),
                event.event_type,
                changes,
                summary
            ])?;
        Ok(())
    }

    /// The id of the source profile for `customer_ref`, created if new, loaded into the pass.
    fn profile(
        &mut self,
        connection_id: i64,
        provider: Provider,
        customer_ref: &str,
    ) -> Result<i64, StoreError> {
        let known = self
            .refs
            .get(&connection_id)
            .and_then(|refs| refs.get(customer_ref))
            .copied();
        let found = match known {
            Some(id) => Some(id),
            None => self
                .tx
                .prepare_cached(
                    "SELECT id FROM source_profiles WHERE connection_id = ?1 AND customer_ref = ?2",
                )?
                .query_row(params![connection_id, customer_ref], |r| r.get(0))
                .optional()?,
        };
        let id = match found {
            Some(id) => {
                self.load_profile(id, provider)?;
                id
            }
            None => {
                // Its state is written when the pass is flushed.
                self.tx
                    .prepare_cached(
                        "INSERT INTO source_profiles (connection_id, customer_ref, state)
                         VALUES (?1, ?2, X'')",
                    )?
                    .execute(params![connection_id, customer_ref])?;
                let id = self.tx.last_insert_rowid();
                self.profiles.insert(
                    id,
                    Box::new(Working {
                        state: ProfileState::default(),
                        provider,
                        refold: false,
                        keyed: None,
                        searched: None,
                        person: None,
                    }),
                );
                id
            }
        };
        if known.is_none() {
            self.refs
                .entry(connection_id)
                .or_default()
                .insert(customer_ref.to_string(), id);
        }
        Ok(id)
    }

    /// Loads a stored source profile into the pass (once).
    fn load_profile(&mut self, id: i64, provider: Provider) -> Result<(), StoreError> {
        if self.profiles.contains_key(&id) {
            return Ok(());
        }
        let (blob, person): (Vec<u8>, Option<i64>) = self
            .tx
            .prepare_cached("SELECT state, person_id FROM source_profiles WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let state = stored::state(&blob)?;
        self.profiles.insert(
            id,
            Box::new(Working {
                keyed: Some(people::IdentityInputs::of(&state)),
                searched: Some(people::SearchInputs::of(&state)),
                state,
                provider,
                refold: false,
                person,
            }),
        );
        Ok(())
    }

    /// Re-folds what needs it, saves profile states, updates identity keys, links people and
    /// rebuilds the people rows that changed; then starts afresh (the report goes on).
    ///
    /// What needs no database — serialising and packing each state, making its identity keys,
    /// making each person's row and terms — is made on a second thread while this one writes
    /// what was made before ([`pipelined`]); rows are written in the same order as one thread
    /// would.
    fn flush(&mut self) -> Result<(), StoreError> {
        let mut ids: Vec<i64> = self.profiles.keys().copied().collect();
        ids.sort_unstable();
        let mut works: Vec<(i64, Box<Working>)> = ids
            .into_iter()
            .filter_map(|id| self.profiles.remove(&id).map(|w| (id, w)))
            .collect();
        for (id, working) in &mut works {
            if working.refold {
                working.state = refold(self.tx, *id, working.provider)?;
                self.report.refolded_profiles += 1;
            }
        }
        let tx = self.tx;
        let country = self.country;
        let mut relink = BTreeSet::new();
        let mut people_to_rebuild = BTreeSet::new();
        let mut searched_changed = HashSet::new();
        pipelined(
            &works,
            |(_, working)| -> Result<SavedProfile, StoreError> {
                let state = &working.state;
                Ok(SavedProfile {
                    blob: stored::state_blob(state)?,
                    // Most deliveries change neither email, phone nor country: then the keys
                    // stand.
                    keys: (working.keyed.as_ref() != Some(&people::IdentityInputs::of(state)))
                        .then(|| people::keys_of_state(state, profile_country(state).or(country))),
                    // Nor what the person is found by and called.
                    searched_changed: working.searched.as_ref()
                        != Some(&people::SearchInputs::of(state)),
                })
            },
            |(id, working), saved| {
                let saved = saved.as_mut().map_err(take_error)?;
                let state = &working.state;
                tx.prepare_cached(
                    "UPDATE source_profiles
                     SET state = ?2, first_event_at = ?3, last_event_at = ?4, deleted_at = ?5
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    saved.blob,
                    state.first_event_at.map(to_millis),
                    state.last_event_at.map(to_millis),
                    state.deleted_at.map(to_millis)
                ])?;
                match working.person {
                    Some(person) => {
                        people_to_rebuild.insert(person);
                    }
                    None => {
                        relink.insert(*id);
                    }
                }
                if let Some(keys) = &saved.keys
                    && people::replace_identity_keys(tx, *id, keys, &mut relink)?
                {
                    relink.insert(*id);
                }
                if saved.searched_changed {
                    searched_changed.insert(*id);
                }
                Ok::<(), StoreError>(())
            },
        )?;
        let states: HashMap<i64, ProfileState> =
            works.into_iter().map(|(id, w)| (id, w.state)).collect();
        let relinked = people::relink(tx, relink)?;
        people_to_rebuild.extend(relinked.iter().copied());
        let inputs = people_to_rebuild
            .iter()
            .map(|&person| {
                let rebuild = people::Rebuild {
                    states: &states,
                    searched_changed: &searched_changed,
                    members_changed: relinked.contains(&person),
                };
                people::PersonInputs::read(tx, person, &rebuild)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut terms = people::TermWrites::default();
        pipelined(
            &inputs,
            |person| person.person_row(country),
            |_, row| -> Result<(), StoreError> {
                row.as_mut().map_err(take_error)?.write(tx, &mut terms)?;
                terms.write_if_many(tx)
            },
        )?;
        terms.write(tx)?;
        drop(inputs);
        // Freeing tens of thousands of states takes a while: the pass goes on meanwhile (freed
        // here if no thread can be started).
        let _ = std::thread::Builder::new()
            .name("derive-free".into())
            .spawn(move || drop(states));
        self.report.people_changed.extend(people_to_rebuild);
        Ok(())
    }

    fn finish(mut self) -> Result<DeriveReport, StoreError> {
        self.flush()?;
        Ok(self.report)
    }
}
/// A customer's own country (Vagaro sends one) beats the business default for their phone.
pub(crate) fn profile_country(state: &ProfileState) -> Option<CountryId> {
    state.value("country_code").as_str().and_then(parse_country)
}

/// Re-folds a profile whose events changed outside a pass (a forget removed some), saves it, and
/// updates its identity keys; adds it to `relink` and its person's id too, to be rebuilt.
pub(crate) fn refold_saved(
    tx: &Transaction<'_>,
    profile_id: i64,
    country: Option<CountryId>,
    relink: &mut BTreeSet<i64>,
) -> Result<(), StoreError> {
    let provider: String = tx.query_row(
        "SELECT c.provider FROM source_profiles sp JOIN connections c ON c.id = sp.connection_id
         WHERE sp.id = ?1",
        [profile_id],
        |r| r.get(0),
    )?;
    let state = refold(tx, profile_id, stored::provider(&provider)?)?;
    tx.execute(
        "UPDATE source_profiles
         SET state = ?2, first_event_at = ?3, last_event_at = ?4, deleted_at = ?5
         WHERE id = ?1",
        params![
            profile_id,
            stored::state_blob(&state)?,
            state.first_event_at.map(to_millis),
            state.last_event_at.map(to_millis),
            state.deleted_at.map(to_millis)
        ],
    )?;
    let own = profile_country(&state).or(country);
    people::update_identity_keys(tx, profile_id, &state, own, relink)?;
    relink.insert(profile_id);
    Ok(())
}

/// Folds all of a profile's events again, in event order, rewriting each event's computed diff
/// and sentence. Returns the resulting state.
///
/// Events keep no copy of what they were read from: each delivery is parsed again (a re-fold
/// follows a late delivery, which is rare). An event whose delivery no longer reads as it did —
/// its connection's settings changed since — is left as it is, out of the fold, as `reprocess`
/// would leave it out altogether.
fn refold(
    tx: &Transaction<'_>,
    profile_id: i64,
    provider: Provider,
) -> Result<ProfileState, StoreError> {
    let events: Vec<(i64, i64, i64, String, String)> = tx
        .prepare_cached(
            "SELECT id, delivery_id, seq, changes, summary FROM events WHERE source_profile_id = ?1
             ORDER BY occurred_at, delivery_id, seq",
        )?
        .query_map([profile_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut read: HashMap<i64, Option<Vec<SourceEvent>>> = HashMap::new();
    let mut state = ProfileState::default();
    let mut update =
        tx.prepare_cached("UPDATE events SET changes = ?2, summary = ?3 WHERE id = ?1")?;
    for (id, delivery_id, seq, old_changes, old_summary) in events {
        if let std::collections::hash_map::Entry::Vacant(slot) = read.entry(delivery_id) {
            slot.insert(events_of_stored(tx, delivery_id)?);
        }
        let Some(event) = read[&delivery_id]
            .as_ref()
            .and_then(|events| events.get(seq as usize))
        else {
            continue;
        };
        let changes = state.apply(event);
        let summary = summarize(provider, event, &changes);
        let changes = stored::changes_text(&changes)?;
        if changes != old_changes || summary != old_summary {
            update.execute(params![id, changes, summary])?;
        }
    }
    Ok(state)
}

/// Rebuilds the header map a delivery arrived with (the kept headers) for the adapter.
pub(crate) fn header_map(stored: &str) -> Result<HeaderMap, StoreError> {
    let pairs: Vec<(String, String)> = serde_json::from_str(stored)?;
    Ok(header_map_of(&pairs))
}

/// The header map of kept header pairs (a pair that isn't a valid header is left out).
pub(crate) fn header_map_of(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}
