// The only module that talks to Tauri. Every command Clientele's engine offers is one typed
// async function here; screens import from `$lib/backend` and never from `@tauri-apps/api`.
// Every rejection is normalized to `UiError` ({code, message}, the code from a closed list).

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { ActivityItem } from "./bindings/ActivityItem";
import type { ActivityQuery } from "./bindings/ActivityQuery";
import type { BusinessView } from "./bindings/BusinessView";
import type { ConnectionView } from "./bindings/ConnectionView";
import type { DecisionView } from "./bindings/DecisionView";
import type { DeliveryDetailView } from "./bindings/DeliveryDetailView";
import type { DesktopView } from "./bindings/DesktopView";
import type { ExportDraft } from "./bindings/ExportDraft";
import type { ExportFilterChoices } from "./bindings/ExportFilterChoices";
import type { ExportPreviewView } from "./bindings/ExportPreviewView";
import type { ExportProfileSummary } from "./bindings/ExportProfileSummary";
import type { ExportProgressView } from "./bindings/ExportProgressView";
import type { ExportRunView } from "./bindings/ExportRunView";
import type { ErasureView } from "./bindings/ErasureView";
import type { ForgetOutcome } from "./bindings/ForgetOutcome";
import type { ForgetPreview } from "./bindings/ForgetPreview";
import type { HandEditOutcome } from "./bindings/HandEditOutcome";
import type { LiveUpdate } from "./bindings/LiveUpdate";
import type { NewConnectionRequest } from "./bindings/NewConnectionRequest";
import type { PeoplePage } from "./bindings/PeoplePage";
import type { PersonDetail } from "./bindings/PersonDetail";
import type { PhoneSettingsView } from "./bindings/PhoneSettingsView";
import type { ProviderId } from "./bindings/ProviderId";
import type { ProviderInfo } from "./bindings/ProviderInfo";
import type { RecordRef } from "./bindings/RecordRef";
import type { RelayStatus } from "./bindings/RelayStatus";
import type { RelaySync } from "./bindings/RelaySync";
import type { RetentionView } from "./bindings/RetentionView";
import type { RereadProgress } from "./bindings/RereadProgress";
import type { RereadSummary } from "./bindings/RereadSummary";
import type { RowKind as ExportRows } from "./bindings/RowKind";
import type { FileKind as ExportFormat } from "./bindings/FileKind";
import type { SettingsUpdate } from "./bindings/SettingsUpdate";
import type { SettingsView } from "./bindings/SettingsView";
import type { SourceOptionView } from "./bindings/SourceOptionView";
import type { SuppressionView } from "./bindings/SuppressionView";
import type { TestEventResult } from "./bindings/TestEventResult";
import type { UpgradeView } from "./bindings/UpgradeView";
import { EXPORT_PROGRESS_EVENT, LIVE_EVENT, PHONE_REREAD_EVENT, RELAY_EVENT, UPGRADE_EVENT } from "./bindings/events";
import { NO_BACKEND, toAppError } from "./errors";

