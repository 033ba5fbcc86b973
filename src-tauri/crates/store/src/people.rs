//! Linking source profiles into people, and keeping each person's row (profile, search terms)
//! up to date.
//!
//! A person is a connected set of source profiles that share an identity key (a plausible email
//! or a valid phone number). The result depends only on the current keys, never on arrival order:
//! - a person's id is the smallest source-profile id in the set;
//! - each member records the key and the member through which a breadth-first walk from that
//!   smallest id first reached it (its link reason);
//! - a key held by more than [`MAX_PROFILES_PER_KEY`] profiles (a shop's front-desk email, a
//!   placeholder number) links nobody and is reported instead.

use crate::{StoreError, stored};
use clientele_core::Provider;
use clientele_core::identity::{
    CountryId, IdentityKey, KeyKind, identity_keys, national_digits_of_e164, normalize_email,
    phone_search_terms,
};
use clientele_core::profile::ProfileState;
use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// More profiles than this sharing one email or phone is implausible for one person.
pub const MAX_PROFILES_PER_KEY: i64 = 25;

/// The shortest run of phone digits that search matches anywhere in a number.
const MIN_PHONE_SEARCH_DIGITS: usize = 4;

/// Why a source profile belongs to its person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LinkReason {
    /// It shares an identity key with `with`.
    Key {
        kind: KeyKind,
        value: String,
        /// The source profile it shares the key with.
        with: i64,
    },
    /// Staff merged it with `with` by hand (`hand` is the decision's local id).
    Hand { hand: i64, with: i64 },
}

/// The fields a profile's identity keys are computed from: its email and phone, and its own
/// country, which decides how a phone written without a country code reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityInputs([Value; 3]);

impl IdentityInputs {
    pub(crate) fn of(state: &ProfileState) -> IdentityInputs {
        IdentityInputs(["email", "phone", "country_code"].map(|field| state.value(field).clone()))
    }
}

/// What a profile gives its person's name, emails, phones and search terms (besides its
/// identity keys and customer id): when none of it changed, a delivery updates the person's
/// profile and times and leaves the terms alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchInputs {
    fields: [Value; 7],
    seen: BTreeMap<String, BTreeSet<String>>,
    deleted: bool,
}

impl SearchInputs {
    pub(crate) fn of(state: &ProfileState) -> SearchInputs {
        SearchInputs {
            fields: [
                "full_name",
                "first_name",
                "last_name",
                "company",
                "email",
                "phone",
                "country_code",
            ]
            .map(|field| state.value(field).clone()),
            seen: state.identifiers_seen.clone(),
            deleted: state.deleted_at.is_some(),
        }
    }
}

/// Replaces a profile's identity keys with those of `state`. Returns true when they changed; adds
/// to `relink` every profile whose links a threshold crossing may have changed.
pub(crate) fn update_identity_keys(
    tx: &Transaction<'_>,
    profile_id: i64,
    state: &ProfileState,
    country: Option<CountryId>,
    relink: &mut BTreeSet<i64>,
) -> Result<bool, StoreError> {
    replace_identity_keys(tx, profile_id, &keys_of_state(state, country), relink)
}

/// The identity keys a profile in `state` holds (`country`: how its phone reads without a
/// country code).
pub(crate) fn keys_of_state(
    state: &ProfileState,
    country: Option<CountryId>,
) -> BTreeSet<IdentityKey> {
    identity_keys(
        state.fields.iter().map(|(k, v)| (k.as_str(), &v.value)),
        country,
    )
    .into_iter()
    .collect()
}

