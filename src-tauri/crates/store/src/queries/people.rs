//! Lists of people: search, pages, counts, and the keys too widely shared to link anyone.

use super::SourceRef;
use crate::people::MAX_PROFILES_PER_KEY;
use crate::stored;
use crate::time::from_millis;
use crate::{Reader, StoreError};
use chrono::{DateTime, Utc};
use clientele_core::identity::KeyKind;
use rusqlite::params;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// A page of people, and how many there are in all ([`Reader::people_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PeoplePage {
    /// All people without a search; with one, how many match, up to [`SEARCH_COUNT_LIMIT`].
    pub total: i64,
    /// More people match the search than `total` says.
    pub more: bool,
    pub items: Vec<PersonSummary>,
}

/// One person in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonSummary {
    pub id: i64,
    pub display_name: String,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub sources: Vec<SourceRef>,
    pub first_event_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    /// Deleted at every provider that knew them (their history is kept).
    pub deleted: bool,
}

/// An email or phone shared by so many records that it no longer links anyone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedKey {
    pub kind: KeyKind,
    pub value: String,
    pub profiles: i64,
}

/// How far the app counts a search's matches ([`Reader::people_total`]). Past it the Customers
/// screen says "more than 1,000 matches" and lists the first 1,000: counting on costs time (all
/// of a phone prefix's 20,000 matches took 37 ms in `make bench`'s data).
pub const SEARCH_COUNT_LIMIT: i64 = 1_000;

/// A search gathers the people its rarest word matches when that word starts fewer search terms
/// than this (a common first name starts about 20,000 in `read_bench`'s 201,199 people: the
/// name, the email's local part, the whole email). Reading them is cheap — they sit together in
/// `person_terms`' primary key, about 150 to a page — and then the page and the count come from
/// that set. Past it (a phone number's first digits start most of the table) matches are dense:
/// walking people from the most recent fills a page after a few of them. `read_bench` on
/// 201,199 people, this way against the walks and `INTERSECT`s before it, back to back on a
/// busy 2-core host: p95 by name 17 ms (was 48 to 93), email 15 (35 to 65), phone 16 (30 to
/// 40), two common first names 16 (63 to 112).
const SEARCH_GATHER_TERMS: i64 = 40_000;
/// Another word of the search is tested person by person (one seek each in
/// `person_terms_person`) instead of read whole when it starts more than this many terms for
/// each person gathered so far: a seek costs about as much as reading this many entries in a row.
const SEARCH_PROBE_RATIO: usize = 8;
/// The cost of looking up one person's row by id (rows are large: about two to a page, so each
/// lookup reads a page of its own) in steps of walking the recency index (`people_recent`,
/// about a hundred ids to a page). A search's set of matches is sorted by looking each one up
/// when that costs less than walking the index until the page is full.
const SEARCH_LOOKUP_STEPS: usize = 20;
/// A search of several words, each too common to gather, walks at most this many of the most
/// recent people before it gathers the words' matches after all (see `Reader::dense_rows`).
/// Measured when every common word was walked this way (`read_bench`, 201,199 people, two of
/// the 20 commonest first names together): 380 ms a search walking everyone, 27 ms with 5,000,
/// 13 ms with 2,000.
const SEARCH_WALK_PEOPLE: i64 = 2_000;

const PERSON_COLUMNS: &str =
    "p.id, p.display_name, p.emails, p.phones, p.first_event_at, p.last_event_at, p.deleted";

type PersonRow = (i64, String, String, String, Option<i64>, Option<i64>, bool);

fn person_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PersonRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// Splits a search into lower-cased terms; a query that looks like a phone number becomes its
/// digits (so "+44 7911" and "07911" both find +447911…).
fn search_terms(query: &str) -> Vec<String> {
    let q = query.trim().to_lowercase();
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = !digits.is_empty()
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone_like {
        // National numbers are stored without their trunk zero.
        let trimmed = digits.trim_start_matches('0');
        return vec![if trimmed.is_empty() {
            digits
        } else {
            trimmed.to_string()
        }];
    }
    q.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// `EXISTS` conditions on person `p`, one for each of `terms` search terms from the `first`-th,
/// parameters numbered from `param`: each term takes its prefix and [`prefix_end`]. Each is one
/// seek in `person_terms_person` (person, term).
fn terms_exist(terms: std::ops::Range<usize>, param: usize) -> String {
    terms
        .map(|i| {
            format!(
                " AND EXISTS (SELECT 1 FROM person_terms t WHERE t.person_id = p.id
                              AND t.term >= ?{} AND t.term < ?{})",
                param + 2 * i,
                param + 2 * i + 1
            )
        })
        .collect()
}

