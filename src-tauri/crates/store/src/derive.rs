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
use crate::stored;
use crate::{StoreError, Writer};
use clientele_core::identity::{CountryId, parse_country};
use clientele_core::profile::ProfileState;
use clientele_core::summary::summarize;
use clientele_core::{ConnectionSettings, Provider, SourceEvent, providers};
use http::{HeaderMap, HeaderName, HeaderValue};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeSet, HashMap};

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

/// One stored delivery as derivation needs it.
struct PendingDelivery {
    id: i64,
    connection_id: i64,
    provider: Provider,
    settings: ConnectionSettings,
    headers: String,
    body: Vec<u8>,
    is_test: bool,
    /// Forgotten: its content is gone, and it derives to nothing.
    erased: bool,
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
        let country = self.default_country()?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut report = DeriveReport::default();
            while report.deliveries < max_deliveries {
                let want = (max_deliveries - report.deliveries).min(PASS);
                let pass = derive_in(&tx, country, want)?;
                let done = pass.deliveries;
                report.absorb(pass);
                if done < want {
                    break;
                }
            }
            tx.commit()?;
            Ok(report)
        })();
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result
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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "DELETE FROM person_terms; DELETE FROM people; DELETE FROM identity_keys;
             DELETE FROM events; DELETE FROM source_profiles; DELETE FROM delivery_outcomes;",
        )?;
        let total: i64 = tx.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))?;
        let mut report = DeriveReport::default();
        loop {
            let pass = derive_in(&tx, country, 2_000)?;
            if pass.deliveries == 0 {
                break;
            }
            report.absorb(pass);
            progress(report.deliveries, total as usize);
        }
        tx.commit()?;
        Ok(report)
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
        let mut deliveries = load_deliveries(&tx, "d.id = ?1", [delivery_id])?;
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
            pass.profiles.insert(
                profile_id,
                Working {
                    state: ProfileState::default(),
                    provider,
                    refold: true,
                    keyed: None,
                },
            );
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
        let profiles: Vec<(i64, String, Option<i64>)> = tx
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
            let state: ProfileState = serde_json::from_str(state)?;
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

fn derive_in(
    tx: &Transaction<'_>,
    country: Option<CountryId>,
    max_deliveries: usize,
) -> Result<DeriveReport, StoreError> {
    let watermark: i64 = tx.query_row(
        "SELECT COALESCE(MAX(delivery_id), 0) FROM delivery_outcomes",
        [],
        |r| r.get(0),
    )?;
    let pending = load_deliveries(
        tx,
        "d.id > ?1 ORDER BY d.id LIMIT ?2",
        params![watermark, max_deliveries as i64],
    )?;
    let mut pass = Pass::new(tx, country);
    for delivery in &pending {
        pass.delivery(delivery)?;
    }
    pass.finish()
}

/// Loads stored deliveries for derivation; `condition` follows `WHERE`.
fn load_deliveries(
    tx: &Transaction<'_>,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT d.id, d.connection_id, c.provider, c.settings, d.headers, d.body, d.is_test,
                d.erased_at IS NOT NULL, d.body_codec
         FROM deliveries d JOIN connections c ON c.id = d.connection_id
         WHERE {condition}"
    ))?;
    let rows = stmt.query_map(values, |r| {
        Ok((
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            (r.get(0)?, r.get(1)?, r.get(4)?, r.get(5)?, r.get(6)?),
            r.get::<_, bool>(7)?,
            r.get::<_, i64>(8)?,
        ))
    })?;
    let mut pending = Vec::new();
    for row in rows {
        let (provider, settings, (id, connection_id, headers, body, is_test), erased, codec) = row?;
        pending.push(PendingDelivery {
            id,
            connection_id,
            provider: stored::provider(&provider)?,
            settings: serde_json::from_str(&settings)?,
            headers,
            body: stored::body(codec, body)?,
            is_test,
            erased,
        });
    }
    Ok(pending)
}

/// A profile being worked on in this pass.
struct Working {
    state: ProfileState,
    provider: Provider,
    refold: bool,
    /// What its stored identity keys were computed from, when it was loaded with keys that
    /// match its state (so they need no work unless these fields change).
    keyed: Option<people::IdentityInputs>,
}

struct Pass<'t> {
    tx: &'t Transaction<'t>,
    country: Option<CountryId>,
    profiles: HashMap<i64, Working>,
    report: DeriveReport,
}

impl<'t> Pass<'t> {
    fn new(tx: &'t Transaction<'t>, country: Option<CountryId>) -> Self {
        Pass {
            tx,
            country,
            profiles: HashMap::new(),
            report: DeriveReport::default(),
        }
    }