/// [`update_identity_keys`] with the new keys already made (a pass makes them on another
/// thread).
pub(crate) fn replace_identity_keys(
    tx: &Transaction<'_>,
    profile_id: i64,
    new: &BTreeSet<IdentityKey>,
    relink: &mut BTreeSet<i64>,
) -> Result<bool, StoreError> {
    let old: BTreeSet<IdentityKey> = keys_of(tx, profile_id)?.into_iter().collect();
    if *new == old {
        return Ok(false);
    }
    for gone in old.difference(new) {
        tx.prepare_cached(
            "DELETE FROM identity_keys WHERE source_profile_id = ?1 AND kind = ?2 AND value = ?3",
        )?
        .execute(params![profile_id, gone.kind.as_str(), gone.value])?;
        relink_if_threshold_crossed(tx, gone, MAX_PROFILES_PER_KEY, relink)?;
    }
    for added in new.difference(&old) {
        tx.prepare_cached(
            "INSERT INTO identity_keys (source_profile_id, kind, value) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![profile_id, added.kind.as_str(), added.value])?;
        relink_if_threshold_crossed(tx, added, MAX_PROFILES_PER_KEY + 1, relink)?;
    }
    Ok(true)
}

/// When a key's holder count just moved across the limit, every holder's links may change.
fn relink_if_threshold_crossed(
    tx: &Transaction<'_>,
    key: &IdentityKey,
    boundary: i64,
    relink: &mut BTreeSet<i64>,
) -> Result<(), StoreError> {
    if holders_count(tx, key)? == boundary {
        relink.extend(holders(tx, key)?);
    }
    Ok(())
}

/// How many profiles hold `key`, counted only up to `MAX_PROFILES_PER_KEY + 2`: every caller
/// compares with `MAX_PROFILES_PER_KEY` or one above it, and a full count would make each update
/// of a profile sharing a front-desk phone or email cost as much as the number of profiles that
/// share it (milliseconds per delivery once thousands do).
fn holders_count(tx: &Transaction<'_>, key: &IdentityKey) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT COUNT(*) FROM
               (SELECT 1 FROM identity_keys WHERE kind = ?1 AND value = ?2 LIMIT ?3)",
        )?
        .query_row(
            params![key.kind.as_str(), key.value, MAX_PROFILES_PER_KEY + 2],
            |r| r.get(0),
        )?)
}

