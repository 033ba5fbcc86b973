//! Reading the many ways providers write a point in time.
//!
//! A timeline is ordered by the provider's own time, and "latest value wins" depends on it, so a
//! time that is read wrongly reorders a customer's history. Providers disagree on the format:
//! Tiquo's newer API sends epoch milliseconds, Standard Webhooks sends epoch seconds (as a
//! string, in a header), ResDiary sends seven fractional digits with *or without* an offset, and
//! everyone else sends ISO-8601. This module accepts all of them and nothing ambiguous:
//!
//! * ISO-8601 / RFC 3339 with `Z` or an offset (`+00:00` or `+0000`), any number of fractional
//!   digits (digits past nanoseconds are ignored), `T` or a space between date and time;
//! * the same **without** an offset, read as UTC (ResDiary documents its times as UTC; the UI says
//!   so when it shows such a time — see [`has_explicit_offset`]);
//! * a bare date (`2024-03-15`), read as midnight UTC;
//! * epoch seconds or epoch milliseconds, as JSON numbers or numeric strings. Magnitudes below
//!   10¹¹ are seconds (that is every date up to the year 5138); larger ones are milliseconds
//!   (10¹¹ ms is March 1973, long before any webhook).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Epoch values at or above this magnitude are milliseconds; below, seconds.
const MILLIS_FROM: f64 = 1e11;

/// Reads a provider's time value (see the module docs for the accepted forms).
pub fn parse_provider_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => from_epoch_int(i),
            None => from_epoch_float(n.as_f64()?),
        },
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

/// Reads a time written as text: ISO-8601 in its common shapes, or epoch seconds/milliseconds.
pub fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if looks_numeric(s) {
        return match s.parse::<i64>() {
            Ok(i) => from_epoch_int(i),
            Err(_) => from_epoch_float(s.parse::<f64>().ok()?),
        };
    }
    parse_iso(s)
}

