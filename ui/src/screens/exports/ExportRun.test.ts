import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", async () => ({
  ...(await import("../../test/mock-backend")),
  ...(await import("../../test/mock-exports")),
}));
import * as backend from "../../test/mock-backend";
import * as exportsBackend from "../../test/mock-exports";
import type { ExportDraft, ExportRunView } from "$lib/backend";
import { filterChoices, PEOPLE_SOURCES, draft, preview, run, summary } from "../../test/export-fixtures";
import ExportEditor from "./ExportEditor.svelte";

const onback = vi.fn();
const onchanged = vi.fn();
const PATH = "/home/ana/Documents/Mailing list-2024-01-20.csv";

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

beforeEach(() => {
  backend.resetBackend();
  exportsBackend.resetExportsBackend();
  onback.mockReset();
  onchanged.mockReset();
  exportsBackend.exportSources.mockResolvedValue(PEOPLE_SOURCES);
  exportsBackend.exportFilterChoices.mockResolvedValue(filterChoices());
  exportsBackend.previewExport.mockResolvedValue(preview());
  exportsBackend.exportHistory.mockResolvedValue([]);
  exportsBackend.getExportProfile.mockResolvedValue(draft());
  exportsBackend.saveExportProfile.mockImplementation(async (d: ExportDraft) =>
    summary({ name: d.name, rows: d.rows, format: d.format, columns: d.columns.length }),
  );
  exportsBackend.cancelExport.mockResolvedValue(undefined);
  exportsBackend.showInFolder.mockResolvedValue(undefined);
});

function open(name: string | null = "Mailing list") {
  return render(ExportEditor, { props: { name, existingNames: name ? [name] : [], onback, onchanged } });
}

/** Opens the saved export, changes nothing, and clicks Export…; the run stays pending. */
async function startRun() {
  const pending = deferred<ExportRunView>();
  exportsBackend.chooseExportFile.mockResolvedValue(PATH);
  exportsBackend.runExport.mockReturnValue(pending.promise);
  open();
  await fireEvent.click(await screen.findByTestId("run-export"));
  await screen.findByTestId("export-progress");
  return pending;
}

