// A stand-in for `$lib/backend` in component tests:
//   vi.mock("$lib/backend", () => import("../test/mock-backend"));
// Every command is a vi.fn that rejects until a test says what it returns; the pure helpers are
// the real ones; `emitLive` plays the engine's live update event, `emitRelay` the relay's status.

import { vi } from "vitest";
import type { LiveUpdate, RelayStatus, RereadProgress, UiError, UpgradeView } from "$lib/backend";

export { NO_BACKEND, toAppError } from "$lib/backend/errors";
export { EXPORT_PROGRESS_EVENT, LIVE_EVENT, PHONE_REREAD_EVENT, RELAY_EVENT, UPGRADE_EVENT } from "$lib/backend/bindings/events";
export const hasBackend = (): boolean => true;

function unmocked(name: string) {
  const error: UiError = { code: "unknown", message: `${name} was called but the test didn't mock it` };
  return () => Promise.reject(error);
}

export const listProviders = vi.fn();
export const listConnections = vi.fn();
export const addConnection = vi.fn();
export const replaceSecret = vi.fn();
export const removeConnection = vi.fn();
export const setConnectionPaused = vi.fn();
export const sendTestEvent = vi.fn();
export const listActivity = vi.fn();
export const deliveryDetail = vi.fn();
export const reprocessDelivery = vi.fn();
export const searchPeople = vi.fn();
export const personDetail = vi.fn();
export const getSettings = vi.fn();
export const updateSettings = vi.fn();
export const desktopStatus = vi.fn();
export const quitApp = vi.fn();
export const getRelayStatus = vi.fn();
export const joinRelay = vi.fn();
export const leaveRelay = vi.fn();
export const getPhoneSettings = vi.fn();
export const setDefaultCountry = vi.fn();
export const listBusinesses = vi.fn();
export const nameBusiness = vi.fn();
export const mergePeople = vi.fn();
export const splitRecord = vi.fn();
export const undoDecision = vi.fn();
export const listDecisions = vi.fn();
export const forgetPreview = vi.fn();
export const forgetPerson = vi.fn();
export const erasureLog = vi.fn();
export const listSuppressions = vi.fn();
export const stopForgetting = vi.fn();
export const getRetention = vi.fn();
export const setRetention = vi.fn();
export const setForgetDeleted = vi.fn();
export const upgradeStatus = vi.fn();

let upgradeListeners: ((view: UpgradeView) => void)[] = [];

export const onUpgrade = vi.fn(async (cb: (view: UpgradeView) => void) => {
  upgradeListeners.push(cb);
  return () => {
    upgradeListeners = upgradeListeners.filter((l) => l !== cb);
  };
});

/** Plays one upgrade progress event to every component listening. */
export function emitUpgrade(view: UpgradeView): void {
  for (const l of [...upgradeListeners]) l(view);
}

let listeners: ((update: LiveUpdate) => void)[] = [];

export const onLiveUpdate = vi.fn(async (cb: (update: LiveUpdate) => void) => {
  listeners.push(cb);
  return () => {
    listeners = listeners.filter((l) => l !== cb);
  };
});

/** Plays one live update to every component listening. */
export function emitLive(update: Partial<LiveUpdate>): void {
  const full: LiveUpdate = { deliveries: 0, rejections: 0, people: [], ...update };
  for (const l of [...listeners]) l(full);
}

export function liveListenerCount(): number {
  return listeners.length;
}

let relayListeners: ((status: RelayStatus) => void)[] = [];

export const onRelayStatus = vi.fn(async (cb: (status: RelayStatus) => void) => {
  relayListeners.push(cb);
  return () => {
    relayListeners = relayListeners.filter((l) => l !== cb);
  };
});

/** Plays one relay status event to every component listening. */
export function emitRelay(status: RelayStatus): void {
  for (const l of [...relayListeners]) l(status);
}

export function relayListenerCount(): number {
  return relayListeners.length;
}

let rereadListeners: ((progress: RereadProgress) => void)[] = [];

export const onPhoneReread = vi.fn(async (cb: (progress: RereadProgress) => void) => {
  rereadListeners.push(cb);
  return () => {
    rereadListeners = rereadListeners.filter((l) => l !== cb);
  };
});

/** Plays one progress report of reading phone numbers again. */
export function emitReread(progress: RereadProgress): void {
  for (const l of [...rereadListeners]) l(progress);
}

const commands = {
  listProviders,
  listConnections,
  addConnection,
  replaceSecret,
  removeConnection,
  setConnectionPaused,
  sendTestEvent,
  listActivity,
  deliveryDetail,
  reprocessDelivery,
  searchPeople,
  personDetail,
  getSettings,
  updateSettings,
  desktopStatus,
  quitApp,
  getRelayStatus,
  joinRelay,
  leaveRelay,
  getPhoneSettings,
  setDefaultCountry,
  listBusinesses,
  nameBusiness,
  mergePeople,
  splitRecord,
  undoDecision,
  listDecisions,
  forgetPreview,
  forgetPerson,
  erasureLog,
  listSuppressions,
  stopForgetting,
  getRetention,
  setRetention,
  setForgetDeleted,
  upgradeStatus,
};

/** Call in beforeEach: forgets calls and answers, and stops every live listener. */
export function resetBackend(): void {
  for (const [name, fn] of Object.entries(commands)) {
    fn.mockReset();
    fn.mockImplementation(unmocked(name));
  }
  onLiveUpdate.mockClear();
  listeners = [];
  onRelayStatus.mockClear();
  relayListeners = [];
  onPhoneReread.mockClear();
  rereadListeners = [];
  onUpgrade.mockClear();
  upgradeListeners = [];
}
