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
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
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

/// The event query's columns before the person's ([`people_columns`], when read).
const EVENT_COLUMNS: usize = 10;

/// Whether the profile fields `c` reads are all kept unpacked in `people.plain_fields`
/// ([`crate::stored::PLAIN_FIELDS`]): then a person's merged profile is not read, unless their
/// plain fields were never written (a row from before schema 8).
pub(crate) fn reads_plain_fields_only(c: &CompiledProfile) -> bool {
    !c.reads_consent()
        && c.profile_fields()
            .iter()
            .all(|f| crate::stored::PLAIN_FIELDS.contains(&f.as_str()))
}

/// A person's columns, as [`person_from`] reads them: the merged profile only when needed.
fn people_columns(c: &CompiledProfile) -> &'static str {
    if reads_plain_fields_only(c) {
        "p.id, p.display_name, p.emails, p.phones, \
         CASE WHEN p.plain_fields IS NULL THEN p.profile END, \
         p.first_event_at, p.last_event_at, p.deleted, p.plain_fields"
    } else {
        "p.id, p.display_name, p.emails, p.phones, p.profile, \
         p.first_event_at, p.last_event_at, p.deleted, NULL"
    }
}

/// The SQL that streams the rows, for tests of its query plan.
pub(crate) fn stream_sql(c: &CompiledProfile) -> (String, Vec<SqlValue>) {
    match c.rows() {
        RowKind::People => {
            let q = people_query(c);
            (
                format!(
                    "SELECT {} FROM people p {} ORDER BY p.id",
                    people_columns(c),
                    q.where_clause()
                ),
                q.params,
            )
        }
        RowKind::Events => {
            let q = events_query(c);
            // The person, when a column or filter reads them, comes with the event: a lookup by
            // primary key in the same statement, instead of a query of its own for each row.
            let (person, join) = if c.needs.person {
                (
                    format!(", {}", people_columns(c)),
                    "LEFT JOIN people p ON p.id = sp.person_id",
                )
            } else {
                (String::new(), "")
            };
            (
                format!(
                    "SELECT e.delivery_id, e.seq, e.occurred_at, e.kind, e.event_type, e.summary,
                            e.changes, c.provider, c.name, sp.customer_ref{person}
                     FROM events e INDEXED BY events_time
                     CROSS JOIN source_profiles sp CROSS JOIN connections c {join}
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
    // The profile fields the rows read, as a list: each of a profile's keys is looked for in it.
    let wanted: Vec<&String> = c.profile_fields().iter().collect();
    match c.rows() {
        RowKind::People => {
            while let Some(r) = rows.next().map_err(StoreError::from)? {
                let person = person_from(r, 0, conn, c, &wanted)?;
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
                        let changes: String = r.get(6).map_err(StoreError::from)?;
                        crate::stored::changes(&changes)?
                    } else {
                        Vec::new()
                    },
                    provider: r.get(7).map_err(StoreError::from)?,
                    connection: r.get(8).map_err(StoreError::from)?,
                    customer_ref: r.get(9).map_err(StoreError::from)?,
                    details,
                };
                let person = if c.needs.person {
                    people.get(r, EVENT_COLUMNS, conn, c, &wanted)?
                } else {
                    None
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
///
/// The profile's fields are found by a scan of its structure (keys, strings, brackets) that reads
/// only the wanted fields' values as JSON: skipping the others through a JSON parser was still
/// a fifth of an export's time (`export_bench`, 1 M rows). A profile is written by serde_json, so
/// the scan meets only valid JSON; it still fails on anything that is not an object of fields.
fn wanted_values(
    json: &[u8],
    wanted: &[&String],
    with_records: bool,
) -> Result<Wanted, serde_json::Error> {
    let mut out = Wanted::default();
    let mut s = Scan { b: json, at: 0 };
    s.object(|s, key| {
        let Some(field) = wanted.iter().find(|w| key.matches(json, w)) else {
            s.value()?;
            return Ok(());
        };
        let (value, record) = s.merged_value(with_records)?;
        if let Some(record) = record {
            out.records.insert((*field).clone(), record);
        }
        out.values.insert((*field).clone(), value);
        Ok(())
    })?;
    if s.peek().is_some() {
        return Err(s.error("nothing after the profile"));
    }
    Ok(out)
}

/// A key as found by [`Scan`]: where it is, quotes included, and whether it holds an escape.
struct Key {
    at: std::ops::Range<usize>,
    escaped: bool,
}

impl Key {
    /// Whether the key in `json` spells `name` (escapes read as JSON reads them).
    fn matches(&self, json: &[u8], name: &str) -> bool {
        let raw = &json[self.at.start + 1..self.at.end - 1];
        if self.escaped {
            serde_json::from_slice::<String>(&json[self.at.clone()]).is_ok_and(|k| k == name)
        } else {
            raw.len() == name.len() && raw == name.as_bytes()
        }
    }
}

/// A scan of JSON's structure for [`wanted_values`]: where each value starts and ends.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn error(&self, expected: &str) -> serde_json::Error {
        serde::de::Error::custom(format_args!(
            "a profile: expected {expected} at byte {}",
            self.at
        ))
    }

    /// The next byte that isn't white space, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.b.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// The next byte that isn't white space, consumed.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Result<(), serde_json::Error> {
        match self.next() {
            Some(x) if x == b => Ok(()),
            _ => Err(self.error(&format!("'{}'", b as char))),
        }
    }

    /// The string starting here (quotes included).
    fn string(&mut self) -> Result<std::ops::Range<usize>, serde_json::Error> {
        if self.peek() != Some(b'"') {
            return Err(self.error("a string"));
        }
        let start = self.at;
        self.at = self.string_end(start)?.0;
        Ok(start..self.at)
    }

    /// Just after the string whose opening quote is at `start`, and whether it holds an escape.
    fn string_end(&self, start: usize) -> Result<(usize, bool), serde_json::Error> {
        // Eight bytes at a time (a profile's strings are short: a call to a SIMD search cost
        // more than it saved), then byte by byte.
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
        let has = |w: u64, c: u8| {
            let x = w ^ (ONES * c as u64);
            x.wrapping_sub(ONES) & !x & HIGHS
        };
        let b = self.b;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            while let Some(chunk) = b.get(i..i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
                let found = has(w, b'"') | has(w, b'\\');
                if found != 0 {
                    // The lowest flagged byte is always a real match.
                    i += (found.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match b.get(i) {
                Some(b'"') => return Ok((i + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
                None => return Err(self.error("the end of a string")),
            }
        }
    }

    /// Reads the object starting here, calling `field` with each key; `field` must read the
    /// key's value.
    fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Key) -> Result<(), serde_json::Error>,
    ) -> Result<(), serde_json::Error> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("a key"));
            }
            let start = self.at;
            let (end, escaped) = self.string_end(start)?;
            self.at = end;
            self.expect(b':')?;
            field(
                self,
                Key {
                    at: start..end,
                    escaped,
                },
            )?;
            match self.next() {
                Some(b',') => continue,
                Some(b'}') => return Ok(()),
                _ => return Err(self.error("',' or '}' after a field")),
            }
        }
    }

    /// A merged value starting here (`{"value": …, "source_profile": …, …}`): its value (null
    /// when absent) and, when `with_record`, the record it came from.
    fn merged_value(
        &mut self,
        with_record: bool,
    ) -> Result<(Value, Option<i64>), serde_json::Error> {
        let json = self.b;
        let (mut value, mut record) = (None, None);
        self.object(|s, key| {
            let at = s.value()?;
            if key.matches(json, "value") {
                if value.is_some() {
                    return Err(s.error("one value"));
                }
                value = Some(json_value(&json[at])?);
            } else if with_record && key.matches(json, "source_profile") {
                if record.is_some() {
                    return Err(s.error("one source_profile"));
                }
                record = Some(serde_json::from_slice::<Option<i64>>(&json[at])?);
            }
            Ok(())
        })?;
        Ok((value.unwrap_or(Value::Null), record.flatten()))
    }

    /// The value starting here: a string, an object or array (to its closing bracket), or
    /// anything else up to the next `,`, `}`, `]` or white space.
    fn value(&mut self) -> Result<std::ops::Range<usize>, serde_json::Error> {
        let start = match self.peek() {
            Some(b'"') => return self.string(),
            Some(_) => self.at,
            None => return Err(self.error("a value")),
        };
        let mut depth = 0usize;
        let mut i = start;
        while let Some(&b) = self.b.get(i) {
            match b {
                b'"' if depth > 0 => {
                    i = self.string_end(i)?.0;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        self.at = i + 1;
                        return Ok(start..self.at);
                    }
                }
                b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t' | b'"' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if depth > 0 || i == start {
            return Err(self.error("a complete value"));
        }
        self.at = i;
        Ok(start..i)
    }
}

/// A JSON value read from `json`, which [`Scan::value`] delimited: a string without escapes
/// (most values: names, addresses, times) is taken as it is, anything else is parsed.
fn json_value(json: &[u8]) -> Result<Value, serde_json::Error> {
    if let [b'"', inner @ .., b'"'] = json
        && !inner.contains(&b'\\')
        && !inner.iter().any(|b| *b < 0x20)
    {
        return std::str::from_utf8(inner)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| serde::de::Error::custom("a string in UTF-8"));
    }
    serde_json::from_slice(json)
}

/// The wanted fields from a person's plain fields (`people.plain_fields`: field → value, see
/// [`crate::stored::plain_fields`]), found by the same scan as [`wanted_values`].
fn plain_values(json: &[u8], wanted: &[&String]) -> Result<Wanted, serde_json::Error> {
    let mut out = Wanted::default();
    let mut s = Scan { b: json, at: 0 };
    s.object(|s, key| {
        let at = s.value()?;
        if let Some(field) = wanted.iter().find(|w| key.matches(json, w)) {
            out.values.insert((*field).clone(), json_value(&json[at])?);
        }
        Ok(())
    })?;
    if s.peek().is_some() {
        return Err(s.error("nothing after the plain fields"));
    }
    Ok(out)
}

/// The person in `r`'s columns ([`people_columns`]), from column `at` on.
fn person_from(
    r: &rusqlite::Row<'_>,
    at: usize,
    conn: &Connection,
    c: &CompiledProfile,
    wanted: &[&String],
) -> Result<PersonRow, StoreError> {
    // The email and phone lists, read only for a column that shows them.
    let list = |i: usize| -> Result<Vec<String>, StoreError> {
        if !c.needs.lists {
            return Ok(Vec::new());
        }
        let text = r.get_ref(i)?.as_bytes().map_err(rusqlite::Error::from)?;
        Ok(serde_json::from_slice(text)?)
    };
    let first: Option<i64> = r.get(at + 5)?;
    let last: Option<i64> = r.get(at + 6)?;
    let id: i64 = r.get(at)?;
    let plain = r
        .get_ref(at + 8)?
        .as_bytes_or_null()
        .map_err(rusqlite::Error::from)?;
    let merged = match plain {
        // Every field the profile reads is a plain one (else the column is NULL).
        Some(plain) => plain_values(plain, wanted)?,
        None => {
            let profile = r
                .get_ref(at + 4)?
                .as_blob()
                .map_err(rusqlite::Error::from)?;
            let profile = crate::stored::profile_json(profile)?;
            wanted_values(&profile, wanted, c.reads_consent())?
        }
    };
    let mut person = PersonRow {
        id,
        display_name: r.get(at + 1)?,
        emails: list(at + 2)?,
        phones: list(at + 3)?,
        first_seen: first.map(from_millis),
        last_seen: last.map(from_millis),
        deleted: r.get(at + 7)?,
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

/// People already read for recent events: an event's person comes with its row, and is decoded
/// (unpacked and read) only when not read for a recent event. Bounded: cleared when full, so
/// memory stays flat however many events are exported.
#[derive(Default)]
struct PersonCache {
    people: HashMap<i64, Rc<PersonRow>>,
}

/// How many people [`PersonCache`] holds. Small in tests, so that their few people are dropped
/// and read again within one export.
const PERSON_CACHE: usize = if cfg!(test) { 2 } else { 512 };

impl PersonCache {
    /// The person in `r`'s columns from `at` on ([`people_columns`]); `None` when the event has
    /// no person.
    fn get(
        &mut self,
        r: &rusqlite::Row<'_>,
        at: usize,
        conn: &Connection,
        c: &CompiledProfile,
        wanted: &[&String],
    ) -> Result<Option<Rc<PersonRow>>, StoreError> {
        let Some(id) = r.get::<_, Option<i64>>(at)? else {
            return Ok(None);
        };
        if let Some(p) = self.people.get(&id) {
            return Ok(Some(p.clone()));
        }
        let person = Rc::new(person_from(r, at, conn, c, wanted)?);
        if self.people.len() >= PERSON_CACHE {
            self.people.clear();
        }
        self.people.insert(id, person.clone());
        Ok(Some(person))
    }
}

#[cfg(test)]
mod wanted_values_tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

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
        let values = wanted_values(profile.as_bytes(), &names(&wanted), true).unwrap();
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
        assert!(
            wanted_values(
                b"{\"email\": {\"value\": 1}} trailing",
                &names(&wanted),
                true
            )
            .is_err()
        );
        assert!(wanted_values(b"[]", &names(&wanted), true).is_err());
        assert!(
            wanted_values(profile.as_bytes(), &names(&wanted), false)
                .unwrap()
                .records
                .is_empty(),
            "records noted only when asked"
        );
    }

    fn names(wanted: &BTreeSet<String>) -> Vec<&String> {
        wanted.iter().collect()
    }

    /// A merged value as a JSON parser reads it.
    #[derive(Deserialize)]
    struct MergedValue {
        #[serde(default)]
        value: Value,
        #[serde(default)]
        source_profile: Option<i64>,
    }

    /// What a JSON parser reads from the whole profile: the reference the scan must match.
    fn parsed(json: &str, wanted: &BTreeSet<String>) -> Wanted {
        let all: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap();
        let mut out = Wanted::default();
        for (key, v) in all.into_iter().filter(|(k, _)| wanted.contains(k)) {
            let merged: MergedValue = serde_json::from_value(v).unwrap();
            if let Some(record) = merged.source_profile {
                out.records.insert(key.clone(), record);
            }
            out.values.insert(key, merged.value);
        }
        out
    }

    #[test]
    fn the_scan_reads_what_a_json_parser_reads_and_refuses_what_is_cut_short() {
        let wanted: BTreeSet<String> = ["email", "full_name", "tags", "k\"ey", "n"]
            .map(String::from)
            .into();
        let profiles = [
            r#"{}"#,
            r#" { } "#,
            r#"{"email":{"at":"2025-01-01T00:00:00Z","value":"a@b.c","source_profile":7}}"#,
            // Values that hold brackets, quotes, commas and escapes inside strings, nesting,
            // numbers and literals, before, between and after the wanted fields.
            r#"{"a":{"value":"}],\"{[","x":[1,[2,{"y":"]"}]],"z":{}},"email":{"value":"e\\\"}@x","source_profile":3},"b":[],"c":-1.5e+3,"d":true,"e":null,"full_name":{"source_profile":9,"at":"x","value":"Zoë \u00c9 \"Q\""},"k\"ey":{"value":[{"deep":[[[]]]},"s"]},"n":{"value":-0.25e-2},"tags":{"value":["vip","a,b"]},"zz":{"value":"\\"}}"#,
            "{\n  \"email\" : {\n    \"value\" : \"spaced@x\" ,\n    \"source_profile\" : 1\n  } ,\n  \"other\" : [ 1 , 2 ] ,\n  \"tags\" : { \"value\" : [ ] }\n}\n",
            // A key spelled with an escape is the field it spells.
            r#"{"full\u005fname":{"value":"escaped key"},"n":{}}"#,
        ];
        for profile in profiles {
            let scanned = wanted_values(profile.as_bytes(), &names(&wanted), true).unwrap();
            assert_eq!(scanned, parsed(profile, &wanted), "{profile}");
            // Cut anywhere, the profile is refused (not read as something shorter).
            let trimmed = profile.trim_end();
            for cut in 0..trimmed.len() {
                assert!(
                    wanted_values(&trimmed.as_bytes()[..cut], &names(&wanted), true).is_err(),
                    "{profile} cut at {cut}"
                );
            }
        }
        // Escapes and closing quotes at every place in the eight bytes read at a time.
        for n in 0..20 {
            let (a, b) = ("a".repeat(n), "é".repeat(n % 5));
            let profile = format!(
                r#"{{"x{a}":{{"value":"{a}\\\"}}{b}"}},"email":{{"value":"{a}\\\\","at":"{b}{a}"}},"tags":{{"value":["{b}","{a}\"]"]}}}}"#
            );
            let scanned = wanted_values(profile.as_bytes(), &names(&wanted), true).unwrap();
            assert_eq!(scanned, parsed(&profile, &wanted), "{profile}");
        }
        for broken in [
            r#"{"email":{"value":1} "tags":{}}"#,
            r#"{"email" {"value":1}}"#,
            r#"{"email":}"#,
            r#"{"email":{"value":1},}"#,
            r#"{email:{"value":1}}"#,
            r#"{"email":{"value":1}]"#,
            r#"{"email":{"value":1}}}"#,
            r#"{"email":{"value":[1}}"#,
            r#"{"email":{"value":1}"#,
        ] {
            assert!(
                wanted_values(broken.as_bytes(), &names(&wanted), true).is_err(),
                "{broken}"
            );
        }
    }
}
