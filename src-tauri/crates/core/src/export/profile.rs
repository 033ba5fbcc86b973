//! The export profile: what one row is, which rows, which columns in which order, and what file.
//!
//! A profile is stored in the database and is portable as JSON (`clientele export-profile
//! import FILE` / `show NAME --json`). Reading one is strict on purpose — an unknown key, a
//! misspelt source or an impossible time zone is refused with a message that names the key
//! (`columns[2].transform.case: unknown variant ...`), because a typo that was silently ignored
//! would produce a file with the wrong columns and nobody would notice until a mailing went out.
//!
//! Optional keys are kept optional in the stored form (`None`, not their default), so a profile
//! shown and imported again is the same profile, and a later change of a default applies to
//! profiles that never chose otherwise.

use crate::event::EventKind;
use crate::export::source::Source;
use crate::identity::{CountryId, parse_country};
use crate::provider::Provider;
use crate::time::parse_time_str;
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// The longest profile name (it becomes part of file names).
pub const MAX_NAME_LEN: usize = 80;
/// The most columns a profile may have.
pub const MAX_COLUMNS: usize = 500;

/// A profile that could not be read, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// Where in the JSON the problem is (`columns[2].source`), empty for the whole document.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ProfileError {}

impl ProfileError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ProfileError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One export profile (see the README's "Export profiles" section for the JSON form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportProfile {
    pub name: String,
    /// What one row of the file is.
    pub rows: RowKind,
    /// The columns, in file order.
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Filters::is_empty")]
    pub filters: Filters,
    pub format: Format,
    /// File name template: `{name}`, `{date}` (YYYY-MM-DD) and `{time}` (HHMMSS) are replaced;
    /// the extension is added when missing. Default `{name}-{date}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// IANA time zone (`Europe/London`) for dates in the file and for the file name's date.
    /// Default: UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Country for phone numbers written without a country code (`GB`). Default: the customer's
    /// own country, else the business's default country setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country: Option<String>,
    /// Export only rows that are new or changed since this profile's last successful run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
}

/// What one row of the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum RowKind {
    /// A person: their current profile merged across providers.
    People,
    /// One timeline event.
    Events,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::People => "people",
            RowKind::Events => "events",
        }
    }
}

/// One column of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub header: String,
    /// A canonical field, a person fact, an event fact, `change.FIELD.old|new`, `details.KEY`
    /// or a provider path such as `zupy.cpf` (see [`Source`]).
    pub source: String,
    #[serde(default, skip_serializing_if = "Transform::is_identity")]
    pub transform: Transform,
    /// How the value is written: `auto` (default) decides from the source and the value.
    #[serde(default, rename = "type", skip_serializing_if = "CellType::is_auto")]
    pub cell_type: CellType,
}

/// How a column's values are typed in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellType {
    /// Numbers sent as numbers stay numbers (except phone numbers, postal codes and ids, which
    /// are always text); known date fields become dates; everything else is text.
    #[default]
    Auto,
    /// Always text.
    Text,
    /// Numbers, and text that reads as a number, become numbers.
    Number,
    /// Values that read as a date or time become dates.
    Date,
}

impl CellType {
    pub fn is_auto(&self) -> bool {
        *self == CellType::Auto
    }
}

/// What is done to a column's value, in this order: phone, date, trim, case — to each item of a
/// list, which is then joined — and finally `default` when the result is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Remove spaces at both ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trim: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneFormat>,
    /// Written when the value is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Separator between the items of a list (tags, emails, providers). Default `", "`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// How a yes/no answer is written. Default: what the file's audience expects — `Yes`/`No`
    /// for a file opened in a spreadsheet (CSV for Excel, Excel workbook), `true`/`false` for a
    /// CSV for other software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yes_no: Option<YesNoWords>,
}

