import { fireEvent, render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", async () => ({
  ...(await import("../../test/mock-backend")),
  ...(await import("../../test/mock-exports")),
}));
import * as backend from "../../test/mock-backend";
import * as exportsBackend from "../../test/mock-exports";
import type { ExportDraft } from "$lib/backend";
import {
  EVENT_SOURCES,
  PEOPLE_SOURCES,
  column,
  draft,
  filterChoices,
  preview,
  summary,
} from "../../test/export-fixtures";
import ExportEditor from "./ExportEditor.svelte";

const onback = vi.fn();
const onchanged = vi.fn();

beforeEach(() => {
  backend.resetBackend();
  exportsBackend.resetExportsBackend();
  onback.mockReset();
  onchanged.mockReset();
  exportsBackend.exportSources.mockImplementation(async (rows: string) =>
    rows === "events" ? EVENT_SOURCES : PEOPLE_SOURCES,
  );
  exportsBackend.exportFilterChoices.mockResolvedValue(filterChoices());
  exportsBackend.previewExport.mockResolvedValue(preview());
  exportsBackend.exportHistory.mockResolvedValue([]);
  exportsBackend.getExportProfile.mockResolvedValue(draft());
  exportsBackend.saveExportProfile.mockImplementation(async (d: ExportDraft) =>
    summary({ name: d.name, rows: d.rows, format: d.format, columns: d.columns.length }),
  );
});

function open(name: string | null = "Mailing list", existingNames: string[] = []) {
  return render(ExportEditor, { props: { name, existingNames, onback, onchanged } });
}

/** The headers of the columns, in order on screen. */
function headers(): string[] {
  return screen.getAllByTestId("column-header-input").map((i) => (i as HTMLInputElement).value);
}

function columnNamed(header: string): HTMLElement {
  const col = screen
    .getAllByTestId("export-column")
    .find((c) => (within(c).getByTestId("column-header-input") as HTMLInputElement).value === header);
  if (!col) throw new Error(`no column ${header}`);
  return col;
}

/** The draft sent with the last save. */
function savedDraft(): ExportDraft {
  const calls = exportsBackend.saveExportProfile.mock.calls;
  expect(calls.length).toBeGreaterThan(0);
  return calls[calls.length - 1]![0] as ExportDraft;
}

