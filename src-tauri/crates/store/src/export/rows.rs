//! Streaming the rows of an export straight from SQLite, one at a time.
//!
//! Memory does not grow with the number of rows: people are read in id order (the primary key)
//! and events in time order through the `events_time` index, so SQLite never sorts the whole
//! result, and each row is handed to the caller and dropped before the next is read. The event
//! query spells its join order out (`CROSS JOIN`) so the planner can't pick a plan that sorts.
//!
//! Filters on where a row comes from and when (providers, connections, event time, event
//! kinds) are SQL conditions here; filters on the current profile (tier, tags, consent) are
//! applied by `CompiledProfile::keeps`. A person whose consent answer came from another record
//! than the address it is about has their records read too, so that the answer written is the
//! one given for the address exported (`CompiledProfile::pair_consents`).

use crate::StoreError;
use crate::time::{from_millis, to_millis};
use clientele_core::export::{CompiledProfile, EventRow, PersonRow, RecordRow, RowKind, RowRef};
use clientele_core::profile::FieldValue;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

/// Whether to go on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// A query and its parameters.
#[derive(Debug, Default)]
struct Query {
    conditions: Vec<String>,
    params: Vec<SqlValue>,
}

impl Query {
    fn param(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    fn json_list(&mut self, items: &[String]) -> String {
        let p = self.param(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()));
        format!("(SELECT value FROM json_each({p}))")
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// Conditions on the connection `c` a row comes from.
fn connection_conditions(q: &mut Query, c: &CompiledProfile) -> Vec<String> {
    let f = &c.profile.filters;
    let mut out = Vec::new();
    if !f.providers.is_empty() {
        let providers: Vec<String> = f.providers.iter().map(|p| p.to_lowercase()).collect();
        out.push(format!("c.provider IN {}", q.json_list(&providers)));
    }
    if !f.connections.is_empty() {
        let connections: Vec<String> = f
            .connections
            .iter()
            .map(|c| match c.split_once('/') {
                Some((p, n)) => format!("{}/{n}", p.to_lowercase()),
                None => c.clone(),
            })
            .collect();
        out.push(format!(
            "(c.provider || '/' || c.name) IN {}",
            q.json_list(&connections)
        ));
    }
    out
}

/// Conditions on the event `e`: time range and kinds.
fn event_conditions(q: &mut Query, c: &CompiledProfile) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(from) = c.event_from {
        out.push(format!("e.occurred_at >= {}", q.param(to_millis(from))));
    }
    if let Some(to) = c.event_to {
        out.push(format!("e.occurred_at < {}", q.param(to_millis(to))));
    }
    let kinds = &c.profile.filters.event_kinds;
    if !kinds.is_empty() {
        out.push(format!("e.kind IN {}", q.json_list(kinds)));
    }
    out
}

fn people_query(c: &CompiledProfile) -> Query {
    let mut q = Query::default();
    if !c.profile.filters.include_deleted.unwrap_or(false) {
        q.conditions.push("p.deleted = 0".into());
    }
    // Each filter is its own test on the person: a record at one of the providers, a record at
    // one of the connections, an event in the time range and of the kinds.
    for condition in connection_conditions(&mut q, c) {
        q.conditions.push(format!(
            "EXISTS (SELECT 1 FROM source_profiles sp
                     JOIN connections c ON c.id = sp.connection_id
                     WHERE sp.person_id = p.id AND {condition})"
        ));
    }
    let by_event = event_conditions(&mut q, c);
    if !by_event.is_empty() {
        q.conditions.push(format!(
            "EXISTS (SELECT 1 FROM source_profiles sp
                     JOIN events e ON e.source_profile_id = sp.id
                     WHERE sp.person_id = p.id AND {})",
            by_event.join(" AND ")
        ));
    }
    q
}

fn events_query(c: &CompiledProfile) -> Query {
    let mut q = Query::default();
    q.conditions
        .push("sp.id = e.source_profile_id AND c.id = sp.connection_id".into());
    let by_event = event_conditions(&mut q, c);
    q.conditions.extend(by_event);
    let by_connection = connection_conditions(&mut q, c);
    q.conditions.extend(by_connection);
    q
}

const PEOPLE_COLUMNS: &str = "p.id, p.display_name, p.emails, p.phones, p.profile, \
                              p.first_event_at, p.last_event_at, p.deleted";

/// The SQL that streams the rows, for tests of its query plan.
pub(crate) fn stream_sql(c: &CompiledProfile) -> (String, Vec<SqlValue>) {
    match c.rows() {
        RowKind::People => {
            let q = people_query(c);
            (
                format!(
                    "SELECT {PEOPLE_COLUMNS} FROM people p {} ORDER BY p.id",
                    q.where_clause()
                ),
                q.params,
            )
        }
        RowKind::Events => {
            let q = events_query(c);
            (
                format!(
                    "SELECT e.delivery_id, e.seq, e.occurred_at, e.kind, e.event_type, e.summary,
                            e.changes, c.provider, c.name, sp.customer_ref, sp.person_id
                     FROM events e INDEXED BY events_time
                     CROSS JOIN source_profiles sp CROSS JOIN connections c
                     {} ORDER BY e.occurred_at, e.delivery_id, e.seq",
                    q.where_clause()
                ),
                q.params,
            )
        }
    }
}