impl Transform {
    pub fn is_identity(&self) -> bool {
        *self == Transform::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(export, rename = "TextCase")]
pub enum Case {
    Upper,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum PhoneFormat {
    /// `+447911123456`
    E164,
    /// As written in its own country: `07911 123456`.
    National,
}

/// How a yes/no answer is written. An unknown answer (the customer was never asked) stays empty
/// whatever the choice; `default` can fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum YesNoWords {
    /// `Yes` / `No` (text).
    YesNo,
    /// `true` / `false` (a real TRUE/FALSE cell in an Excel workbook).
    TrueFalse,
    /// `1` / `0` (numbers).
    OneZero,
}

/// A date/time format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateFormat {
    /// strftime pattern (`%d/%m/%Y %H:%M`). Default: ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// IANA time zone; default the profile's `time_zone`, else UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// Which rows. Every filter given must match; a list matches when any of its items does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Provider ids (`tiquo`). People: with a record at one of them. Events: from one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Connections as `provider/name` (`tiquo/main-shop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
    /// Events: that happened in the range. People: with at least one event in the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<TimeRange>,
    /// Event kinds (`tier_changed`). People: with at least one such event.
    #[serde(default, alias = "kinds", skip_serializing_if = "Vec::is_empty")]
    pub event_kinds: Vec<String>,
    /// The person's current loyalty tier is one of these (case ignored).
    #[serde(default, alias = "tier", skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<String>,
    /// The person currently has at least one of these tags (case ignored).
    #[serde(default, alias = "tag", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The person's current email marketing consent is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_marketing_opt_in: Option<bool>,
    /// The person's current SMS marketing consent is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_marketing_opt_in: Option<bool>,
    /// People rows: include people deleted at every provider (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_deleted: Option<bool>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// `from` inclusive, `to` exclusive; either may be left out. A date (`2024-01-01`) is midnight
/// UTC; a time may carry its own offset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The file format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Format {
    Csv(CsvFormat),
    Xlsx(XlsxFormat),
}

impl Format {
    /// How yes/no answers are written when a column doesn't say: `Yes`/`No` for a person reading
    /// a spreadsheet, `true`/`false` for software reading a CSV file.
    pub fn default_yes_no(&self) -> YesNoWords {
        match self {
            Format::Csv(c) if c.preset == Some(Preset::Other) => YesNoWords::TrueFalse,
            _ => YesNoWords::YesNo,
        }
    }

    pub fn extension(&self) -> &'static str {
        match self {
            Format::Csv(_) => "csv",
            Format::Xlsx(_) => "xlsx",
        }
    }
}

/// CSV options. Anything not given comes from the preset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvFormat {
    /// `excel` (default): comma, UTF-8 with BOM, CRLF. `other`: comma, no BOM, LF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<Delimiter>,
    /// Write the header row (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<LineEnding>,
    /// Prefix text starting with = + - @ tab or CR with `'` (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutralize_formulas: Option<bool>,
}

/// XLSX options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XlsxFormat {
    /// Write the header row (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// Mark text starting with = + - @ tab or CR as text for Excel (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutralize_formulas: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(export, rename = "CsvPreset")]
pub enum Preset {
    /// Comma, UTF-8 with BOM, CRLF: opens with accents intact in Excel.
    Excel,
    /// Comma, no BOM, LF.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineEnding {
    Crlf,
    Lf,
}

/// A CSV delimiter: `","`, `";"` or `"tab"` (a literal tab character is accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Comma,
    Semicolon,
    Tab,
}

impl Delimiter {
    pub fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
        }
    }
}

impl Serialize for Delimiter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Delimiter::Comma => ",",
            Delimiter::Semicolon => ";",
            Delimiter::Tab => "tab",
        })
    }
}

impl<'de> Deserialize<'de> for Delimiter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "," | "comma" => Ok(Delimiter::Comma),
            ";" | "semicolon" => Ok(Delimiter::Semicolon),
            "tab" | "\t" => Ok(Delimiter::Tab),
            other => Err(de::Error::custom(format!(
                "`{other}` is not a delimiter Clientele writes; use \",\", \";\" or \"tab\""
            ))),
        }
    }
}

/// CSV settings after the preset and the explicit options are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvSettings {
    pub delimiter: u8,
    pub header: bool,
    pub bom: bool,
    pub crlf: bool,
    pub neutralize: bool,
}

