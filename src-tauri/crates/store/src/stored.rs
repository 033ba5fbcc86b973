//! Text the store wrote, read back into the types it was written from.
//!
//! Providers, event kinds, identity key kinds and statuses are stored as their lower-case ids,
//! always written from those types. A value that doesn't read back was written by something
//! else — or by a newer Clientele that knows more of them — and reads as
//! [`StoreError::Corrupt`], never as a panic or a guess.

use crate::StoreError;
use clientele_core::identity::KeyKind;
use clientele_core::{EventKind, Provider};
use rusqlite::Row;
use rusqlite::types::Type;

/// A stored value this version of Clientele doesn't know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stored {what} '{value}' is not one this version of Clientele knows (was the data written by a newer version?)"
)]
pub(crate) struct Unknown {
    what: &'static str,
    value: String,
}

impl Unknown {
    pub(crate) fn new(what: &'static str, value: &str) -> Unknown {
        Unknown {
            what,
            value: value.to_string(),
        }
    }
}

impl From<Unknown> for StoreError {
    fn from(e: Unknown) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// A provider id, as stored with a connection.
pub(crate) fn provider(text: &str) -> Result<Provider, Unknown> {
    Provider::ALL
        .into_iter()
        .find(|p| p.id() == text)
        .ok_or_else(|| Unknown::new("provider", text))
}

/// A timeline event's kind, as stored with the event.
pub(crate) fn event_kind(text: &str) -> Result<EventKind, Unknown> {
    EventKind::parse(text).ok_or_else(|| Unknown::new("event kind", text))
}

/// An identity key's kind (`email` or `phone`).
pub(crate) fn key_kind(text: &str) -> Result<KeyKind, Unknown> {
    KeyKind::parse(text).ok_or_else(|| Unknown::new("identity key kind", text))
}

/// A delivery's body as received, from `deliveries.body_codec` and `deliveries.body`: every
/// reader of bodies goes through this (see `pack::stored_body`). An erased body is empty.
pub(crate) fn body(codec: i64, blob: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    crate::pack::stored_body(codec, blob)
}

/// Text column `idx` of `row`, read with `read`. A value that doesn't read is a rusqlite
/// conversion error, which becomes [`StoreError::Corrupt`] with `read`'s message.
pub(crate) fn column<T>(
    row: &Row<'_>,
    idx: usize,
    read: impl FnOnce(&str) -> Result<T, Unknown>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    read(&text).map_err(in_column(idx))
}

/// Turns an [`Unknown`] read from column `idx` into the error a row-mapping closure returns.
pub(crate) fn in_column(idx: usize) -> impl FnOnce(Unknown) -> rusqlite::Error {
    move |e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

/// A source profile's folded state as stored: JSON, packed.
pub(crate) fn state_blob(
    state: &clientele_core::profile::ProfileState,
) -> Result<Vec<u8>, StoreError> {
    Ok(crate::pack::pack(
        crate::pack::Dict::States,
        &serde_json::to_vec(state)?,
    ))
}

/// A source profile's folded state, read back from [`state_blob`].
pub(crate) fn state(blob: &[u8]) -> Result<clientele_core::profile::ProfileState, StoreError> {
    Ok(serde_json::from_slice(&crate::pack::unpack(
        crate::pack::Dict::States,
        blob,
    )?)?)
}

/// A person's merged profile as stored: JSON (field → value, provider, connection, at,
/// source_profile), packed.
pub(crate) fn profile_blob(profile: &impl serde::Serialize) -> Result<Vec<u8>, StoreError> {
    Ok(crate::pack::pack(
        crate::pack::Dict::Profiles,
        &serde_json::to_vec(profile)?,
    ))
}

/// A person's merged profile as JSON text, read back from [`profile_blob`].
pub(crate) fn profile_json(blob: &[u8]) -> Result<Vec<u8>, StoreError> {
    crate::pack::unpack(crate::pack::Dict::Profiles, blob)
}

/// The fields of a person's merged profile that `people.plain_fields` keeps unpacked (schema 8):
/// the ones exports read most. An export whose columns and filters read no other field takes
/// them from there instead of unpacking and reading the whole profile (`export::rows`).
pub(crate) const PLAIN_FIELDS: [&str; 2] = ["email", "full_name"];

/// `people.plain_fields` for a merged profile (field → `{"value", …}`): a JSON object of each
/// of [`PLAIN_FIELDS`] the profile holds, with its value exactly as the profile holds it
/// (`{"email":"ana@example.com","full_name":"Ana Silva"}`; `{}` when it holds neither).
pub(crate) fn plain_fields(
    profile: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<String, StoreError> {
    let plain: serde_json::Map<String, serde_json::Value> = PLAIN_FIELDS
        .iter()
        .filter_map(|f| Some((f.to_string(), profile.get(*f)?.get("value")?.clone())))
        .collect();
    Ok(serde_json::to_string(&plain)?)
}

/// A timeline event's changes as stored: `[[field, old, new], …]` — the same values as the
/// `{"field", "old", "new"}` objects the window gets, without repeating the three names in every
/// change of every event.
pub(crate) fn changes_text(changes: &[clientele_core::Change]) -> Result<String, StoreError> {
    let rows: Vec<(&str, &serde_json::Value, &serde_json::Value)> = changes
        .iter()
        .map(|c| (c.field.as_str(), &c.old, &c.new))
        .collect();
    Ok(serde_json::to_string(&rows)?)
}

/// A timeline event's changes, read back from [`changes_text`].
pub(crate) fn changes(text: &str) -> Result<Vec<clientele_core::Change>, StoreError> {
    let rows: Vec<(String, serde_json::Value, serde_json::Value)> = serde_json::from_str(text)?;
    Ok(rows
        .into_iter()
        .map(|(field, old, new)| clientele_core::Change { field, old, new })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_read_back_and_anything_else_is_corrupt() {
        for p in Provider::ALL {
            assert_eq!(provider(p.id()), Ok(p));
        }
        // Only exactly what was written: ids are stored lower-case and trimmed.
        for bad in ["stripe", "Tiquo", " tiquo", ""] {
            let err = StoreError::from(provider(bad).unwrap_err());
            assert!(
                matches!(&err, StoreError::Corrupt(m) if m.contains("provider")),
                "{err}"
            );
        }
        assert_eq!(event_kind("tier_changed"), Ok(EventKind::TierChanged));
        assert!(event_kind("TierChanged").is_err());
        assert_eq!(key_kind("phone"), Ok(KeyKind::Phone));
        assert!(key_kind("fax").is_err());
    }

    #[test]
    fn an_unknown_value_in_a_row_is_corrupt_not_a_database_error() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err: StoreError = conn
            .query_row("SELECT 'stripe'", [], |r| column(r, 0, provider))
            .map_err(StoreError::from)
            .unwrap_err();
        let StoreError::Corrupt(message) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            message,
            "the stored provider 'stripe' is not one this version of Clientele knows (was the data written by a newer version?)"
        );
    }
}
