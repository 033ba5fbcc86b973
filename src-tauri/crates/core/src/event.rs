//! Normalized customer events: what an adapter makes of one delivery.
//!
//! An adapter reads a delivery into [`SourceEvent`]s without looking at anything stored. Each event
//! carries the values it asserts (`fields`) and, where the provider says what changed
//! (Tiquo's `previousAttributes`, ResDiary's `Changes`, Plain's `previousCustomer`, Zupy's tier
//! changes), the provider's own diff in `changes`. Where the provider sends only a snapshot
//! (Vagaro, most of Zupy), `changes` is `None` and the diff is computed by [`crate::profile`]
//! against the state as of the event's time — so a late, older snapshot gets the right diff.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What happened, in Clientele's words. The provider's own event type is kept beside it
/// (`SourceEvent::event_type`), so nothing is lost when a provider's event has no better kind
/// than `Other`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
    TierChanged,
    ConsentChanged,
    Points,
    Reward,
    Coupon,
    Appointment,
    Order,
    Payment,
    GroupMembership,
    Other,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
            EventKind::TierChanged => "tier_changed",
            EventKind::ConsentChanged => "consent_changed",
            EventKind::Points => "points",
            EventKind::Reward => "reward",
            EventKind::Coupon => "coupon",
            EventKind::Appointment => "appointment",
            EventKind::Order => "order",
            EventKind::Payment => "payment",
            EventKind::GroupMembership => "group_membership",
            EventKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

/// One field-level change. `field` is a canonical field name (see [`crate::fields`]) or a
/// provider-specific path such as `resdiary.CustomerFooChanged`; `old`/`new` are `null` when
/// absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// One normalized event about one customer at one provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEvent {
    /// The provider's id for the customer (`cust_…`, ResDiary's integer as a string, `ZP-…`).
    pub customer_ref: String,
    /// The provider's own time for the event — never the arrival time.
    pub occurred_at: DateTime<Utc>,
    pub kind: EventKind,
    /// The provider's event type verbatim (`customer.updated`, `tier.upgraded`,
    /// `customer/updated` for Vagaro's type/action pair, `CustomerContactDetailsChanged` …).
    pub event_type: String,
    /// Values this event asserts, by canonical field name or provider-specific path. A key that is
    /// absent means "not said", not "cleared"; a `null` value means "cleared".
    pub fields: BTreeMap<String, Value>,
    /// The provider's own diff, when it sends one. `None`: compute it from stored state.
    pub changes: Option<Vec<Change>>,
    /// Facts that belong on the timeline but not on the profile (order totals, appointment
    /// times, welcome rewards, a Tiquo `source`). Used for the sentence and kept for exports.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// Everything one delivery said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParsedDelivery {
    pub events: Vec<SourceEvent>,
}

/// A genuine delivery that could not be read. It is kept and marked "needs attention"; after an
/// adapter fix, re-processing reads it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is not valid JSON: {0}")]
    NotJson(String),
    #[error("the message has no {0}")]
    Missing(&'static str),
    #[error("{field} has an unexpected value: {detail}")]
    Invalid { field: &'static str, detail: String },
}

impl ParseError {
    /// What went wrong in words for the front desk, without the parser's detail (which is the
    /// error's `Display`, kept for "Show technical details").
    pub fn plain(&self) -> &'static str {
        match self {
            ParseError::NotJson(_) => DAMAGED,
            ParseError::Missing(what) => missing_words(what),
            ParseError::Invalid { .. } => UNFAMILIAR,
        }
    }
}

const DAMAGED: &str = "The message was damaged or incomplete";
const UNFAMILIAR: &str = "Part of the message is in a form Clientele doesn't know yet";

fn missing_words(what: &str) -> &'static str {
    if what.starts_with("customer id") || what.starts_with("member id") || what == "id" {
        "The message doesn't say which customer it is about"
    } else if what.contains("time") || what.contains("timestamp") {
        "The message doesn't say when it happened"
    } else if what.contains("type") {
        "The message doesn't say what happened"
    } else {
        "Part of the message is missing"
    }
}

/// [`ParseError::plain`] for an error as it was stored (its `Display` text), which is all a
/// stored delivery keeps: the plain words are read back from the text each variant writes.
pub fn plain_parse_error(stored: &str) -> &'static str {
    if stored.starts_with("the message is not valid JSON") {
        DAMAGED
    } else if let Some(what) = stored.strip_prefix("the message has no ") {
        missing_words(what)
    } else {
        UNFAMILIAR
    }
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    /// Every variant's stored text reads back as the same plain words, and none of them carries
    /// the parser's detail.
    #[test]
    fn stored_parse_errors_read_back_as_plain_words() {
        let json_error = serde_json::from_slice::<serde_json::Value>(b"{\"id\": ")
            .unwrap_err()
            .to_string();
        for error in [
            ParseError::NotJson(json_error),
            ParseError::Missing("customer id (payload.customerId)"),
            ParseError::Missing("event time (created)"),
            ParseError::Missing("event type (type)"),
            ParseError::Missing("change type (Changes[0].ChangeType)"),
            ParseError::Missing("signature"),
            ParseError::Invalid {
                field: "Changes",
                detail: "expected a list".into(),
            },
        ] {
            let stored = error.to_string();
            assert_eq!(plain_parse_error(&stored), error.plain(), "{stored}");
            assert!(!error.plain().contains("line"), "{}", error.plain());
        }
        assert_eq!(
            plain_parse_error(
                "the message is not valid JSON: EOF while parsing a value at line 1 column 82"
            ),
            "The message was damaged or incomplete"
        );
    }
}