export { EXPORT_PROGRESS_EVENT, LIVE_EVENT, PHONE_REREAD_EVENT, RELAY_EVENT, UPGRADE_EVENT } from "./bindings/events";
export type { UpgradeView } from "./bindings/UpgradeView";
export { NO_BACKEND, toAppError } from "./errors";
export type { UiError, UiErrorCode } from "./errors";
export type { ActivityItem } from "./bindings/ActivityItem";
export type { ActivityQuery } from "./bindings/ActivityQuery";
export type { AppError } from "./bindings/AppError";
export type { BusinessView } from "./bindings/BusinessView";
export type { ChangeView } from "./bindings/ChangeView";
export type { ConnectionHealth } from "./bindings/ConnectionHealth";
export type { ConnectionView } from "./bindings/ConnectionView";
export type { DecisionKind } from "./bindings/DecisionKind";
export type { DecisionView } from "./bindings/DecisionView";
export type { DeliveryDetailView } from "./bindings/DeliveryDetailView";
export type { ErasureReason } from "./bindings/ErasureReason";
export type { ErasureView } from "./bindings/ErasureView";
export type { ExportMention } from "./bindings/ExportMention";
export type { ForgetOutcome } from "./bindings/ForgetOutcome";
export type { ForgetPreview } from "./bindings/ForgetPreview";
export type { HandEditOutcome } from "./bindings/HandEditOutcome";
export type { RecordRef } from "./bindings/RecordRef";
export type { RecordView } from "./bindings/RecordView";
export type { RelaySync } from "./bindings/RelaySync";
export type { RetentionView } from "./bindings/RetentionView";
export type { SuppressionView } from "./bindings/SuppressionView";
export type { CloseAction } from "./bindings/CloseAction";
export type { DesktopView } from "./bindings/DesktopView";
export type { ErrorCode } from "./bindings/ErrorCode";
export type { EventLine } from "./bindings/EventLine";
export type { ExportColumnDraft } from "./bindings/ExportColumnDraft";
export type { ExportDraft } from "./bindings/ExportDraft";
export type { ExportFilterChoices } from "./bindings/ExportFilterChoices";
export type { ExportFiltersDraft } from "./bindings/ExportFiltersDraft";
export type { FilterChoice } from "./bindings/FilterChoice";
export type { ExportPreviewView } from "./bindings/ExportPreviewView";
export type { ExportProfileSummary } from "./bindings/ExportProfileSummary";
export type { ExportProgressView } from "./bindings/ExportProgressView";
export type { ExportRunView } from "./bindings/ExportRunView";
export type { FieldGroup } from "./bindings/FieldGroup";
export type { ListenerStatus } from "./bindings/ListenerStatus";
export type { LiveUpdate } from "./bindings/LiveUpdate";
export type { NewConnectionRequest } from "./bindings/NewConnectionRequest";
export type { PeoplePage } from "./bindings/PeoplePage";
export type { PersonDetail } from "./bindings/PersonDetail";
export type { PersonLink } from "./bindings/PersonLink";
export type { PersonSummary } from "./bindings/PersonSummary";
export type { PhoneCountry } from "./bindings/PhoneCountry";
export type { PhoneLink } from "./bindings/PhoneLink";
export type { PhoneSettingsView } from "./bindings/PhoneSettingsView";
export type { ProfileFieldView } from "./bindings/ProfileFieldView";
export type { ProviderInfo } from "./bindings/ProviderInfo";
export type { RejectionView } from "./bindings/RejectionView";
export type { RelayState } from "./bindings/RelayState";
export type { RelayStatus } from "./bindings/RelayStatus";
export type { RereadProgress } from "./bindings/RereadProgress";
export type { RereadSummary } from "./bindings/RereadSummary";
export type { SettingsUpdate } from "./bindings/SettingsUpdate";
export type { SettingsView } from "./bindings/SettingsView";
export type { SourceOptionView } from "./bindings/SourceOptionView";
export type { SourceRef } from "./bindings/SourceRef";
export type { TestEventResult } from "./bindings/TestEventResult";
export type { TimelineEntry } from "./bindings/TimelineEntry";

/** Closed lists from the engine's Rust enums, as unions. */
export type { ActivityItemKind } from "./bindings/ActivityItemKind";
export type { ActivityKind } from "./bindings/ActivityKind";
export type { DeliveryStatus } from "./bindings/DeliveryStatus";
export type { EventKind } from "./bindings/EventKind";
export type { ProviderId } from "./bindings/ProviderId";
export type { ValueKind } from "./bindings/ValueKind";
export type { ColumnKind } from "./bindings/ColumnKind";
export type { CsvPreset } from "./bindings/CsvPreset";
export type { YesNoWords } from "./bindings/YesNoWords";
export type { PhoneFormat } from "./bindings/PhoneFormat";
export type { TextCase } from "./bindings/TextCase";

/** What each row of an export is (ExportDraft.rows), and the file it writes (ExportDraft.format). */
export type { RowKind as ExportRows } from "./bindings/RowKind";
export type { FileKind as ExportFormat } from "./bindings/FileKind";

/** True inside the Tauri window; false in a plain browser (vite preview, tests without mocks). */
export function hasBackend(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toAppError(e);
  }
}

// Opening the data folder --------------------------------------------------------------------

/** Whether Clientele is converting a data folder from an older version, and how far it got. */
export function upgradeStatus(): Promise<UpgradeView> {
  return call("upgrade_status");
}

/** Follows the conversion's progress until it is ready (or failed). */
export async function onUpgrade(cb: (view: UpgradeView) => void): Promise<() => void> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await listen<UpgradeView>(UPGRADE_EVENT, (event) => cb(event.payload));
  } catch (e) {
    throw toAppError(e);
  }
}

export function listProviders(): Promise<ProviderInfo[]> {
  return call("list_providers");
}

export function listConnections(): Promise<ConnectionView[]> {
  return call("list_connections");
}

export function addConnection(request: NewConnectionRequest): Promise<ConnectionView> {
  return call("add_connection", { request });
}

export function replaceSecret(provider: ProviderId, name: string, secret: string): Promise<void> {
  return call("replace_secret", { provider, name, secret });
}

