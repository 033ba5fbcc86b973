//! The Exports screen's backend: profiles edited as a simple draft, sources with samples, a live
//! preview, runs with progress and cancel, and the history. The app's commands adapt these and
//! add the native save dialog; `clientele export` runs the same profiles.

use super::{Operations, iso};
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::{DateTime, Utc};
pub use clientele_core::export::ColumnKind;
pub use clientele_core::export::profile::RowKind;
use clientele_core::export::profile::{
    Case, ExportProfile, Filters, Format, PhoneFormat, Preset, TimeRange, YesNoWords,
};
use clientele_store::export::{self, ExportRequest, ExportRun};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use ts_rs::TS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportColumnDraft {
    pub header: String,
    pub source: String,
    pub trim: bool,
    pub case: Option<Case>,
    pub default: Option<String>,
    /// strftime pattern
    pub date_format: Option<String>,
    pub phone: Option<PhoneFormat>,
    pub join: Option<String>,
    /// How a yes/no answer is written; `None`: the file's default (Yes/No for a spreadsheet,
    /// true/false for other software).
    pub yes_no: Option<YesNoWords>,
}

/// Which customers (or events) an export has: the "Which customers" part of the editor. Every
/// choice made must hold; a list holds when any of its items does; an empty list is no filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportFiltersDraft {
    /// `true`: only people who said yes to email marketing; `false`: only those who didn't say
    /// yes (said no, or never answered).
    pub email_marketing: Option<bool>,
    pub sms_marketing: Option<bool>,
    /// Provider ids (`tiquo`).
    pub providers: Vec<String>,
    /// `provider/name`.
    pub connections: Vec<String>,
    pub tiers: Vec<String>,
    pub tags: Vec<String>,
    /// People rows: also people deleted at every provider.
    pub include_deleted: bool,
    /// Not edited on screen; kept as the profile's JSON has them.
    pub event_from: Option<String>,
    pub event_to: Option<String>,
    pub event_kinds: Vec<String>,
}

impl ExportFiltersDraft {
    fn of(f: &Filters) -> ExportFiltersDraft {
        ExportFiltersDraft {
            email_marketing: f.email_marketing_opt_in,
            sms_marketing: f.sms_marketing_opt_in,
            providers: f.providers.clone(),
            connections: f.connections.clone(),
            tiers: f.tiers.clone(),
            tags: f.tags.clone(),
            include_deleted: f.include_deleted.unwrap_or(false),
            event_from: f.event_time.as_ref().and_then(|t| t.from.clone()),
            event_to: f.event_time.as_ref().and_then(|t| t.to.clone()),
            event_kinds: f.event_kinds.clone(),
        }
    }

    fn to_filters(&self, rows: RowKind) -> Filters {
        let list = |items: &[String]| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
                if !out.iter().any(|o| o == item) {
                    out.push(item.to_string());
                }
            }
            out
        };
        let event_time =
            (self.event_from.is_some() || self.event_to.is_some()).then(|| TimeRange {
                from: self.event_from.clone(),
                to: self.event_to.clone(),
            });
        Filters {
            providers: list(&self.providers),
            connections: list(&self.connections),
            event_time,
            event_kinds: list(&self.event_kinds),
            tiers: list(&self.tiers),
            tags: list(&self.tags),
            email_marketing_opt_in: self.email_marketing,
            sms_marketing_opt_in: self.sms_marketing,
            // A timeline export has every event; the choice only means something for people.
            include_deleted: (rows == RowKind::People && self.include_deleted).then_some(true),
        }
    }
}

/// What the "Which customers" choices can be: the connections, and the tiers and tags customers
/// have now.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportFilterChoices {
    pub providers: Vec<FilterChoice>,
    pub connections: Vec<FilterChoice>,
    pub tiers: Vec<String>,
    pub tags: Vec<String>,
}

/// One choice: what goes in the filter, and its words.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FilterChoice {
    pub value: String,
    pub label: String,
}

/// The kind of file an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum FileKind {
    Csv,
    Xlsx,
}

