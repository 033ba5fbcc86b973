//! Names staff give to a provider's business ids. Vagaro sends a customer's `businessIds`
//! (`U2FsdGVkX18z…` in real deliveries) and never a name; the screens show the name where one
//! was given, and list the ids seen so that staff can name them.

use crate::{Reader, StoreError, Writer};
use clientele_core::Provider;
use rusqlite::params;
use std::collections::BTreeMap;

/// A longest name, in characters.
pub const MAX_BUSINESS_NAME: usize = 80;

/// One business id seen in customers' records, or named by staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    pub id: String,
    pub name: Option<String>,
    /// How many of the provider's customer records list it now.
    pub customers: i64,
}

impl Reader {
    /// The names staff gave to `provider`'s business ids, by id.
    pub fn business_names(
        &self,
        provider: Provider,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT business_id, name FROM business_names WHERE provider = ?1")?
            .query_map([provider.id()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Every business id of `provider` that a customer record lists now or that has a name,
    /// named ones first, then by how many customers list it.
    ///
    /// Reads each of the provider's records once (this is for the Settings screen, not for every
    /// delivery).
    pub fn businesses(&self, provider: Provider) -> Result<Vec<Business>, StoreError> {
        let mut found: BTreeMap<String, Business> = BTreeMap::new();
        if provider == Provider::Vagaro {
            let mut stmt = self.conn.prepare_cached(
                "SELECT sp.state FROM source_profiles sp JOIN connections c
                   ON c.id = sp.connection_id
                 WHERE c.provider = ?1",
            )?;
            let states = stmt.query_map([provider.id()], |r| r.get::<_, Vec<u8>>(0))?;
            for state in states {
                let state = crate::stored::state(&state?)?;
                let ids = state.value("vagaro.businessIds").as_array();
                for id in ids.into_iter().flatten().filter_map(|v| v.as_str()) {
                    found
                        .entry(id.to_string())
                        .or_insert_with(|| Business {
                            id: id.to_string(),
                            name: None,
                            customers: 0,
                        })
                        .customers += 1;
                }
            }
        }
        for (id, name) in self.business_names(provider)? {
            found
                .entry(id.clone())
                .or_insert(Business {
                    id,
                    name: None,
                    customers: 0,
                })
                .name = Some(name);
        }
        let mut all: Vec<Business> = found.into_values().collect();
        all.sort_by(|a, b| {
            (a.name.is_none(), std::cmp::Reverse(a.customers), &a.id).cmp(&(
                b.name.is_none(),
                std::cmp::Reverse(b.customers),
                &b.id,
            ))
        });
        Ok(all)
    }
}

impl Writer {
    /// Names one of `provider`'s business ids; an empty name forgets the name.
    pub fn set_business_name(
        &mut self,
        provider: Provider,
        business_id: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let business_id = business_id.trim();
        let name = name.trim();
        if business_id.is_empty() {
            return Err(StoreError::Invalid("Say which business to name.".into()));
        }
        if name.chars().count() > MAX_BUSINESS_NAME {
            return Err(StoreError::Invalid(format!(
                "Use a shorter name (at most {MAX_BUSINESS_NAME} characters)."
            )));
        }
        if name.is_empty() {
            self.conn.execute(
                "DELETE FROM business_names WHERE provider = ?1 AND business_id = ?2",
                params![provider.id(), business_id],
            )?;
        } else {
            self.conn.execute(
                "INSERT INTO business_names (provider, business_id, name) VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider, business_id) DO UPDATE SET name = excluded.name",
                params![provider.id(), business_id, name],
            )?;
        }
        Ok(())
    }
}