/** Stops receiving and deletes the secret; customers and their history are kept. */
export function removeConnection(provider: ProviderId, name: string): Promise<void> {
  return call("remove_connection", { provider, name });
}

export function setConnectionPaused(
  provider: ProviderId,
  name: string,
  paused: boolean,
): Promise<ConnectionView> {
  return call("set_connection_paused", { provider, name, paused });
}

export function sendTestEvent(provider: ProviderId, name: string): Promise<TestEventResult> {
  return call("send_test_event", { provider, name });
}

export function listActivity(query: ActivityQuery): Promise<ActivityItem[]> {
  return call("list_activity", { query });
}

export function deliveryDetail(id: number): Promise<DeliveryDetailView> {
  return call("delivery_detail", { id });
}

export function reprocessDelivery(id: number): Promise<DeliveryDetailView> {
  return call("reprocess_delivery", { id });
}

export function searchPeople(query: string, offset: number, limit: number): Promise<PeoplePage> {
  return call("search_people", { query, offset, limit });
}

export function personDetail(id: number): Promise<PersonDetail> {
  return call("person_detail", { id });
}

export function getSettings(): Promise<SettingsView> {
  return call("get_settings");
}

export function updateSettings(update: SettingsUpdate): Promise<SettingsView> {
  return call("update_settings", { update });
}

/** Whether this desktop shows tray icons, and what closing the window does now. */
export function desktopStatus(): Promise<DesktopView> {
  return call("desktop_status");
}

/** Quits Clientele: it stops receiving until it is opened again. */
export function quitApp(): Promise<void> {
  return call("quit_app");
}

/**
 * Calls `cb` with every batched LiveUpdate. Resolves to a function that stops listening.
 * Rejects with `no_backend` outside the Tauri window.
 */
export async function onLiveUpdate(cb: (update: LiveUpdate) => void): Promise<() => void> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await listen<LiveUpdate>(LIVE_EVENT, (event) => cb(event.payload));
  } catch (e) {
    throw toAppError(e);
  }
}

// Exports ---------------------------------------------------------------------------------------

export function listExportProfiles(): Promise<ExportProfileSummary[]> {
  return call("list_export_profiles");
}

export function getExportProfile(name: string): Promise<ExportDraft> {
  return call("get_export_profile", { name });
}

/** Creates the profile, or replaces the one with the same name (its history is kept). */
export function saveExportProfile(draft: ExportDraft): Promise<ExportProfileSummary> {
  return call("save_export_profile", { draft });
}

export function deleteExportProfile(name: string): Promise<void> {
  return call("delete_export_profile", { name });
}

/** Everything a column can show for rows of `rows`, with a real sample value when there is one. */
export function exportSources(rows: ExportRows): Promise<SourceOptionView[]> {
  return call("export_sources", { rows });
}

/** What the "Which customers" choices can be: connections, and the tiers and tags customers have. */
export function exportFilterChoices(): Promise<ExportFilterChoices> {
  return call("export_filter_choices");
}

/** The first `limit` rows exactly as a run now would write them; the draft needn't be saved. */
export function previewExport(draft: ExportDraft, limit: number): Promise<ExportPreviewView> {
  return call("preview_export", { draft, limit });
}

/** The native "Save the export as" dialog; null when the person cancelled it. */
export function chooseExportFile(suggestedName: string, format: ExportFormat): Promise<string | null> {
  return call("choose_export_file", { suggestedName, format });
}

/** Runs the saved profile `name` into `path`; progress arrives through onExportProgress. */
export function runExport(name: string, path: string): Promise<ExportRunView> {
  return call("run_export", { name, path });
}

export function cancelExport(name: string): Promise<void> {
  return call("cancel_export", { name });
}

/** Runs newest first: of one profile, or of every profile when `name` is null. */
export function exportHistory(name: string | null): Promise<ExportRunView[]> {
  return call("export_history", { name });
}

/** Opens the file manager with `path` selected. */
export function showInFolder(path: string): Promise<void> {
  return call("show_in_folder", { path });
}

/**
 * Calls `cb` with each progress report of a running export. Resolves to a function that stops
 * listening. Rejects with `no_backend` outside the Tauri window.
 */
export async function onExportProgress(cb: (progress: ExportProgressView) => void): Promise<() => void> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await listen<ExportProgressView>(EXPORT_PROGRESS_EVENT, (event) => cb(event.payload));
  } catch (e) {
    throw toAppError(e);
  }
}

// Receiving from the internet through a relay -------------------------------------------------

/** Where this computer's link to a relay stands (`not_joined` when it has none). */
export function getRelayStatus(): Promise<RelayStatus> {
  return call("relay_status");
}