describe("Running an export", () => {
  it("asks where to save, saves the changed export, then runs it into the chosen file", async () => {
    const user = userEvent.setup();
    exportsBackend.chooseExportFile.mockResolvedValue(PATH);
    exportsBackend.runExport.mockResolvedValue(run({ file: PATH, rows: 2 }));
    open(null);
    await user.type(await screen.findByTestId("export-name"), "Mailing list");
    await user.click((await screen.findAllByTestId("source-option"))[0]!);
    await user.click(screen.getByTestId("run-export"));

    expect(await screen.findByTestId("export-result")).toHaveTextContent(`Exported 2 rows to ${PATH}`);
    const [suggested, format] = exportsBackend.chooseExportFile.mock.calls[0]!;
    expect(suggested).toMatch(/^Mailing list-\d{4}-\d{2}-\d{2}\.csv$/);
    expect(format).toBe("csv");
    expect((exportsBackend.saveExportProfile.mock.calls[0]![0] as ExportDraft).name).toBe("Mailing list");
    expect(exportsBackend.runExport).toHaveBeenCalledWith("Mailing list", PATH);
    const order = [
      exportsBackend.chooseExportFile.mock.invocationCallOrder[0]!,
      exportsBackend.saveExportProfile.mock.invocationCallOrder[0]!,
      exportsBackend.runExport.mock.invocationCallOrder[0]!,
    ];
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(onchanged).toHaveBeenCalled();
  });

  it("suggests an .xlsx name for an Excel workbook, and doesn't save an unchanged export", async () => {
    exportsBackend.getExportProfile.mockResolvedValue(draft({ format: "xlsx" }));
    exportsBackend.chooseExportFile.mockResolvedValue("/tmp/out.xlsx");
    exportsBackend.runExport.mockResolvedValue(run({ file: "/tmp/out.xlsx" }));
    open();
    await fireEvent.click(await screen.findByTestId("run-export"));
    await screen.findByTestId("export-result");
    expect(exportsBackend.chooseExportFile.mock.calls[0]![0]).toMatch(/\.xlsx$/);
    expect(exportsBackend.chooseExportFile.mock.calls[0]![1]).toBe("xlsx");
    expect(exportsBackend.saveExportProfile).not.toHaveBeenCalled();
    expect(exportsBackend.runExport).toHaveBeenCalledWith("Mailing list", "/tmp/out.xlsx");
  });

  it("does nothing when the save window is closed without choosing a file", async () => {
    const user = userEvent.setup();
    exportsBackend.chooseExportFile.mockResolvedValue(null);
    open();
    const name = await screen.findByTestId("export-name");
    await user.type(name, " 2");
    await user.click(screen.getByTestId("run-export"));
    await waitFor(() => expect(exportsBackend.chooseExportFile).toHaveBeenCalledTimes(1));
    await waitFor(() => expect(screen.getByTestId("run-export")).toBeEnabled());
    expect(exportsBackend.saveExportProfile).not.toHaveBeenCalled();
    expect(exportsBackend.runExport).not.toHaveBeenCalled();
    expect(screen.queryByTestId("export-result")).not.toBeInTheDocument();
    expect(screen.queryByTestId("export-error")).not.toBeInTheDocument();
  });

  it("checks the export before opening the save window", async () => {
    const user = userEvent.setup();
    open(null);
    await user.type(await screen.findByTestId("export-name"), "Empty");
    await user.click(screen.getByTestId("run-export"));
    expect(screen.getByTestId("export-error")).toHaveTextContent("Add at least one column first");
    expect(exportsBackend.chooseExportFile).not.toHaveBeenCalled();
  });

  it("doesn't run when saving fails, and says why", async () => {
    const user = userEvent.setup();
    exportsBackend.chooseExportFile.mockResolvedValue(PATH);
    exportsBackend.saveExportProfile.mockRejectedValue({ code: "disk_full", message: "The disk is full." });
    open();
    await user.click(await screen.findByTestId("incremental"));
    await user.click(screen.getByTestId("run-export"));
    expect(await screen.findByTestId("export-error")).toHaveTextContent("Couldn't save: The disk is full.");
    expect(exportsBackend.runExport).not.toHaveBeenCalled();
  });

  it("starts one run even when Export… is double-clicked", async () => {
    exportsBackend.chooseExportFile.mockResolvedValue(PATH);
    exportsBackend.runExport.mockResolvedValue(run());
    open();
    const button = await screen.findByTestId("run-export");
    // Both clicks land before the screen has a chance to disable the button.
    fireEvent.click(button);
    fireEvent.click(button);
    await screen.findByTestId("export-result");
    expect(exportsBackend.chooseExportFile).toHaveBeenCalledTimes(1);
    expect(exportsBackend.runExport).toHaveBeenCalledTimes(1);
  });

  it("fills the progress bar from the engine's progress events (this export's only)", async () => {
    const pending = await startRun();
    const bar = screen.getByTestId("export-progress") as HTMLProgressElement;
    // Before the first report: indeterminate.
    expect(bar).not.toHaveAttribute("value");
    expect(screen.getByTestId("run-export")).toBeDisabled();
    await waitFor(() => expect(exportsBackend.progressListenerCount()).toBe(1));

    exportsBackend.emitExportProgress({ profile: "Mailing list", written: 900, scanned: 1000, total: 4000 });
    await waitFor(() => expect((screen.getByTestId("export-progress") as HTMLProgressElement).value).toBe(1000));
    expect((screen.getByTestId("export-progress") as HTMLProgressElement).max).toBe(4000);
    expect(screen.getByTestId("export-progress-text")).toHaveTextContent("25% done · 900 rows written of 4,000");

    exportsBackend.emitExportProgress({ profile: "Another export", written: 3999, scanned: 3999, total: 4000 });
    await new Promise((r) => setTimeout(r, 0));
    expect((screen.getByTestId("export-progress") as HTMLProgressElement).value).toBe(1000);

    // Total unknown: indeterminate again, with the count.
    exportsBackend.emitExportProgress({ profile: "Mailing list", written: 1500, scanned: 1500, total: null });
    await waitFor(() => expect(screen.getByTestId("export-progress-text")).toHaveTextContent("1,500 rows written so far"));
    expect(screen.getByTestId("export-progress")).not.toHaveAttribute("value");

    pending.resolve(run({ rows: 4000 }));
    expect(await screen.findByTestId("export-result")).toHaveTextContent("Exported 4,000 rows");
    expect(screen.queryByTestId("export-progress")).not.toBeInTheDocument();
    expect(exportsBackend.progressListenerCount()).toBe(0);
  });

  it("cancels: Cancel asks the engine to stop, and the screen says no file was written", async () => {
    const user = userEvent.setup();
    const pending = await startRun();
    await user.click(screen.getByTestId("cancel-export"));
    expect(exportsBackend.cancelExport).toHaveBeenCalledWith("Mailing list");
    expect(screen.getByTestId("cancel-export")).toBeDisabled();
    pending.reject({ code: "export_cancelled", message: "The export was cancelled; no file was written." });
    expect(await screen.findByTestId("export-result")).toHaveTextContent("Export cancelled. No file was written.");
    expect(screen.queryByTestId("show-in-folder")).not.toBeInTheDocument();
    expect(screen.getByTestId("run-export")).toBeEnabled();
  });

  it("says what went wrong when the run fails", async () => {
    const pending = await startRun();
    pending.reject({
      code: "export_folder_missing",
      message: "The folder /media/usb doesn't exist. Choose another folder, or create it first.",
    });
    const result = await screen.findByTestId("export-result");
    expect(result).toHaveTextContent("The export didn't finish.");
    expect(result).toHaveTextContent("The folder /media/usb doesn't exist. Choose another folder, or create it first.");
    expect(screen.getByRole("alert")).toContainElement(result);
  });

  it("after a run, shows the file with Show in folder, and the new run in the history", async () => {
    const user = userEvent.setup();
    const pending = await startRun();
    exportsBackend.exportHistory.mockResolvedValue([run({ file: PATH, rows: 1234 })]);
    pending.resolve(run({ file: PATH, rows: 1234, duration_ms: 2100 }));
    const result = await screen.findByTestId("export-result");
    expect(result).toHaveTextContent(`Exported 1,234 rows to ${PATH} · took 2 seconds`);
    await user.click(within(screen.getByTestId("export-run")).getByTestId("show-in-folder"));
    expect(exportsBackend.showInFolder).toHaveBeenCalledWith(PATH);
    expect(await screen.findByTestId("export-history-row")).toHaveTextContent("1,234 rows");
  });

  it("says so when the folder can't be shown", async () => {
    const user = userEvent.setup();
    const pending = await startRun();
    exportsBackend.showInFolder.mockRejectedValue({ code: "internal", message: `Couldn't open the folder of ${PATH}.` });
    pending.resolve(run({ file: PATH }));
    await user.click(await within(screen.getByTestId("export-run")).findByTestId("show-in-folder"));
    expect(await screen.findByTestId("folder-error")).toHaveTextContent(`Couldn't open the folder of ${PATH}.`);
  });
});

