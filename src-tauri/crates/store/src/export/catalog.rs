//! What a column can show, for a picker: every source a profile may name, in words, with a few
//! sample values as the customers' data holds them (with the column's default formatting). The
//! samples are not neutralized: they help someone recognise a field ("+44 7700…"), and a quote in
//! front of every phone number there would only puzzle them; the preview shows what is written.

use super::{ExportError, preview_export};
use crate::Store;
use chrono::{DateTime, Utc};
use clientele_core::export::source::{EVENT_FACTS, PERSON_FACTS};
use clientele_core::export::{
    Column, ColumnKind, CsvFormat, ExportProfile, Format, RowKind, Source,
};
use clientele_core::fields::{CANONICAL, is_sensitive, label};
use serde::Serialize;
use std::collections::BTreeSet;

/// How many recent records are read to find provider-specific fields.
const RECORDS_SCANNED: i64 = 500;

/// One source a column can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceOption {
    /// What goes in the profile's `source`.
    pub source: String,
    /// In words, for staff.
    pub label: String,
    /// `customer` (canonical fields), `person`, `event`, `change` or `provider`.
    pub group: &'static str,
    /// A national id or similar: exported only because a column names it; no samples shown.
    pub sensitive: bool,
    /// What kind of value it is (which ways of writing it make sense).
    pub kind: ColumnKind,
    /// A few distinct values as they would be written (CSV text), from the first rows.
    pub samples: Vec<String>,
}

/// Every source a profile with rows of `rows` can use, with up to `samples` example values each.
pub fn source_options(
    store: &Store,
    rows: RowKind,
    samples: usize,
    now: DateTime<Utc>,
) -> Result<Vec<SourceOption>, ExportError> {
    let mut options: Vec<SourceOption> = Vec::new();
    let mut push = |source: String, label: String, group: &'static str| {
        options.push(SourceOption {
            sensitive: is_sensitive(&source),
            kind: Source::parse(&source, rows).map_or(ColumnKind::Other, |s| s.kind()),
            source,
            label,
            group,
            samples: Vec::new(),
        });
    };
    for field in CANONICAL {
        push(field.to_string(), label(field), "customer");
    }
    for (name, _, words) in PERSON_FACTS {
        push(name.to_string(), words.to_string(), "person");
    }
    if rows == RowKind::Events {
        for (name, _, words) in EVENT_FACTS {
            push(name.to_string(), words.to_string(), "event");
        }
        for field in CANONICAL {
            push(
                format!("change.{field}.old"),
                format!("{} before", label(field)),
                "change",
            );
            push(
                format!("change.{field}.new"),
                format!("{} after", label(field)),
                "change",
            );
        }
    }
    for path in provider_paths(store)? {
        let provider = path.split('.').next().unwrap_or_default();
        let provider = provider
            .parse::<clientele_core::Provider>()
            .map_or(provider, |p| p.display_name());
        push(
            path.clone(),
            format!("{} ({provider})", label(&path)),
            "provider",
        );
    }
    if samples > 0 {
        fill_samples(store, rows, samples, now, &mut options)?;
    }
    Ok(options)
}

/// Provider-specific fields seen on recent records.
fn provider_paths(store: &Store) -> Result<BTreeSet<String>, ExportError> {
    let reader = store.reader()?;
    let mut stmt = reader
        .conn
        .prepare("SELECT state FROM source_profiles ORDER BY id DESC LIMIT ?1")?;
    let states = stmt.query_map([RECORDS_SCANNED], |r| r.get::<_, Vec<u8>>(0))?;
    let mut paths = BTreeSet::new();
    for state in states {
        let state = crate::pack::unpack(crate::pack::Dict::States, &state?)?;
        let state: serde_json::Value =
            serde_json::from_slice(&state).map_err(crate::StoreError::from)?;
        if let Some(fields) = state.get("fields").and_then(|f| f.as_object()) {
            paths.extend(
                fields
                    .keys()
                    .filter(|k| {
                        k.split_once('.')
                            .is_some_and(|(p, _)| p.parse::<clientele_core::Provider>().is_ok())
                    })
                    .cloned(),
            );
        }
    }
    Ok(paths)
}

