import { fireEvent, render, screen, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", async () => ({
  ...(await import("../test/mock-backend")),
  ...(await import("../test/mock-exports")),
}));
import * as backend from "../test/mock-backend";
import * as exportsBackend from "../test/mock-exports";
import { NO_BACKEND } from "$lib/backend/errors";
import { hoursAgo } from "../test/fixtures";
import { filterChoices, PEOPLE_SOURCES, draft, preview, run, summary } from "../test/export-fixtures";
import Exports from "./Exports.svelte";

beforeEach(() => {
  backend.resetBackend();
  exportsBackend.resetExportsBackend();
  exportsBackend.exportSources.mockResolvedValue(PEOPLE_SOURCES);
  exportsBackend.exportFilterChoices.mockResolvedValue(filterChoices());
  exportsBackend.previewExport.mockResolvedValue(preview());
  exportsBackend.exportHistory.mockResolvedValue([]);
});

describe("Exports list", () => {
  it("shows skeleton rows while the exports load", () => {
    exportsBackend.listExportProfiles.mockReturnValue(new Promise(() => {}));
    render(Exports);
    expect(screen.getByTestId("exports-loading")).toBeInTheDocument();
    expect(screen.queryByTestId("export-row")).not.toBeInTheDocument();
  });

  it("explains what an export is when there is none, and offers to make one", async () => {
    exportsBackend.listExportProfiles.mockResolvedValue([]);
    render(Exports);
    const empty = await screen.findByTestId("exports-empty");
    expect(empty).toHaveTextContent("No exports yet.");
    expect(empty).toHaveTextContent("CSV or Excel file with the columns you choose");
    // One "New export" button, in the empty state.
    expect(screen.getAllByTestId("new-export")).toHaveLength(1);
    await fireEvent.click(within(empty).getByTestId("new-export"));
    expect(await screen.findByTestId("export-name")).toHaveValue("");
    expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("New export");
    expect(exportsBackend.exportSources).toHaveBeenCalledWith("people");
  });

  it("lists each export with what it holds and its last run in plain words", async () => {
    exportsBackend.listExportProfiles.mockResolvedValue([
      summary({ last_run: run({ started_at: hoursAgo(3), rows: 1234 }) }),
      summary({ name: "Tier changes", rows: "events", format: "xlsx", columns: 1, incremental: true }),
      summary({
        name: "Accountant",
        columns: 5,
        last_run: run({ started_at: hoursAgo(49), outcome: "failed", rows: 0, message: "The folder is gone." }),
      }),
    ]);
    render(Exports);
    const rows = await screen.findAllByTestId("export-row");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toHaveTextContent("Mailing list");
    expect(rows[0]).toHaveTextContent("People");
    expect(rows[0]).toHaveTextContent("CSV");
    expect(rows[0]).toHaveTextContent("3 columns");
    expect(rows[0]).toHaveTextContent("Last exported 3 hours ago · 1,234 rows");
    expect(rows[1]).toHaveTextContent("Timeline events");
    expect(rows[1]).toHaveTextContent("Excel");
    expect(rows[1]).toHaveTextContent("1 column");
    expect(rows[1]).toHaveTextContent("Only what changed");
    expect(rows[1]).toHaveTextContent("Not exported yet");
    expect(rows[2]).toHaveTextContent("Didn't finish");
    expect(rows[2]).toHaveTextContent("Last export didn't finish 2 days ago");
    expect(screen.getByTestId("new-export")).toBeInTheDocument();
  });

  it("opens an export when its row (or anything in it) is clicked, and comes back", async () => {
    const user = userEvent.setup();
    exportsBackend.listExportProfiles.mockResolvedValue([summary()]);
    exportsBackend.getExportProfile.mockResolvedValue(draft());
    render(Exports);
    const row = await screen.findByTestId("export-row");
    await user.click(within(row).getByText("Mailing list"));
    expect(exportsBackend.getExportProfile).toHaveBeenCalledWith("Mailing list");
    expect(await screen.findByTestId("export-name")).toHaveValue("Mailing list");
    expect(screen.getAllByTestId("export-column")).toHaveLength(3);

    await user.click(screen.getByTestId("back-to-exports"));
    expect(await screen.findByTestId("export-row")).toHaveTextContent("Mailing list");
    expect(exportsBackend.listExportProfiles).toHaveBeenCalledTimes(2);
  });

  it("won't let a new export quietly replace one with the same name", async () => {
    const user = userEvent.setup();
    exportsBackend.listExportProfiles.mockResolvedValue([summary()]);
    render(Exports);
    await user.click(await screen.findByTestId("new-export"));
    await user.type(await screen.findByTestId("export-name"), "Mailing list");
    await user.click(await screen.findByText("Email"));
    await user.click(screen.getByTestId("save-export"));
    expect(screen.getByTestId("export-error")).toHaveTextContent('There is already an export called “Mailing list”.');
    expect(exportsBackend.saveExportProfile).not.toHaveBeenCalled();
  });

  it("shows what went wrong, what to do, and Try again", async () => {
    exportsBackend.listExportProfiles.mockRejectedValue({ ...NO_BACKEND });
    render(Exports);
    expect(await screen.findByText("Couldn't show your exports")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("Clientele's engine isn't running");
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
    exportsBackend.listExportProfiles.mockResolvedValue([summary()]);
    await fireEvent.click(screen.getByTestId("retry"));
    expect(await screen.findByTestId("export-row")).toHaveTextContent("Mailing list");
  });
});