describe("Export editor: columns", () => {
  it("adds a column from a filtered search, showing each option's group and a real sample", async () => {
    const user = userEvent.setup();
    open(null);
    await user.type(screen.getByTestId("export-name"), "Mailing list");
    await screen.findAllByTestId("source-option");
    await user.type(screen.getByTestId("source-search"), "tier");
    const options = screen.getAllByTestId("source-option");
    expect(options).toHaveLength(1);
    expect(options[0]).toHaveAttribute("data-source", "loyalty_tier");
    expect(options[0]).toHaveTextContent("Loyalty tier");
    expect(options[0]).toHaveTextContent("Customer details");
    expect(within(options[0]!).getByTestId("source-sample")).toHaveTextContent("Silver · Gold");

    // Searching by group works too.
    await user.clear(screen.getByTestId("source-search"));
    await user.type(screen.getByTestId("source-search"), "person facts");
    expect(screen.getAllByTestId("source-option").map((o) => o.dataset.source)).toEqual(["first_seen"]);
    await user.clear(screen.getByTestId("source-search"));
    await user.type(screen.getByTestId("source-search"), "nothing like this");
    expect(screen.getByTestId("source-no-match")).toHaveTextContent("Nothing matches “nothing like this”.");

    await user.clear(screen.getByTestId("source-search"));
    await user.type(screen.getByTestId("source-search"), "tier");
    await user.click(screen.getByTestId("source-option"));
    expect(headers()).toEqual(["Loyalty tier"]);
    expect(screen.getByTestId("export-column")).toHaveTextContent("From: Loyalty tier · Customer details");
    expect(screen.getByTestId("source-option")).toHaveTextContent("Added");

    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().columns).toEqual([column("Loyalty tier", "loyalty_tier")]);
  });

  it("marks sensitive fields, shows no sample for them, and adds them only when clicked", async () => {
    const user = userEvent.setup();
    open(null);
    await user.type(await screen.findByTestId("source-search"), "cpf");
    const option = screen.getByTestId("source-option");
    expect(option).toHaveTextContent("Sensitive");
    expect(within(option).queryByTestId("source-sample")).not.toBeInTheDocument();
    expect(option).toHaveTextContent("Examples hidden");
    // Enter in the search box adds nothing.
    await user.type(screen.getByTestId("source-search"), "{Enter}");
    expect(screen.queryByTestId("export-column")).not.toBeInTheDocument();
    await user.click(option);
    expect(screen.getByTestId("export-column")).toHaveTextContent("Sensitive");
    expect(headers()).toEqual(["Cpf (Zupy)"]);
  });

  it("renames a column and sends the new header", async () => {
    const user = userEvent.setup();
    open();
    await screen.findAllByTestId("export-column");
    const input = within(columnNamed("Email")).getByTestId("column-header-input");
    await user.clear(input);
    await user.type(input, "E-mail address");
    expect(headers()).toEqual(["E-mail address", "First name", "Tier"]);
    expect(screen.getByTestId("export-summary")).toHaveTextContent("Unsaved changes");
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().columns.map((c) => c.header)).toEqual(["E-mail address", "First name", "Tier"]);
    expect(await screen.findByTestId("export-saved")).toHaveTextContent("Saved.");
    expect(screen.getByTestId("export-summary")).toHaveTextContent("Saved");
    expect(onchanged).toHaveBeenCalled();
  });

  it("moves a column with Move up / Move down, keeping focus on the button that moved it", async () => {
    const user = userEvent.setup();
    open();
    await screen.findAllByTestId("export-column");
    const up = within(columnNamed("Tier")).getByTestId("move-up");
    await user.click(up);
    expect(headers()).toEqual(["Email", "Tier", "First name"]);
    expect(up).toHaveFocus();
    await user.click(up);
    expect(headers()).toEqual(["Tier", "Email", "First name"]);
    expect(up).toHaveFocus();
    // At the top, Move up does nothing (and keeps focus).
    await user.click(up);
    expect(headers()).toEqual(["Tier", "Email", "First name"]);
    expect(up).toHaveAttribute("aria-disabled", "true");

    const down = within(columnNamed("Email")).getByTestId("move-down");
    await user.click(down);
    expect(headers()).toEqual(["Tier", "First name", "Email"]);
    expect(down).toHaveFocus();

    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().columns.map((c) => c.source)).toEqual(["loyalty_tier", "first_name", "email"]);
  });

  it("moves the focused column with Alt+↑ and Alt+↓, and the focus goes with it", async () => {
    const user = userEvent.setup();
    open();
    await screen.findAllByTestId("export-column");
    const input = within(columnNamed("First name")).getByTestId("column-header-input");
    input.focus();
    await user.keyboard("{Alt>}{ArrowUp}{/Alt}");
    expect(headers()).toEqual(["First name", "Email", "Tier"]);
    expect(input).toHaveFocus();
    await user.keyboard("{Alt>}{ArrowDown}{/Alt}");
    await user.keyboard("{Alt>}{ArrowDown}{/Alt}");
    expect(headers()).toEqual(["Email", "Tier", "First name"]);
    expect(input).toHaveFocus();
    // Without Alt, the arrows are the text box's own.
    await user.keyboard("{ArrowUp}");
    expect(headers()).toEqual(["Email", "Tier", "First name"]);

    // The column itself, focused, moves too.
    const col = columnNamed("Tier");
    col.focus();
    await user.keyboard("{Alt>}{ArrowUp}{/Alt}");
    expect(headers()).toEqual(["Tier", "Email", "First name"]);
    expect(columnNamed("Tier")).toHaveFocus();
  });

  it("moves a column by dragging it onto another", async () => {
    open();
    await screen.findAllByTestId("export-column");
    const cols = screen.getAllByTestId("export-column");
    expect(cols[0]).toHaveAttribute("draggable", "true");
    await fireEvent.dragStart(cols[2]!);
    await fireEvent.dragEnter(cols[0]!);
    await fireEvent.dragOver(cols[0]!);
    await fireEvent.drop(cols[0]!);
    await fireEvent.dragEnd(cols[2]!);
    expect(headers()).toEqual(["Tier", "Email", "First name"]);

    const again = screen.getAllByTestId("export-column");
    await fireEvent.dragStart(again[0]!);
    await fireEvent.dragOver(again[2]!);
    await fireEvent.drop(again[2]!);
    expect(headers()).toEqual(["Email", "First name", "Tier"]);
  });

  it("removes a column", async () => {
    const user = userEvent.setup();
    open();
    await screen.findAllByTestId("export-column");
    await user.click(within(columnNamed("First name")).getByTestId("remove-column"));
    expect(headers()).toEqual(["Email", "Tier"]);
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().columns.map((c) => c.source)).toEqual(["email", "loyalty_tier"]);
  });

  it("changes how a column is written, offering only what fits each column", async () => {
    const user = userEvent.setup();
    exportsBackend.getExportProfile.mockResolvedValue(
      draft({
        columns: [
          column("Email", "email"),
          column("First name", "first_name"),
          column("Phone", "phone"),
          column("Joined", "first_seen"),
          column("Tags", "tags"),
          column("Email marketing", "email_marketing_opt_in"),
        ],
      }),
    );
    open();
    await screen.findAllByTestId("export-column");
    const open_ = async (header: string) => {
      const col = columnNamed(header);
      await user.click(within(col).getByText("Change how it's written"));
      return col;
    };

    const name = await open_("First name");
    await user.click(within(name).getByTestId("column-trim"));
    await user.selectOptions(within(name).getByTestId("column-case"), "upper");
    await user.type(within(name).getByTestId("column-default"), "(none)");
    expect(name).toHaveTextContent("Spaces trimmed · UPPERCASE · “(none)” when empty");
    for (const absent of ["column-phone", "column-date", "column-yes-no", "column-join"]) {
      expect(within(name).queryByTestId(absent)).not.toBeInTheDocument();
    }

    // A phone column offers phone formats, never dates.
    const phone = await open_("Phone");
    expect(within(phone).queryByTestId("column-date")).not.toBeInTheDocument();
    expect(within(phone).queryByTestId("column-case")).not.toBeInTheDocument();
    await user.selectOptions(within(phone).getByTestId("column-phone"), "e164");

    // A date column offers dates, never phone formats.
    const joined = await open_("Joined");
    expect(within(joined).queryByTestId("column-phone")).not.toBeInTheDocument();
    await user.selectOptions(within(joined).getByTestId("column-date"), "custom");
    const custom = within(joined).getByTestId("column-date-custom");
    await user.clear(custom);
    await user.type(custom, "%d.%m.%Y");

    const tags = await open_("Tags");
    await user.type(within(tags).getByTestId("column-join"), " | ");

    // A yes/no column says how a yes is written, defaulting to what the file type suggests.
    const consent = await open_("Email marketing");
    const yesNo = within(consent).getByTestId("column-yes-no") as HTMLSelectElement;
    expect(yesNo.selectedOptions[0]).toHaveTextContent("As the file type suggests (Yes / No)");
    await user.selectOptions(screen.getByTestId("export-format"), "csv-other");
    expect(yesNo.selectedOptions[0]).toHaveTextContent("As the file type suggests (true / false)");
    await user.selectOptions(yesNo, "one_zero");
    expect(consent).toHaveTextContent("Yes/no as 1 / 0");
    expect(within(consent).queryByTestId("column-date")).not.toBeInTheDocument();

    await user.click(screen.getByTestId("save-export"));
    const sent = savedDraft().columns;
    expect(sent[1]).toEqual(column("First name", "first_name", { trim: true, case: "upper", default: "(none)" }));
    expect(sent[2]).toEqual(column("Phone", "phone", { phone: "e164" }));
    expect(sent[3]).toEqual(column("Joined", "first_seen", { date_format: "%d.%m.%Y" }));
    expect(sent[4]).toEqual(column("Tags", "tags", { join: " | " }));
    expect(sent[5]).toEqual(column("Email marketing", "email_marketing_opt_in", { yes_no: "one_zero" }));
  });

  it("still shows a way of writing that an older export used on a column it doesn't fit, so it can be undone", async () => {
    const user = userEvent.setup();
    exportsBackend.getExportProfile.mockResolvedValue(
      draft({ columns: [column("Phone", "phone", { date_format: "%d/%m/%Y" })] }),
    );
    open();
    const phone = await screen.findByTestId("export-column");
    await user.click(within(phone).getByText("Change how it's written"));
    await user.selectOptions(within(phone).getByTestId("column-date"), "");
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().columns[0]).toEqual(column("Phone", "phone"));
  });

  it("reloads the list of fields when each row becomes a timeline event", async () => {
    const user = userEvent.setup();
    open(null);
    await screen.findAllByTestId("source-option");
    expect(screen.queryByText("Summary")).not.toBeInTheDocument();
    await user.click(screen.getByTestId("export-rows-events"));
    expect(exportsBackend.exportSources).toHaveBeenLastCalledWith("events");
    const summaryOption = await screen.findByText("Summary");
    await user.click(summaryOption);
    // Back to people: the event-only column is flagged.
    await user.click(screen.getByTestId("export-rows-people"));
    expect(exportsBackend.exportSources).toHaveBeenLastCalledWith("people");
    expect(screen.getByTestId("column-not-available")).toHaveTextContent("can't be in a file where each row is a person");
  });
});

