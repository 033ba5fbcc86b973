//! One value as it goes into a file, typed, so that CSV and XLSX write the same thing:
//! text stays text (leading zeros and `+` included), numbers stay numbers, points in time become
//! real dates in XLSX and formatted text in CSV.
//!
//! Formula neutralization (OWASP's "CSV injection" advice): a spreadsheet treats text starting
//! with `=`, `+`, `-`, `@`, tab or carriage return as a formula (`=HYPERLINK("http://x","click")`
//! in a customer's name) or turns it into a number (`+15550001`). In CSV such text is written
//! with a leading `'`, which every spreadsheet shows as "this is text". Numbers are never touched:
//! `-5` points stays the number -5. XLSX marks the same cells with Excel's own "quote prefix"
//! style instead, so the stored text is unchanged and still can't become a formula.
//!
//! One exception, for CSV files meant for other software ([`Protection::ExceptPhoneNumbers`]):
//! in a phone column, a value that is exactly a phone number in international form
//! (`+447700900123`: a `+` and 6 to 15 digits, nothing else) is written as it is. A mailing tool
//! reads it as the phone number it is, and a `'` in front would go into the mailing tool with
//! it; a spreadsheet that opens the file anyway can only read it as a number, never as a formula
//! (it has no letters, operators or references to run). Anything else in that column that looks
//! like a formula — `+1+cmd|' /C calc'!A0`, `=HYPERLINK(…)`, a number with spaces — is still
//! neutralized. The CSV-for-Excel preset keeps the `'` on phone numbers too: without it Excel
//! turns `+447700900123` into the number 447700900123.

use chrono::NaiveDateTime;
use std::borrow::Cow;

/// A typed cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A number, with the text it is written as in CSV (as the provider sent it).
    Number {
        value: f64,
        text: String,
    },
    Bool(bool),
    /// A point in time, already in the column's time zone.
    DateTime {
        local: NaiveDateTime,
        /// As written in CSV and shown in a preview.
        text: String,
        /// Excel number format for XLSX; `None` when the pattern can't be expressed in Excel
        /// (then XLSX gets the text).
        excel_format: Option<String>,
    },
}

/// The characters that make a spreadsheet read text as a formula (or a number).
pub const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` would be read as a formula (or a signed number) by a spreadsheet.
pub fn is_formula_like(text: &str) -> bool {
    text.starts_with(FORMULA_TRIGGERS)
}

/// `'` + `text` when it starts with a formula trigger, else `text` unchanged.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if is_formula_like(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// How a CSV column guards against formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Written as it is (the profile turned protection off).
    Off,
    /// Text starting with a formula trigger gets a leading `'`.
    Formulas,
    /// As `Formulas`, except a value that is exactly an international phone number
    /// ([`is_plain_phone_number`]): a phone column in a CSV file for other software.
    ExceptPhoneNumbers,
}

/// Whether `text` is a phone number in international form and nothing else: a `+` followed by
/// 6 to 15 ASCII digits (E.164 allows at most 15). Deliberately strict — no spaces, dashes,
/// brackets or second `+` — so that nothing a spreadsheet could run passes as a phone number.
pub fn is_plain_phone_number(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// How a cell is written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Empty,
    Text,
    Number,
    Bool,
    Date,
}

impl CellKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CellKind::Empty => "empty",
            CellKind::Text => "text",
            CellKind::Number => "number",
            CellKind::Bool => "bool",
            CellKind::Date => "date",
        }
    }
}

impl Cell {
    pub fn kind(&self) -> CellKind {
        match self {
            Cell::Empty => CellKind::Empty,
            Cell::Text(_) => CellKind::Text,
            Cell::Number { .. } => CellKind::Number,
            Cell::Bool(_) => CellKind::Bool,
            Cell::DateTime { .. } => CellKind::Date,
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => t.is_empty(),
            _ => false,
        }
    }

    /// The cell exactly as it is written in a CSV file.
    pub fn csv_text(&self, neutralize_formulas: bool) -> Cow<'_, str> {
        let text: &str = match self {
            Cell::Empty => "",
            Cell::Number { text, .. } => return Cow::Borrowed(text),
            Cell::Bool(b) => {
                return Cow::Borrowed(if *b { "true" } else { "false" });
            }
            Cell::Text(t) => t,
            Cell::DateTime { text, .. } => text,
        };
        if neutralize_formulas {
            neutralize(text)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// The cell exactly as it is written in a CSV column guarded by `protection`.
    pub fn csv_text_guarded(&self, protection: Protection) -> Cow<'_, str> {
        match protection {
            Protection::Off => self.csv_text(false),
            Protection::Formulas => self.csv_text(true),
            Protection::ExceptPhoneNumbers => match self {
                Cell::Text(t) if is_plain_phone_number(t) => Cow::Borrowed(t),
                _ => self.csv_text(true),
            },
        }
    }

