// The export commands of $lib/backend: names, camelCase arguments, and the progress event.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listen = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: (...args: unknown[]) => listen(...args) }));

import * as backend from "$lib/backend";
import { draft } from "../../test/export-fixtures";

describe("export commands without Tauri", () => {
  it("reject with no_backend and never call invoke", async () => {
    await expect(backend.listExportProfiles()).rejects.toMatchObject({ code: "no_backend" });
    await expect(backend.onExportProgress(() => {})).rejects.toMatchObject({ code: "no_backend" });
    expect(invoke).not.toHaveBeenCalled();
  });
});

describe("export commands inside Tauri", () => {
  beforeEach(() => {
    (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__ = {};
    invoke.mockReset();
    listen.mockReset();
  });
  afterEach(() => {
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
  });

  it("call each command by its name with camelCase arguments", async () => {
    invoke.mockResolvedValue(null);
    const d = draft();
    await backend.listExportProfiles();
    await backend.getExportProfile("Mailing list");
    await backend.saveExportProfile(d);
    await backend.deleteExportProfile("Mailing list");
    await backend.exportSources("events");
    await backend.previewExport(d, 50);
    await backend.chooseExportFile("Mailing list-2024-01-20.csv", "csv");
    await backend.runExport("Mailing list", "/tmp/a.csv");
    await backend.cancelExport("Mailing list");
    await backend.exportHistory(null);
    await backend.exportHistory("Mailing list");
    await backend.showInFolder("/tmp/a.csv");
    expect(invoke.mock.calls).toEqual([
      ["list_export_profiles", undefined],
      ["get_export_profile", { name: "Mailing list" }],
      ["save_export_profile", { draft: d }],
      ["delete_export_profile", { name: "Mailing list" }],
      ["export_sources", { rows: "events" }],
      ["preview_export", { draft: d, limit: 50 }],
      ["choose_export_file", { suggestedName: "Mailing list-2024-01-20.csv", format: "csv" }],
      ["run_export", { name: "Mailing list", path: "/tmp/a.csv" }],
      ["cancel_export", { name: "Mailing list" }],
      ["export_history", { name: null }],
      ["export_history", { name: "Mailing list" }],
      ["show_in_folder", { path: "/tmp/a.csv" }],
    ]);
  });

  it("passes the engine's {code, message} through", async () => {
    invoke.mockRejectedValueOnce({ code: "export_cancelled", message: "The export was cancelled; no file was written." });
    await expect(backend.runExport("Mailing list", "/tmp/a.csv")).rejects.toEqual({
      code: "export_cancelled",
      message: "The export was cancelled; no file was written.",
    });
  });

  it("listens to clientele://export-progress and hands the payload over", async () => {
    const unlisten = vi.fn();
    listen.mockResolvedValue(unlisten);
    const cb = vi.fn();
    const stop = await backend.onExportProgress(cb);
    expect(listen).toHaveBeenCalledWith("clientele://export-progress", expect.any(Function));
    const handler = listen.mock.calls[0]![1] as (e: { payload: unknown }) => void;
    const progress = { profile: "Mailing list", written: 10, scanned: 12, total: 100 };
    handler({ payload: progress });
    expect(cb).toHaveBeenCalledWith(progress);
    stop();
    expect(unlisten).toHaveBeenCalled();
  });
});