describe("Export editor: the file", () => {
  it.each([
    ["csv-excel", "csv", "excel"],
    ["csv-other", "csv", "other"],
    ["xlsx", "xlsx", "excel"],
  ])("maps the file type %s to format %s, preset %s", async (choice, format, preset) => {
    const user = userEvent.setup();
    exportsBackend.getExportProfile.mockResolvedValue(draft({ format: "csv", preset: "other" }));
    open();
    const select = (await screen.findByTestId("export-format")) as HTMLSelectElement;
    expect(select.value).toBe("csv-other");
    await user.selectOptions(select, choice);
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft()).toMatchObject({ format, preset });
  });

  it("shows an opened Excel export as an Excel workbook", async () => {
    exportsBackend.getExportProfile.mockResolvedValue(draft({ format: "xlsx", preset: "excel" }));
    open();
    expect(((await screen.findByTestId("export-format")) as HTMLSelectElement).value).toBe("xlsx");
  });

  it("protects against formulas by default, and warns about the risk when that is turned off", async () => {
    const user = userEvent.setup();
    open(null);
    const box = await screen.findByTestId("neutralize-formulas");
    expect(box).toBeChecked();
    expect(screen.queryByTestId("neutralize-warning")).not.toBeInTheDocument();
    await user.click(box);
    const warning = screen.getByTestId("neutralize-warning");
    expect(warning).toHaveTextContent("=HYPERLINK");
    expect(warning).toHaveTextContent("run it as a formula when the file is opened");

    await user.type(screen.getByTestId("export-name"), "For the CRM");
    await user.click(screen.getAllByTestId("source-option")[0]!);
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft()).toMatchObject({ name: "For the CRM", neutralize_formulas: false, incremental: false });

    await user.click(box);
    expect(screen.queryByTestId("neutralize-warning")).not.toBeInTheDocument();
  });

  it("says what the protection does for each file type: phone numbers go as they are only for other software", async () => {
    const user = userEvent.setup();
    open(null);
    const help = await screen.findByTestId("neutralize-help");
    expect(help).toHaveTextContent("gets a ' in front");
    expect(help).toHaveTextContent("Excel would turn +447700900123 into the number 447700900123");
    expect(help).toHaveTextContent("An Excel workbook (.xlsx) keeps them exactly");
    expect(screen.getByText(/Going into a mailing tool such as Mailchimp\? Choose “CSV for other software”/)).toBeInTheDocument();
    await user.selectOptions(screen.getByTestId("export-format"), "csv-other");
    expect(screen.getByTestId("neutralize-help")).toHaveTextContent(
      "Phone numbers in a phone column (like +447700900123) go as they are, ready for a mailing tool",
    );
    await user.selectOptions(screen.getByTestId("export-format"), "xlsx");
    expect(screen.getByTestId("neutralize-help")).toHaveTextContent("marked as text inside the workbook");
  });

  it("sends “only what changed” when it is ticked", async () => {
    const user = userEvent.setup();
    open();
    const box = await screen.findByTestId("incremental");
    expect(box).not.toBeChecked();
    await user.click(box);
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().incremental).toBe(true);
  });

  it("trims the name and says what must change before saving", async () => {
    const user = userEvent.setup();
    open(null);
    await screen.findAllByTestId("source-option");
    await user.click(screen.getByTestId("save-export"));
    expect(screen.getByTestId("export-error")).toHaveTextContent("Give the export a name first");
    await user.type(screen.getByTestId("export-name"), "  Mailing list  ");
    await user.click(screen.getByTestId("save-export"));
    expect(screen.getByTestId("export-error")).toHaveTextContent("Add at least one column first");
    expect(exportsBackend.saveExportProfile).not.toHaveBeenCalled();
    await user.click(screen.getAllByTestId("source-option")[0]!);
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().name).toBe("Mailing list");
    expect(await screen.findByRole("heading", { level: 1 })).toHaveTextContent("Mailing list");
  });

  it("shows the engine's reason when saving fails, with columns named in words", async () => {
    const user = userEvent.setup();
    exportsBackend.saveExportProfile.mockRejectedValue({
      code: "export_profile_invalid",
      message:
        "This export can't be saved yet: columns[1].transform.date.format: `%Q` is not a date format Clientele understands (use codes such as %Y-%m-%d %H:%M)",
    });
    open();
    await user.click(await screen.findByTestId("save-export"));
    const error = await screen.findByTestId("export-error");
    expect(error).toHaveTextContent(
      "Couldn't save: This export can't be saved yet: column 2 (“First name”): `%Q` is not a date format",
    );
    expect(error).not.toHaveTextContent("columns[1]");
    expect(onchanged).not.toHaveBeenCalled();
  });

  it("renames by saving under the new name and removing the old one", async () => {
    const user = userEvent.setup();
    exportsBackend.deleteExportProfile.mockResolvedValue(undefined);
    open("Mailing list", ["Mailing list"]);
    const name = await screen.findByTestId("export-name");
    await user.clear(name);
    await user.type(name, "Newsletter");
    expect(screen.getByText(/Saving renames “Mailing list”/)).toBeInTheDocument();
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().name).toBe("Newsletter");
    expect(exportsBackend.deleteExportProfile).toHaveBeenCalledWith("Mailing list");
    expect(await screen.findByTestId("export-saved")).toHaveTextContent("“Mailing list” is now called “Newsletter”");
  });

  it("deletes only after confirming", async () => {
    const user = userEvent.setup();
    exportsBackend.deleteExportProfile.mockResolvedValue(undefined);
    open();
    await user.click(await screen.findByTestId("delete-export"));
    const dialog = screen.getByTestId("delete-dialog");
    expect(dialog).toHaveTextContent("Delete “Mailing list”?");
    expect(dialog).toHaveTextContent("Files you already exported stay where they are.");
    await user.click(screen.getByTestId("cancel-delete"));
    expect(screen.queryByTestId("delete-dialog")).not.toBeInTheDocument();
    expect(exportsBackend.deleteExportProfile).not.toHaveBeenCalled();

    await user.click(screen.getByTestId("delete-export"));
    await user.click(screen.getByTestId("confirm-delete"));
    expect(exportsBackend.deleteExportProfile).toHaveBeenCalledWith("Mailing list");
    await waitFor(() => expect(onback).toHaveBeenCalled());
    expect(onchanged).toHaveBeenCalled();
  });

  it("has no Delete for an export that was never saved", async () => {
    open(null);
    await screen.findByTestId("export-name");
    expect(screen.queryByTestId("delete-export")).not.toBeInTheDocument();
  });

  it("says plainly when the export can't be opened", async () => {
    exportsBackend.getExportProfile.mockRejectedValue({ code: "not_found", message: "There is no export called 'Gone'." });
    open("Gone");
    expect(await screen.findByText("Couldn't open this export")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("There is no export called 'Gone'.");
    expect(screen.getByText("It may have been removed. Go back and choose again.")).toBeInTheDocument();
  });
});