impl FileKind {
    fn of(format: &Format) -> FileKind {
        match format {
            Format::Csv(_) => FileKind::Csv,
            Format::Xlsx(_) => FileKind::Xlsx,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExportDraft {
    pub name: String,
    pub rows: RowKind,
    pub columns: Vec<ExportColumnDraft>,
    pub format: FileKind,
    /// CSV only (an Excel file is always written the one way).
    pub preset: Preset,
    pub neutralize_formulas: bool,
    pub incremental: bool,
    pub time_zone: Option<String>,
    pub filters: ExportFiltersDraft,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportRunView {
    #[ts(type = "number")]
    pub id: i64,
    pub profile: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[ts(type = "number")]
    pub rows: u64,
    pub file: Option<String>,
    #[ts(type = "number | null")]
    pub duration_ms: Option<i64>,
    pub outcome: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportProfileSummary {
    pub name: String,
    pub rows: RowKind,
    pub format: FileKind,
    pub columns: u32,
    pub incremental: bool,
    pub last_run: Option<ExportRunView>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SourceOptionView {
    pub source: String,
    pub label: String,
    pub group: String,
    pub sample: Option<String>,
    pub sensitive: bool,
    /// Which ways of writing the column fit it.
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportPreviewView {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    /// Rows that pass every filter (what a full run writes), when that was cheap to count.
    #[ts(type = "number | null")]
    pub matching: Option<u64>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportProgressView {
    pub profile: String,
    #[ts(type = "number")]
    pub written: u64,
    #[ts(type = "number")]
    pub scanned: u64,
    #[ts(type = "number | null")]
    pub total: Option<u64>,
}

/// The most tiers, and the most tags, offered as filters.
const FILTER_VALUES: usize = 200;

/// Cancel flags of the runs in progress, by profile name.
#[derive(Debug, Default)]
pub(crate) struct RunningExports(Mutex<HashMap<String, Arc<AtomicBool>>>);

fn run_view(run: ExportRun) -> ExportRunView {
    ExportRunView {
        id: run.id,
        profile: run.profile,
        started_at: iso(run.started_at),
        finished_at: run.finished_at.map(iso),
        rows: run.rows,
        file: Some(run.file).filter(|f| !f.is_empty()),
        duration_ms: run.duration_ms,
        outcome: run.outcome.as_str().into(),
        message: run.error,
    }
}

fn group_words(group: &str) -> &'static str {
    match group {
        "customer" => "Customer details",
        "person" => "Person facts",
        "event" => "Event facts",
        "change" => "Changes",
        _ => "Provider fields",
    }
}

/// The draft as the profile JSON the engine validates; settings the screen doesn't edit (file
/// name, default country) are kept from `existing`.
fn to_profile(draft: &ExportDraft, existing: Option<&ExportProfile>) -> ApiResult<ExportProfile> {
    let columns: Vec<Value> = draft
        .columns
        .iter()
        .map(|c| {
            let mut transform = serde_json::Map::new();
            if c.trim {
                transform.insert("trim".into(), json!(true));
            }
            if let Some(case) = c.case {
                transform.insert("case".into(), json!(case));
            }
            if let Some(phone) = c.phone {
                transform.insert("phone".into(), json!(phone));
            }
            if let Some(default) = &c.default {
                transform.insert("default".into(), json!(default));
            }
            if let Some(join) = c.join.as_ref().filter(|j| !j.is_empty()) {
                transform.insert("join".into(), json!(join));
            }
            if let Some(format) = c.date_format.as_ref().filter(|f| !f.is_empty()) {
                transform.insert("date".into(), json!({ "format": format }));
            }
            if let Some(words) = c.yes_no {
                transform.insert("yes_no".into(), json!(words));
            }
            let mut column = json!({"header": c.header, "source": c.source});
            if !transform.is_empty() {
                column["transform"] = Value::Object(transform);
            }
            column
        })
        .collect();
    let format = match draft.format {
        FileKind::Xlsx => json!({"type": "xlsx", "neutralize_formulas": draft.neutralize_formulas}),
        FileKind::Csv => {
            json!({"type": "csv", "preset": draft.preset, "neutralize_formulas": draft.neutralize_formulas})
        }
    };
    let mut value = json!({
        "name": draft.name.trim(),
        "rows": draft.rows,
        "columns": columns,
        "format": format,
        "incremental": draft.incremental,
    });
    if let Some(tz) = draft.time_zone.as_ref().filter(|t| !t.is_empty()) {
        value["time_zone"] = json!(tz);
    }
    let filters = draft.filters.to_filters(draft.rows);
    if !filters.is_empty() {
        value["filters"] = serde_json::to_value(&filters)
            .map_err(|e| AppError::new(ErrorCode::InvalidInput, e.to_string()))?;
    }
    if let Some(existing) = existing {
        let kept = serde_json::to_value(existing)
            .map_err(|e| AppError::new(ErrorCode::InvalidInput, e.to_string()))?;
        for key in ["file_name", "default_country"] {
            if let Some(v) = kept.get(key) {
                value[key] = v.clone();
            }
        }
    }
    ExportProfile::from_json(&value.to_string()).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidInput,
            format!("This export can't be saved yet: {e}"),
        )
    })
}

fn to_draft(profile: &ExportProfile) -> ExportDraft {
    let (preset, neutralize) = match &profile.format {
        Format::Xlsx(x) => (Preset::Excel, x.neutralize_formulas.unwrap_or(true)),
        Format::Csv(c) => (
            c.preset.unwrap_or(Preset::Excel),
            c.neutralize_formulas.unwrap_or(true),
        ),
    };
    ExportDraft {
        name: profile.name.clone(),
        rows: profile.rows,
        columns: profile
            .columns
            .iter()
            .map(|c| ExportColumnDraft {
                header: c.header.clone(),
                source: c.source.clone(),
                trim: c.transform.trim,
                case: c.transform.case,
                default: c.transform.default.clone(),
                date_format: c.transform.date.as_ref().and_then(|d| d.format.clone()),
                phone: c.transform.phone,
                join: c.transform.join.clone(),
                yes_no: c.transform.yes_no,
            })
            .collect(),
        format: FileKind::of(&profile.format),
        preset,
        neutralize_formulas: neutralize,
        incremental: profile.incremental,
        time_zone: profile.time_zone.clone(),
        filters: ExportFiltersDraft::of(&profile.filters),
    }
}

impl Operations {
    pub fn export_profiles(&self) -> ApiResult<Vec<ExportProfileSummary>> {
        let reader = self.store.reader()?;
        reader
            .export_profiles()?
            .into_iter()
            .map(|saved| {
                let last_run = reader
                    .export_runs(Some(&saved.name), Some(1))?
                    .into_iter()
                    .next()
                    .map(run_view);
                Ok(ExportProfileSummary {
                    rows: saved.profile.rows,
                    format: FileKind::of(&saved.profile.format),
                    columns: saved.profile.columns.len() as u32,
                    incremental: saved.profile.incremental,
                    name: saved.name,
                    last_run,
                })
            })
            .collect()
    }

    pub fn export_profile(&self, name: &str) -> ApiResult<ExportDraft> {
        Ok(to_draft(
            &self.store.reader()?.export_profile(name)?.profile,
        ))
    }

    pub fn save_export_profile(
        &self,
        draft: &ExportDraft,
        now: DateTime<Utc>,
    ) -> ApiResult<ExportProfileSummary> {
        let existing = self.store.reader()?.export_profile(draft.name.trim()).ok();
        let profile = to_profile(draft, existing.as_ref().map(|s| &s.profile))?;
        self.store.writer()?.save_export_profile(&profile, now)?;
        self.export_profiles()?
            .into_iter()
            .find(|p| p.name == profile.name)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::NotFound,
                    "The export was saved but couldn't be read back.",
                )
            })
    }

    pub fn delete_export_profile(&self, name: &str) -> ApiResult<()> {
        Ok(self.store.writer()?.delete_export_profile(name)?)
    }

    pub fn export_sources(
        &self,
        rows: RowKind,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<SourceOptionView>> {
        Ok(export::source_options(&self.store, rows, 3, now)?
            .into_iter()
            .map(|o| SourceOptionView {
                group: group_words(o.group).into(),
                sample: (!o.samples.is_empty()).then(|| o.samples.join(" · ")),
                source: o.source,
                label: o.label,
                sensitive: o.sensitive,
                kind: o.kind,
            })
            .collect())
    }

    /// What the "Which customers" choices can be.
    pub fn export_filter_choices(&self) -> ApiResult<ExportFilterChoices> {
        let connections = self.store.reader()?.connections()?;
        let mut providers: Vec<FilterChoice> = Vec::new();
        for c in &connections {
            let value = c.provider.id().to_string();
            if !providers.iter().any(|p| p.value == value) {
                providers.push(FilterChoice {
                    value,
                    label: c.provider.display_name().to_string(),
                });
            }
        }
        providers.sort_by(|a, b| a.label.cmp(&b.label));
        let (tiers, tags) = export::filter_values(&self.store, FILTER_VALUES)?;
        Ok(ExportFilterChoices {
            providers,
            connections: connections
                .iter()
                .map(|c| FilterChoice {
                    value: format!("{}/{}", c.provider.id(), c.name),
                    label: format!("{} – {}", c.provider.display_name(), c.name),
                })
                .collect(),
            tiers,
            tags,
        })
    }

    pub fn preview_export(
        &self,
        draft: &ExportDraft,
        limit: u32,
        now: DateTime<Utc>,
    ) -> ApiResult<ExportPreviewView> {
        let existing = self.store.reader()?.export_profile(draft.name.trim()).ok();
        let profile = to_profile(draft, existing.as_ref().map(|s| &s.profile))?;
        let preview =
            export::preview_export(&self.store, &profile, limit.clamp(1, 200) as usize, now)?;
        Ok(ExportPreviewView {
            headers: preview.headers,
            rows: preview
                .rows
                .into_iter()
                .map(|r| r.into_iter().map(|c| c.text).collect())
                .collect(),
            total: Some(preview.total),
            matching: preview.matching,
        })
    }

    /// Runs a saved profile into `path`, reporting progress; a second run of the same profile
    /// while one is going is refused.
    pub fn run_export(
        &self,
        name: &str,
        path: &Path,
        now: DateTime<Utc>,
        progress: &mut dyn FnMut(ExportProgressView),
    ) -> ApiResult<ExportRunView> {
        self.run_export_as(name, path, now, false, progress)
            .map(run_view)
    }

    /// [`Self::run_export`] as `clientele export` asks for it: `full` writes every row even for
    /// a profile that exports only what changed, and the run comes back as stored.
    /// [`Self::cancel_export`] stops it from another thread.
    pub fn run_export_as(
        &self,
        name: &str,
        path: &Path,
        now: DateTime<Utc>,
        full: bool,
        progress: &mut dyn FnMut(ExportProgressView),
    ) -> ApiResult<ExportRun> {
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut runs = self.exports.0.lock().unwrap_or_else(|p| p.into_inner());
            if runs.contains_key(name) {
                return Err(AppError::new(
                    ErrorCode::ExportRunning,
                    format!("'{name}' is already being exported."),
                ));
            }
            runs.insert(name.to_string(), cancel.clone());
        }
        let result = export::run_export(
            &self.store,
            &ExportRequest {
                profile: name,
                out: path,
                now,
                full,
            },
            &mut |p| {
                progress(ExportProgressView {
                    profile: name.into(),
                    written: p.written,
                    scanned: p.scanned,
                    total: Some(p.total),
                })
            },
            &cancel,
        );
        self.exports
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(result?)
    }

    pub fn cancel_export(&self, name: &str) {
        if let Some(flag) = self
            .exports
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            flag.store(true, Ordering::SeqCst);
        }
    }