fn holders(tx: &Transaction<'_>, key: &IdentityKey) -> Result<Vec<i64>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT source_profile_id FROM identity_keys WHERE kind = ?1 AND value = ?2
             ORDER BY source_profile_id",
        )?
        .query_map(params![key.kind.as_str(), key.value], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

fn keys_of(tx: &Transaction<'_>, profile_id: i64) -> Result<Vec<IdentityKey>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT kind, value FROM identity_keys WHERE source_profile_id = ?1 ORDER BY kind, value",
        )?
        .query_map([profile_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(|row| {
            row.map(|(kind, value)| KeyKind::parse(&kind).map(|kind| IdentityKey { kind, value }))
                .transpose()
        })
        .collect::<Result<_, _>>()?)
}

/// What a relink reads of the identity keys, each read once: keys don't change while people are
/// linked, and a walk meets every key from each of its holders (and walks twice when it did not
/// start from the smallest id).
#[derive(Default)]
struct KeyGraph {
    keys: HashMap<i64, std::rc::Rc<[IdentityKey]>>,
    /// A key's holders in id order, or None when more than [`MAX_PROFILES_PER_KEY`] hold it.
    holders: HashMap<IdentityKey, Option<std::rc::Rc<[i64]>>>,
}

impl KeyGraph {
    fn keys_of(
        &mut self,
        tx: &Transaction<'_>,
        profile: i64,
    ) -> Result<std::rc::Rc<[IdentityKey]>, StoreError> {
        if let Some(keys) = self.keys.get(&profile) {
            return Ok(keys.clone());
        }
        let keys: std::rc::Rc<[IdentityKey]> = keys_of(tx, profile)?.into();
        self.keys.insert(profile, keys.clone());
        Ok(keys)
    }

    /// The holders of `key` when it may link (no more than the limit hold it).
    fn linking_holders(
        &mut self,
        tx: &Transaction<'_>,
        key: &IdentityKey,
    ) -> Result<Option<std::rc::Rc<[i64]>>, StoreError> {
        if let Some(holders) = self.holders.get(key) {
            return Ok(holders.clone());
        }
        // One read: up to one more than the limit says both whether it links and who holds it.
        let found: Vec<i64> = tx
            .prepare_cached(
                "SELECT source_profile_id FROM identity_keys WHERE kind = ?1 AND value = ?2
                 ORDER BY source_profile_id LIMIT ?3",
            )?
            .query_map(
                params![key.kind.as_str(), key.value, MAX_PROFILES_PER_KEY + 1],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        let holders = (found.len() as i64 <= MAX_PROFILES_PER_KEY).then(|| found.into());
        self.holders.insert(key.clone(), holders.clone());
        Ok(holders)
    }
}

/// The profiles reachable from `start` through keys that may link and through merges made by
/// hand, with how each was reached. A record split out by hand neither reaches nor is reached
/// through keys.
fn component(
    tx: &Transaction<'_>,
    start: i64,
    hand: &HandRules,
    graph: &mut KeyGraph,
) -> Result<BTreeMap<i64, Option<LinkReason>>, StoreError> {
    let mut reached = BTreeMap::from([(start, None)]);
    let mut queue = VecDeque::from([start]);
    while let Some(current) = queue.pop_front() {
        let mut found: Vec<(i64, LinkReason)> = Vec::new();
        if !hand.is_apart(current) {
            for key in graph.keys_of(tx, current)?.iter() {
                let Some(holders) = graph.linking_holders(tx, key)? else {
                    continue;
                };
                for &other in holders.iter() {
                    if !hand.is_apart(other) && !reached.contains_key(&other) {
                        found.push((
                            other,
                            LinkReason::Key {
                                kind: key.kind,
                                value: key.value.clone(),
                                with: current,
                            },
                        ));
                    }
                }
            }
        }
        for &(other, decision) in hand.merged_with(current) {
            found.push((
                other,
                LinkReason::Hand {
                    hand: decision,
                    with: current,
                },
            ));
        }
        for (other, reason) in found {
            if let std::collections::btree_map::Entry::Vacant(slot) = reached.entry(other) {
                slot.insert(Some(reason));
                queue.push_back(other);
            }
        }
    }
    Ok(reached)
}

/// The decisions made by hand that are in force, as linking applies them: which profiles are
/// split apart, and which pairs are merged. Loaded once per relink; empty (and free) when nobody
/// decided anything.
#[derive(Debug, Default)]
pub(crate) struct HandRules {
    apart: BTreeSet<i64>,
    merged: BTreeMap<i64, Vec<(i64, i64)>>,
}

impl HandRules {
    pub(crate) fn load(tx: &Transaction<'_>) -> Result<HandRules, StoreError> {
        let mut rules = HandRules::default();
        // In the order they were made (the same on every desk): a split cancels the merges of
        // its record made before it, not those made after.
        let decisions: Vec<(i64, String, String)> = tx
            .prepare_cached(
                "SELECT id, uid, kind FROM hand_decisions WHERE undone_at IS NULL
                 ORDER BY made_at, uid",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        if decisions.is_empty() {
            return Ok(rules);
        }
        let mut last_split: BTreeMap<i64, usize> = BTreeMap::new();
        let mut merges: Vec<(usize, i64, i64, i64)> = Vec::new();
        for (order, (id, _uid, kind)) in decisions.iter().enumerate() {
            let profiles = decision_profiles(tx, *id)?;
            match kind.as_str() {
                "split" => {
                    for p in profiles.into_iter().flatten() {
                        last_split.insert(p, order);
                    }
                }
                "merge" => {
                    if let [Some(a), Some(b)] = profiles[..]
                        && a != b
                    {
                        merges.push((order, a, b, *id));
                    }
                }
                _ => {}
            }
        }
        rules.apart = last_split.keys().copied().collect();
        for (order, a, b, id) in merges {
            let stands = |p: i64| last_split.get(&p).is_none_or(|&split| split < order);
            if stands(a) && stands(b) {
                rules.merged.entry(a).or_default().push((b, id));
                rules.merged.entry(b).or_default().push((a, id));
            }
        }
        Ok(rules)
    }

    fn is_apart(&self, profile: i64) -> bool {
        self.apart.contains(&profile)
    }

    fn merged_with(&self, profile: i64) -> &[(i64, i64)] {
        self.merged.get(&profile).map_or(&[], Vec::as_slice)
    }
}

/// The source profile of each record a decision names (None where this desk has no such record
/// yet), in the decision's order.
pub(crate) fn decision_profiles(
    tx: &Transaction<'_>,
    decision: i64,
) -> Result<Vec<Option<i64>>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT (SELECT sp.id FROM source_profiles sp JOIN connections c
                       ON c.id = sp.connection_id
                     WHERE c.provider = r.provider AND c.name = r.connection
                       AND sp.customer_ref = r.customer_ref)
             FROM hand_decision_records r WHERE r.decision_id = ?1
             ORDER BY r.provider, r.connection, r.customer_ref",
        )?
        .query_map([decision], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Recomputes the people of `seeds` and of everyone who was linked with them. Returns every person
/// id that gained, lost or changed members (including ids that no longer exist).
pub(crate) fn relink(
    tx: &Transaction<'_>,
    seeds: BTreeSet<i64>,
) -> Result<BTreeSet<i64>, StoreError> {
    let hand = HandRules::load(tx)?;
    let mut graph = KeyGraph::default();
    let mut affected = BTreeSet::new();
    let mut done = BTreeSet::new();
    let mut work: BTreeSet<i64> = seeds;
    while let Some(seed) = work.pop_first() {
        if done.contains(&seed) {
            continue;
        }
        let members = component(tx, seed, &hand, &mut graph)?;
        let person_id = *members.keys().next().unwrap_or(&seed);
        // Walk again from the smallest id so link reasons don't depend on where we started.
        let members = if person_id == seed {
            members
        } else {
            component(tx, person_id, &hand, &mut graph)?
        };
        for (&member, reason) in &members {
            done.insert(member);
            let (old_person, old_reason): (Option<i64>, Option<String>) = tx
                .prepare_cached("SELECT person_id, link_reason FROM source_profiles WHERE id = ?1")?
                .query_row([member], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let reason = reason.as_ref().map(serde_json::to_string).transpose()?;
            if old_person != Some(person_id) || old_reason != reason {
                tx.prepare_cached(
                    "UPDATE source_profiles SET person_id = ?2, link_reason = ?3 WHERE id = ?1",
                )?
                .execute(params![member, person_id, reason])?;
                affected.insert(person_id);
            }
            if let Some(old) = old_person.filter(|&old| old != person_id) {
                affected.insert(old);
                // Whoever stays behind in the old person may now form other people.
                let left: Vec<i64> = tx
                    .prepare_cached("SELECT id FROM source_profiles WHERE person_id = ?1")?
                    .query_map([old], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                work.extend(left.into_iter().filter(|id| !done.contains(id)));
            }
        }
        // Members the walk no longer reaches (a key they shared with the person went away) keep
        // this person's id until they are walked from themselves.
        let stale: Vec<i64> = tx
            .prepare_cached("SELECT id FROM source_profiles WHERE person_id = ?1")?
            .query_map([person_id], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?
            .into_iter()
            .filter(|id| !members.contains_key(id))
            .collect();
        if !stale.is_empty() {
            affected.insert(person_id);
            work.extend(stale.into_iter().filter(|id| !done.contains(id)));
        }
    }
    Ok(affected)
}

/// A member profile as the person row needs it.
pub(crate) struct Member<'s> {
    id: i64,
    provider: Provider,
    connection: String,
    customer_ref: String,
    state: Cow<'s, ProfileState>,
    deleted: bool,
}

/// Search terms to remove and add, written in term order once a pass has rebuilt its people
/// (terms of people built one after another are spread over the whole index; sorted, each
/// page is visited once).
#[derive(Debug, Default)]
pub(crate) struct TermWrites {
    gone: Vec<(String, i64)>,
    added: Vec<(String, i64)>,
}

/// Term changes a pass holds before it writes them: a pass that rebuilds many people (a
/// reprocess, a desk's first pull) writes them while its second thread is still making the
/// people after, instead of all at the end; a few thousand sorted at a time still visit each
/// page of the term index about once.
const TERM_WRITES_HELD: usize = 16_384;

impl TermWrites {
    pub(crate) fn write(mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        self.write_held(tx)
    }

    /// Writes what is held once it is more than [`TERM_WRITES_HELD`].
    pub(crate) fn write_if_many(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        if self.gone.len() + self.added.len() > TERM_WRITES_HELD {
            self.write_held(tx)?;
        }
        Ok(())
    }

    fn write_held(&mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        self.gone.sort_unstable();
        self.added.sort_unstable();
        let mut delete =
            tx.prepare_cached("DELETE FROM person_terms WHERE term = ?1 AND person_id = ?2")?;
        for (term, person) in self.gone.drain(..) {
            delete.execute(params![term, person])?;
        }
        let mut insert =
            tx.prepare_cached("INSERT INTO person_terms (term, person_id) VALUES (?1, ?2)")?;
        for (term, person) in self.added.drain(..) {
            insert.execute(params![term, person])?;
        }
        Ok(())
    }
}

/// What a derivation pass knows when it rebuilds a person.
pub(crate) struct Rebuild<'a> {
    /// States of the profiles the pass just saved (not read back).
    pub(crate) states: &'a HashMap<i64, ProfileState>,
    /// Profiles whose [`SearchInputs`] changed in the pass.
    pub(crate) searched_changed: &'a HashSet<i64>,
    /// The person gained, lost or relinked members.
    pub(crate) members_changed: bool,
}

/// Brings `person_id`'s row and search terms in line with its members, or deletes them when it
/// has none left.
///
/// Only what differs is written: most deliveries change a profile without changing the person's
/// name, emails or phones, and rewriting their dozen or so search terms — spread over the whole
/// term index — wrote about as many pages to the WAL as everything else in a delivery together
/// (found by profiling `make bench`).
///
/// `country` is the business's default country: with a member's own, it says how a phone number
/// that is no identity key (not valid, or one the customer had before) reads for search.
pub(crate) fn rebuild_person(
    tx: &Transaction<'_>,
    person_id: i64,
    country: Option<CountryId>,
) -> Result<(), StoreError> {
    let mut terms = TermWrites::default();
    let rebuild = Rebuild {
        states: &HashMap::new(),
        searched_changed: &HashSet::new(),
        members_changed: true,
    };
    let inputs = PersonInputs::read(tx, person_id, &rebuild)?;
    let row = inputs.person_row(country)?;
    row.write(tx, &mut terms)?;
    terms.write(tx)
}

/// Everything a person's row is made from, read from the database: its members (states the
/// pass holds are borrowed, not read back) and, when its name and terms must be made again,
/// its members' keys and its current terms. Making the row from them
/// ([`PersonInputs::person_row`]) reads nothing, so a pass does it on another thread while it
/// writes the rows made before.
pub(crate) struct PersonInputs<'s> {
    person_id: i64,
    members: Vec<Member<'s>>,
    /// None when only the profile, times and deletion need writing: neither the members nor
    /// what they give the person's name and terms changed, and the row exists.
    terms: Option<TermInputs>,
}

/// What a person's name and search terms are made from besides the member states.
struct TermInputs {
    /// Each member's stored keys, in member order.
    keys: Vec<Vec<IdentityKey>>,
    old_terms: BTreeSet<String>,
}

impl<'s> PersonInputs<'s> {
    pub(crate) fn read(
        tx: &Transaction<'_>,
        person_id: i64,
        pass: &Rebuild<'s>,
    ) -> Result<PersonInputs<'s>, StoreError> {
        let members: Vec<Member<'s>> = tx
            .prepare_cached(
                "SELECT sp.id, c.provider, c.name, sp.customer_ref, sp.deleted_at
                 FROM source_profiles sp JOIN connections c ON c.id = sp.connection_id
                 WHERE sp.person_id = ?1 ORDER BY sp.id",
            )?
            .query_map([person_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    stored::column(r, 1, stored::provider)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?
            .map(|row| {
                let (id, provider, connection, customer_ref, deleted_at) = row?;
                let state = match pass.states.get(&id) {
                    Some(state) => Cow::Borrowed(state),
                    None => Cow::Owned(stored_state(tx, id)?),
                };
                Ok(Member {
                    id,
                    provider,
                    connection,
                    customer_ref,
                    state,
                    deleted: deleted_at.is_some(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let searched_changed = pass.members_changed
            || members
                .iter()
                .any(|m| pass.searched_changed.contains(&m.id));
        let exists = || {
            tx.prepare_cached("SELECT 1 FROM people WHERE id = ?1")
                .and_then(|mut s| s.exists([person_id]))
        };
        let terms = if members.is_empty() || (!searched_changed && exists()?) {
            None
        } else {
            Some(TermInputs {
                keys: members
                    .iter()
                    .map(|m| keys_of(tx, m.id))
                    .collect::<Result<_, _>>()?,
                old_terms: tx
                    .prepare_cached("SELECT term FROM person_terms WHERE person_id = ?1")?
                    .query_map([person_id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?,
            })
        };
        Ok(PersonInputs {
            person_id,
            members,
            terms,
        })
    }

    /// The person's row as its members make it (reads nothing).
    pub(crate) fn person_row(&self, country: Option<CountryId>) -> Result<PersonRow, StoreError> {
        let person_id = self.person_id;
        let members = &self.members;
        if members.is_empty() {
            return Ok(PersonRow::Gone { person_id });
        }
        let times = Times {
            first: members
                .iter()
                .filter_map(|m| m.state.first_event_at)
                .min()
                .map(crate::to_millis),
            last: members
                .iter()
                .filter_map(|m| m.state.last_event_at)
                .max()
                .map(crate::to_millis),
            deleted: members.iter().all(|m| m.deleted),
        };
        let profile = merged_profile(members);
        let profile_blob = stored::profile_blob(&profile)?;
        let plain = stored::plain_fields(&profile)?;
        let Some(inputs) = &self.terms else {
            return Ok(PersonRow::Profile {
                person_id,
                profile: profile_blob,
                plain,
                times,
            });
        };
        let mut emails = BTreeSet::new();
        let mut phones = Vec::new();
        let mut terms = BTreeSet::new();
        for (m, keys) in members.iter().zip(&inputs.keys) {
            // The member's stored keys: made from its current state when it was saved.
            let mut phone_keyed = false;
            for key in keys {
                match key.kind {
                    KeyKind::Email => {
                        add_email_terms(&mut terms, &key.value);
                        emails.insert(key.value.clone());
                    }
                    KeyKind::Phone => {
                        terms.insert(key.value.trim_start_matches('+').to_string());
                        // Every suffix of the national number, so a prefix search finds any run
                        // of digits people remember ("the one ending 8122").
                        if let Some(digits) = national_digits_of_e164(&key.value) {
                            for start in 0..digits.len().saturating_sub(MIN_PHONE_SEARCH_DIGITS - 1)
                            {
                                terms.insert(digits[start..].to_string());
                            }
                        }
                        if !phones.contains(&key.value) {
                            phones.push(key.value.clone());
                        }
                        phone_keyed = true;
                    }
                }
            }
            // Every address and number the record ever had finds the person too (old ones, and
            // numbers the phone rules refuse: what the profile shows must be searchable). The
            // current number, when it is a key, is already in; parsing it again for every update
            // would cost more than everything else here.
            for email in m.state.seen("email").filter_map(normalize_email) {
                add_email_terms(&mut terms, &email);
            }
            let current_phone = m.state.value("phone").as_str().map(str::trim);
            let member_country = crate::derive::profile_country(&m.state).or(country);
            for phone in m.state.seen("phone") {
                if phone_keyed && Some(phone) == current_phone {
                    continue;
                }
                terms.extend(phone_search_terms(phone, member_country));
            }
            for field in ["full_name", "first_name", "last_name", "company"] {
                if let Some(text) = m.state.value(field).as_str() {
                    add_words(&mut terms, text);
                }
            }
            terms.insert(m.customer_ref.to_lowercase());
        }
        let display_name = display_name(&profile, &emails, &phones, &members[0]);
        add_words(&mut terms, &display_name);
        terms.retain(|t| !t.is_empty());
        Ok(PersonRow::Whole {
            person_id,
            display_name,
            emails: serde_json::to_string(&emails)?,
            phones: serde_json::to_string(&phones)?,
            profile: profile_blob,
            plain,
            times,
            gone: inputs.old_terms.difference(&terms).cloned().collect(),
            added: terms.difference(&inputs.old_terms).cloned().collect(),
        })
    }
}

/// A person's times and deletion, as stored.
pub(crate) struct Times {
    first: Option<i64>,
    last: Option<i64>,
    deleted: bool,
}

/// A person's row as made from its members, to be written.
pub(crate) enum PersonRow {
    /// No members are left: the row and its terms go.
    Gone { person_id: i64 },
    /// Only the merged profile (with its plain fields), times and deletion may differ.
    Profile {
        person_id: i64,
        profile: Vec<u8>,
        /// `people.plain_fields` ([`stored::plain_fields`]), written with every profile.
        plain: String,
        times: Times,
    },
    /// The whole row, and the terms to remove and add.
    Whole {
        person_id: i64,
        display_name: String,
        emails: String,
        phones: String,
        profile: Vec<u8>,
        plain: String,
        times: Times,
        gone: Vec<String>,
        added: Vec<String>,
    },
}

impl PersonRow {
    /// Writes the row (only what differs: an update that changes nothing here leaves the page
    /// alone); copies of its term changes join `term_writes`. By reference, so that a row made
    /// on another thread is freed there too (see [`crate::pipelined`]).
    pub(crate) fn write(
        &self,
        tx: &Transaction<'_>,
        term_writes: &mut TermWrites,
    ) -> Result<(), StoreError> {
        match *self {
            PersonRow::Gone { person_id } => {
                tx.prepare_cached("DELETE FROM person_terms WHERE person_id = ?1")?
                    .execute([person_id])?;
                tx.prepare_cached("DELETE FROM people WHERE id = ?1")?
                    .execute([person_id])?;
            }
            PersonRow::Profile {
                person_id,
                ref profile,
                ref plain,
                ref times,
            } => {
                // The plain fields come from the profile: equal profiles, equal plain fields,
                // so they are compared with it and not on their own.
                tx.prepare_cached(
                    "UPDATE people SET profile = ?2, first_event_at = ?3, last_event_at = ?4,
                                       deleted = ?5, plain_fields = ?6
                     WHERE id = ?1 AND (profile, first_event_at, last_event_at, deleted,
                                        plain_fields)
                                       IS NOT (?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    person_id,
                    profile,
                    times.first,
                    times.last,
                    times.deleted,
                    plain
                ])?;
            }
            PersonRow::Whole {
                person_id,
                ref display_name,
                ref emails,
                ref phones,
                ref profile,
                ref plain,
                ref times,
                ref gone,
                ref added,
            } => {
                tx.prepare_cached(
                    "INSERT INTO people (id, display_name, emails, phones, profile, first_event_at,
                                         last_event_at, deleted, plain_fields)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name,
                        emails = excluded.emails, phones = excluded.phones,
                        profile = excluded.profile, first_event_at = excluded.first_event_at,
                        last_event_at = excluded.last_event_at, deleted = excluded.deleted,
                        plain_fields = excluded.plain_fields
                     WHERE (display_name, emails, phones, profile, first_event_at, last_event_at,
                            deleted, plain_fields)
                        IS NOT (excluded.display_name, excluded.emails, excluded.phones,
                                excluded.profile, excluded.first_event_at,
                                excluded.last_event_at, excluded.deleted,
                                excluded.plain_fields)",
                )?
                .execute(params![
                    person_id,
                    display_name,
                    emails,
                    phones,
                    profile,
                    times.first,
                    times.last,
                    times.deleted,
                    plain
                ])?;
                term_writes
                    .gone
                    .extend(gone.iter().map(|term| (term.clone(), person_id)));
                term_writes
                    .added
                    .extend(added.iter().map(|term| (term.clone(), person_id)));
            }
        }
        Ok(())
    }
}

/// A source profile's saved state.
fn stored_state(tx: &Transaction<'_>, profile_id: i64) -> Result<ProfileState, StoreError> {
    let blob: Vec<u8> = tx
        .prepare_cached("SELECT state FROM source_profiles WHERE id = ?1")?
        .query_row([profile_id], |r| r.get(0))?;
    stored::state(&blob)
}

/// Canonical fields only (no `provider.path`), each the latest non-empty value across members,
/// with who said it and when — except `created_at`, the earliest: a person joined when their
/// first record was created, whichever provider says so later. Ties go to the member with the
/// smaller id.
fn merged_profile(members: &[Member]) -> BTreeMap<String, Value> {
    let mut best: BTreeMap<&str, (&Member, &clientele_core::profile::FieldValue)> = BTreeMap::new();
    for m in members {
        for (field, fv) in &m.state.fields {
            if field.contains('.') || fv.value.is_null() || fv.value == json!("") {
                continue;
            }
            let keep_current = match best.get(field.as_str()) {
                None => false,
                Some((_, current)) if field == "created_at" => !created_earlier(fv, current),
                Some((_, current)) => current.at >= fv.at,
            };
            if !keep_current {
                best.insert(field, (m, fv));
            }
        }
    }
    best.into_iter()
        .map(|(field, (m, fv))| {
            (
                field.to_string(),
                json!({
                    "value": fv.value,
                    "provider": m.provider,
                    "connection": m.connection,
                    "at": fv.at,
                    "source_profile": m.id,
                }),
            )
        })
        .collect()
}

/// Whether `candidate` says a record was created before `current` does. A date that can't be
/// read never replaces one that can.
fn created_earlier(
    candidate: &clientele_core::profile::FieldValue,
    current: &clientele_core::profile::FieldValue,
) -> bool {
    use clientele_core::time::parse_provider_time;
    match (
        parse_provider_time(&candidate.value),
        parse_provider_time(&current.value),
    ) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        _ => false,
    }
}

fn display_name(
    profile: &BTreeMap<String, Value>,
    emails: &BTreeSet<String>,
    phones: &[String],
    first_member: &Member,
) -> String {
    let text = |field: &str| {
        profile
            .get(field)
            .and_then(|v| v["value"].as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(full) = text("full_name") {
        return full;
    }
    let joined = [text("first_name"), text("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !joined.is_empty() {
        return joined;
    }
    if let Some(email) = emails.iter().next() {
        return email.clone();
    }
    if let Some(phone) = phones.first() {
        return phone.clone();
    }
    // A number the phone rules refuse is still how staff know this customer.
    if let Some(phone) = text("phone") {
        return phone;
    }
    format!(
        "{} customer {}",
        first_member.provider.display_name(),
        first_member.customer_ref
    )
}

fn add_words(terms: &mut BTreeSet<String>, text: &str) {
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
    {
        terms.insert(word.to_lowercase());
    }
}

fn add_email_terms(terms: &mut BTreeSet<String>, email: &str) {
    terms.insert(email.to_string());
    if let Some((local, domain)) = email.split_once('@') {
        terms.insert(local.to_string());
        terms.insert(domain.to_string());
    }
}