/**
 * Joins the relay at `url` with a one-time pairing `code` (and a name for this computer, or null
 * for the one chosen with the code), then starts receiving through it. The relay's access key
 * goes to the keychain and never reaches the window.
 */
export function joinRelay(url: string, code: string, name: string | null): Promise<RelayStatus> {
  return call("join_relay", { url, code, name });
}

/** Stops receiving through the relay; what was received stays on this computer. */
export function leaveRelay(): Promise<RelayStatus> {
  return call("leave_relay");
}

/**
 * Calls `cb` each time the link to the relay changes (connected, unreachable, removed, joined,
 * left). Resolves to a function that stops listening. Rejects with `no_backend` outside the
 * Tauri window.
 */
export async function onRelayStatus(cb: (status: RelayStatus) => void): Promise<() => void> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await listen<RelayStatus>(RELAY_EVENT, (event) => cb(event.payload));
  } catch (e) {
    throw toAppError(e);
  }
}

// Phone numbers and business names ---------------------------------------------------------------

/** The default country for phone numbers written without a country code, and the choices. */
export function getPhoneSettings(): Promise<PhoneSettingsView> {
  return call("phone_settings");
}

/**
 * Sets the default country (an ISO code such as "GB"), then reads the earlier customers' phone
 * numbers again with it; resolves when that is done. Progress arrives through `onPhoneReread`.
 */
export function setDefaultCountry(code: string): Promise<RereadSummary> {
  return call("set_default_country", { code });
}

/**
 * Calls `cb` with each progress report of reading phone numbers again. Resolves to a function that
 * stops listening. Rejects with `no_backend` outside the Tauri window.
 */
export async function onPhoneReread(cb: (progress: RereadProgress) => void): Promise<() => void> {
  if (!hasBackend()) throw { ...NO_BACKEND };
  try {
    return await listen<RereadProgress>(PHONE_REREAD_EVENT, (event) => cb(event.payload));
  } catch (e) {
    throw toAppError(e);
  }
}

/** A provider's business ids seen in customers' records (Vagaro's), with the names given to them. */
export function listBusinesses(provider: ProviderId): Promise<BusinessView[]> {
  return call("list_businesses", { provider });
}

/** Names one business id; an empty name forgets it. */
export function nameBusiness(provider: ProviderId, id: string, name: string): Promise<void> {
  return call("name_business", { provider, id, name });
}

// Changes made by hand, forgetting, and how long customers are kept --------------------------------

/** Joins two customers into one (a decision made by hand, which can be undone). */
export function mergePeople(a: number, b: number): Promise<HandEditOutcome> {
  return call("merge_people", { a, b });
}

/** Separates one record from customer `person`: it is shown as a customer of its own. */
export function splitRecord(person: number, record: RecordRef): Promise<HandEditOutcome> {
  return call("split_record", { person, record });
}

/** Undoes the decision made by hand numbered `id`. */
export function undoDecision(id: number): Promise<HandEditOutcome> {
  return call("undo_decision", { id });
}

/** Every change made by hand, newest first, undone ones included. */
export function listDecisions(): Promise<DecisionView[]> {
  return call("list_decisions");
}

/** What forgetting customer `person` would erase, and which exports already included them. */
export function forgetPreview(person: number): Promise<ForgetPreview> {
  return call("forget_preview", { person });
}

/** Forgets customer `person` for good; with `keepForgetting`, later messages about them aren't kept. */
export function forgetPerson(person: number, keepForgetting: boolean): Promise<ForgetOutcome> {
  return call("forget_person", { person, keepForgetting });
}

/** The erasure log: when, why, which computer and how many — no names. */
export function erasureLog(): Promise<ErasureView[]> {
  return call("erasure_log");
}

/** The customers Clientele keeps forgetting (by their records, never by name). */
export function listSuppressions(): Promise<SuppressionView[]> {
  return call("list_suppressions");
}

/** Stops forgetting the customer forgotten as `forgetUid`: their next messages are kept again. */
export function stopForgetting(forgetUid: string): Promise<RelaySync> {
  return call("stop_forgetting", { forgetUid });
}

/** How long customers with no activity, and refused requests, are kept (null: for ever). */
export function getRetention(): Promise<RetentionView> {
  return call("get_retention");
}

export function setRetention(inactiveMonths: number | null, rejectionsDays: number | null): Promise<RetentionView> {
  return call("set_retention", { inactiveMonths, rejectionsDays });
}

/** When `provider` deletes a customer on `connection`: null keeps their history, N forgets them N days later. */
export function setForgetDeleted(provider: ProviderId, connection: string, days: number | null): Promise<void> {
  return call("set_forget_deleted", { provider, connection, days });
}
