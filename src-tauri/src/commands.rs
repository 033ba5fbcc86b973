//! Tauri commands: each one adapts a `clientele_engine::Operations` method, off the UI thread.
//! Errors reach the webview as `{code, message}`; no command ever returns a secret (nor the
//! relay's access key for this computer).

use crate::AppState;
use chrono::Utc;
use clientele_core::Provider;
use clientele_core::hand::RecordRef;
use clientele_engine::events::{EXPORT_PROGRESS_EVENT, LIVE_EVENT, LiveUpdate, PHONE_REREAD_EVENT};
use clientele_engine::ops::activity::{ActivityItem, ActivityQuery, DeliveryDetailView};
use clientele_engine::ops::businesses::BusinessView;
use clientele_engine::ops::connections::{ConnectionView, NewConnectionRequest};
use clientele_engine::ops::exports::{
    ExportDraft, ExportFilterChoices, ExportPreviewView, ExportProfileSummary, ExportRunView,
    FileKind, RowKind, SourceOptionView,
};
use clientele_engine::ops::forget::{ErasureView, ForgetOutcome, ForgetPreview, SuppressionView};
use clientele_engine::ops::hand::{DecisionView, HandEditOutcome};
use clientele_engine::ops::hand_sync::RelaySync;
use clientele_engine::ops::people::{PeoplePage, PersonDetail};
use clientele_engine::ops::phones::{PhoneSettingsView, RereadSummary};
use clientele_engine::ops::providers::ProviderInfo;
use clientele_engine::ops::relay::RelayStatus;
use clientele_engine::ops::retention::RetentionView;
use clientele_engine::ops::settings::{SettingsUpdate, SettingsView};
use clientele_engine::ops::test_event::TestEventResult;
use clientele_engine::{AppError, ErrorCode, Operations};
use std::sync::Arc;
use tauri::{Manager, State};

type Reply<T> = Result<T, AppError>;

/// Runs `f` on the blocking pool: the store and the keychain block.
async fn blocking<T: Send + 'static>(
    api: &Arc<Operations>,
    f: impl FnOnce(&Operations) -> Reply<T> + Send + 'static,
) -> Reply<T> {
    let api = api.clone();
    tauri::async_runtime::spawn_blocking(move || f(&api))
        .await
        .map_err(|_| {
            AppError::new(
                ErrorCode::Internal,
                "Clientele hit an unexpected problem. Try again.",
            )
        })?
}

#[tauri::command]
pub async fn list_providers(state: State<'_, AppState>) -> Reply<Vec<ProviderInfo>> {
    Ok(state.ops().providers())
}

#[tauri::command]
pub async fn list_connections(state: State<'_, AppState>) -> Reply<Vec<ConnectionView>> {
    blocking(state.ops(), |api| api.connections(Utc::now())).await
}

#[tauri::command]
pub async fn add_connection(
    state: State<'_, AppState>,
    request: NewConnectionRequest,
) -> Reply<ConnectionView> {
    blocking(state.ops(), move |api| {
        api.add_connection(request, Utc::now())
    })
    .await
}

#[tauri::command]
pub async fn replace_secret(
    state: State<'_, AppState>,
    provider: String,
    name: String,
    secret: String,
) -> Reply<()> {
    blocking(state.ops(), move |api| {
        api.replace_secret(&provider, &name, secret)
    })
    .await
}

#[tauri::command]
pub async fn remove_connection(
    state: State<'_, AppState>,
    provider: String,
    name: String,
) -> Reply<()> {
    blocking(state.ops(), move |api| {
        api.remove_connection(&provider, &name, Utc::now())
            .map(|_secret_kept| ())
    })
    .await
}

#[tauri::command]
pub async fn set_connection_paused(
    state: State<'_, AppState>,
    provider: String,
    name: String,
    paused: bool,
) -> Reply<ConnectionView> {
    blocking(state.ops(), move |api| {
        api.set_paused(&provider, &name, paused, Utc::now())
    })
    .await
}

#[tauri::command]
pub async fn send_test_event(
    state: State<'_, AppState>,
    provider: String,
    name: String,
) -> Reply<TestEventResult> {
    blocking(state.ops(), move |api| {
        api.send_test_event(&provider, &name, Utc::now())
    })
    .await
}

#[tauri::command]
pub async fn list_activity(
    state: State<'_, AppState>,
    query: ActivityQuery,
) -> Reply<Vec<ActivityItem>> {
    blocking(state.ops(), move |api| api.activity(query, Utc::now())).await
}

#[tauri::command]
pub async fn delivery_detail(state: State<'_, AppState>, id: i64) -> Reply<DeliveryDetailView> {
    blocking(state.ops(), move |api| api.delivery_detail(id)).await
}

