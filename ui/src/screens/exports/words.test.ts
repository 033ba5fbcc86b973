import { describe, expect, it } from "vitest";
import {
  applyFormatChoice,
  durationText,
  formatChoice,
  defaultYesNo,
  emptyFilters,
  hasFilters,
  lastRunText,
  matchText,
  moveItem,
  onlyForEvents,
  plainMessage,
  suggestedFileName,
  transformSummary,
  transformsFor,
} from "./words";
import { column, run } from "../../test/export-fixtures";

describe("export words", () => {
  it("suggests the export's name and today's date, safe as a file name", () => {
    const day = new Date(2024, 4, 3, 23, 59);
    expect(suggestedFileName("Mailing list", "csv", day)).toBe("Mailing list-2024-05-03.csv");
    expect(suggestedFileName("Mailing list", "xlsx", day)).toBe("Mailing list-2024-05-03.xlsx");
    expect(suggestedFileName("VIP: A/B  test?", "csv", day)).toBe("VIP- A-B test--2024-05-03.csv");
    expect(suggestedFileName("   ", "csv", day)).toBe("export-2024-05-03.csv");
  });

  it("maps the one file-type choice to format and preset, both ways", () => {
    expect(applyFormatChoice("csv-excel")).toEqual({ format: "csv", preset: "excel" });
    expect(applyFormatChoice("csv-other")).toEqual({ format: "csv", preset: "other" });
    expect(applyFormatChoice("xlsx")).toEqual({ format: "xlsx", preset: "excel" });
    expect(formatChoice({ format: "xlsx", preset: "other" })).toBe("xlsx");
    expect(formatChoice({ format: "csv", preset: "other" })).toBe("csv-other");
    expect(formatChoice({ format: "csv", preset: "excel" })).toBe("csv-excel");
  });

  it("says how long a run took", () => {
    expect(durationText(null)).toBe("");
    expect(durationText(120)).toBe("less than a second");
    expect(durationText(1_000)).toBe("1 second");
    expect(durationText(42_400)).toBe("42 seconds");
    expect(durationText(120_000)).toBe("2 minutes");
    expect(durationText(3_725_000)).toBe("62 minutes 5 seconds");
  });

  it("describes the last run", () => {
    const now = new Date("2024-01-20T18:00:00Z");
    expect(lastRunText(null, now)).toBe("Not exported yet");
    expect(lastRunText(run({ rows: 1 }), now)).toBe("Last exported 3 hours ago · 1 row");
    expect(lastRunText(run({ outcome: "cancelled" }), now)).toBe("Last export was cancelled 3 hours ago");
    expect(lastRunText(run({ outcome: "failed" }), now)).toBe("Last export didn't finish 3 hours ago");
  });

  it("puts the engine's keys in words", () => {
    const cols = [column("Email", "email"), column("", "phone")];
    expect(plainMessage("This export can't be saved yet: name: give the profile a name", cols)).toBe(
      "This export can't be saved yet: give the profile a name",
    );
    expect(plainMessage("x: columns[0].transform.case: unknown variant `title`", cols)).toBe(
      "x: column 1 (“Email”): unknown variant `title`",
    );
    expect(plainMessage("columns[1].source: `nope` is not a source", cols)).toBe("column 2: `nope` is not a source");
    expect(plainMessage("x: time_zone: `Mars` is not a time zone", cols)).toBe("x: time zone: `Mars` is not a time zone");
    expect(plainMessage("The disk is full.", cols)).toBe("The disk is full.");
  });

  it("summarizes a column's changes", () => {
    expect(transformSummary(column("A", "email"))).toBe("Written as it is");
    expect(transformSummary(column("A", "first_seen", { date_format: "%d/%m/%Y", case: "lower" }))).toBe(
      "lowercase · Dates 20/01/2024",
    );
    expect(transformSummary(column("A", "tags", { join: " | ", date_format: "%Y" }))).toBe(
      "Dates %Y · Lists joined by “ | ”",
    );
  });

  it("knows which sources only a timeline event has", () => {
    expect(onlyForEvents("summary")).toBe(true);
    expect(onlyForEvents("change.email.old")).toBe(true);
    expect(onlyForEvents("providers")).toBe(false);
    expect(onlyForEvents("email")).toBe(false);
  });

  it("moves an item", () => {
    expect(moveItem(["a", "b", "c"], 2, 0)).toEqual(["c", "a", "b"]);
    expect(moveItem(["a", "b", "c"], 0, 2)).toEqual(["b", "c", "a"]);
  });

  it("offers only the ways of writing that fit a column's kind, and any it already uses", () => {
    const plain = column("X", "x");
    expect([...transformsFor("phone", plain)].sort()).toEqual(["default", "phone", "trim"]);
    expect([...transformsFor("date", plain)].sort()).toEqual(["date", "default"]);
    expect([...transformsFor("yes_no", plain)].sort()).toEqual(["default", "yes_no"]);
    expect([...transformsFor("phone_list", plain)].sort()).toEqual(["default", "join", "phone"]);
    expect(transformsFor("phone", plain).has("date")).toBe(false);
    expect(transformsFor("phone", column("X", "phone", { date_format: "%d/%m/%Y" })).has("date")).toBe(true);
    expect([...transformsFor(null, plain)].sort()).toEqual(["case", "default", "join", "trim"]);
  });

  it("writes yes/no in words for people and true/false for software", () => {
    expect(defaultYesNo("csv-excel")).toBe("yes_no");
    expect(defaultYesNo("xlsx")).toBe("yes_no");
    expect(defaultYesNo("csv-other")).toBe("true_false");
    expect(transformSummary(column("C", "email_marketing_opt_in", { yes_no: "one_zero" }))).toBe("Yes/no as 1 / 0");
  });

  it("says how many match", () => {
    expect(matchText("people", 40, 40, false)).toBe("All 40 customers");
    expect(matchText("people", 12, 40, true)).toBe("12 customers match");
    expect(matchText("people", 1, 40, true)).toBe("1 customer matches");
    expect(matchText("people", 0, 40, true)).toBe("No customers match these choices");
    expect(matchText("events", 3, 9, true)).toBe("3 timeline events match");
    expect(matchText("people", null, 120_000, true)).toBe("At most 120,000 customers (too many to count while you edit)");
    expect(matchText("people", null, null, true)).toBe("");
    expect(hasFilters(emptyFilters())).toBe(false);
    expect(hasFilters({ ...emptyFilters(), include_deleted: true })).toBe(false);
    expect(hasFilters({ ...emptyFilters(), email_marketing: false })).toBe(true);
  });
});