describe("Export history", () => {
  it("lists each run in plain words, with Show in folder for the files that were written", async () => {
    const user = userEvent.setup();
    exportsBackend.exportHistory.mockResolvedValue([
      run({ id: 3, file: PATH, rows: 1234, duration_ms: 2100 }),
      run({
        id: 2,
        outcome: "failed",
        rows: 0,
        file: "/media/usb/Mailing list.csv",
        duration_ms: 12,
        message: "The folder /media/usb doesn't exist. Choose another folder, or create it first.",
      }),
      run({ id: 1, outcome: "cancelled", rows: 0, file: "/tmp/x.csv", duration_ms: 65_000, message: "The export was cancelled; no file was written." }),
    ]);
    open();
    const rows = await screen.findAllByTestId("export-history-row");
    expect(exportsBackend.exportHistory).toHaveBeenCalledWith("Mailing list");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toHaveTextContent("Finished");
    expect(rows[0]).toHaveTextContent("1,234 rows");
    expect(rows[0]).toHaveTextContent("2 seconds");
    expect(rows[0]).toHaveTextContent("Mailing list-2024-01-20.csv");
    expect(rows[1]).toHaveTextContent("Didn't finish");
    expect(rows[1]).toHaveTextContent("The folder /media/usb doesn't exist.");
    expect(rows[2]).toHaveTextContent("Cancelled");
    expect(rows[2]).toHaveTextContent("1 minute 5 seconds");
    expect(within(rows[1]!).queryByTestId("show-in-folder")).not.toBeInTheDocument();
    expect(within(rows[2]!).queryByTestId("show-in-folder")).not.toBeInTheDocument();
    await user.click(within(rows[0]!).getByTestId("show-in-folder"));
    expect(exportsBackend.showInFolder).toHaveBeenCalledWith(PATH);
  });

  it("says when an export has never run", async () => {
    open();
    expect(await screen.findByTestId("history-empty")).toHaveTextContent("Not exported yet.");
    expect(screen.getByTestId("export-history")).toBeInTheDocument();
  });
});