#[tauri::command]
pub async fn reprocess_delivery(state: State<'_, AppState>, id: i64) -> Reply<DeliveryDetailView> {
    blocking(state.ops(), move |api| api.reprocess_delivery(id)).await
}

#[tauri::command]
pub async fn search_people(
    state: State<'_, AppState>,
    query: String,
    offset: u32,
    limit: u32,
) -> Reply<PeoplePage> {
    blocking(state.ops(), move |api| {
        api.search_people(&query, offset, limit)
    })
    .await
}

#[tauri::command]
pub async fn person_detail(state: State<'_, AppState>, id: i64) -> Reply<PersonDetail> {
    blocking(state.ops(), move |api| api.person_detail(id)).await
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Reply<SettingsView> {
    blocking(state.ops(), |api| api.settings()).await
}

#[tauri::command]
pub async fn update_settings(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    update: SettingsUpdate,
) -> Reply<SettingsView> {
    let before = blocking(state.ops(), |api| api.prefs()).await?;
    let prefs = blocking(state.ops(), move |api| api.save_settings(&update)).await?;
    crate::apply_prefs(&app, &state, before, prefs).await;
    blocking(state.ops(), |api| api.settings()).await
}

#[tauri::command]
pub async fn list_export_profiles(state: State<'_, AppState>) -> Reply<Vec<ExportProfileSummary>> {
    blocking(state.ops(), |api| api.export_profiles()).await
}

#[tauri::command]
pub async fn get_export_profile(state: State<'_, AppState>, name: String) -> Reply<ExportDraft> {
    blocking(state.ops(), move |api| api.export_profile(&name)).await
}

#[tauri::command]
pub async fn save_export_profile(
    state: State<'_, AppState>,
    draft: ExportDraft,
) -> Reply<ExportProfileSummary> {
    blocking(state.ops(), move |api| {
        api.save_export_profile(&draft, Utc::now())
    })
    .await
}

#[tauri::command]
pub async fn delete_export_profile(state: State<'_, AppState>, name: String) -> Reply<()> {
    blocking(state.ops(), move |api| api.delete_export_profile(&name)).await
}

#[tauri::command]
pub async fn export_sources(
    state: State<'_, AppState>,
    rows: RowKind,
) -> Reply<Vec<SourceOptionView>> {
    blocking(state.ops(), move |api| api.export_sources(rows, Utc::now())).await
}

#[tauri::command]
pub async fn export_filter_choices(state: State<'_, AppState>) -> Reply<ExportFilterChoices> {
    blocking(state.ops(), |api| api.export_filter_choices()).await
}

#[tauri::command]
pub async fn preview_export(
    state: State<'_, AppState>,
    draft: ExportDraft,
    limit: u32,
) -> Reply<ExportPreviewView> {
    blocking(state.ops(), move |api| {
        api.preview_export(&draft, limit, Utc::now())
    })
    .await
}

/// The native save dialog; `None` when the user cancels.
#[tauri::command]
pub async fn choose_export_file(
    app: tauri::AppHandle,
    suggested_name: String,
    format: FileKind,
) -> Reply<Option<String>> {
    use tauri_plugin_dialog::DialogExt;
    let (label, extension) = match format {
        FileKind::Xlsx => ("Excel workbook", "xlsx"),
        FileKind::Csv => ("CSV file", "csv"),
    };
    let mut dialog = app
        .dialog()
        .file()
        .set_title("Save the export as")
        .set_file_name(&suggested_name)
        .add_filter(label, &[extension]);
    if let Some(documents) = app.path().document_dir().ok().filter(|d| d.is_dir()) {
        dialog = dialog.set_directory(documents);
    }
    let chosen = tauri::async_runtime::spawn_blocking(move || dialog.blocking_save_file())
        .await
        .map_err(|_| AppError::new(ErrorCode::Internal, "The save dialog couldn't open."))?;
    Ok(chosen
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

#[tauri::command]
pub async fn run_export(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    name: String,
    path: String,
) -> Reply<ExportRunView> {
    use tauri::Emitter;
    let ops = state.ops().clone();
    tauri::async_runtime::spawn_blocking(move || {
        ops.run_export(&name, std::path::Path::new(&path), Utc::now(), &mut |p| {
            let _ = app.emit(EXPORT_PROGRESS_EVENT, p);
        })
    })
    .await
    .map_err(|_| AppError::new(ErrorCode::Internal, "The export stopped unexpectedly."))?
}

#[tauri::command]
pub async fn cancel_export(state: State<'_, AppState>, name: String) -> Reply<()> {
    state.ops().cancel_export(&name);
    Ok(())
}

#[tauri::command]
pub async fn export_history(
    state: State<'_, AppState>,
    name: Option<String>,
) -> Reply<Vec<ExportRunView>> {
    blocking(state.ops(), move |api| api.export_history(name.as_deref())).await
}

/// Opens the file manager with the exported file selected.
#[tauri::command]
pub async fn show_in_folder(path: String) -> Reply<()> {
    tauri_plugin_opener::reveal_item_in_dir(&path).map_err(|_| {
        AppError::new(
            ErrorCode::ShowInFolder,
            format!("Couldn't open the folder of {path}."),
        )
    })
}

/// The default country of phone numbers, and the countries to choose from.
#[tauri::command]
pub async fn phone_settings(state: State<'_, AppState>) -> Reply<PhoneSettingsView> {
    blocking(state.ops(), |api| api.phone_settings()).await
}

/// Sets the default country, then reads earlier phone numbers again beside the listener,
/// reporting progress as it goes; the screens showing changed people refresh at the end.
#[tauri::command]
pub async fn set_default_country(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    code: String,
) -> Reply<RereadSummary> {
    use tauri::Emitter;
    let ops = state.ops().clone();
    let progress_app = app.clone();
    let summary = tauri::async_runtime::spawn_blocking(move || {
        ops.set_default_country(&code, &mut |p| {
            let _ = progress_app.emit(PHONE_REREAD_EVENT, p);
        })
    })
    .await
    .map_err(|_| {
        AppError::new(
            ErrorCode::Internal,
            "Reading the phone numbers again stopped unexpectedly.",
        )
    })??;
    let _ = app.emit(
        LIVE_EVENT,
        LiveUpdate {
            people: summary.people_changed.clone(),
            ..LiveUpdate::default()
        },
    );
    Ok(summary)
}

/// Vagaro's business ids seen in customers' records, with the names staff gave them.
#[tauri::command]
pub async fn list_businesses(
    state: State<'_, AppState>,
    provider: String,
) -> Reply<Vec<BusinessView>> {
    blocking(state.ops(), move |api| api.businesses(&provider)).await
}

/// Names one business id (an empty name forgets it).
#[tauri::command]
pub async fn name_business(
    state: State<'_, AppState>,
    provider: String,
    id: String,
    name: String,
) -> Reply<()> {
    blocking(state.ops(), move |api| {
        api.name_business(&provider, &id, &name)
    })
    .await
}

/// Where the link to the relay stands (read from the puller while it runs).
#[tauri::command]
pub async fn relay_status(state: State<'_, AppState>) -> Reply<RelayStatus> {
    blocking(state.ops(), |api| api.relay_status(false)).await
}

/// Joins the relay at `url` with a one-time pairing `code`, then starts pulling from it. The
/// access key the relay hands out goes to the keychain, never to the window.
#[tauri::command]
pub async fn join_relay(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    url: String,
    code: String,
    name: Option<String>,
) -> Reply<RelayStatus> {
    let name = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    blocking(state.ops(), move |api| {
        let joined = api.join_relay(&url, &code, name.as_deref(), None, Utc::now())?;
        if joined.token_to_show.is_some() {
            // Only a read-only secret store hands the key back; the app's keychain never is.
            tracing::warn!("the relay's access key couldn't be kept in the keychain");
        }
        Ok(())
    })
    .await?;
    // Joined either way; a puller that can't start says why in the status.
    if let Err(e) = crate::start_pulling(&app, &state).await {
        tracing::warn!(error = %e.message, "couldn't start pulling from the relay");
    }
    blocking(state.ops(), |api| api.relay_status(false)).await
}

/// Stops pulling, then leaves the relay: what was received through it stays on this computer.
#[tauri::command]
pub async fn leave_relay(app: tauri::AppHandle, state: State<'_, AppState>) -> Reply<RelayStatus> {
    state.engine.stop_pulling().await;
    if let Err(e) = blocking(state.ops(), |api| api.leave_relay()).await {
        // Still joined: carry on receiving through it.
        let _ = crate::start_pulling(&app, &state).await;
        return Err(e);
    }
    crate::publish_relay_status(&app).await;
    blocking(state.ops(), |api| api.relay_status(false)).await
}

/// Where opening the data folder stands: converting one from an older version, or ready.
#[tauri::command]
pub fn upgrade_status(
    state: State<'_, crate::upgrade::UpgradeState>,
) -> crate::upgrade::UpgradeView {
    state.get()
}

/// Whether this desktop shows tray icons, and what closing the window does (Settings).
#[tauri::command]
pub async fn desktop_status(app: tauri::AppHandle) -> Reply<crate::desktop::DesktopView> {
    // A D-Bus call on Linux: off the async runtime's threads.
    tauri::async_runtime::spawn_blocking(move || crate::desktop::DesktopView {
        tray: crate::desktop::tray_available(),
        close_action: crate::close_action(&app),
    })
    .await
    .map_err(|_| {
        AppError::new(
            ErrorCode::Internal,
            "Clientele hit an unexpected problem. Try again.",
        )
    })
}

/// Quit Clientele (Settings' button, for a desktop without a tray): stops receiving until
/// Clientele is opened again.
#[tauri::command]
pub fn quit_app(app: tauri::AppHandle) {
    crate::quit(&app);
}

// Changes made by hand, forgetting, retention -----------------------------------------------------

/// Tells every screen showing these people to read them again.
fn people_changed(app: &tauri::AppHandle, people: Vec<i64>) {
    use tauri::Emitter;
    let _ = app.emit(
        LIVE_EVENT,
        LiveUpdate {
            people,
            ..LiveUpdate::default()
        },
    );
}

/// The people a merge, split or undo touched: where its records are now, and the ones named.
fn touched(outcome: &HandEditOutcome, named: &[i64]) -> Vec<i64> {
    let mut people: Vec<i64> = named.to_vec();
    people.extend(outcome.decision.people.iter().copied());
    people.extend(outcome.person_id);
    people.sort_unstable();
    people.dedup();
    people
}

#[tauri::command]
pub async fn merge_people(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    a: i64,
    b: i64,
) -> Reply<HandEditOutcome> {
    let outcome = blocking(state.ops(), move |api| api.merge_people(a, b)).await?;
    people_changed(&app, touched(&outcome, &[a, b]));
    Ok(outcome)
}

#[tauri::command]
pub async fn split_record(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    person: i64,
    record: RecordRef,
) -> Reply<HandEditOutcome> {
    let outcome = blocking(state.ops(), move |api| api.split_record(person, &record)).await?;
    people_changed(&app, touched(&outcome, &[person]));
    Ok(outcome)
}

#[tauri::command]
pub async fn undo_decision(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    id: i64,
) -> Reply<HandEditOutcome> {
    let outcome = blocking(state.ops(), move |api| api.undo_decision(id)).await?;
    people_changed(&app, touched(&outcome, &[]));
    Ok(outcome)
}

#[tauri::command]
pub async fn list_decisions(state: State<'_, AppState>) -> Reply<Vec<DecisionView>> {
    blocking(state.ops(), |api| api.decisions()).await
}

#[tauri::command]
pub async fn forget_preview(state: State<'_, AppState>, person: i64) -> Reply<ForgetPreview> {
    blocking(state.ops(), move |api| api.forget_preview(person)).await
}

#[tauri::command]
pub async fn forget_person(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    person: i64,
    keep_forgetting: bool,
) -> Reply<ForgetOutcome> {
    let outcome = blocking(state.ops(), move |api| {
        api.forget_person(person, keep_forgetting)
    })
    .await?;
    people_changed(&app, vec![person]);
    Ok(outcome)
}

#[tauri::command]
pub async fn erasure_log(state: State<'_, AppState>) -> Reply<Vec<ErasureView>> {
    blocking(state.ops(), |api| api.erasure_log()).await
}

#[tauri::command]
pub async fn list_suppressions(state: State<'_, AppState>) -> Reply<Vec<SuppressionView>> {
    blocking(state.ops(), |api| api.suppressions()).await
}

#[tauri::command]
pub async fn stop_forgetting(state: State<'_, AppState>, forget_uid: String) -> Reply<RelaySync> {
    blocking(state.ops(), move |api| api.stop_forgetting(&forget_uid)).await
}

#[tauri::command]
pub async fn get_retention(state: State<'_, AppState>) -> Reply<RetentionView> {
    blocking(state.ops(), |api| api.retention()).await
}

#[tauri::command]
pub async fn set_retention(
    state: State<'_, AppState>,
    inactive_months: Option<u32>,
    rejections_days: Option<u32>,
) -> Reply<RetentionView> {
    blocking(state.ops(), move |api| {
        api.set_retention(inactive_months, rejections_days)
    })
    .await
}

#[tauri::command]
pub async fn set_forget_deleted(
    state: State<'_, AppState>,
    provider: Provider,
    connection: String,
    days: Option<u32>,
) -> Reply<()> {
    blocking(state.ops(), move |api| {
        api.set_forget_deleted(provider, &connection, days)
    })
    .await
}
