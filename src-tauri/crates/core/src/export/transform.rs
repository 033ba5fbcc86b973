//! From a source's raw value to a typed [`Cell`]: typing, then the column's transform.
//!
//! Order, for each item of a list (a list is then joined) or for the single value:
//! 1. `phone` — parsed with libphonenumber (the customer's country, else the profile's, else the
//!    business default, for numbers written without one) and written as E.164 or national;
//!    a value that is not a valid number is kept as written;
//! 2. dates — a value that reads as a point in time becomes a date in the column's time zone
//!    (`transform.date`, else the profile's `time_zone`, else UTC); a bare date (`2024-03-15`)
//!    stays that date in every zone;
//! 3. `trim`, then `case` — on text; a yes/no answer is written in the column's `yes_no` words
//!    (default: the file's, [`crate::export::Format::default_yes_no`]);
//! 4. `join` — list items that are not empty, joined (default `", "`);
//! 5. `default` — when the result is empty.

use crate::export::cell::{Cell, excel_format};
use crate::export::profile::{Case, CellType, PhoneFormat, Transform, YesNoWords};
use crate::export::source::{ColumnKind, Source};
use crate::identity::{CountryId, parse_phone};
use crate::time::{parse_provider_time, to_rfc3339};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;
use std::fmt::Write as _;

/// Excel number formats when the profile gives no date format.
const EXCEL_DATETIME: &str = "yyyy-mm-dd hh:mm:ss";
const EXCEL_DATE: &str = "yyyy-mm-dd";

/// Default separator for lists.
pub const DEFAULT_JOIN: &str = ", ";

/// A raw value from a source, before typing.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'a> {
    Value(std::borrow::Cow<'a, Value>),
    /// A point in time Clientele itself recorded (first seen, event time).
    Time(DateTime<Utc>),
}

/// One column, ready to turn raw values into cells.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub source: Source,
    transform: Transform,
    cell_type: CellType,
    zone: chrono_tz::Tz,
    date_format: Option<String>,
    excel_format: Option<String>,
    wants_date: bool,
    kind: ColumnKind,
    yes_no: YesNoWords,
}

impl ColumnPlan {
    /// `yes_no` is how the file writes yes/no answers when the column doesn't say.
    pub fn new(
        source: Source,
        transform: Transform,
        cell_type: CellType,
        profile_zone: chrono_tz::Tz,
        yes_no: YesNoWords,
    ) -> ColumnPlan {
        let date = transform.date.clone().unwrap_or_default();
        let zone = date
            .time_zone
            .as_deref()
            .and_then(|z| crate::export::profile::parse_zone(z).ok())
            .unwrap_or(profile_zone);
        let date_format = date.format.filter(|f| strftime_is_valid(f));
        let excel = date_format.as_deref().and_then(excel_format);
        let wants_date = transform.date.is_some()
            || cell_type == CellType::Date
            || (cell_type == CellType::Auto && source.is_date());
        let yes_no = transform.yes_no.unwrap_or(yes_no);
        ColumnPlan {
            kind: source.kind(),
            source,
            transform,
            cell_type,
            zone,
            date_format,
            excel_format: excel,
            wants_date,
            yes_no,
        }
    }

    /// What kind of value the column holds.
    pub fn kind(&self) -> ColumnKind {
        self.kind
    }

    /// Whether the column formats phone numbers (its cells need the person's country).
    pub fn formats_phones(&self) -> bool {
        self.transform.phone.is_some()
    }

    /// The cell for `raw`; `country` is for phone numbers written without a country code.
    pub fn cell(&self, raw: &Raw<'_>, country: Option<CountryId>) -> Cell {
        let cell = match raw {
            Raw::Time(t) => self.time_cell(*t),
            Raw::Value(v) => match v.as_ref() {
                Value::Array(items) => {
                    let join = self.transform.join.as_deref().unwrap_or(DEFAULT_JOIN);
                    let mut out = String::new();
                    for item in items {
                        let cell = self.scalar(item, country);
                        let text = cell.csv_text(false);
                        if text.is_empty() {
                            continue;
                        }
                        if !out.is_empty() {
                            out.push_str(join);
                        }
                        out.push_str(&text);
                    }
                    Cell::Text(out)
                }
                other => self.scalar(other, country),
            },
        };
        match &self.transform.default {
            Some(default) if cell.is_empty() => Cell::Text(default.clone()),
            _ => cell,
        }
    }

