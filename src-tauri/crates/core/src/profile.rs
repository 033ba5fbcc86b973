//! Folding events into a source profile: the state of one customer at one provider.
//!
//! The fold is the single definition of "what a customer looks like after these events", used by
//! live ingest, by the re-fold that follows a late delivery, and by `clientele reprocess`. Events
//! must be applied in event order (`occurred_at`, then delivery id, then position in the
//! delivery); the caller guarantees that order, and the fold then makes "latest value by event
//! time" fall out naturally: a later event's value overwrites an earlier one's.
//!
//! Diffs: where the provider sent its own diff, that is the diff. Where it sent a snapshot, the
//! diff is the snapshot against the state *as of that event* — so when an older snapshot arrives
//! late and the profile is re-folded, the diffs on both sides of it come out as if it had arrived
//! in time.

use crate::event::{Change, EventKind, SourceEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Fields that change on every snapshot and would drown the real changes in a computed diff.
/// They are still kept on the profile.
const NOT_DIFFED: &[&str] = &["updated_at", "vagaro.modifiedDate", "vagaro.modifiedBy"];

/// One field's current value and the event time that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    pub value: Value,
    pub at: DateTime<Utc>,
}

/// A customer as one provider connection has described them so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileState {
    pub fields: BTreeMap<String, FieldValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    /// Every email and phone number this record has had, as sent (the current ones included), by
    /// field: staff search for a customer by an address they used to have. Written only by the
    /// fold, so rebuilding gives the same sets whatever order deliveries arrived in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identifiers_seen: BTreeMap<String, BTreeSet<String>>,
}

/// The fields whose every value is remembered in [`ProfileState::identifiers_seen`].
pub const IDENTIFIER_FIELDS: &[&str] = &["email", "phone"];

impl ProfileState {
    /// The current value of `field`, `Null` when unknown or cleared.
    pub fn value(&self, field: &str) -> &Value {
        self.fields.get(field).map_or(&Value::Null, |f| &f.value)
    }

    /// True when `event` may be appended without re-folding: it is not older than anything
    /// already applied.
    pub fn accepts_in_order(&self, event: &SourceEvent) -> bool {
        self.last_event_at
            .is_none_or(|last| event.occurred_at >= last)
    }

    /// Applies `event` and returns its field-level changes.
    pub fn apply(&mut self, event: &SourceEvent) -> Vec<Change> {
        let changes = match &event.changes {
            Some(provided) => provided.clone(),
            None => self.diff(event),
        };
        let at = event.occurred_at;
        for (field, value) in &event.fields {
            self.set(field, value.clone(), at);
        }
        // A provider's diff can name a field its body does not carry (ResDiary's unknown change
        // types, Zupy's tier change): the change's new value is what the provider says now.
        for change in &changes {
            if !event.fields.contains_key(&change.field) {
                self.set(&change.field, change.new.clone(), at);
            }
        }
        self.remember_identifiers(event, &changes);
        match event.kind {
            EventKind::Deleted => self.deleted_at = Some(at),
            EventKind::Created => self.deleted_at = None,
            _ => {}
        }
        self.first_event_at = Some(self.first_event_at.map_or(at, |f| f.min(at)));
        self.last_event_at = Some(self.last_event_at.map_or(at, |l| l.max(at)));
        changes
    }

