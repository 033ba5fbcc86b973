// The export commands of `$lib/backend`, as vi.fns, for component tests. Used next to the shared
// stand-in (mock-backend.ts), which doesn't know these commands:
//   vi.mock("$lib/backend", async () => ({
//     ...(await import("../test/mock-backend")),
//     ...(await import("../test/mock-exports")),
//   }));
// Every command rejects until a test says what it returns; `emitExportProgress` plays the
// engine's progress event.

import { vi } from "vitest";
import type { ExportProgressView, UiError } from "$lib/backend";

function unmocked(name: string) {
  const error: UiError = { code: "unknown", message: `${name} was called but the test didn't mock it` };
  return () => Promise.reject(error);
}

export const listExportProfiles = vi.fn();
export const getExportProfile = vi.fn();
export const saveExportProfile = vi.fn();
export const deleteExportProfile = vi.fn();
export const exportSources = vi.fn();
export const exportFilterChoices = vi.fn();
export const previewExport = vi.fn();
export const chooseExportFile = vi.fn();
export const runExport = vi.fn();
export const cancelExport = vi.fn();
export const exportHistory = vi.fn();
export const showInFolder = vi.fn();

let listeners: ((p: ExportProgressView) => void)[] = [];

export const onExportProgress = vi.fn(async (cb: (p: ExportProgressView) => void) => {
  listeners.push(cb);
  return () => {
    listeners = listeners.filter((l) => l !== cb);
  };
});

/** Plays one progress report to everyone listening. */
export function emitExportProgress(progress: ExportProgressView): void {
  for (const l of [...listeners]) l(progress);
}

export function progressListenerCount(): number {
  return listeners.length;
}

const commands = {
  listExportProfiles,
  getExportProfile,
  saveExportProfile,
  deleteExportProfile,
  exportSources,
  exportFilterChoices,
  previewExport,
  chooseExportFile,
  runExport,
  cancelExport,
  exportHistory,
  showInFolder,
};

/** Call in beforeEach: forgets calls and answers, and stops every progress listener. */
export function resetExportsBackend(): void {
  for (const [name, fn] of Object.entries(commands)) {
    fn.mockReset();
    fn.mockImplementation(unmocked(name));
  }
  onExportProgress.mockClear();
  listeners = [];
}