    fn scalar(&self, v: &Value, country: Option<CountryId>) -> Cell {
        // A yes/no column whose provider wrote the answer as text or a number ("yes", 1).
        if self.kind == ColumnKind::YesNo
            && !matches!(v, Value::Bool(_))
            && let Some(b) = yes_no_of(v)
        {
            return self.yes_no_cell(b);
        }
        match v {
            Value::Null => Cell::Empty,
            Value::Bool(b) => self.yes_no_cell(*b),
            Value::Number(n) => {
                if self.wants_date
                    && let Some(t) = parse_provider_time(v)
                {
                    return self.time_cell(t);
                }
                let text_only = self.cell_type == CellType::Text
                    || (self.cell_type == CellType::Auto && self.source.is_text_only());
                match n.as_f64() {
                    Some(value) if !text_only && value.is_finite() => Cell::Number {
                        value,
                        text: n.to_string(),
                    },
                    _ => self.text_with_phone(n.to_string(), country),
                }
            }
            Value::String(s) => {
                if self.wants_date
                    && self.transform.phone.is_none()
                    && let Some(cell) = self.date_cell(s)
                {
                    return cell;
                }
                if self.cell_type == CellType::Number {
                    let t = s.trim();
                    if let Ok(value) = t.parse::<f64>()
                        && value.is_finite()
                        && !t.is_empty()
                    {
                        return Cell::Number {
                            value,
                            text: t.to_string(),
                        };
                    }
                }
                self.text_with_phone(s.clone(), country)
            }
            Value::Array(_) | Value::Object(_) => self.text(v.to_string()),
        }
    }

    /// A yes/no answer in the column's words.
    fn yes_no_cell(&self, b: bool) -> Cell {
        match (self.yes_no, self.cell_type) {
            (YesNoWords::YesNo, _) => self.text(if b { "Yes" } else { "No" }.to_string()),
            (YesNoWords::TrueFalse, CellType::Text) => self.text(b.to_string()),
            (YesNoWords::TrueFalse, _) => Cell::Bool(b),
            (YesNoWords::OneZero, CellType::Text) => self.text(u8::from(b).to_string()),
            (YesNoWords::OneZero, _) => Cell::Number {
                value: f64::from(u8::from(b)),
                text: u8::from(b).to_string(),
            },
        }
    }

    fn text_with_phone(&self, s: String, country: Option<CountryId>) -> Cell {
        let s = match self.transform.phone {
            Some(format) => format_phone(&s, format, country).unwrap_or(s),
            None => s,
        };
        self.text(s)
    }

    /// Trim and case.
    fn text(&self, mut s: String) -> Cell {
        if self.transform.trim {
            let trimmed = s.trim();
            if trimmed.len() != s.len() {
                s = trimmed.to_string();
            }
        }
        match self.transform.case {
            Some(Case::Upper) => s = s.to_uppercase(),
            Some(Case::Lower) => s = s.to_lowercase(),
            None => {}
        }
        Cell::Text(s)
    }

    /// A text value that reads as a date or time, as a date cell.
    fn date_cell(&self, s: &str) -> Option<Cell> {
        let t = s.trim();
        if t.len() == 10
            && let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        {
            // A calendar date (a birthday, a sign-up day) is the same day in every zone.
            let local = date.and_hms_opt(0, 0, 0)?;
            let text = match &self.date_format {
                Some(f) => format_naive(&local, f),
                None => t.to_string(),
            };
            return Some(self.finish_date(local, text, EXCEL_DATE));
        }
        let at = crate::time::parse_time_str(t)?;
        Some(self.time_cell(at))
    }

    fn time_cell(&self, at: DateTime<Utc>) -> Cell {
        let zoned = at.with_timezone(&self.zone);
        let local = zoned.naive_local();
        let text = match &self.date_format {
            Some(f) => format_naive(&local, f),
            None if self.zone == chrono_tz::UTC => to_rfc3339(at),
            None => zoned.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        };
        self.finish_date(local, text, EXCEL_DATETIME)
    }

    fn finish_date(&self, local: NaiveDateTime, text: String, default_excel: &str) -> Cell {
        if self.cell_type == CellType::Text {
            return self.text(text);
        }
        // Excel's calendar starts in 1900.
        let excel_format = if (1900..=9999).contains(&chrono::Datelike::year(&local)) {
            match &self.date_format {
                Some(_) => self.excel_format.clone(),
                None => Some(default_excel.to_string()),
            }
        } else {
            None
        };
        Cell::DateTime {
            local,
            text,
            excel_format,
        }
    }
}