    /// Adds the emails and phones `event` mentions — its values, and both sides of its changes
    /// (a provider's own diff may name an old address the record never had here).
    fn remember_identifiers(&mut self, event: &SourceEvent, changes: &[Change]) {
        for field in IDENTIFIER_FIELDS {
            let values = event
                .fields
                .get(*field)
                .into_iter()
                .chain(
                    changes
                        .iter()
                        .filter(|c| c.field == *field)
                        .flat_map(|c| [&c.old, &c.new]),
                )
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty());
            for value in values {
                if !self
                    .identifiers_seen
                    .get(*field)
                    .is_some_and(|seen| seen.contains(value))
                {
                    self.identifiers_seen
                        .entry(field.to_string())
                        .or_default()
                        .insert(value.to_string());
                }
            }
        }
    }

    /// Every value `field` has had (see [`ProfileState::identifiers_seen`]).
    pub fn seen(&self, field: &str) -> impl Iterator<Item = &str> {
        self.identifiers_seen
            .get(field)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    fn set(&mut self, field: &str, value: Value, at: DateTime<Utc>) {
        match self.fields.get_mut(field) {
            // Never let an older value overwrite a newer one, whatever order the caller used.
            Some(current) if current.at > at => {}
            Some(current) => {
                current.value = value;
                current.at = at;
            }
            None => {
                self.fields
                    .insert(field.to_string(), FieldValue { value, at });
            }
        }
    }

    fn diff(&self, event: &SourceEvent) -> Vec<Change> {
        event
            .fields
            .iter()
            .filter(|(field, _)| !NOT_DIFFED.contains(&field.as_str()))
            .filter_map(|(field, new)| {
                let old = self.value(field);
                (old != new).then(|| Change {
                    field: field.clone(),
                    old: old.clone(),
                    new: new.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 20, h, 0, 0).unwrap()
    }

    fn snapshot(h: u32, kind: EventKind, fields: Value) -> SourceEvent {
        SourceEvent {
            customer_ref: "c1".into(),
            occurred_at: at(h),
            kind,
            event_type: "customer.updated".into(),
            fields: serde_json::from_value(fields).unwrap(),
            changes: None,
            details: Value::Null,
        }
    }

    fn fold(events: &mut [SourceEvent]) -> (ProfileState, Vec<Vec<Change>>) {
        events.sort_by_key(|e| e.occurred_at);
        let mut state = ProfileState::default();
        let diffs = events.iter().map(|e| state.apply(e)).collect();
        (state, diffs)
    }

    #[test]
    fn every_email_and_phone_ever_seen_is_remembered_in_any_order() {
        let events = [
            snapshot(
                10,
                EventKind::Created,
                json!({"email": "a@x.com", "phone": " 07911 123456 "}),
            ),
            snapshot(
                12,
                EventKind::Updated,
                json!({"email": "c@x.com", "phone": null}),
            ),
            snapshot(
                11,
                EventKind::Updated,
                json!({"email": "b@x.com", "city": "Leeds"}),
            ),
        ];
        let (state, _) = fold(&mut events.clone());
        let emails: Vec<&str> = state.seen("email").collect();
        assert_eq!(emails, ["a@x.com", "b@x.com", "c@x.com"]);
        assert_eq!(state.seen("phone").collect::<Vec<_>>(), ["07911 123456"]);
        // A provider's diff names an address the record never had here.
        let mut update = snapshot(13, EventKind::Updated, json!({"email": "d@x.com"}));
        update.changes = Some(vec![Change {
            field: "email".into(),
            old: json!("old@x.com"),
            new: json!("d@x.com"),
        }]);
        let mut state = state;
        state.apply(&update);
        assert!(state.seen("email").any(|e| e == "old@x.com"));
        // Nothing else is remembered, and a state without any reads as before.
        assert!(state.seen("city").next().is_none());
        let plain: ProfileState = serde_json::from_value(json!({"fields": {}})).unwrap();
        assert!(plain.identifiers_seen.is_empty());
    }

    #[test]
    fn snapshot_diffs_compare_with_the_state_at_event_time() {
        let mut events = vec![
            snapshot(
                10,
                EventKind::Created,
                json!({"email": "a@x.com", "city": "Leeds"}),
            ),
            snapshot(
                12,
                EventKind::Updated,
                json!({"email": "c@x.com", "city": "Leeds"}),
            ),
            // Arrives last, happened in between.
            snapshot(
                11,
                EventKind::Updated,
                json!({"email": "b@x.com", "city": "Leeds"}),
            ),
        ];
        let (state, diffs) = fold(&mut events);
        assert_eq!(state.value("email"), &json!("c@x.com"));
        assert_eq!(
            diffs[1],
            vec![Change {
                field: "email".into(),
                old: json!("a@x.com"),
                new: json!("b@x.com")
            }]
        );
        assert_eq!(
            diffs[2],
            vec![Change {
                field: "email".into(),
                old: json!("b@x.com"),
                new: json!("c@x.com")
            }]
        );
    }

    #[test]
    fn provided_diffs_are_kept_and_partial_updates_leave_other_fields() {
        let mut state = ProfileState::default();
        state.apply(&snapshot(
            10,
            EventKind::Created,
            json!({"email": "a@x.com", "tags": []}),
        ));
        let mut update = snapshot(11, EventKind::Updated, json!({"tags": ["VIP"]}));
        update.changes = Some(vec![Change {
            field: "tags".into(),
            old: json!([]),
            new: json!(["VIP"]),
        }]);
        let changes = state.apply(&update);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            state.value("email"),
            &json!("a@x.com"),
            "absent key means unchanged"
        );
        assert_eq!(state.value("tags"), &json!(["VIP"]));
    }

    #[test]
    fn an_older_value_never_overwrites_a_newer_one() {
        let mut state = ProfileState::default();
        state.apply(&snapshot(
            12,
            EventKind::Updated,
            json!({"email": "new@x.com"}),
        ));
        state.apply(&snapshot(
            10,
            EventKind::Updated,
            json!({"email": "old@x.com", "city": "York"}),
        ));
        assert_eq!(state.value("email"), &json!("new@x.com"));
        assert_eq!(
            state.value("city"),
            &json!("York"),
            "fields the newer event did not set still fill in"
        );
        assert_eq!(state.first_event_at, Some(at(10)));
        assert_eq!(state.last_event_at, Some(at(12)));
    }

    #[test]
    fn deletion_is_recorded_and_history_kept() {
        let mut state = ProfileState::default();
        state.apply(&snapshot(
            10,
            EventKind::Created,
            json!({"email": "a@x.com"}),
        ));
        state.apply(&snapshot(
            11,
            EventKind::Deleted,
            json!({"deleted_at": "2024-01-20T11:00:00Z"}),
        ));
        assert_eq!(state.deleted_at, Some(at(11)));
        assert_eq!(state.value("email"), &json!("a@x.com"));
    }

    #[test]
    fn modified_date_noise_is_not_a_change() {
        let mut state = ProfileState::default();
        state.apply(&snapshot(
            10,
            EventKind::Created,
            json!({"email": "a@x.com", "updated_at": "t1"}),
        ));
        let changes = state.apply(&snapshot(
            11,
            EventKind::Updated,
            json!({"email": "a@x.com", "updated_at": "t2"}),
        ));
        assert!(changes.is_empty(), "only updated_at moved: {changes:?}");
        assert_eq!(state.value("updated_at"), &json!("t2"));
    }
}