/// Runs a preview with one column per non-sensitive source and keeps each column's distinct
/// non-empty values.
fn fill_samples(
    store: &Store,
    rows: RowKind,
    samples: usize,
    now: DateTime<Utc>,
    options: &mut [SourceOption],
) -> Result<(), ExportError> {
    let shown: Vec<usize> = (0..options.len())
        .filter(|&i| !options[i].sensitive)
        .collect();
    let profile = ExportProfile {
        name: "samples".into(),
        rows,
        columns: shown
            .iter()
            .map(|&i| Column {
                header: options[i].source.clone(),
                source: options[i].source.clone(),
                transform: Default::default(),
                cell_type: Default::default(),
            })
            .collect(),
        filters: Default::default(),
        format: Format::Csv(CsvFormat {
            neutralize_formulas: Some(false),
            ..Default::default()
        }),
        file_name: None,
        time_zone: None,
        default_country: None,
        incremental: false,
    };
    // Enough rows to find a few values for sparse fields, without reading everything.
    let preview = preview_export(store, &profile, (samples * 20).min(200), now)?;
    for (col, &i) in shown.iter().enumerate() {
        let mut seen = Vec::new();
        for row in &preview.rows {
            let text = &row[col].text;
            if !text.is_empty() && !seen.contains(text) {
                seen.push(text.clone());
                if seen.len() == samples {
                    break;
                }
            }
        }
        options[i].samples = seen;
    }
    Ok(())
}

/// The loyalty tiers and tags customers have now, for the filters' pickers: each written as most
/// customers have it, case ignored (as the filters compare), sorted, at most `limit` of each.
pub fn filter_values(
    store: &Store,
    limit: usize,
) -> Result<(Vec<String>, Vec<String>), ExportError> {
    use std::collections::BTreeMap;
    let reader = store.reader()?;
    let mut stmt = reader
        .conn
        .prepare("SELECT profile FROM people WHERE deleted = 0")?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    // lower-cased → (spelling → how many)
    type Seen = BTreeMap<String, BTreeMap<String, usize>>;
    let mut tiers: Seen = BTreeMap::new();
    let mut tags: Seen = BTreeMap::new();
    let note = |seen: &mut Seen, text: &str| {
        let text = text.trim();
        if !text.is_empty() {
            *seen
                .entry(text.to_lowercase())
                .or_default()
                .entry(text.to_string())
                .or_default() += 1;
        }
    };
    #[derive(serde::Deserialize)]
    struct Wanted {
        #[serde(default)]
        value: serde_json::Value,
    }
    #[derive(serde::Deserialize)]
    struct Profile {
        loyalty_tier: Option<Wanted>,
        tags: Option<Wanted>,
    }
    for row in rows {
        let profile = crate::stored::profile_json(&row?)?;
        let profile: Profile = serde_json::from_slice(&profile).map_err(crate::StoreError::from)?;
        match profile.loyalty_tier.map(|w| w.value) {
            Some(serde_json::Value::String(t)) => note(&mut tiers, &t),
            Some(serde_json::Value::Number(n)) if n.is_i64() => note(&mut tiers, &n.to_string()),
            _ => {}
        }
        match profile.tags.map(|w| w.value) {
            Some(serde_json::Value::Array(items)) => {
                for item in items.iter().filter_map(|i| i.as_str()) {
                    note(&mut tags, item);
                }
            }
            // A list written as text: JSON, or words between commas or semicolons.
            Some(serde_json::Value::String(list)) => {
                match serde_json::from_str::<serde_json::Value>(&list) {
                    Ok(serde_json::Value::Array(items)) => {
                        for item in items.iter().filter_map(|i| i.as_str()) {
                            note(&mut tags, item);
                        }
                    }
                    _ => {
                        for item in list.split([',', ';']) {
                            note(&mut tags, item);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let spelled = |seen: Seen| -> Vec<String> {
        let mut out: Vec<String> = seen
            .into_values()
            .filter_map(|spellings| {
                spellings
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(s, _)| s)
            })
            .collect();
        out.sort_by_key(|s| s.to_lowercase());
        out.truncate(limit);
        out
    };
    Ok((spelled(tiers), spelled(tags)))
}
