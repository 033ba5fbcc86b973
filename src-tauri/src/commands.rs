//! Tauri commands: each one adapts a `clientele_server::api::Api` method, off the UI thread.
//! Errors reach the webview as `{code, message}`; no command ever returns a secret.

use crate::AppState;
use chrono::Utc;
use clientele_server::api::{
    ActivityItem, ActivityQuery, Api, AppError, ConnectionView, DeliveryDetailView,
    NewConnectionRequest, PeoplePage, PersonDetail, ProviderInfo, SettingsUpdate, SettingsView,
    TestEventResult,
};
use std::sync::Arc;
use tauri::State;

type Reply<T> = Result<T, AppError>;

/// Runs `f` on the blocking pool: the store and the keychain block.
async fn blocking<T: Send + 'static>(
    api: &Arc<Api>,
    f: impl FnOnce(&Api) -> Reply<T> + Send + 'static,
) -> Reply<T> {
    let api = api.clone();
    tauri::async_runtime::spawn_blocking(move || f(&api))
        .await
        .map_err(|_| {
            AppError::new(
                "internal",
                "Clientele hit an unexpected problem. Try again.",
            )
        })?
}

#[tauri::command]
pub async fn list_providers(state: State<'_, AppState>) -> Reply<Vec<ProviderInfo>> {
    Ok(state.api.providers())
}

#[tauri::command]
pub async fn list_connections(state: State<'_, AppState>) -> Reply<Vec<ConnectionView>> {
    blocking(&state.api, |api| api.connections(Utc::now())).await
}

#[tauri::command]
pub async fn add_connection(
    state: State<'_, AppState>,
    request: NewConnectionRequest,
) -> Reply<ConnectionView> {
    blocking(&state.api, move |api| {
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
    blocking(&state.api, move |api| {
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
    blocking(&state.api, move |api| {
        api.remove_connection(&provider, &name, Utc::now())
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
    blocking(&state.api, move |api| {
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
    blocking(&state.api, move |api| {
        api.send_test_event(&provider, &name, Utc::now())
    })
    .await
}

#[tauri::command]
pub async fn list_activity(
    state: State<'_, AppState>,
    query: ActivityQuery,
) -> Reply<Vec<ActivityItem>> {
    blocking(&state.api, move |api| api.activity(query, Utc::now())).await
}

#[tauri::command]
pub async fn delivery_detail(state: State<'_, AppState>, id: i64) -> Reply<DeliveryDetailView> {
    blocking(&state.api, move |api| api.delivery_detail(id)).await
}

#[tauri::command]
pub async fn reprocess_delivery(state: State<'_, AppState>, id: i64) -> Reply<DeliveryDetailView> {
    blocking(&state.api, move |api| api.reprocess_delivery(id)).await
}

#[tauri::command]
pub async fn search_people(
    state: State<'_, AppState>,
    query: String,
    offset: u32,
    limit: u32,
) -> Reply<PeoplePage> {
    blocking(&state.api, move |api| {
        api.search_people(&query, offset, limit)
    })
    .await
}

#[tauri::command]
pub async fn person_detail(state: State<'_, AppState>, id: i64) -> Reply<PersonDetail> {
    blocking(&state.api, move |api| api.person_detail(id)).await
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Reply<SettingsView> {
    blocking(&state.api, |api| api.settings()).await
}

#[tauri::command]
pub async fn update_settings(
    app: tauri::AppHandle,
    state: State<'_, AppState>,
    update: SettingsUpdate,
) -> Reply<SettingsView> {
    let before = blocking(&state.api, |api| api.prefs()).await?;
    let prefs = blocking(&state.api, move |api| api.save_settings(&update)).await?;
    crate::apply_prefs(&app, &state, before, prefs).await;
    blocking(&state.api, |api| api.settings()).await
}
