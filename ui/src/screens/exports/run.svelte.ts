// Running an export: the native save dialog, saving the profile if it changed, the run itself
// with its progress events, Cancel, and the outcome in plain words. One run at a time: a second
// click while anything is under way does nothing.

import {
  cancelExport,
  chooseExportFile,
  onExportProgress,
  runExport,
  showInFolder,
  toAppError,
  type ExportFormat,
  type ExportProgressView,
  type ExportRunView,
} from "$lib/backend";
import { suggestedFileName } from "./words";

/** Opens the file manager at `path`'s file; resolves to what went wrong, in words, or null. */
export async function revealFile(path: string): Promise<string | null> {
  try {
    await showInFolder(path);
    return null;
  } catch (e) {
    return toAppError(e).message;
  }
}

export type RunResult =
  | { outcome: "succeeded"; rows: number; file: string | null; durationMs: number | null; incremental: boolean }
  | { outcome: "cancelled" }
  | { outcome: "failed"; message: string };

export type RunPhase = "idle" | "choosing" | "saving" | "running" | "cancelling";

/** What the runner needs from the editor. */
export interface RunTarget {
  /** The name typed in the editor (for the suggested file name). */
  name(): string;
  format(): ExportFormat;
  incremental(): boolean;
  /** Saves the draft if it changed; the saved profile's name, or null when saving failed. */
  save(): Promise<string | null>;
  /** After every run that started, whatever its outcome. */
  finished(result: RunResult): void;
}

function fromRun(run: ExportRunView, incremental: boolean): RunResult {
  switch (run.outcome) {
    case "succeeded":
      return { outcome: "succeeded", rows: run.rows, file: run.file, durationMs: run.duration_ms, incremental };
    case "cancelled":
      return { outcome: "cancelled" };
    default:
      return { outcome: "failed", message: run.message ?? "The export didn't finish, and Clientele didn't say why." };
  }
}

export class ExportRunner {
  phase = $state<RunPhase>("idle");
  progress = $state<ExportProgressView | null>(null);
  result = $state<RunResult | null>(null);
  cancelError = $state<string | null>(null);

  private target: RunTarget;
  /** Set synchronously on the first click, so a double click can't start two runs. */
  private busy = false;
  private running: string | null = null;
  private stopListening: (() => void) | null = null;
  private disposed = false;

  constructor(target: RunTarget) {
    this.target = target;
  }

  get active(): boolean {
    return this.phase !== "idle";
  }

  async start(): Promise<void> {
    if (this.busy || this.disposed) return;
    this.busy = true;
    this.result = null;
    this.cancelError = null;
    try {
      this.phase = "choosing";
      const format = this.target.format();
      let path: string | null;
      try {
        path = await chooseExportFile(suggestedFileName(this.target.name(), format), format);
      } catch (e) {
        this.result = { outcome: "failed", message: `The save window couldn't open. ${toAppError(e).message}` };
        return;
      }
      // Cancelled in the dialog: nothing to do and nothing to say.
      if (!path) return;

      this.phase = "saving";
      const name = await this.target.save();
      if (!name) return;

      this.phase = "running";
      this.progress = null;
      this.running = name;
      await this.listen(name);
      const incremental = this.target.incremental();
      let result: RunResult;
      try {
        result = fromRun(await runExport(name, path), incremental);
      } catch (e) {
        const error = toAppError(e);
        result =
          error.code === "export_cancelled" ? { outcome: "cancelled" } : { outcome: "failed", message: error.message };
      } finally {
        this.unlisten();
      }
      this.result = result;
      this.target.finished(result);
    } finally {
      this.running = null;
      this.busy = false;
      this.phase = "idle";
    }
  }

  async cancel(): Promise<void> {
    const name = this.running;
    if (!name || this.phase !== "running") return;
    this.phase = "cancelling";
    this.cancelError = null;
    try {
      await cancelExport(name);
    } catch (e) {
      if (this.phase === "cancelling") this.phase = "running";
      this.cancelError = toAppError(e).message;
    }
  }

  /** Clears the last outcome (e.g. when the editor opens another export). */
  clear(): void {
    this.result = null;
  }

  /** Stops listening for progress; a run already going carries on and is kept in the history. */
  dispose(): void {
    this.disposed = true;
    this.unlisten();
  }

  private async listen(name: string): Promise<void> {
    try {
      const stop = await onExportProgress((p) => {
        if (p.profile === name && this.running === name) this.progress = p;
      });
      if (this.disposed) stop();
      else this.stopListening = stop;
    } catch {
      // No progress events (e.g. the event system is unavailable): the bar stays indeterminate.
    }
  }

  private unlisten(): void {
    this.stopListening?.();
    this.stopListening = null;
  }
}