/// A yes/no answer sent as text or a number: `"yes"`, `"true"`, `1`, `"no"`, `0`, … (`None` for
/// anything else, which is then written as it came).
pub fn yes_no_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" | "opted_in" | "subscribed" => Some(true),
            "false" | "no" | "n" | "0" | "off" | "opted_out" | "unsubscribed" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn strftime_is_valid(f: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    !f.is_empty() && !StrftimeItems::new(f).any(|i| matches!(i, Item::Error))
}

fn format_naive(t: &NaiveDateTime, format: &str) -> String {
    let mut out = String::new();
    if write!(out, "{}", t.format(format)).is_err() {
        // A pattern that needs a zone (%z) on a zone-less time: fall back to ISO 8601.
        out.clear();
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
    }
    out
}

/// `raw` as E.164 or national when it is a valid phone number.
pub fn format_phone(raw: &str, format: PhoneFormat, country: Option<CountryId>) -> Option<String> {
    let phone = parse_phone(raw, country)?;
    Some(match format {
        PhoneFormat::E164 => phone.e164,
        PhoneFormat::National => phone.national,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::profile::{DateFormat, RowKind};
    use crate::identity::parse_country;
    use chrono::TimeZone;
    use serde_json::json;
    use std::borrow::Cow;

    fn plan(source: &str, transform: Value) -> ColumnPlan {
        plan_typed(source, transform, CellType::Auto)
    }

    fn plan_typed(source: &str, transform: Value, cell_type: CellType) -> ColumnPlan {
        ColumnPlan::new(
            Source::parse(source, RowKind::Events).unwrap(),
            serde_json::from_value(transform).unwrap(),
            cell_type,
            chrono_tz::UTC,
            YesNoWords::TrueFalse,
        )
    }

    fn cell(p: &ColumnPlan, v: Value) -> Cell {
        p.cell(&Raw::Value(Cow::Owned(v)), parse_country("GB"))
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    #[test]
    fn trim_and_case() {
        let p = plan("full_name", json!({"trim": true, "case": "upper"}));
        assert_eq!(cell(&p, json!("  Ana Süß  ")), text("ANA SÜSS"));
        let p = plan("email", json!({"case": "lower"}));
        assert_eq!(
            cell(&p, json!(" A@X.COM")),
            text(" a@x.com"),
            "no trim unless asked"
        );
    }

    #[test]
    fn phones_in_e164_or_national_and_invalid_ones_kept() {
        let p = plan("phone", json!({"phone": "e164"}));
        assert_eq!(cell(&p, json!("07911 123456")), text("+447911123456"));
        assert_eq!(cell(&p, json!("+1 (914) 555-1212")), text("+19145551212"));
        assert_eq!(
            cell(&p, json!("3")),
            text("3"),
            "not a number: kept as written"
        );
        let p = plan("phone", json!({"phone": "national"}));
        assert_eq!(cell(&p, json!("+447911123456")), text("07911 123456"));
        // A phone sent as a JSON number is still text.
        let p = plan("phone", json!({}));
        assert_eq!(cell(&p, json!(447911123456_i64)), text("447911123456"));
    }

    #[test]
    fn dates_in_a_zone_with_a_format_and_excel_equivalent() {
        let p = plan(
            "created_at",
            json!({"date": {"format": "%d/%m/%Y %H:%M", "time_zone": "Europe/London"}}),
        );
        let Cell::DateTime {
            local,
            text: written,
            excel_format,
        } = cell(&p, json!("2024-07-01T08:30:00Z"))
        else {
            panic!("a date cell")
        };
        assert_eq!(written, "01/07/2024 09:30", "British summer time");
        assert_eq!(local.to_string(), "2024-07-01 09:30:00");
        assert_eq!(excel_format.as_deref(), Some("dd/mm/yyyy hh:mm"));

        // Default: ISO 8601 in UTC.
        let p = plan("occurred_at", json!({}));
        let at = Utc.with_ymd_and_hms(2024, 1, 20, 14, 30, 0).unwrap();
        assert_eq!(
            p.cell(&Raw::Time(at), None).csv_text(true),
            "2024-01-20T14:30:00Z"
        );
        // A calendar date stays that date in every zone.
        let p = plan(
            "created_at",
            json!({"date": {"time_zone": "America/New_York"}}),
        );
        assert_eq!(cell(&p, json!("2024-03-15")).csv_text(true), "2024-03-15");
        // Not a date: kept as text.
        assert_eq!(cell(&p, json!("soon")), text("soon"));
        // Epoch milliseconds in a date field.
        assert_eq!(
            plan("created_at", json!({}))
                .cell(&Raw::Value(Cow::Owned(json!(1705761000000_i64))), None)
                .csv_text(true),
            "2024-01-20T14:30:00Z"
        );
        // Typed as text: the formatted text, as text.
        let p = plan_typed("occurred_at", json!({}), CellType::Text);
        assert_eq!(p.cell(&Raw::Time(at), None), text("2024-01-20T14:30:00Z"));
        let _ = DateFormat::default();
    }

    #[test]
    fn default_when_empty_and_join_lists() {
        let p = plan("company", json!({"default": "n/a"}));
        assert_eq!(cell(&p, json!(null)), text("n/a"));
        assert_eq!(cell(&p, json!("")), text("n/a"));
        assert_eq!(cell(&p, json!("Acme")), text("Acme"));
        let p = plan("tags", json!({"join": " | ", "case": "upper"}));
        assert_eq!(cell(&p, json!(["vip", "", "new"])), text("VIP | NEW"));
        let p = plan("tags", json!({"default": "none"}));
        assert_eq!(cell(&p, json!([])), text("none"));
        assert_eq!(cell(&p, json!(["a", "b"])), text("a, b"));
        let p = plan("phones", json!({"phone": "national", "join": "; "}));
        assert_eq!(
            cell(&p, json!(["+447911123456", "+19145551212"])),
            text("07911 123456; (914) 555-1212")
        );
    }

    #[test]
    fn numbers_stay_numbers_except_ids_postal_codes_and_phones() {
        let p = plan("loyalty_points", json!({}));
        assert_eq!(
            cell(&p, json!(-5)),
            Cell::Number {
                value: -5.0,
                text: "-5".into()
            }
        );
        assert_eq!(
            cell(&p, json!("150")),
            text("150"),
            "text sent as text stays text"
        );
        let p = plan_typed("loyalty_points", json!({}), CellType::Number);
        assert_eq!(
            cell(&p, json!(" 150 ")),
            Cell::Number {
                value: 150.0,
                text: "150".into()
            }
        );
        assert_eq!(cell(&p, json!("lots")), text("lots"));
        let p = plan("postal_code", json!({}));
        assert_eq!(cell(&p, json!("01234")), text("01234"));
        assert_eq!(cell(&p, json!(1234)), text("1234"));
        let p = plan("resdiary.RelatedProviderId", json!({}));
        assert_eq!(
            cell(&p, json!(12345678901234567_i64)),
            text("12345678901234567")
        );
        let p = plan("email_marketing_opt_in", json!({}));
        assert_eq!(cell(&p, json!(true)), Cell::Bool(true));
    }

    #[test]
    fn yes_no_answers_in_the_words_chosen() {
        let words = |w: &str| plan("email_marketing_opt_in", json!({ "yes_no": w }));
        let p = words("yes_no");
        assert_eq!(cell(&p, json!(true)), text("Yes"));
        assert_eq!(cell(&p, json!(false)), text("No"));
        assert_eq!(
            cell(&p, json!(null)),
            Cell::Empty,
            "never asked stays empty"
        );
        assert_eq!(
            cell(&p, json!("yes")),
            text("Yes"),
            "a provider's text answer"
        );
        assert_eq!(cell(&p, json!(0)), text("No"), "a provider's number answer");
        assert_eq!(cell(&p, json!("maybe")), text("maybe"), "kept as it came");
        let p = words("one_zero");
        assert_eq!(
            cell(&p, json!(true)),
            Cell::Number {
                value: 1.0,
                text: "1".into()
            }
        );
        assert_eq!(cell(&p, json!("false")).csv_text(true), "0");
        let p = words("true_false");
        assert_eq!(cell(&p, json!(true)), Cell::Bool(true));
        assert_eq!(cell(&p, json!("Y")).csv_text(true), "true");
        // The file's default when the column doesn't say; "When empty, write" fills the unknown.
        let p = ColumnPlan::new(
            Source::parse("sms_marketing_opt_in", RowKind::People).unwrap(),
            serde_json::from_value(json!({"default": "No"})).unwrap(),
            CellType::Auto,
            chrono_tz::UTC,
            YesNoWords::YesNo,
        );
        assert_eq!(cell(&p, json!(true)), text("Yes"));
        assert_eq!(cell(&p, json!(null)), text("No"));
        // A yes/no column typed as text writes the same words as text.
        let p = plan_typed(
            "email_marketing_opt_in",
            json!({"yes_no": "one_zero"}),
            CellType::Text,
        );
        assert_eq!(cell(&p, json!(true)), text("1"));
        // Text columns don't guess: "yes" in a name stays "yes".
        assert_eq!(
            cell(&plan("full_name", json!({})), json!("yes")),
            text("yes")
        );
    }
}