describe("Export editor: which customers", () => {
  it("chooses who is exported on screen and sends it with the export", async () => {
    const user = userEvent.setup();
    open();
    const section = await screen.findByTestId("export-filters");
    expect(section).toHaveTextContent("Which customers");
    expect(await within(section).findByTestId("filter-count")).toHaveTextContent("All 2 customers");

    await user.selectOptions(within(section).getByTestId("filter-email-marketing"), "yes");
    await user.selectOptions(within(section).getByTestId("filter-sms-marketing"), "not-yes");
    const box = (testid: string, value: string) =>
      within(section)
        .getAllByTestId(testid)
        .find((b) => b.dataset.value === value)!;
    await user.click(box("filter-provider", "tiquo"));
    await user.click(box("filter-tier", "Gold"));
    await user.click(box("filter-tag", "VIP"));
    await user.click(within(section).getByTestId("filter-include-deleted"));
    // One connection per provider: the provider boxes say it all.
    expect(within(section).queryByTestId("filter-connection")).not.toBeInTheDocument();
    expect(screen.getByTestId("export-summary")).toHaveTextContent("Unsaved changes");

    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().filters).toMatchObject({
      email_marketing: true,
      sms_marketing: false,
      providers: ["tiquo"],
      tiers: ["Gold"],
      tags: ["VIP"],
      include_deleted: true,
    });
    // The preview follows the choices (the engine filters it).
    await waitFor(() =>
      expect((exportsBackend.previewExport.mock.calls.at(-1)![0] as ExportDraft).filters.email_marketing).toBe(true),
    );
    // Unticking removes it again.
    await user.click(box("filter-tier", "Gold"));
    await user.selectOptions(within(section).getByTestId("filter-email-marketing"), "any");
    await user.click(screen.getByTestId("save-export"));
    expect(savedDraft().filters).toMatchObject({ email_marketing: null, tiers: [] });
  });

  it("says how many match as the choices change", async () => {
    const user = userEvent.setup();
    open();
    const section = await screen.findByTestId("export-filters");
    exportsBackend.previewExport.mockResolvedValue(preview({ rows: [["ana@example.com", "Ana", "Gold"]], total: 40, matching: 12 }));
    await user.selectOptions(within(section).getByTestId("filter-email-marketing"), "yes");
    await waitFor(() => expect(within(section).getByTestId("filter-count")).toHaveTextContent("12 customers match"));
    exportsBackend.previewExport.mockResolvedValue(preview({ rows: [], total: 40, matching: 0 }));
    await user.selectOptions(within(section).getByTestId("filter-sms-marketing"), "yes");
    await waitFor(() =>
      expect(within(section).getByTestId("filter-count")).toHaveTextContent("No customers match these choices"),
    );
    exportsBackend.previewExport.mockResolvedValue(preview({ rows: [], total: 120_000, matching: null }));
    await user.selectOptions(within(section).getByTestId("filter-sms-marketing"), "any");
    await waitFor(() =>
      expect(within(section).getByTestId("filter-count")).toHaveTextContent("At most 120,000 customers"),
    );
  });

  it("opens an export's saved choices, keeping ones nobody has any more, and offers connections when a provider has several", async () => {
    exportsBackend.exportFilterChoices.mockResolvedValue(
      filterChoices({
        connections: [
          { value: "tiquo/main-salon", label: "Tiquo – main-salon" },
          { value: "tiquo/uptown", label: "Tiquo – uptown" },
        ],
      }),
    );
    exportsBackend.getExportProfile.mockResolvedValue(
      draft({
        filters: {
          email_marketing: true,
          sms_marketing: null,
          providers: [],
          connections: ["tiquo/uptown"],
          tiers: ["gold", "Platinum"],
          tags: [],
          include_deleted: false,
          event_from: "2024-01-01",
          event_to: null,
          event_kinds: [],
        },
      }),
    );
    open();
    const section = await screen.findByTestId("export-filters");
    expect((within(section).getByTestId("filter-email-marketing") as HTMLSelectElement).value).toBe("yes");
    const tiers = await within(section).findAllByTestId("filter-tier");
    expect(tiers.map((t) => [t.dataset.value, (t as HTMLInputElement).checked])).toEqual([
      ["Gold", true],
      ["Silver", false],
      ["Platinum", true],
    ]);
    expect(section).toHaveTextContent("Platinum (nobody has it now)");
    const connections = within(section).getAllByTestId("filter-connection");
    expect(connections.map((c) => (c as HTMLInputElement).checked)).toEqual([false, true]);
    expect(within(section).getByTestId("filter-kept")).toHaveTextContent("set outside this screen");
  });

  it("has no “deleted” choice for a timeline export, and says when the choices can't be listed", async () => {
    const user = userEvent.setup();
    exportsBackend.exportFilterChoices.mockRejectedValue({ code: "internal", message: "The database is busy." });
    open();
    const section = await screen.findByTestId("export-filters");
    expect(await within(section).findByRole("alert")).toHaveTextContent(
      "Couldn't list your providers, tiers and tags: The database is busy.",
    );
    // The consent choices work without the list.
    expect(within(section).getByTestId("filter-email-marketing")).toBeInTheDocument();
    expect(within(section).getByTestId("filter-include-deleted")).toBeInTheDocument();
    await user.click(screen.getByTestId("export-rows-events"));
    expect(within(section).queryByTestId("filter-include-deleted")).not.toBeInTheDocument();
  });
});