impl CsvFormat {
    pub fn settings(&self) -> CsvSettings {
        let excel = self.preset.unwrap_or(Preset::Excel) == Preset::Excel;
        CsvSettings {
            delimiter: self.delimiter.unwrap_or(Delimiter::Comma).byte(),
            header: self.header.unwrap_or(true),
            bom: self.bom.unwrap_or(excel),
            crlf: self.line_ending.map_or(excel, |l| l == LineEnding::Crlf),
            neutralize: self.neutralize_formulas.unwrap_or(true),
        }
    }
}

impl XlsxFormat {
    pub fn header(&self) -> bool {
        self.header.unwrap_or(true)
    }

    pub fn neutralize(&self) -> bool {
        self.neutralize_formulas.unwrap_or(true)
    }
}

impl ExportProfile {
    /// Reads and checks a profile from JSON.
    pub fn from_json(text: &str) -> Result<ExportProfile, ProfileError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let profile: ExportProfile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            ProfileError::new(key, plain_serde_message(e.inner()))
        })?;
        profile.validate()?;
        Ok(profile)
    }

    /// The profile as pretty JSON (the portable form).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks everything serde can't: names, sources, time zones, formats, filters.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(ProfileError::new("name", "give the profile a name"));
        }
        if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(ProfileError::new(
                "name",
                format!("use at most {MAX_NAME_LEN} characters, without line breaks or tabs"),
            ));
        }
        if name != self.name {
            return Err(ProfileError::new(
                "name",
                "remove the spaces at the start or end of the name",
            ));
        }
        if self.columns.is_empty() {
            return Err(ProfileError::new(
                "columns",
                "add at least one column (for example {\"header\": \"Email\", \"source\": \"email\"})",
            ));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(ProfileError::new(
                "columns",
                format!("a profile can have at most {MAX_COLUMNS} columns"),
            ));
        }
        for (i, column) in self.columns.iter().enumerate() {
            let key = |k: &str| format!("columns[{i}].{k}");
            if column.header.chars().any(|c| c == '\n' || c == '\r') {
                return Err(ProfileError::new(
                    key("header"),
                    "a column header can't contain a line break",
                ));
            }
            Source::parse(&column.source, self.rows)
                .map_err(|message| ProfileError::new(key("source"), message))?;
            let t = &column.transform;
            if let Some(date) = &t.date {
                if let Some(format) = &date.format {
                    check_strftime(format)
                        .map_err(|m| ProfileError::new(key("transform.date.format"), m))?;
                }
                if let Some(zone) = &date.time_zone {
                    parse_zone(zone)
                        .map_err(|m| ProfileError::new(key("transform.date.time_zone"), m))?;
                }
            }
        }
        if let Some(zone) = &self.time_zone {
            parse_zone(zone).map_err(|m| ProfileError::new("time_zone", m))?;
        }
        if let Some(code) = &self.default_country {
            parse_country(code).ok_or_else(|| {
                ProfileError::new(
                    "default_country",
                    format!("`{code}` is not a country code (for example GB, US, BR)"),
                )
            })?;
        }
        if let Some(template) = &self.file_name {
            check_file_name(template).map_err(|m| ProfileError::new("file_name", m))?;
        }
        self.filters.validate(self.rows)?;
        Ok(())
    }

    /// The time zone for dates and the file name's date.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.time_zone
            .as_deref()
            .and_then(|z| parse_zone(z).ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// The profile's own default country, when it sets one.
    pub fn country(&self) -> Option<CountryId> {
        self.default_country.as_deref().and_then(parse_country)
    }

    /// The file name for a run at `now`: the template with `{name}`, `{date}` and `{time}`
    /// replaced (in the profile's time zone), characters that file systems refuse replaced by
    /// `_`, and the format's extension added when missing.
    pub fn file_name_at(&self, now: DateTime<Utc>) -> String {
        let local = now.with_timezone(&self.zone());
        let template = self.file_name.as_deref().unwrap_or("{name}-{date}");
        let name = template
            .replace("{name}", &self.name)
            .replace("{date}", &local.format("%Y-%m-%d").to_string())
            .replace("{time}", &local.format("%H%M%S").to_string());
        let mut name: String = name
            .chars()
            .map(|c| {
                if c.is_control() || "/\\:*?\"<>|".contains(c) {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let ext = format!(".{}", self.format.extension());
        if !name.to_lowercase().ends_with(&ext) {
            name.push_str(&ext);
        }
        name
    }
}

impl Filters {
    fn validate(&self, rows: RowKind) -> Result<(), ProfileError> {
        for (i, p) in self.providers.iter().enumerate() {
            p.parse::<Provider>()
                .map_err(|e| ProfileError::new(format!("filters.providers[{i}]"), e.to_string()))?;
        }
        for (i, c) in self.connections.iter().enumerate() {
            let key = format!("filters.connections[{i}]");
            let (provider, name) = c.split_once('/').ok_or_else(|| {
                ProfileError::new(
                    &key,
                    format!("write a connection as provider/name, for example tiquo/main-shop (got `{c}`)"),
                )
            })?;
            provider
                .parse::<Provider>()
                .map_err(|e| ProfileError::new(&key, e.to_string()))?;
            if name.is_empty() {
                return Err(ProfileError::new(
                    key,
                    "the connection name after the / is missing",
                ));
            }
        }
        for (i, k) in self.event_kinds.iter().enumerate() {
            if EventKind::parse(k).is_none() {
                return Err(ProfileError::new(
                    format!("filters.event_kinds[{i}]"),
                    format!(
                        "`{k}` is not an event kind; use one of {}",
                        EVENT_KINDS.join(", ")
                    ),
                ));
            }
        }
        if let Some(range) = &self.event_time {
            let (from, to) = range.bounds()?;
            if let (Some(from), Some(to)) = (from, to)
                && from >= to
            {
                return Err(ProfileError::new(
                    "filters.event_time",
                    "`from` must be before `to`",
                ));
            }
        }
        if self.include_deleted.is_some() && rows == RowKind::Events {
            return Err(ProfileError::new(
                "filters.include_deleted",
                "this only applies to people rows; a timeline export always includes every event",
            ));
        }
        Ok(())
    }
}

/// Every event kind, for messages and pickers.
pub const EVENT_KINDS: &[&str] = &[
    "created",
    "updated",
    "deleted",
    "tier_changed",
    "consent_changed",
    "points",
    "reward",
    "coupon",
    "appointment",
    "order",
    "payment",
    "group_membership",
    "other",
];

/// A range's parsed bounds: `from` (inclusive) and `to` (exclusive).
pub type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl TimeRange {
    /// The parsed bounds.
    pub fn bounds(&self) -> Result<Bounds, ProfileError> {
        let parse = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    parse_time_str(s).ok_or_else(|| {
                        ProfileError::new(
                            format!("filters.event_time.{key}"),
                            format!("`{s}` is not a date or time (use 2024-01-31 or 2024-01-31T09:00:00Z)"),
                        )
                    })
                })
                .transpose()
        };
        Ok((parse("from", &self.from)?, parse("to", &self.to)?))
    }
}