fn term_params(terms: &[String]) -> Vec<rusqlite::types::Value> {
    terms
        .iter()
        .flat_map(|t| [t.clone().into(), prefix_end(t).into()])
        .collect()
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// The people a search matches, found once for both its page and its count.
enum Matches {
    /// Exactly these people: every term's matches, intersected.
    Gathered(HashSet<i64>),
    /// The rarest term starts [`SEARCH_GATHER_TERMS`] search terms or more, so its people are
    /// not gathered: the terms, rarest first, are tested person by person.
    Dense(Vec<String>),
}

/// What a search asks for.
enum Searched {
    /// No search: everyone.
    All,
    /// Only spaces and commas: nobody.
    Nothing,
    Matches(Matches),
}

impl Reader {
    /// People, most recently active first. `search` matches the start of any word of a name, an
    /// email (whole, before or after the @), phone digits or a provider's customer id; several
    /// words must all match.
    pub fn people(
        &self,
        search: Option<&str>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<PersonSummary>, StoreError> {
        let limit = limit.map_or(-1, |l| l as i64);
        let rows = match self.search(search)? {
            Searched::All => self.recent_rows(limit, offset)?,
            Searched::Nothing => Vec::new(),
            Searched::Matches(matches) => self.matched_rows(&matches, limit, offset)?,
        };
        self.summaries(rows)
    }

    /// What `search` asks for: everyone, nobody (only separators), or the people its terms match.
    fn search(&self, search: Option<&str>) -> Result<Searched, StoreError> {
        let terms = search.map(search_terms).unwrap_or_default();
        if !terms.is_empty() {
            return Ok(Searched::Matches(self.matches(terms)?));
        }
        Ok(if search.is_some_and(|s| !s.trim().is_empty()) {
            Searched::Nothing
        } else {
            Searched::All
        })
    }

    /// A page of everyone, most recent first (`limit` -1 for no limit).
    fn recent_rows(&self, limit: i64, offset: usize) -> Result<Vec<PersonRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2"
            ))?
            .query_map(params![limit, offset as i64], person_row)?
            .collect::<Result<_, _>>()?)
    }

    fn summaries(&self, rows: Vec<PersonRow>) -> Result<Vec<PersonSummary>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut sources = self.sources_of(&ids)?;
        rows.into_iter()
            .map(|(id, display_name, emails, phones, first, last, deleted)| {
                Ok(PersonSummary {
                    id,
                    display_name,
                    emails: serde_json::from_str(&emails)?,
                    phones: serde_json::from_str(&phones)?,
                    sources: sources.remove(&id).unwrap_or_default(),
                    first_event_at: first.map(from_millis),
                    last_event_at: last.map(from_millis),
                    deleted,
                })
            })
            .collect()
    }

    /// Who `terms` (not empty) match. Each term is counted first (up to
    /// [`SEARCH_GATHER_TERMS`]: an index range counted in place), so the rarest drives.
    fn matches(&self, terms: Vec<String>) -> Result<Matches, StoreError> {
        let mut counted = Vec::with_capacity(terms.len());
        for term in terms {
            counted.push((self.term_matches(&term, SEARCH_GATHER_TERMS)?, term));
        }
        counted.sort();
        if counted[0].0 >= SEARCH_GATHER_TERMS {
            return Ok(Matches::Dense(
                counted.into_iter().map(|(_, t)| t).collect(),
            ));
        }
        self.gathered(&counted).map(Matches::Gathered)
    }

    /// The people matching every one of `counted` terms (rarest first, each with how many
    /// search terms it starts): the rarest's people read from its index range, then narrowed by
    /// each other term — read whole and intersected when it is about as rare, else tested for
    /// each person left.
    fn gathered(&self, counted: &[(i64, String)]) -> Result<HashSet<i64>, StoreError> {
        let mut range = self
            .conn
            .prepare_cached("SELECT person_id FROM person_terms WHERE term >= ?1 AND term < ?2")?;
        let (_, rarest) = &counted[0];
        let mut found: HashSet<i64> = range
            .query_map(params![rarest, prefix_end(rarest)], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for (count, term) in &counted[1..] {
            if found.is_empty() {
                break;
            }
            let end = prefix_end(term);
            found = if *count >= SEARCH_GATHER_TERMS
                || *count as usize > found.len() * SEARCH_PROBE_RATIO
            {
                let ids = serde_json::to_string(&found)?;
                self.conn
                    .prepare_cached(
                        "SELECT j.value FROM json_each(?1) j WHERE EXISTS
                           (SELECT 1 FROM person_terms t WHERE t.person_id = j.value
                            AND t.term >= ?2 AND t.term < ?3)",
                    )?
                    .query_map(params![ids, term, end], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            } else {
                let mut both = HashSet::new();
                for id in range.query_map(params![term, end], |r| r.get::<_, i64>(0))? {
                    let id = id?;
                    if found.contains(&id) {
                        both.insert(id);
                    }
                }
                both
            };
        }
        Ok(found)
    }

    /// The page of people `matches` finds, most recent first; `limit` -1 for no limit.
    fn matched_rows(
        &self,
        matches: &Matches,
        limit: i64,
        offset: usize,
    ) -> Result<Vec<PersonRow>, StoreError> {
        match matches {
            Matches::Gathered(found) => {
                let ids = self.gathered_page(found, limit, offset)?;
                self.rows_of(&ids)
            }
            Matches::Dense(terms) => self.dense_rows(terms, limit, offset),
        }
    }

    /// The ids of the page of `found`, most recent first. Either way reads what it costs less
    /// to: walking the recency index (`people_recent`, ids only) until the page is full — about
    /// `(offset + limit) × people / found` steps if matches are spread evenly — or looking up
    /// every match's recency and sorting them ([`SEARCH_LOOKUP_STEPS`] steps each).
    fn gathered_page(
        &self,
        found: &HashSet<i64>,
        limit: i64,
        offset: usize,
    ) -> Result<Vec<i64>, StoreError> {
        if found.len() <= offset || limit == 0 {
            return Ok(Vec::new());
        }
        if limit > 0 {
            let wanted = offset + limit as usize;
            let people = self.people_count()?.max(0) as usize;
            let steps = wanted.min(found.len()).saturating_mul(people) / found.len();
            if steps <= found.len().saturating_mul(SEARCH_LOOKUP_STEPS) {
                // Matches bunched among the least recent would make the walk long: it stops at
                // a few times the estimate and sorts instead.
                let most = steps.saturating_mul(4).saturating_add(1_000);
                let mut page = Vec::with_capacity(limit as usize);
                let mut seen = 0;
                let mut walk = self.conn.prepare_cached(
                    "SELECT id FROM people ORDER BY last_event_at DESC, id DESC LIMIT ?1",
                )?;
                let mut rows = walk.query([most as i64])?;
                while let Some(row) = rows.next()? {
                    let id: i64 = row.get(0)?;
                    if found.contains(&id) {
                        seen += 1;
                        if seen > offset {
                            page.push(id);
                            if page.len() == limit as usize {
                                return Ok(page);
                            }
                        }
                    }
                }
                if seen == found.len() {
                    // Everyone found was walked past: the page ends short.
                    return Ok(page);
                }
            }
        }
        let ids = serde_json::to_string(found)?;
        let mut recency: Vec<(Option<i64>, i64)> = self
            .conn
            .prepare_cached(
                "SELECT last_event_at, id FROM people WHERE id IN (SELECT value FROM json_each(?1))",
            )?
            .query_map([ids], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        // As `ORDER BY last_event_at DESC, id DESC`: no recency (NULL) last.
        recency.sort_unstable_by(|a, b| b.cmp(a));
        let page = recency.into_iter().skip(offset).map(|(_, id)| id);
        Ok(if limit < 0 {
            page.collect()
        } else {
            page.take(limit as usize).collect()
        })
    }

    /// The rows of `ids`, in that order.
    fn rows_of(&self, ids: &[i64]) -> Result<Vec<PersonRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows: HashMap<i64, PersonRow> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p
                 WHERE p.id IN (SELECT value FROM json_each(?1))"
            ))?
            .query_map([serde_json::to_string(ids)?], person_row)?
            .map(|row| row.map(|row| (row.0, row)))
            .collect::<Result<_, _>>()?;
        Ok(ids.iter().filter_map(|id| rows.remove(id)).collect())
    }

    /// The page of people matching every one of `terms` (rarest first, the rarest too common to
    /// gather), walking people from the most recent (the `people_recent` index) and stopping when
    /// the page is full: the matches are many, so the walk is short.
    fn dense_rows(
        &self,
        terms: &[String],
        limit: i64,
        offset: usize,
    ) -> Result<Vec<PersonRow>, StoreError> {
        let mut values: Vec<rusqlite::types::Value> = vec![limit.into(), (offset as i64).into()];
        values.extend(term_params(terms));
        let query = |sql: &str| -> Result<Vec<PersonRow>, StoreError> {
            Ok(self
                .conn
                .prepare_cached(sql)?
                .query_map(rusqlite::params_from_iter(values.iter()), person_row)?
                .collect::<Result<_, _>>()?)
        };
        if terms.len() == 1 {
            return query(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p WHERE 1{}
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2",
                terms_exist(0..1, 3)
            ));
        }
        // Several words, each common, may still match few people together, and then an
        // open-ended walk reads every person. So walk only the most recent
        // [`SEARCH_WALK_PEOPLE`]: a full page among them is the page the whole walk would give;
        // otherwise gather the matches after all. (A page that ends past them, or no page
        // limit, can't be filled: not walked.)
        if limit >= 0 && offset as i64 + limit <= SEARCH_WALK_PEOPLE {
            let page = query(&format!(
                "SELECT {PERSON_COLUMNS}
                 FROM (SELECT id FROM people ORDER BY last_event_at DESC, id DESC
                       LIMIT {SEARCH_WALK_PEOPLE}) r
                 CROSS JOIN people p ON p.id = r.id
                 WHERE 1{}
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2",
                terms_exist(0..terms.len(), 3)
            ))?;
            if page.len() as i64 == limit {
                return Ok(page);
            }
        }
        let counted: Vec<(i64, String)> = terms
            .iter()
            .map(|t| (SEARCH_GATHER_TERMS, t.clone()))
            .collect();
        let found = self.gathered(&counted)?;
        let ids = self.gathered_page(&found, limit, offset)?;
        self.rows_of(&ids)
    }

    /// One page of people as the Customers screen shows it: `limit` people from `offset`, and how
    /// many there are in all — for a search, counted up to [`SEARCH_COUNT_LIMIT`], with `more`
    /// set when more match than that. A search's matches are found once for both.
    pub fn people_page(
        &self,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<PeoplePage, StoreError> {
        let searched = self.search(search)?;
        let rows = match &searched {
            Searched::All => self.recent_rows(limit as i64, offset)?,
            Searched::Nothing => Vec::new(),
            Searched::Matches(matches) => self.matched_rows(matches, limit as i64, offset)?,
        };
        let items = self.summaries(rows)?;
        // A first page with room to spare is everything there is: nothing left to count.
        let counted = if offset == 0 && items.len() < limit {
            items.len() as i64
        } else {
            self.searched_total(&searched, SEARCH_COUNT_LIMIT + 1)?
        };
        let more = search.is_some() && counted > SEARCH_COUNT_LIMIT;
        Ok(PeoplePage {
            total: if more { SEARCH_COUNT_LIMIT } else { counted },
            more,
            items,
        })
    }

    /// How many people a search finds, counting no further than `at_most`; without a search, how
    /// many people there are (kept by the schema's triggers, so exact and instant). Neither reads
    /// the people themselves.
    ///
    /// A search's count reads its matches' index entries one by one (a phone prefix can match
    /// 20,000 people: 37 ms for all of them on a fresh connection in `make bench`'s data), so
    /// whoever shows it says "more than …" past a limit instead of waiting for an exact figure.
    pub fn people_total(&self, search: Option<&str>, at_most: i64) -> Result<i64, StoreError> {
        let searched = self.search(search)?;
        self.searched_total(&searched, at_most)
    }

    fn searched_total(&self, searched: &Searched, at_most: i64) -> Result<i64, StoreError> {
        let at_most = at_most.max(0);
        let terms = match searched {
            Searched::All => return self.people_count(),
            Searched::Nothing => return Ok(0),
            Searched::Matches(Matches::Gathered(found)) => {
                return Ok((found.len() as i64).min(at_most));
            }
            Searched::Matches(Matches::Dense(terms)) => terms,
        };
        // Every term's matches are people (`person_terms` rows go with their person), so the ids
        // are counted without looking the people up: the rarest term's, each tested for the
        // others. DISTINCT: one person has several terms with the same start (two emails, a
        // name and an email).
        let sql = format!(
            "SELECT COUNT(*) FROM
               (SELECT DISTINCT p.id FROM
                  (SELECT person_id AS id FROM person_terms WHERE term >= ?2 AND term < ?3) p
                WHERE 1{} LIMIT ?1)",
            terms_exist(1..terms.len(), 2)
        );
        let mut values: Vec<rusqlite::types::Value> = vec![at_most.into()];
        values.extend(term_params(terms));
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    /// How many search terms start with `term`, counted up to `at_most`.
    fn term_matches(&self, term: &str, at_most: i64) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM
                   (SELECT 1 FROM person_terms WHERE term >= ?1 AND term < ?2 LIMIT ?3)",
            )?
            .query_row(params![term, prefix_end(term), at_most], |r| r.get(0))?)
    }

    /// How many source profiles (one customer at one connection) there are.
    pub fn source_profile_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM source_profiles", [], |r| r.get(0))?)
    }

    /// How many people there are (kept by the schema's triggers: nothing is counted here).
    pub fn people_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT n FROM people_count WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Emails and phones too widely shared to link anyone.
    pub fn shared_keys(&self) -> Result<Vec<SharedKey>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT kind, value, COUNT(*) AS n FROM identity_keys GROUP BY kind, value
                 HAVING n > ?1 ORDER BY n DESC",
            )?
            .query_map([MAX_PROFILES_PER_KEY], |r| {
                Ok(SharedKey {
                    kind: stored::column(r, 0, stored::key_kind)?,
                    value: r.get(1)?,
                    profiles: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_like_queries_become_digits_without_trunk_zero() {
        assert_eq!(search_terms("07911 123"), vec!["7911123"]);
        assert_eq!(search_terms("+44 (7911)"), vec!["447911"]);
        assert_eq!(search_terms("  Ana  SILVA "), vec!["ana", "silva"]);
        assert_eq!(search_terms("ana@example.com"), vec!["ana@example.com"]);
    }

    /// The recency [`people_with_terms`] gives person `id`: a shuffle, distinct below 10,007.
    fn shuffled(id: i64) -> Option<i64> {
        Some((id * 7_919) % 10_007)
    }

    /// A store of people `1..=people`, each with the search terms `terms` gives it, and a
    /// recency that shuffles them ([`shuffled`]).
    fn people_with_terms(
        people: i64,
        terms: impl Fn(i64) -> Vec<&'static str>,
    ) -> (tempfile::TempDir, crate::Store) {
        people_with_terms_and_recency(people, terms, shuffled)
    }

    /// A store of people `1..=people`, each with the search terms `terms` gives it and the
    /// `last_event_at` `recency` gives it (`None`: no event yet).
    fn people_with_terms_and_recency(
        people: i64,
        terms: impl Fn(i64) -> Vec<&'static str>,
        recency: impl Fn(i64) -> Option<i64>,
    ) -> (tempfile::TempDir, crate::Store) {
        let (dir, store) = crate::testing::temp_store();
        let writer = store.writer().unwrap();
        let tx = writer.conn.unchecked_transaction().unwrap();
        {
            let mut person = tx
                .prepare(
                    "INSERT INTO people (id, display_name, emails, phones, profile,
                                         last_event_at, deleted)
                     VALUES (?1, ?2, '[]', '[]', '{}', ?3, 0)",
                )
                .unwrap();
            let mut term = tx
                .prepare("INSERT INTO person_terms (term, person_id) VALUES (?1, ?2)")
                .unwrap();
            for id in 1..=people {
                person
                    .execute(params![id, format!("Person {id}"), recency(id)])
                    .unwrap();
                for t in terms(id) {
                    term.execute(params![t, id]).unwrap();
                }
            }
        }
        tx.commit().unwrap();
        drop(writer);
        (dir, store)
    }

    /// The page from `offset` (of 50, or everything with `limit` `None`) that the people `keep`
    /// chooses make, most recent first by `recency` — as `ORDER BY last_event_at DESC, id DESC`
    /// sorts: no recency last.
    fn expected_page(
        people: i64,
        keep: impl Fn(i64) -> bool,
        recency: impl Fn(i64) -> Option<i64>,
        limit: Option<usize>,
        offset: usize,
    ) -> Vec<i64> {
        let mut ids: Vec<i64> = (1..=people).filter(|id| keep(*id)).collect();
        ids.sort_by_key(|id| std::cmp::Reverse((recency(*id), *id)));
        ids.into_iter()
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    /// The page of 50 from `offset` that the people `keep` chooses make, most recent first (the
    /// recency of [`people_with_terms`]).
    fn page_by_recency(people: i64, keep: impl Fn(i64) -> bool, offset: usize) -> Vec<i64> {
        expected_page(people, keep, shuffled, Some(50), offset)
    }

    /// The ids of the page from `offset` a search finds (`limit` `None`: all from there).
    fn found_page(reader: &Reader, search: &str, limit: Option<usize>, offset: usize) -> Vec<i64> {
        reader
            .people(Some(search), limit, offset)
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect()
    }

    /// The ids of the page of 50 from `offset` a search finds.
    fn found(reader: &Reader, search: &str, offset: usize) -> Vec<i64> {
        found_page(reader, search, Some(50), offset)
    }

    /// Every way of searching (walking people by recency testing each, gathering the matches
    /// and walking, gathering and sorting) finds the same people in the same order, whichever
    /// word is rarer and however many match.
    #[test]
    fn searches_with_few_or_many_matches_find_the_same_people_in_recency_order() {
        let many = SEARCH_GATHER_TERMS + 100;
        // Everyone is an Ana; every 7th a Silva; every 300th also has an "anabela" word.
        let (_dir, store) = people_with_terms(many, |id| {
            let mut terms = vec!["ana"];
            if id % 7 == 0 {
                terms.push("silva");
            }
            if id % 300 == 0 {
                terms.push("anabela");
            }
            terms
        });
        let reader = store.reader().unwrap();
        assert!(matches!(
            reader.matches(search_terms("an")).unwrap(),
            Matches::Dense(_)
        ));
        assert!(matches!(
            reader.matches(search_terms("silva")).unwrap(),
            Matches::Gathered(_)
        ));
        let found = |q: &str, offset: usize| found(&reader, q, offset);
        let expect =
            |keep: &dyn Fn(i64) -> bool, offset: usize| page_by_recency(many, keep, offset);
        // Many matches (walks by recency), few (gathers them), and mixed.
        assert_eq!(found("an", 0), expect(&|_| true, 0));
        assert_eq!(found("an", 120), expect(&|_| true, 120));
        assert_eq!(found("silva", 0), expect(&|id| id % 7 == 0, 0));
        assert_eq!(found("silva", 5_000), expect(&|id| id % 7 == 0, 5_000));
        assert_eq!(found("ana silva", 0), expect(&|id| id % 7 == 0, 0));
        assert_eq!(found("silva ana", 10), expect(&|id| id % 7 == 0, 10));
        assert_eq!(
            found("anab silva", 0),
            expect(&|id| id % 300 == 0 && id % 7 == 0, 0)
        );
        assert!(found("nobody", 0).is_empty());
        assert!(found("silva nobody", 0).is_empty());
    }

    #[test]
    fn several_common_words_find_the_same_people_whether_walked_or_gathered() {
        let people: i64 = 2 * SEARCH_GATHER_TERMS + 2_000;
        assert!(people >= 2 * SEARCH_WALK_PEOPLE);
        // Even ids are Anas, odd ids Bobs, every 1,000th both (few together, among many people);
        // half are also Cats (many Ana Cats). Each word alone is too common to gather.
        let has = |id: i64, term: &str| match term {
            "ana" => id % 2 == 0 || id % 1_000 == 0,
            "bob" => id % 2 == 1 || id % 1_000 == 0,
            "cat" => id % 4 <= 1,
            _ => false,
        };
        let (_dir, store) = people_with_terms(people, |id| {
            ["ana", "bob", "cat"]
                .into_iter()
                .filter(|t| has(id, t))
                .collect()
        });
        let reader = store.reader().unwrap();
        for word in ["ana", "bob", "cat"] {
            assert_eq!(
                reader.term_matches(word, SEARCH_GATHER_TERMS).unwrap(),
                SEARCH_GATHER_TERMS
            );
        }
        let found = |q: &str, offset: usize| found(&reader, q, offset);
        let expect = |words: &[&str], offset: usize| {
            page_by_recency(people, |id| words.iter().all(|w| has(id, w)), offset)
        };
        // Few together: not a page among the most recent, so the matches are gathered.
        assert_eq!(found("ana bob", 0), expect(&["ana", "bob"], 0));
        assert_eq!(found("ana bob", 50), expect(&["ana", "bob"], 50));
        assert_eq!(found("ana bob", 50).len(), people as usize / 1_000 - 50);
        // Many together: a page among the most recent, walked; far down, gathered.
        assert_eq!(found("ana cat", 0), expect(&["ana", "cat"], 0));
        assert_eq!(found("cat ana", 40), expect(&["ana", "cat"], 40));
        let deep = people as usize / 4 - 20;
        assert_eq!(found("ana cat", deep), expect(&["ana", "cat"], deep));
        assert_eq!(found("ana cat", deep).len(), 20);
        // Counted as listed, up to the limit, walked or not.
        for (q, words) in [
            ("ana bob", &["ana", "bob"][..]),
            ("ana cat", &["ana", "cat"]),
        ] {
            let all = expect(words, 0).len();
            let exact = (1..=people)
                .filter(|id| words.iter().all(|w| has(*id, w)))
                .count() as i64;
            assert!(all > 0);
            assert_eq!(reader.people_total(Some(q), i64::MAX).unwrap(), exact);
            assert_eq!(
                reader.people_total(Some(q), 30).unwrap(),
                exact.min(30),
                "{q}"
            );
        }
    }

    /// Gathered matches that all sit among the least recent people: the walk the estimate
    /// chose stops short of them, and the page comes from sorting the matches instead.
    #[test]
    fn matches_bunched_among_the_least_recent_are_still_found_in_order() {
        let people: i64 = 20_000;
        // 3,000 "old" people, the least recent, and everyone a "new"; a few "old" have no
        // recency at all (listed last).
        let recency = |id: i64| match id {
            _ if id % 1_000 == 1 => None,
            _ if id <= 3_000 => Some(id),
            _ => Some(100_000 + id),
        };
        let (_dir, store) = people_with_terms_and_recency(
            people,
            |id| {
                if id <= 3_000 {
                    vec!["new", "old"]
                } else {
                    vec!["new"]
                }
            },
            recency,
        );
        let reader = store.reader().unwrap();
        let expect = |keep: &dyn Fn(i64) -> bool, limit, offset| {
            expected_page(people, keep, recency, limit, offset)
        };
        let old = |id: i64| id <= 3_000;
        for (limit, offset) in [
            (Some(50), 0),
            (Some(50), 2_990),
            (Some(10), 3_000),
            (None, 0),
        ] {
            assert_eq!(
                found_page(&reader, "old", limit, offset),
                expect(&old, limit, offset),
                "limit {limit:?} offset {offset}"
            );
            assert_eq!(
                found_page(&reader, "old new", limit, offset),
                expect(&old, limit, offset),
                "limit {limit:?} offset {offset}"
            );
        }
        assert_eq!(
            found_page(&reader, "ne", Some(50), 19_990),
            expect(&|_| true, Some(50), 19_990)
        );
        assert_eq!(found_page(&reader, "ol", None, 0).len(), 3_000);
    }

    /// More matches than the count goes to: the page says "more", whichever way it was found;
    /// exactly the limit is not "more".
    #[test]
    fn pages_with_more_matches_than_counted_say_so() {
        let people = SEARCH_GATHER_TERMS + 100;
        let limit = SEARCH_COUNT_LIMIT;
        let (_dir, store) = people_with_terms(people, |id| {
            let mut terms = vec!["everyone"];
            if id <= limit + 1 {
                terms.push("many");
            }
            if id <= limit {
                terms.push("limit");
            }
            if id <= 10 {
                terms.push("ten");
            }
            terms
        });
        let reader = store.reader().unwrap();
        let page = |q: &str, offset: usize| reader.people_page(Some(q), 50, offset).unwrap();
        for (q, total, more) in [
            ("everyone", limit, true),
            ("every many", limit, true),
            ("many", limit, true),
            ("limit", limit, false),
            ("limit every", limit, false),
            ("ten", 10, false),
            ("ten many", 10, false),
        ] {
            for offset in [0, 40, 990, 2_000] {
                let got = page(q, offset);
                assert_eq!((got.total, got.more), (total, more), "{q} from {offset}");
                let keep = |id: i64| match q {
                    "everyone" => true,
                    "every many" | "many" => id <= limit + 1,
                    "limit" | "limit every" => id <= limit,
                    _ => id <= 10,
                };
                assert_eq!(
                    got.items.iter().map(|p| p.id).collect::<Vec<_>>(),
                    page_by_recency(people, keep, offset),
                    "{q} from {offset}"
                );
            }
        }
        assert_eq!(
            reader.people_total(Some("everyone"), i64::MAX).unwrap(),
            people
        );
        assert_eq!(
            reader.people_total(Some("many"), i64::MAX).unwrap(),
            limit + 1
        );
    }
}

/// On a real data set (`CLIENTELE_SEARCH_CHECK_DB=path/to/clientele.db`, for example a copy of
/// the one `read_bench` builds; opened read-only): every page and count the Customers screen
/// would get for searches like staff type equals what one plain query gives — every term's
/// matches intersected, sorted by recency, counted — however the search was made.
/// `cargo test -p clientele-store --lib -- --ignored searches_match_plain_sql`
#[cfg(test)]
mod real_data {
    use super::*;

    #[test]
    #[ignore = "needs a real data set (CLIENTELE_SEARCH_CHECK_DB): the 1 M-delivery one takes minutes to build"]
    fn searches_match_plain_sql_on_a_real_data_set() {
        let Some(path) = std::env::var_os("CLIENTELE_SEARCH_CHECK_DB") else {
            panic!("set CLIENTELE_SEARCH_CHECK_DB to a clientele.db");
        };
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let reader = Reader { conn };
        let raw = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let sample: Vec<(String, String, String)> = raw
            .prepare("SELECT display_name, emails, phones FROM people ORDER BY random() LIMIT 60")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut queries: Vec<String> = vec!["grace vera".into(), "ana".into(), "07902".into()];
        for (name, emails, phones) in sample {
            let words: Vec<&str> = name.split_whitespace().collect();
            if let Some(first) = words.first() {
                queries.push(first.chars().take(3).collect());
                queries.push(first.to_string());
            }
            if let Some(last) = words.last() {
                queries.push(last.to_string());
            }
            queries.push(name.clone());
            let emails: Vec<String> = serde_json::from_str(&emails).unwrap();
            if let Some(e) = emails.first() {
                queries.push(e.chars().take(5).collect());
            }
            let phones: Vec<String> = serde_json::from_str(&phones).unwrap();
            if let Some(p) = phones.first() {
                let national = format!("0{}", p.trim_start_matches("+44"));
                queries.push(national.chars().take(6).collect());
            }
        }
        for q in &queries {
            let terms = search_terms(q);
            let sql = format!(
                "SELECT id FROM people WHERE id IN ({})
                 ORDER BY last_event_at DESC, id DESC",
                (0..terms.len())
                    .map(|i| format!(
                        "SELECT person_id FROM person_terms WHERE term >= ?{} AND term < ?{}",
                        2 * i + 1,
                        2 * i + 2
                    ))
                    .collect::<Vec<_>>()
                    .join(" INTERSECT ")
            );
            let all: Vec<i64> = raw
                .prepare(&sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(term_params(&terms)), |r| {
                    r.get(0)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for offset in [0, 50, 1_000] {
                let page = reader.people_page(Some(q), 50, offset).unwrap();
                let ids: Vec<i64> = page.items.iter().map(|p| p.id).collect();
                let expected: Vec<i64> = all.iter().skip(offset).take(50).copied().collect();
                assert_eq!(ids, expected, "{q:?} from {offset}");
                let counted = all.len() as i64;
                assert_eq!(
                    (page.total, page.more),
                    (
                        counted.min(SEARCH_COUNT_LIMIT),
                        counted > SEARCH_COUNT_LIMIT
                    ),
                    "{q:?} from {offset}"
                );
            }
        }
        eprintln!("{} searches checked", queries.len());
    }
}