describe("Export editor: preview", () => {
  it("shows the first rows exactly as the preview returns them, and how many there are", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => [`customer${i + 1}@example.com`, ` Ana ${i + 1}`, "Silver"]);
    exportsBackend.previewExport.mockResolvedValue(preview({ rows, total: 1234, matching: 1234 }));
    open();
    const table = await screen.findByTestId("export-preview");
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Email",
      "First name",
      "Tier",
    ]);
    const cells = table.querySelectorAll("tbody tr:first-child td");
    expect([...cells].map((c) => c.textContent)).toEqual(["customer1@example.com", " Ana 1", "Silver"]);
    expect(table.querySelectorAll("tbody tr")).toHaveLength(50);
    expect(screen.getByTestId("preview-count")).toHaveTextContent("Showing the first 50 of 1,234");
    const [sentFirst] = exportsBackend.previewExport.mock.calls[0]!;
    expect((sentFirst as ExportDraft).filters.email_marketing).toBeNull();
    const [sent, limit] = exportsBackend.previewExport.mock.calls[0]!;
    expect(limit).toBe(50);
    expect((sent as ExportDraft).columns.map((c) => c.source)).toEqual(["email", "first_name", "loyalty_tier"]);
  });

  it("counts what the file will have: the rows that match, or at most how many when not counted", async () => {
    const user = userEvent.setup();
    exportsBackend.previewExport.mockResolvedValue(preview({ total: 40, matching: 2 }));
    open();
    expect(await screen.findByTestId("preview-count")).toHaveTextContent("Showing all 2 rows");
    exportsBackend.previewExport.mockResolvedValue(preview({ total: 120_000, matching: null }));
    await user.selectOptions(screen.getByTestId("filter-email-marketing"), "yes");
    await waitFor(() =>
      expect(screen.getByTestId("preview-count")).toHaveTextContent("Showing the first 2 of at most 120,000"),
    );
  });

  it("asks again a moment after a change, not on every keystroke", async () => {
    const user = userEvent.setup();
    open();
    await screen.findByTestId("export-preview");
    const before = exportsBackend.previewExport.mock.calls.length;
    const input = within(columnNamed("Tier")).getByTestId("column-header-input");
    await user.type(input, "xyz");
    await waitFor(() => expect(exportsBackend.previewExport.mock.calls.length).toBe(before + 1));
    const last = exportsBackend.previewExport.mock.calls.at(-1)![0] as ExportDraft;
    expect(last.columns[2]!.header).toBe("Tierxyz");
  });

  it("shows the preview's error inline and keeps the editor working", async () => {
    const user = userEvent.setup();
    exportsBackend.previewExport.mockRejectedValue({
      code: "export_profile_invalid",
      message: "This export can't be saved yet: columns[0].transform.date.format: `%Q` is not a date format",
    });
    open();
    expect(await screen.findByTestId("preview-error")).toHaveTextContent(
      "Couldn't show a preview: This export can't be saved yet: column 1 (“Email”): `%Q` is not a date format",
    );
    exportsBackend.previewExport.mockResolvedValue(preview());
    await user.click(within(columnNamed("Email")).getByTestId("remove-column"));
    expect(await screen.findByTestId("export-preview")).toBeInTheDocument();
    expect(screen.queryByTestId("preview-error")).not.toBeInTheDocument();
  });

  it("says when there are no customers yet", async () => {
    exportsBackend.previewExport.mockResolvedValue(preview({ rows: [], total: 0 }));
    open();
    expect(await screen.findByTestId("preview-empty")).toHaveTextContent("No customers yet");
    expect(screen.queryByTestId("export-preview")).not.toBeInTheDocument();
  });

  it("asks for a column before previewing", async () => {
    open(null);
    expect(await screen.findByTestId("preview-no-columns")).toBeInTheDocument();
    await new Promise((r) => setTimeout(r, 300));
    expect(exportsBackend.previewExport).not.toHaveBeenCalled();
  });
});