/// Epoch seconds or milliseconds (by magnitude) as an instant.
pub fn from_epoch_int(n: i64) -> Option<DateTime<Utc>> {
    if n.unsigned_abs() as f64 >= MILLIS_FROM {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

/// Whether an ISO-8601 text names its zone (`Z` or an offset). Offset-less times are read as UTC,
/// and the UI should say so.
pub fn has_explicit_offset(s: &str) -> bool {
    let s = s.trim();
    let Some(t) = s.find(['T', 't', ' ']) else {
        return false;
    };
    let time = &s[t + 1..];
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

/// The canonical way Clientele writes an instant in fields and exports: RFC 3339 in UTC, with
/// only as many fractional digits as needed.
pub fn to_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit())
}

fn from_epoch_float(f: f64) -> Option<DateTime<Utc>> {
    if !f.is_finite() {
        return None;
    }
    let millis = if f.abs() >= MILLIS_FROM {
        f
    } else {
        f * 1000.0
    };
    if millis.abs() > i64::MAX as f64 / 2.0 {
        return None;
    }
    DateTime::from_timestamp_millis(millis.round() as i64)
}

/// Formats with an explicit zone, tried in order after RFC 3339 itself.
const ZONED: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"];
/// Formats without a zone: read as UTC.
const NAIVE: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    if let Some(t) = ZONED
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
    {
        return Some(t.to_utc());
    }
    // A trailing `z` in lower case is still UTC.
    let naive_part = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    if let Some(t) = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(naive_part, f).ok())
    {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A length of time as people say it: "45 seconds", "5 minutes", "1 hour", "2 hours 5 minutes",
/// "3 days 4 hours" — at most two units, the smaller rounded down; the sign is ignored.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let unit = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            unit(big, big_unit)
        } else {
            format!("{} {}", unit(big, big_unit), unit(small, small_unit))
        }
    };
    match s {
        0..60 => unit(s, "second"),
        60..3_600 => unit(s / 60, "minute"),
        3_600..86_400 => pair(s / 3_600, "hour", s % 3_600 / 60, "minute"),
        _ => pair(s / 86_400, "day", s % 86_400 / 3_600, "hour"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn durations_read_as_people_say_them() {
        for (seconds, words) in [
            (0, "0 seconds"),
            (1, "1 second"),
            (45, "45 seconds"),
            (60, "1 minute"),
            (359, "5 minutes"),
            (3_600, "1 hour"),
            (-3_600, "1 hour"),
            (7_500, "2 hours 5 minutes"),
            (86_400, "1 day"),
            (273_600, "3 days 4 hours"),
        ] {
            assert_eq!(human_duration(seconds), words, "{seconds}");
        }
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid date")
    }

    fn t(v: Value) -> Option<DateTime<Utc>> {
        parse_provider_time(&v)
    }

    #[test]
    fn iso_with_zone() {
        assert_eq!(
            t(json!("2024-01-20T14:30:00Z")),
            Some(at(2024, 1, 20, 14, 30, 0))
        );
        assert_eq!(
            t(json!("2024-01-20T16:30:00+02:00")),
            Some(at(2024, 1, 20, 14, 30, 0))
        );
        assert_eq!(
            t(json!("2024-01-20T16:30:00+0200")),
            Some(at(2024, 1, 20, 14, 30, 0))
        );
        assert_eq!(
            t(json!("2024-01-20 14:30:00Z")),
            Some(at(2024, 1, 20, 14, 30, 0))
        );
        assert_eq!(
            t(json!("2024-01-20t14:30:00z")),
            Some(at(2024, 1, 20, 14, 30, 0))
        );
    }

    #[test]
    fn resdiary_seven_fractional_digits_with_and_without_offset() {
        let z = t(json!("2018-11-16T10:46:20.7741026Z")).expect("Z form");
        assert_eq!(z.timestamp_subsec_nanos(), 774_102_600);
        let plus = t(json!("2018-11-16T10:46:20.7115562+00:00")).expect("offset form");
        assert_eq!(plus.timestamp(), at(2018, 11, 16, 10, 46, 20).timestamp());
        let naive = t(json!("2018-11-12T09:31:00.0000000")).expect("naive form");
        assert_eq!(naive, at(2018, 11, 12, 9, 31, 0));
        assert_eq!(
            t(json!("2018-11-12T10:15:00")),
            Some(at(2018, 11, 12, 10, 15, 0))
        );
        assert!(t(json!("2018-11-12T10:15:00.1234567891234")).is_some());
    }

    #[test]
    fn epoch_seconds_and_millis_as_numbers_or_strings() {
        let s = at(2024, 1, 20, 14, 30, 0);
        assert_eq!(t(json!(s.timestamp())), Some(s));
        assert_eq!(t(json!(s.timestamp_millis())), Some(s));
        assert_eq!(t(json!(s.timestamp().to_string())), Some(s));
        assert_eq!(t(json!(s.timestamp_millis().to_string())), Some(s));
        assert_eq!(t(json!(" 1705761000 ")), Some(s));
        let frac = t(json!(1_705_761_000.5)).expect("fractional seconds");
        assert_eq!(frac.timestamp_subsec_millis(), 500);
    }

    #[test]
    fn bare_dates_and_minutes() {
        assert_eq!(t(json!("2024-03-15")), Some(at(2024, 3, 15, 0, 0, 0)));
        assert_eq!(
            t(json!("2024-03-15T10:00")),
            Some(at(2024, 3, 15, 10, 0, 0))
        );
    }

    #[test]
    fn rubbish_is_none_not_a_panic() {
        for v in [
            json!(null),
            json!(true),
            json!(""),
            json!("soon"),
            json!("-"),
            json!("."),
            json!("1.2.3"),
            json!(f64::MAX),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!("99999999999999999999999"),
            json!("2024-13-45T99:99:99Z"),
            json!([]),
            json!({}),
        ] {
            let _ = t(v);
        }
        assert_eq!(t(json!("soon")), None);
        assert_eq!(t(json!(null)), None);
    }

    #[test]
    fn offsets_are_detected() {
        assert!(has_explicit_offset("2018-11-16T10:46:20.7741026Z"));
        assert!(has_explicit_offset("2018-11-16T10:46:20.7115562+00:00"));
        assert!(has_explicit_offset("2018-11-16T10:46:20-05:00"));
        assert!(!has_explicit_offset("2018-11-12T10:15:00"));
        assert!(!has_explicit_offset("2018-11-12"));
    }

    #[test]
    fn canonical_form() {
        assert_eq!(
            to_rfc3339(at(2024, 1, 20, 14, 30, 0)),
            "2024-01-20T14:30:00Z"
        );
    }
}