    fn delivery(&mut self, d: &PendingDelivery) -> Result<(), StoreError> {
        self.report.deliveries += 1;
        if d.erased {
            return self.outcome(d.id, DeliveryStatus::Erased, None, 0);
        }
        if d.is_test {
            return self.outcome(d.id, DeliveryStatus::Test, None, 0);
        }
        let headers = header_map(&d.headers)?;
        match providers::parse(d.provider, &d.settings, &headers, &d.body) {
            Err(error) => {
                self.report.needs_attention += 1;
                self.outcome(
                    d.id,
                    DeliveryStatus::NeedsAttention,
                    Some(&error.to_string()),
                    0,
                )
            }
            Ok(parsed) => {
                for (seq, event) in parsed.events.iter().enumerate() {
                    self.event(d, seq as i64, event)?;
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
        d: &PendingDelivery,
        seq: i64,
        event: &SourceEvent,
    ) -> Result<(), StoreError> {
        self.report.events += 1;
        let profile_id = self.profile(d.connection_id, d.provider, &event.customer_ref)?;
        let working = self
            .profiles
            .get_mut(&profile_id)
            .ok_or_else(|| StoreError::Corrupt("profile vanished mid-pass".into()))?;
        let (changes, summary) = if !working.refold && working.state.accepts_in_order(event) {
            let changes = working.state.apply(event);
            let summary = summarize(d.provider, event, &changes);
            (serde_json::to_string(&changes)?, summary)
        } else {
            // Older than what the profile has seen: the re-fold in `finish` computes these.
            working.refold = true;
            ("[]".to_string(), String::new())
        };
        self.tx
            .prepare_cached(
                "INSERT INTO events (source_profile_id, delivery_id, seq, occurred_at, kind,
                                     event_type, input, changes, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                profile_id,
                d.id,
                seq,
                to_millis(event.occurred_at),
                event.kind.as_str(),
                event.event_type,
                serde_json::to_string(event)?,
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
        let found: Option<(i64, String)> = self
            .tx
            .prepare_cached(
                "SELECT id, state FROM source_profiles WHERE connection_id = ?1 AND customer_ref = ?2",
            )?
            .query_row(params![connection_id, customer_ref], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let id = match found {
            Some((id, state)) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = self.profiles.entry(id) {
                    let state: ProfileState = serde_json::from_str(&state)?;
                    slot.insert(Working {
                        keyed: Some(people::IdentityInputs::of(&state)),
                        state,
                        provider,
                        refold: false,
                    });
                }
                id
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO source_profiles (connection_id, customer_ref, state)
                         VALUES (?1, ?2, '{}')",
                    )?
                    .execute(params![connection_id, customer_ref])?;
                let id = self.tx.last_insert_rowid();
                self.profiles.insert(
                    id,
                    Working {
                        state: ProfileState::default(),
                        provider,
                        refold: false,
                        keyed: None,
                    },
                );
                id
            }
        };
        Ok(id)
    }

    /// Re-folds what needs it, saves profile states, updates identity keys, links people and
    /// rebuilds the people rows that changed.
    fn finish(mut self) -> Result<DeriveReport, StoreError> {
        let mut ids: Vec<i64> = self.profiles.keys().copied().collect();
        ids.sort_unstable();
        let mut relink = BTreeSet::new();
        let mut people_to_rebuild = BTreeSet::new();
        for id in ids {
            let Some(mut working) = self.profiles.remove(&id) else {
                continue;
            };
            if working.refold {
                working.state = refold(self.tx, id, working.provider)?;
                self.report.refolded_profiles += 1;
            }
            let state = &working.state;
            self.tx
                .prepare_cached(
                    "UPDATE source_profiles
                     SET state = ?2, first_event_at = ?3, last_event_at = ?4, deleted_at = ?5
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    serde_json::to_string(state)?,
                    state.first_event_at.map(to_millis),
                    state.last_event_at.map(to_millis),
                    state.deleted_at.map(to_millis)
                ])?;
            let person: Option<i64> = self
                .tx
                .prepare_cached("SELECT person_id FROM source_profiles WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            match person {
                Some(person) => {
                    people_to_rebuild.insert(person);
                }
                None => {
                    relink.insert(id);
                }
            }
            // Most deliveries change neither email, phone nor country: then the keys stand.
            if working.keyed.as_ref() != Some(&people::IdentityInputs::of(state)) {
                let country = profile_country(state).or(self.country);
                if people::update_identity_keys(self.tx, id, state, country, &mut relink)? {
                    relink.insert(id);
                }
            }
        }
        people_to_rebuild.extend(people::relink(self.tx, relink)?);
        for person in &people_to_rebuild {
            people::rebuild_person(self.tx, *person, self.country)?;
        }
        self.report.people_changed = people_to_rebuild;
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
            serde_json::to_string(&state)?,
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
fn refold(
    tx: &Transaction<'_>,
    profile_id: i64,
    provider: Provider,
) -> Result<ProfileState, StoreError> {
    let events: Vec<(i64, String, String, String)> = tx
        .prepare_cached(
            "SELECT id, input, changes, summary FROM events WHERE source_profile_id = ?1
             ORDER BY occurred_at, delivery_id, seq",
        )?
        .query_map([profile_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut state = ProfileState::default();
    let mut update =
        tx.prepare_cached("UPDATE events SET changes = ?2, summary = ?3 WHERE id = ?1")?;
    for (id, input, old_changes, old_summary) in events {
        let event: SourceEvent = serde_json::from_str(&input)?;
        let changes = state.apply(&event);
        let summary = summarize(provider, &event, &changes);
        let changes = serde_json::to_string(&changes)?;
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
