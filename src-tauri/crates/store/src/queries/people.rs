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

/// A search whose rarest word starts this many search terms or more walks people from the most
/// recent and stops when the page is full, instead of sorting every match. Each way costs what
/// the other avoids — reading and sorting every match, or walking past people who don't match —
/// and they cost about the same here. Measured with `make bench` on 40,000 people: 1,800 matches
/// take 5 ms either way; 4,000 take 11 ms sorted and 2 ms walked; 86 take 1 ms sorted and 110 ms
/// walked.
const SEARCH_WALK_THRESHOLD: i64 = 4_000;
/// A search of several common words walks at most this many of the most recent people before
/// it intersects the words' matches instead (see `Reader::searched`). `read_bench` on 201,199
/// people, two of the 20 commonest first names together (190 pairs, nearly all matching
/// nobody): 380 ms a search walking everyone, 27 ms with 5,000, 13 ms with 2,000; its other
/// searches unchanged.
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

/// The ids of people matching every one of `terms` search terms: one indexed prefix range per
/// term, intersected. Parameters are numbered from `first`: each term takes its prefix and
/// [`prefix_end`].
fn matching_people_sql(terms: usize, first: usize) -> String {
    (0..terms)
        .map(|i| {
            format!(
                "SELECT person_id FROM person_terms WHERE term >= ?{} AND term < ?{}",
                first + 2 * i,
                first + 2 * i + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" INTERSECT ")
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
        let terms = search.map(search_terms).unwrap_or_default();
        let rows: Vec<PersonRow> = if terms.is_empty() {
            if search.is_some_and(|s| !s.trim().is_empty()) {
                return Ok(Vec::new());
            }
            self.conn
                .prepare_cached(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people p
                     ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2"
                ))?
                .query_map(params![limit, offset as i64], person_row)?
                .collect::<Result<_, _>>()?
        } else {
            self.searched(terms, limit, offset)?
        };
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

    /// The page of people matching every one of `terms` (not empty), most recent first;
    /// `limit` -1 for no limit. How it looks depends on how many people the rarest term matches.
    fn searched(
        &self,
        terms: Vec<String>,
        limit: i64,
        offset: usize,
    ) -> Result<Vec<PersonRow>, StoreError> {
        // Rarest term first: it drives the search, the others only filter.
        let mut counted = Vec::with_capacity(terms.len());
        for term in terms {
            counted.push((self.term_matches(&term)?, term));
        }
        counted.sort();
        let terms: Vec<String> = counted.iter().map(|(_, t)| t.clone()).collect();
        let matching = |i: usize| {
            format!(
                "EXISTS (SELECT 1 FROM person_terms t WHERE t.person_id = p.id
                         AND t.term >= ?{} AND t.term < ?{})",
                2 * i + 3,
                2 * i + 4
            )
        };
        let mut values: Vec<rusqlite::types::Value> = vec![limit.into(), (offset as i64).into()];
        values.extend(term_params(&terms));
        let query = |sql: &str| -> Result<Vec<PersonRow>, StoreError> {
            Ok(self
                .conn
                .prepare_cached(sql)?
                .query_map(rusqlite::params_from_iter(values.iter()), person_row)?
                .collect::<Result<_, _>>()?)
        };
        if counted[0].0 < SEARCH_WALK_THRESHOLD {
            // Few matches: start from them, then sort them by recency.
            let others: String = (1..terms.len())
                .map(|i| format!(" AND {}", matching(i)))
                .collect();
            return query(&format!(
                "SELECT {PERSON_COLUMNS}
                 FROM (SELECT DISTINCT person_id FROM person_terms
                       WHERE term >= ?3 AND term < ?4) m
                 CROSS JOIN people p ON p.id = m.person_id
                 WHERE 1{others}
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2"
            ));
        }
        if terms.len() == 1 {
            // Many matches: walk people from the most recent (the `people_recent` index) and
            // stop as soon as the page is full.
            return query(&format!(
                "SELECT {PERSON_COLUMNS} FROM people p WHERE {}
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2",
                matching(0)
            ));
        }
        // Several words, each common, may still match few people together ("Aisha Thomas":
        // 10,000 and 9,800 people in `make bench`'s data, nobody both), and then an open-ended
        // walk reads every person (0.4 s there). So walk only the most recent
        // [`SEARCH_WALK_PEOPLE`]: a full page among them is the page the whole walk would give;
        // otherwise intersect the words' matches and sort those. (A page that ends past them, or
        // no page limit, can't be filled: not walked.)
        if limit >= 0 && offset as i64 + limit <= SEARCH_WALK_PEOPLE {
            let all: Vec<String> = (0..terms.len()).map(matching).collect();
            let page = query(&format!(
                "SELECT {PERSON_COLUMNS}
                 FROM (SELECT id FROM people ORDER BY last_event_at DESC, id DESC
                       LIMIT {SEARCH_WALK_PEOPLE}) r
                 CROSS JOIN people p ON p.id = r.id
                 WHERE {}
                 ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2",
                all.join(" AND ")
            ))?;
            if page.len() as i64 == limit {
                return Ok(page);
            }
        }
        query(&format!(
            "SELECT {PERSON_COLUMNS} FROM people p WHERE p.id IN ({})
             ORDER BY p.last_event_at DESC, p.id DESC LIMIT ?1 OFFSET ?2",
            matching_people_sql(terms.len(), 3)
        ))
    }

    /// One page of people as the Customers screen shows it: `limit` people from `offset`, and how
    /// many there are in all — for a search, counted up to [`SEARCH_COUNT_LIMIT`], with `more`
    /// set when more match than that.
    pub fn people_page(
        &self,
        search: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<PeoplePage, StoreError> {
        let items = self.people(search, Some(limit), offset)?;
        // A first page with room to spare is everything there is: nothing left to count.
        let counted = if offset == 0 && items.len() < limit {
            items.len() as i64
        } else {
            self.people_total(search, SEARCH_COUNT_LIMIT + 1)?
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
        let terms = search.map(search_terms).unwrap_or_default();
        if terms.is_empty() {
            return if search.is_some_and(|s| !s.trim().is_empty()) {
                Ok(0)
            } else {
                self.people_count()
            };
        }
        // Every term's matches are people (`person_terms` rows go with their person), so the ids
        // are counted without looking the people up. DISTINCT: one person has several terms with
        // the same start (two emails, a name and an email).
        let sql = format!(
            "SELECT COUNT(*) FROM
               (SELECT DISTINCT person_id FROM ({}) LIMIT ?{})",
            matching_people_sql(terms.len(), 1),
            2 * terms.len() + 1
        );
        let mut values = term_params(&terms);
        values.push(at_most.max(0).into());
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(values), |r| r.get(0))?)
    }

    /// How many search terms start with `term`, counted up to [`SEARCH_WALK_THRESHOLD`].
    fn term_matches(&self, term: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM
                   (SELECT 1 FROM person_terms WHERE term >= ?1 AND term < ?2 LIMIT ?3)",
            )?
            .query_row(
                params![term, prefix_end(term), SEARCH_WALK_THRESHOLD],
                |r| r.get(0),
            )?)
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

    /// A store of people `1..=people`, each with the search terms `terms` gives it, and a
    /// recency that shuffles them: `(id * 7_919) % 10_007`, distinct below 10,007.
    fn people_with_terms(
        people: i64,
        terms: impl Fn(i64) -> Vec<&'static str>,
    ) -> (tempfile::TempDir, crate::Store) {
        let (dir, store) = crate::testing::temp_store();
        let writer = store.writer().unwrap();
        let tx = writer.conn.unchecked_transaction().unwrap();
        for id in 1..=people {
            tx.execute(
                "INSERT INTO people (id, display_name, emails, phones, profile, last_event_at,
                                     deleted) VALUES (?1, ?2, '[]', '[]', '{}', ?3, 0)",
                params![id, format!("Person {id}"), (id * 7_919) % 10_007],
            )
            .unwrap();
            for term in terms(id) {
                tx.execute(
                    "INSERT INTO person_terms (term, person_id) VALUES (?1, ?2)",
                    params![term, id],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
        drop(writer);
        (dir, store)
    }

    /// The page of 50 from `offset` that the people `keep` chooses make, most recent first (the
    /// recency of [`people_with_terms`]).
    fn page_by_recency(people: i64, keep: impl Fn(i64) -> bool, offset: usize) -> Vec<i64> {
        let mut ids: Vec<i64> = (1..=people).filter(|id| keep(*id)).collect();
        ids.sort_by_key(|id| std::cmp::Reverse(((id * 7_919) % 10_007, *id)));
        ids.into_iter().skip(offset).take(50).collect()
    }

    /// The ids of the page of 50 from `offset` a search finds.
    fn found(reader: &Reader, search: &str, offset: usize) -> Vec<i64> {
        reader
            .people(Some(search), Some(50), offset)
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect()
    }

    /// Both ways of searching (from the matches, or walking people by recency) find the same
    /// people in the same order, whichever word is rarer and however many match.
    #[test]
    fn searches_with_few_or_many_matches_find_the_same_people_in_recency_order() {
        let many = SEARCH_WALK_THRESHOLD + 100;
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
        let found = |q: &str, offset: usize| found(&reader, q, offset);
        let expect =
            |keep: &dyn Fn(i64) -> bool, offset: usize| page_by_recency(many, keep, offset);
        // Many matches (walks by recency), few (sorts the matches), and mixed.
        assert_eq!(found("an", 0), expect(&|_| true, 0));
        assert_eq!(found("an", 120), expect(&|_| true, 120));
        assert_eq!(found("silva", 0), expect(&|id| id % 7 == 0, 0));
        assert_eq!(found("ana silva", 0), expect(&|id| id % 7 == 0, 0));
        assert_eq!(found("silva ana", 10), expect(&|id| id % 7 == 0, 10));
        assert_eq!(
            found("anab silva", 0),
            expect(&|id| id % 300 == 0 && id % 7 == 0, 0)
        );
        assert!(found("nobody", 0).is_empty());
    }

    #[test]
    fn several_common_words_find_the_same_people_whether_walked_or_intersected() {
        let people: i64 = 10_000;
        assert!(people >= 2 * SEARCH_WALK_PEOPLE && people / 2 > SEARCH_WALK_THRESHOLD);
        // Even ids are Anas, odd ids Bobs, every 1,000th both (few together, among many people);
        // half are also Cats (many Ana Cats). Each word alone is too common to sort its matches.
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
            assert_eq!(reader.term_matches(word).unwrap(), SEARCH_WALK_THRESHOLD);
        }
        let found = |q: &str, offset: usize| found(&reader, q, offset);
        let expect = |words: &[&str], offset: usize| {
            page_by_recency(people, |id| words.iter().all(|w| has(id, w)), offset)
        };
        // Few together: not a page among the most recent, so the matches are intersected.
        assert_eq!(found("ana bob", 0), expect(&["ana", "bob"], 0));
        assert_eq!(found("ana bob", 0).len(), people as usize / 1_000);
        // Many together: a page among the most recent, walked; far down, intersected.
        assert_eq!(found("ana cat", 0), expect(&["ana", "cat"], 0));
        assert_eq!(found("cat ana", 40), expect(&["ana", "cat"], 40));
        let deep = people as usize / 4 - 20;
        assert_eq!(found("ana cat", deep), expect(&["ana", "cat"], deep));
        assert_eq!(found("ana cat", deep).len(), 20);
    }
}
