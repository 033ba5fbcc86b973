//! Times are stored as integer Unix milliseconds (UTC): compact, indexable, unambiguous.

use chrono::{DateTime, Utc};

pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