/// How many rows the query gives before the profile filters (for a progress bar).
pub(crate) fn count(conn: &Connection, c: &CompiledProfile) -> Result<u64, StoreError> {
    let (sql, params) = match c.rows() {
        RowKind::People => {
            let q = people_query(c);
            (
                format!("SELECT COUNT(*) FROM people p {}", q.where_clause()),
                q.params,
            )
        }
        RowKind::Events => {
            let q = events_query(c);
            (
                format!(
                    "SELECT COUNT(*) FROM events e CROSS JOIN source_profiles sp
                     CROSS JOIN connections c {}",
                    q.where_clause()
                ),
                q.params,
            )
        }
    };
    let n: i64 = conn.query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Calls `f` with each row, in order, until it says stop.
pub(crate) fn for_each<E: From<StoreError>>(
    conn: &Connection,
    c: &CompiledProfile,
    mut f: impl FnMut(RowRef<'_>) -> Result<Flow, E>,
) -> Result<(), E> {
    let (sql, params) = stream_sql(c);
    let mut stmt = conn.prepare(&sql).map_err(StoreError::from)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(StoreError::from)?;
    match c.rows() {
        RowKind::People => {
            while let Some(r) = rows.next().map_err(StoreError::from)? {
                let person = person_from(r, conn, c)?;
                if f(RowRef::Person(&person))? == Flow::Stop {
                    break;
                }
            }
        }
        RowKind::Events => {
            let mut people = PersonCache::default();
            // Events keep no copy of what they were read from: a column that shows an event's
            // details reads its delivery again (the last one read is kept: a delivery's events
            // are usually next to each other).
            let mut read: Option<(i64, Option<Vec<clientele_core::SourceEvent>>)> = None;
            while let Some(r) = rows.next().map_err(StoreError::from)? {
                let changes: String = r.get(6).map_err(StoreError::from)?;
                let details = if c.needs.details {
                    let delivery: i64 = r.get(0).map_err(StoreError::from)?;
                    let seq: i64 = r.get(1).map_err(StoreError::from)?;
                    if read.as_ref().is_none_or(|(id, _)| *id != delivery) {
                        read = Some((delivery, crate::derive::events_of_stored(conn, delivery)?));
                    }
                    read.as_ref()
                        .and_then(|(_, events)| events.as_ref()?.get(seq as usize))
                        .map_or(Value::Null, |e| e.details.clone())
                } else {
                    Value::Null
                };
                let event = EventRow {
                    delivery_id: r.get(0).map_err(StoreError::from)?,
                    seq: r.get(1).map_err(StoreError::from)?,
                    occurred_at: from_millis(r.get(2).map_err(StoreError::from)?),
                    kind: r.get(3).map_err(StoreError::from)?,
                    event_type: r.get(4).map_err(StoreError::from)?,
                    summary: r.get(5).map_err(StoreError::from)?,
                    // Parsed only when a column shows them: most exports of events don't.
                    changes: if c.needs.changes {
                        crate::stored::changes(&changes)?
                    } else {
                        Vec::new()
                    },
                    provider: r.get(7).map_err(StoreError::from)?,
                    connection: r.get(8).map_err(StoreError::from)?,
                    customer_ref: r.get(9).map_err(StoreError::from)?,
                    details,
                };
                let person_id: Option<i64> = r.get(10).map_err(StoreError::from)?;
                let person = match (c.needs.person, person_id) {
                    (true, Some(id)) => people.get(conn, c, id)?,
                    _ => None,
                };
                let row = RowRef::Event {
                    event: &event,
                    person: person.as_deref(),
                };
                if f(row)? == Flow::Stop {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct MergedValue {
    #[serde(default)]
    value: Value,
    /// The record the value came from.
    #[serde(default)]
    source_profile: Option<i64>,
}

/// The wanted fields of a merged profile: each value, and the record each came from.
#[derive(Debug, Default, PartialEq)]
struct Wanted {
    values: BTreeMap<String, Value>,
    records: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
struct StateFields {
    #[serde(default)]
    fields: BTreeMap<String, FieldValue>,
}

/// The `value` of each field in `wanted` from a person's merged profile (JSON: field →
/// `{value, source, at, …}`); the other fields are skipped without being built. An export reads
/// a handful of fields from profiles that hold dozens, once per row: building them all was most
/// of what an export of events with people's columns cost beyond `sqlite3 -csv` (`make bench`).
/// `with_records`: also note the record each value came from (`Wanted::records`).
fn wanted_values(
    json: &str,
    wanted: &BTreeSet<String>,
    with_records: bool,
) -> Result<Wanted, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct Seed<'a>(&'a BTreeSet<String>, bool);

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Wanted;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a profile: an object of fields")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Wanted::default();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if self.0.contains(key.as_ref()) {
                    let merged: MergedValue = map.next_value()?;
                    let key = key.into_owned();
                    if let Some(record) = merged.source_profile.filter(|_| self.1) {
                        out.records.insert(key.clone(), record);
                    }
                    out.values.insert(key, merged.value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Wanted;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(json);
    let values = Seed(wanted, with_records).deserialize(&mut de)?;
    de.end()?;
    Ok(values)
}

fn person_from(
    r: &rusqlite::Row<'_>,
    conn: &Connection,
    c: &CompiledProfile,
) -> Result<PersonRow, StoreError> {
    let emails: String = r.get(2)?;
    let phones: String = r.get(3)?;
    let profile: Vec<u8> = r.get(4)?;
    let profile = crate::stored::profile_json(&profile)?;
    let profile = std::str::from_utf8(&profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let first: Option<i64> = r.get(5)?;
    let last: Option<i64> = r.get(6)?;
    let id: i64 = r.get(0)?;
    let merged = wanted_values(profile, c.profile_fields(), c.reads_consent())?;
    let mut person = PersonRow {
        id,
        display_name: r.get(1)?,
        emails: serde_json::from_str(&emails)?,
        phones: serde_json::from_str(&phones)?,
        first_seen: first.map(from_millis),
        last_seen: last.map(from_millis),
        deleted: r.get(7)?,
        profile: merged.values,
        field_records: merged.records,
        records: Vec::new(),
    };
    // Only people whose consent and address came from different records read their records'
    // fields for that (rare: most people's answers and addresses come from one record).
    let pair = c.needs_consent_records(&person);
    if c.needs.records || pair {
        person.records = records_of(conn, id, c.needs.record_fields || pair)?;
    }
    if pair {
        c.pair_consents(&mut person);
    }
    Ok(person)
}

fn records_of(
    conn: &Connection,
    person: i64,
    with_fields: bool,
) -> Result<Vec<RecordRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT sp.id, c.provider, c.name, sp.customer_ref, CASE WHEN ?2 THEN sp.state END
         FROM source_profiles sp JOIN connections c ON c.id = sp.connection_id
         WHERE sp.person_id = ?1 ORDER BY sp.id",
    )?;
    let rows = stmt.query_map(rusqlite::params![person, with_fields], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<Vec<u8>>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, provider, connection, customer_ref, state) = row?;
        let fields = match state {
            Some(s) => {
                serde_json::from_slice::<StateFields>(&crate::pack::unpack(
                    crate::pack::Dict::States,
                    &s,
                )?)?
                .fields
            }
            None => BTreeMap::new(),
        };
        out.push(RecordRow {
            id,
            provider,
            connection,
            customer_ref,
            fields,
        });
    }
    Ok(out)
}

/// People already read for recent events. Bounded: cleared when full, so memory stays flat
/// however many events are exported.
#[derive(Default)]
struct PersonCache {
    people: HashMap<i64, Rc<PersonRow>>,
}

const PERSON_CACHE: usize = 512;

impl PersonCache {
    fn get(
        &mut self,
        conn: &Connection,
        c: &CompiledProfile,
        id: i64,
    ) -> Result<Option<Rc<PersonRow>>, StoreError> {
        if let Some(p) = self.people.get(&id) {
            return Ok(Some(p.clone()));
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PEOPLE_COLUMNS} FROM people p WHERE p.id = ?1"
        ))?;
        let person = stmt
            .query_row([id], |r| Ok(person_from(r, conn, c)))
            .optional()?
            .transpose()?
            .map(Rc::new);
        if let Some(p) = &person {
            if self.people.len() >= PERSON_CACHE {
                self.people.clear();
            }
            self.people.insert(id, p.clone());
        }
        Ok(person)
    }
}

#[cfg(test)]
mod wanted_values_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_wanted_fields_are_read_with_their_values() {
        let profile = json!({
            "email": {"value": "ana@example.com", "source": "tiquo/main", "at": 1, "source_profile": 4},
            "full_name": {"value": "Ana \"Tiny\" Silva", "source": "plain/support"},
            "tags": {"value": ["vip", {"nested": [1, 2]}]},
            "loyalty_points": {"value": 120},
            "caf\u{e9}": {"value": "escaped key"},
        })
        .to_string()
        .replace("café", "caf\\u00e9");
        let wanted: BTreeSet<String> = ["email", "tags", "café", "phone"].map(String::from).into();
        let values = wanted_values(&profile, &wanted, true).unwrap();
        assert_eq!(
            values.values,
            BTreeMap::from([
                ("café".to_string(), json!("escaped key")),
                ("email".to_string(), json!("ana@example.com")),
                ("tags".to_string(), json!(["vip", {"nested": [1, 2]}])),
            ])
        );
        assert_eq!(
            values.records,
            BTreeMap::from([("email".to_string(), 4)]),
            "the record each value came from, when the profile says"
        );
        assert!(wanted_values("{\"email\": {\"value\": 1}} trailing", &wanted, true).is_err());
        assert!(wanted_values("[]", &wanted, true).is_err());
        assert!(
            wanted_values(&profile, &wanted, false)
                .unwrap()
                .records
                .is_empty(),
            "records noted only when asked"
        );
    }
}