    /// The cell as a spreadsheet shows it after opening the XLSX (Excel hides the quote prefix).
    pub fn display_text(&self) -> Cow<'_, str> {
        match self {
            Cell::Empty => Cow::Borrowed(""),
            Cell::Text(t) => Cow::Borrowed(t),
            Cell::Number { text, .. } => Cow::Borrowed(text),
            Cell::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
            Cell::DateTime { text, .. } => Cow::Borrowed(text),
        }
    }
}

/// Translates a strftime pattern into an Excel number format, so a date cell in XLSX shows the
/// way the same column reads in CSV. `None` when the pattern uses something Excel can't show
/// (week numbers, zone offsets, …); the caller then writes text.
pub fn excel_format(strftime: &str) -> Option<String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Tok {
        Hour,
        Minute,
        Second,
        Other,
    }
    let mut out = String::new();
    let mut literal = String::new();
    let mut tokens: Vec<(Tok, usize)> = Vec::new(); // token and its position in `out`
    let flush = |out: &mut String, literal: &mut String| {
        if literal.is_empty() {
            return;
        }
        if literal.chars().all(|c| " -/:.,()".contains(c)) {
            out.push_str(literal);
        } else {
            out.push('"');
            out.push_str(&literal.replace('"', ""));
            out.push('"');
        }
        literal.clear();
    };
    let mut twelve_hour = false;
    let mut am_pm = false;
    let mut chars = strftime.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let mut spec = chars.next()?;
        let mut no_pad = false;
        if spec == '-' {
            no_pad = true;
            spec = chars.next()?;
        }
        if spec == '%' {
            literal.push('%');
            continue;
        }
        flush(&mut out, &mut literal);
        let (code, tok): (&str, Tok) = match (spec, no_pad) {
            ('Y', _) => ("yyyy", Tok::Other),
            ('y', _) => ("yy", Tok::Other),
            ('m', false) => ("mm", Tok::Other),
            ('m', true) => ("m", Tok::Other),
            ('d', false) => ("dd", Tok::Other),
            ('d', true) | ('e', _) => ("d", Tok::Other),
            ('b', _) | ('h', _) => ("mmm", Tok::Other),
            ('B', _) => ("mmmm", Tok::Other),
            ('a', _) => ("ddd", Tok::Other),
            ('A', _) => ("dddd", Tok::Other),
            ('H', false) => ("hh", Tok::Hour),
            ('H', true) | ('k', _) => ("h", Tok::Hour),
            ('I', false) => {
                twelve_hour = true;
                ("hh", Tok::Hour)
            }
            ('I', true) | ('l', _) => {
                twelve_hour = true;
                ("h", Tok::Hour)
            }
            ('M', _) => ("mm", Tok::Minute),
            ('S', _) => ("ss", Tok::Second),
            ('p', _) | ('P', _) => {
                am_pm = true;
                ("AM/PM", Tok::Other)
            }
            ('F', _) => ("yyyy-mm-dd", Tok::Other),
            ('T', _) => ("hh:mm:ss", Tok::Second),
            ('R', _) => ("hh:mm", Tok::Minute),
            _ => return None,
        };
        tokens.push((tok, out.len()));
        out.push_str(code);
    }
    flush(&mut out, &mut literal);
    // Excel reads `mm` as minutes only right after hours or right before seconds; anywhere else
    // it is the month, so a lone %M can't be expressed.
    for (i, (tok, _)) in tokens.iter().enumerate() {
        if *tok == Tok::Minute {
            let after_hour = i > 0 && tokens[i - 1].0 == Tok::Hour;
            let before_second = tokens.get(i + 1).is_some_and(|t| t.0 == Tok::Second);
            if !after_hour && !before_second {
                return None;
            }
        }
    }
    // A 12-hour clock without AM/PM reads as 24-hour in Excel, and vice versa.
    if twelve_hour != am_pm {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_neutralized_in_csv_text() {
        for risky in [
            "=HYPERLINK(\"http://x\",\"click\")",
            "+15550001",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let cell = Cell::Text(risky.to_string());
            assert_eq!(cell.csv_text(true), format!("'{risky}"), "{risky:?}");
            assert_eq!(
                cell.csv_text(false),
                risky,
                "explicit opt-out writes it as is"
            );
            assert_eq!(cell.display_text(), risky);
        }
        for safe in ["Ana", "a=b", " =1", "0044 7911", "", "'quoted"] {
            assert_eq!(Cell::Text(safe.into()).csv_text(true), safe, "{safe:?}");
        }
    }

    #[test]
    fn only_plain_international_phone_numbers_pass_unprefixed_in_a_phone_column() {
        for phone in ["+447700900123", "+15550001", "+5511965958122", "+123456"] {
            let cell = Cell::Text(phone.into());
            assert_eq!(
                cell.csv_text_guarded(Protection::ExceptPhoneNumbers),
                phone,
                "{phone:?} is a phone number for a mailing tool"
            );
            assert_eq!(
                cell.csv_text_guarded(Protection::Formulas),
                format!("'{phone}"),
                "for Excel it keeps its quote (else Excel makes it a number)"
            );
            assert_eq!(cell.csv_text_guarded(Protection::Off), phone);
        }
        // Crafted "phone numbers" and everything formula-like stay neutralized in a phone column.
        for risky in [
            "+1+cmd|' /C calc'!A0",
            "+44+cmd|' /C calc'!A0",
            "=HYPERLINK(\"http://x\",\"click\")",
            "+447700900123)",
            "+44 7700 900123",
            "+44-7700-900123",
            "+(44)7700900123",
            "+12345",
            "+1234567890123456",
            "++447700900123",
            "+447700900123\n=1+1",
            "+447700900123\t",
            "+٤٤٧٧٠٠٩٠٠١٢٣",
            "+",
            "-447700900123",
            "@SUM(A1)",
            "\t+447700900123",
            "\r+447700900123",
        ] {
            assert!(!is_plain_phone_number(risky), "{risky:?}");
            let cell = Cell::Text(risky.into());
            assert_eq!(
                cell.csv_text_guarded(Protection::ExceptPhoneNumbers),
                format!("'{risky}"),
                "{risky:?} is still neutralized in a phone column"
            );
        }
        // Dates written as text follow the ordinary rule.
        let d = Cell::DateTime {
            local: NaiveDateTime::default(),
            text: "+1970".into(),
            excel_format: None,
        };
        assert_eq!(d.csv_text_guarded(Protection::ExceptPhoneNumbers), "'+1970");
    }

    #[test]
    fn numbers_stay_numbers_even_when_negative() {
        let n = Cell::Number {
            value: -5.0,
            text: "-5".into(),
        };
        assert_eq!(n.csv_text(true), "-5");
        assert_eq!(n.kind(), CellKind::Number);
        assert_eq!(Cell::Bool(true).csv_text(true), "true");
    }

    #[test]
    fn dates_written_as_text_are_neutralized_too() {
        let d = Cell::DateTime {
            local: NaiveDateTime::default(),
            text: "-1970".into(),
            excel_format: None,
        };
        assert_eq!(d.csv_text(true), "'-1970");
    }

    #[test]
    fn strftime_patterns_translate_to_excel_formats() {
        assert_eq!(excel_format("%Y-%m-%d").as_deref(), Some("yyyy-mm-dd"));
        assert_eq!(
            excel_format("%d/%m/%Y %H:%M").as_deref(),
            Some("dd/mm/yyyy hh:mm")
        );
        assert_eq!(
            excel_format("%-d %B %Y at %I:%M %p").as_deref(),
            Some("d mmmm yyyy\" at \"hh:mm AM/PM")
        );
        assert_eq!(
            excel_format("%F %T").as_deref(),
            Some("yyyy-mm-dd hh:mm:ss")
        );
        assert_eq!(
            excel_format("%M").as_deref(),
            None,
            "a lone minute is a month in Excel"
        );
        assert_eq!(
            excel_format("%H:%M %z").as_deref(),
            None,
            "no offsets in Excel"
        );
        assert_eq!(
            excel_format("%I:%M").as_deref(),
            None,
            "12-hour clock needs %p"
        );
        assert_eq!(excel_format("%j").as_deref(), None);
    }
}