/// Parses an IANA time zone name (`Europe/London`, `UTC`).
pub fn parse_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "`{name}` is not a time zone; use a name such as Europe/London, America/New_York or UTC"
        )
    })
}

/// Refuses strftime patterns chrono can't format (`%Q`), and empty ones.
fn check_strftime(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if format.is_empty() {
        return Err("the date format is empty; leave `format` out for ISO 8601".into());
    }
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "`{format}` is not a date format Clientele understands (use codes such as %Y-%m-%d %H:%M)"
        ));
    }
    Ok(())
}

fn check_file_name(template: &str) -> Result<(), String> {
    if template.trim().is_empty() {
        return Err("the file name is empty".into());
    }
    if template.contains(['/', '\\']) {
        return Err(
            "give a file name without a folder (choose the folder when running the export)".into(),
        );
    }
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| "a `{` has no matching `}`".to_string())?;
        let placeholder = &after[..end];
        if !["name", "date", "time"].contains(&placeholder) {
            return Err(format!(
                "`{{{placeholder}}}` is not a placeholder; use {{name}}, {{date}} or {{time}}"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// serde's messages are already about the key at fault; drop the "at line 1 column 2" tail when
/// the path says where, and say "JSON" errors plainly.
fn plain_serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("this is not valid JSON ({text})")
        }
        _ => text,
    }
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