    pub fn export_history(&self, name: Option<&str>) -> ApiResult<Vec<ExportRunView>> {
        Ok(self
            .store
            .reader()?
            .export_runs(name, Some(50))?
            .into_iter()
            .map(run_view)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ExportDraft {
        ExportDraft {
            name: "mailing".into(),
            rows: RowKind::People,
            columns: vec![
                ExportColumnDraft {
                    header: "Email".into(),
                    source: "email".into(),
                    trim: false,
                    case: None,
                    default: None,
                    date_format: None,
                    phone: None,
                    join: None,
                    yes_no: None,
                },
                ExportColumnDraft {
                    header: "Name".into(),
                    source: "full_name".into(),
                    trim: true,
                    case: Some(Case::Upper),
                    default: Some("".into()),
                    date_format: None,
                    phone: None,
                    join: None,
                    yes_no: None,
                },
                ExportColumnDraft {
                    header: "Phone".into(),
                    source: "phone".into(),
                    trim: false,
                    case: None,
                    default: None,
                    date_format: None,
                    phone: Some(PhoneFormat::E164),
                    join: None,
                    yes_no: None,
                },
                ExportColumnDraft {
                    header: "Joined".into(),
                    source: "first_seen".into(),
                    trim: false,
                    case: None,
                    default: None,
                    date_format: Some("%d/%m/%Y".into()),
                    phone: None,
                    join: None,
                    yes_no: None,
                },
            ],
            format: FileKind::Csv,
            preset: Preset::Other,
            neutralize_formulas: false,
            incremental: true,
            time_zone: Some("Europe/London".into()),
            filters: ExportFiltersDraft::default(),
        }
    }

    #[test]
    fn drafts_round_trip_through_the_engine_profile() {
        let profile = to_profile(&draft(), None).unwrap();
        assert_eq!(to_draft(&profile), draft());
        let xlsx = ExportDraft {
            format: FileKind::Xlsx,
            preset: Preset::Excel,
            ..draft()
        };
        assert_eq!(to_draft(&to_profile(&xlsx, None).unwrap()), xlsx);
    }

    #[test]
    fn filters_chosen_on_screen_round_trip_and_old_profiles_keep_theirs() {
        let mut d = draft();
        d.columns.push(ExportColumnDraft {
            header: "Email marketing".into(),
            source: "email_marketing_opt_in".into(),
            trim: false,
            case: None,
            default: None,
            date_format: None,
            phone: None,
            join: None,
            yes_no: Some(YesNoWords::OneZero),
        });
        d.filters = ExportFiltersDraft {
            email_marketing: Some(true),
            sms_marketing: Some(false),
            providers: vec!["tiquo".into()],
            connections: vec!["tiquo/main-salon".into()],
            tiers: vec!["Gold".into()],
            tags: vec!["VIP".into()],
            include_deleted: true,
            event_from: None,
            event_to: None,
            event_kinds: vec![],
        };
        let profile = to_profile(&d, None).unwrap();
        assert_eq!(profile.filters.email_marketing_opt_in, Some(true));
        assert_eq!(profile.filters.include_deleted, Some(true));
        assert_eq!(
            profile.columns[4].transform.yes_no,
            Some(YesNoWords::OneZero)
        );
        assert_eq!(to_draft(&profile), d);

        // A profile written as JSON (before the screen had filters) opens with its filters, and
        // saving it from the screen keeps the ones the screen doesn't show.
        let old = ExportProfile::from_json(
            &json!({"name": "old", "rows": "events", "format": {"type": "csv"},
                "columns": [{"header": "When", "source": "occurred_at"}],
                "filters": {"event_time": {"from": "2024-01-01"}, "event_kinds": ["created"],
                            "tier": ["Gold"], "email_marketing_opt_in": true},
                "file_name": "{name}"})
            .to_string(),
        )
        .unwrap();
        let opened = to_draft(&old);
        assert_eq!(opened.filters.tiers, ["Gold"]);
        assert_eq!(opened.filters.email_marketing, Some(true));
        let saved = to_profile(&opened, Some(&old)).unwrap();
        assert_eq!(
            (saved.filters, saved.file_name),
            (old.filters, old.file_name),
            "nothing lost on a round trip through the screen"
        );

        // "Include deleted" means nothing for events: dropped rather than refused.
        let mut events = opened.clone();
        events.filters.include_deleted = true;
        assert_eq!(
            to_profile(&events, None).unwrap().filters.include_deleted,
            None
        );
        // Cleared choices leave no filters behind.
        let cleared = ExportDraft {
            filters: ExportFiltersDraft::default(),
            ..d
        };
        assert!(to_profile(&cleared, None).unwrap().filters.is_empty());
    }

    #[test]
    fn invalid_drafts_say_what_is_wrong() {
        // A case the engine doesn't write can't even arrive: the draft's JSON is refused.
        let mut json = serde_json::to_value(draft()).unwrap();
        json["columns"][0]["case"] = serde_json::json!("title");
        let refused = serde_json::from_value::<ExportDraft>(json).unwrap_err();
        assert!(refused.to_string().contains("title"), "{refused}");
        // What only the profile's rules can tell is refused in words.
        let bad = ExportDraft {
            time_zone: Some("Mars/Olympus_Mons".into()),
            ..draft()
        };
        let err = to_profile(&bad, None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("time zone"), "{}", err.message);
    }
}
