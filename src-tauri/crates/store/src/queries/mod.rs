//! Read queries for the command line and the app: people, timelines, deliveries, rejections.
//!
//! By area: [`people`] (search, pages, counts), [`person`] (one person's profile and timeline),
//! [`deliveries`] and [`rejections`]. Here: where a person's records come from, which both
//! people lists and one person's page show.

mod deliveries;
mod people;
mod person;
mod rejections;

pub use deliveries::{DeliveryDetail, DeliveryRow};
pub use people::{PeoplePage, PersonSummary, SEARCH_COUNT_LIMIT, SharedKey};
pub use person::{PersonDetail, ProfileValue, TimelineEntry};
pub use rejections::RejectionRow;

use crate::people::LinkReason;
use crate::stored;
use crate::time::from_millis;
use crate::{Reader, StoreError};
use chrono::{DateTime, Utc};
use clientele_core::Provider;
use rusqlite::OptionalExtension;
use serde::Serialize;
use std::collections::HashMap;

/// Where one of a person's records comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRef {
    pub provider: Provider,
    pub connection: String,
    pub customer_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Why this record belongs to the person, in words ("Same email (a@x.com) as Tiquo
    /// customer cust_1"); `None` for the record the person was started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_because: Option<String>,
    /// It belongs to the person because staff merged it by hand.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_hand: bool,
}

/// person id, profile id, provider, connection, customer ref, deleted at, link reason
type SourceRow = (
    i64,
    i64,
    Provider,
    String,
    String,
    Option<i64>,
    Option<String>,
);

impl Reader {
    /// The records of each of `people`, by person (for lists and for one person's page).
    fn sources_of(&self, people: &[i64]) -> Result<HashMap<i64, Vec<SourceRef>>, StoreError> {
        let mut out: HashMap<i64, Vec<SourceRef>> = HashMap::new();
        if people.is_empty() {
            return Ok(out);
        }
        // Profiles referenced by link reasons, to name them in words.
        let mut stmt = self.conn.prepare_cached(
            "SELECT sp.person_id, sp.id, c.provider, c.name, sp.customer_ref, sp.deleted_at,
                    sp.link_reason
             FROM source_profiles sp JOIN connections c ON c.id = sp.connection_id
             WHERE sp.person_id IN (SELECT value FROM json_each(?1))
             ORDER BY sp.person_id, sp.id",
        )?;
        let ids = serde_json::to_string(people)?;
        let rows: Vec<SourceRow> = stmt
            .query_map([ids], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    stored::column(r, 2, stored::provider)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let names: HashMap<i64, (Provider, String)> = rows
            .iter()
            .map(|(_, id, provider, _, customer_ref, _, _)| {
                (*id, (*provider, customer_ref.clone()))
            })
            .collect();
        for (person, _, provider, connection, customer_ref, deleted_at, reason) in rows {
            let reason = reason
                .as_deref()
                .and_then(|r| serde_json::from_str::<LinkReason>(r).ok());
            let by_hand = matches!(reason, Some(LinkReason::Hand { .. }));
            let linked_because = match reason {
                None => None,
                Some(LinkReason::Key { kind, value, with }) => {
                    let other = names.get(&with).map_or_else(
                        || "another record".to_string(),
                        |(p, c)| format!("{} customer {c}", p.display_name()),
                    );
                    Some(format!("Same {} ({value}) as {other}", kind.as_str()))
                }
                Some(LinkReason::Hand { hand, .. }) => Some(self.hand_link_words(hand)?),
            };
            out.entry(person).or_default().push(SourceRef {
                provider,
                connection,
                customer_ref,
                deleted_at: deleted_at.map(from_millis),
                linked_because,
                by_hand,
            });
        }
        Ok(out)
    }
}

impl Reader {
    /// "Linked by hand on Front desk on 3 March 2026".
    fn hand_link_words(&self, decision: i64) -> Result<String, StoreError> {
        let found: Option<(String, i64)> = self
            .conn
            .prepare_cached("SELECT made_by, made_at FROM hand_decisions WHERE id = ?1")?
            .query_row([decision], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match found {
            Some((by, at)) => format!(
                "Linked by hand on {by} on {}",
                from_millis(at).format("%-d %B %Y")
            ),
            None => "Linked by hand".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::StoreError;
    use crate::testing::{connect, delivery, temp_store};
    use clientele_core::Provider;
    use serde_json::{Value, json};

    fn json_of(v: Result<impl serde::Serialize, StoreError>) -> Result<Value, StoreError> {
        v.map(|v| serde_json::to_value(v).unwrap())
    }

    /// A store with one Vagaro customer, derived. Returns the person's id.
    fn one_customer() -> (tempfile::TempDir, crate::Store, i64) {
        let (dir, store) = temp_store();
        let mut w = store.writer().unwrap();
        let c = connect(&mut w, Provider::Vagaro, "main");
        let body = json!({"id": "1", "createdDate": "2024-03-15T09:00:00Z", "type": "customer",
            "action": "created", "payload": {"customerId": "V1", "customerFirstName": "Jo",
            "email": "jo@x.example.com", "countryCode": "US", "businessIds": ["b1"]}});
        let body = serde_json::to_vec(&body).unwrap();
        w.ingest(&[delivery(c, "1", &body)], &[]).unwrap();
        w.derive_all().unwrap();
        let id = store.reader().unwrap().people(None, None, 0).unwrap()[0].id;
        drop(w);
        (dir, store, id)
    }

    /// Typed fields print as the ids they are stored as: `clientele customers show --json` and
    /// `deliveries list --json` print these structs as they are.
    #[test]
    fn providers_and_kinds_print_as_their_stored_ids() {
        let (_dir, store, id) = one_customer();
        let r = store.reader().unwrap();
        let person = serde_json::to_value(r.person(id).unwrap()).unwrap();
        assert_eq!(person["sources"][0]["provider"], "vagaro");
        assert_eq!(person["profile_sources"]["email"]["provider"], "vagaro");
        assert_eq!(person["timeline"][0]["provider"], "vagaro");
        assert_eq!(person["timeline"][0]["kind"], "created");
        let deliveries = serde_json::to_value(r.deliveries(None).unwrap()).unwrap();
        assert_eq!(deliveries[0]["provider"], "vagaro");
        assert_eq!(deliveries[0]["status"], "processed");
    }

    /// A value no version of the store writes reads as corrupt data, never as a panic or a
    /// default.
    #[test]
    fn unknown_stored_values_are_corrupt() {
        let (_dir, store, id) = one_customer();
        let w = store.writer().unwrap();
        let corrupt = |what: &str, result: Result<Value, StoreError>| match result {
            Err(StoreError::Corrupt(message)) => assert!(message.contains(what), "{message}"),
            other => panic!("{what}: {other:?}"),
        };
        let reader = || store.reader().unwrap();

        w.conn
            .execute("UPDATE delivery_outcomes SET status = 'lost'", [])
            .unwrap();
        corrupt("delivery status 'lost'", json_of(reader().deliveries(None)));
        corrupt("delivery status 'lost'", json_of(reader().delivery(1)));

        w.conn
            .execute("UPDATE events SET kind = 'renamed'", [])
            .unwrap();
        corrupt("event kind 'renamed'", json_of(reader().person(id)));

        w.conn
            .execute("UPDATE connections SET provider = 'stripe'", [])
            .unwrap();
        corrupt("provider 'stripe'", json_of(reader().deliveries(None)));
        corrupt("provider 'stripe'", json_of(reader().people(None, None, 0)));
        corrupt("provider 'stripe'", json_of(reader().connections()));
    }
}
