// The plain words and small pure rules of the Exports screen (see docs/words.md): what a row is,
// what file is written, how a run went, and the draft the editor works on.

import type {
  ColumnKind,
  ExportColumnDraft,
  ExportDraft,
  ExportFiltersDraft,
  ExportProfileSummary,
  ExportRows,
  ExportRunView,
  YesNoWords,
} from "$lib/backend";
import { count, formatNumber, formatRelative } from "$lib/format";

/** How many rows the live preview shows. */
export const PREVIEW_LIMIT = 50;

/** "People" / "Timeline events" — what each row of the file is. */
export function rowsLabel(rows: string): string {
  return rows === "events" ? "Timeline events" : "People";
}

/** "CSV" / "Excel" for the list of exports. */
export function formatLabel(format: string): string {
  return format === "xlsx" ? "Excel" : "CSV";
}

/** The one <select> that picks both the file type and the CSV preset. */
export type FormatChoice = "csv-excel" | "csv-other" | "xlsx";

export const FORMAT_CHOICES: { value: FormatChoice; label: string; hint: string }[] = [
  {
    value: "csv-excel",
    label: "CSV for Excel",
    hint: "A CSV file that Excel opens with accents and line breaks intact. Going into a mailing tool such as Mailchimp? Choose “CSV for other software”.",
  },
  {
    value: "csv-other",
    label: "CSV for other software",
    hint: "A plain CSV file (no byte-order mark, Unix line endings) for mailing tools such as Mailchimp and other programs.",
  },
  {
    value: "xlsx",
    label: "Excel workbook (.xlsx)",
    hint: "A spreadsheet file that opens in Excel, Numbers or LibreOffice.",
  },
];

export function formatChoice(draft: Pick<ExportDraft, "format" | "preset">): FormatChoice {
  if (draft.format === "xlsx") return "xlsx";
  return draft.preset === "other" ? "csv-other" : "csv-excel";
}

export function applyFormatChoice(choice: FormatChoice): Pick<ExportDraft, "format" | "preset"> {
  switch (choice) {
    case "xlsx":
      return { format: "xlsx", preset: "excel" };
    case "csv-other":
      return { format: "csv", preset: "other" };
    default:
      return { format: "csv", preset: "excel" };
  }
}

/**
 * What "Protect against spreadsheet formulas" does for this file type, in words (the rule is the
 * engine's: clientele_core::export::cell).
 */
export function protectionHelp(choice: FormatChoice): string {
  switch (choice) {
    case "csv-other":
      return "Text that starts with =, +, - or @ gets a ' in front, so a spreadsheet can't run it as a formula. Phone numbers in a phone column (like +447700900123) go as they are, ready for a mailing tool: a number like that can't run as a formula.";
    case "xlsx":
      return "Text that starts with =, +, - or @ is marked as text inside the workbook: Excel shows it exactly as written and never runs it. Nothing is added in front, phone numbers included.";
    default:
      return "Text that starts with =, +, - or @ gets a ' in front, so Excel shows it instead of running it as a formula. Phone numbers get one too, or Excel would turn +447700900123 into the number 447700900123. An Excel workbook (.xlsx) keeps them exactly, with nothing in front.";
  }
}

export function fileExtension(format: string): string {
  return format === "xlsx" ? "xlsx" : "csv";
}

/** YYYY-MM-DD in this computer's time zone. */
export function localDate(now: Date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/**
 * The name offered in the save dialog: the export's name and today's date ("Mailing
 * list-2024-05-03.csv", like the engine's own default), without characters a file name can't have.
 */
export function suggestedFileName(name: string, format: string, now: Date = new Date()): string {
  const base =
    name
      .replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "-")
      .replace(/\s+/g, " ")
      .trim()
      .replace(/^\.+/, "") || "export";
  return `${base}-${localDate(now)}.${fileExtension(format)}`;
}

/** "less than a second", "12 seconds", "3 minutes 5 seconds". */
export function durationText(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return "less than a second";
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return count(seconds, "second", "seconds");
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  const m = count(minutes, "minute", "minutes");
  return rest ? `${m} ${count(rest, "second", "seconds")}` : m;
}

/** How a run went, in a word or two. */
export function outcomeLabel(outcome: string): string {
  switch (outcome) {
    case "succeeded":
      return "Finished";
    case "cancelled":
      return "Cancelled";
    case "failed":
      return "Didn't finish";
    case "running":
      return "Running";
    default:
      return outcome;
  }
}

export function outcomeTone(outcome: string): string {
  switch (outcome) {
    case "succeeded":
      return "badge-ok";
    case "failed":
      return "badge-danger";
    case "running":
      return "badge-accent";
    default:
      return "badge-warn";
  }
}

/** "Last exported 3 hours ago · 1,234 rows", "Not exported yet", … */
export function lastRunText(run: ExportRunView | null, now: Date = new Date()): string {
  if (!run) return "Not exported yet";
  const when = formatRelative(run.started_at, now);
  switch (run.outcome) {
    case "succeeded":
      return `Last exported ${when} · ${count(run.rows, "row", "rows")}`;
    case "cancelled":
      return `Last export was cancelled ${when}`;
    case "failed":
      return `Last export didn't finish ${when}`;
    case "running":
      return `Exporting now (started ${when})`;
    default:
      return `Last export ${when}`;
  }
}

/** "People · CSV · 5 columns" */
export function profileLine(profile: Pick<ExportProfileSummary, "rows" | "format" | "columns">): string {
  return `${rowsLabel(profile.rows)} · ${formatLabel(profile.format)} · ${count(profile.columns, "column", "columns")}`;
}

// Columns ---------------------------------------------------------------------------------------

/** A column in the editor: the draft column plus a key that follows it when it is moved. */
export type EditColumn = ExportColumnDraft & { key: number };

let nextKey = 1;

export function withKey(column: ExportColumnDraft): EditColumn {
  return { ...column, key: nextKey++ };
}

/** A column showing `source` under `header`, written as it is (no transform). */
export function plainColumn(header: string, source: string): ExportColumnDraft {
  return {
    header,
    source,
    trim: false,
    case: null,
    default: null,
    date_format: null,
    phone: null,
    join: null,
    yes_no: null,
  };
}

export function newColumn(header: string, source: string): EditColumn {
  return withKey(plainColumn(header, source));
}

export function stripKey(column: EditColumn): ExportColumnDraft {
  return {
    header: column.header,
    source: column.source,
    trim: column.trim,
    case: column.case,
    default: column.default,
    date_format: column.date_format,
    phone: column.phone,
    join: column.join,
    yes_no: column.yes_no,
  };
}

/** No filters: everyone (people deleted everywhere left out). */
export function emptyFilters(): ExportFiltersDraft {
  return {
    email_marketing: null,
    sms_marketing: null,
    providers: [],
    connections: [],
    tiers: [],
    tags: [],
    include_deleted: false,
    event_from: null,
    event_to: null,
    event_kinds: [],
  };
}

export function emptyDraft(): ExportDraft {
  return {
    name: "",
    rows: "people",
    columns: [],
    format: "csv",
    preset: "excel",
    neutralize_formulas: true,
    incremental: false,
    time_zone: null,
    filters: emptyFilters(),
  };
}

/** Moves the item at `from` to `to` (both in range); returns a new array. */
export function moveItem<T>(items: readonly T[], from: number, to: number): T[] {
  const next = [...items];
  const [item] = next.splice(from, 1);
  if (item === undefined) return next;
  next.splice(to, 0, item);
  return next;
}

export const DATE_PRESETS: { value: string; label: string }[] = [
  { value: "%d/%m/%Y", label: "Day/month/year (20/01/2024)" },
  { value: "%m/%d/%Y", label: "Month/day/year (01/20/2024)" },
  { value: "%Y-%m-%d", label: "Year-month-day (2024-01-20)" },
  { value: "%d/%m/%Y %H:%M", label: "Day/month/year and time (20/01/2024 15:00)" },
  { value: "%d %b %Y", label: "Short month (20 Jan 2024)" },
];

/** How a yes/no answer can be written. */
export const YES_NO_CHOICES: { value: YesNoWords; label: string }[] = [
  { value: "yes_no", label: "Yes / No" },
  { value: "true_false", label: "true / false" },
  { value: "one_zero", label: "1 / 0" },
];

/** How yes/no answers are written when a column doesn't say: words for a person, true/false for software. */
export function defaultYesNo(choice: FormatChoice): YesNoWords {
  return choice === "csv-other" ? "true_false" : "yes_no";
}

export function yesNoLabel(words: YesNoWords): string {
  return YES_NO_CHOICES.find((c) => c.value === words)?.label ?? words;
}

/** The ways of writing a column, as the editor offers them. */
export type TransformName = "trim" | "case" | "phone" | "date" | "yes_no" | "default" | "join";

/**
 * Which ways of writing fit a column of each kind. The kind comes from the engine's field
 * catalogue (SourceOptionView.kind), so a phone column is never offered date formats.
 */
const FITS: Record<ColumnKind, TransformName[]> = {
  text: ["trim", "case", "default"],
  phone: ["trim", "phone", "default"],
  phone_list: ["phone", "default", "join"],
  date: ["date", "default"],
  yes_no: ["yes_no", "default"],
  number: ["default"],
  list: ["trim", "case", "default", "join"],
  other: ["trim", "case", "default", "join"],
};

/**
 * The ways of writing to offer for `column`: those that fit its kind (the general ones while the
 * kind isn't known yet), plus any it already uses, so a choice made earlier can still be undone.
 */
export function transformsFor(kind: ColumnKind | null | undefined, column: ExportColumnDraft): Set<TransformName> {
  const out = new Set<TransformName>(FITS[kind ?? "other"]);
  if (column.trim) out.add("trim");
  if (column.case) out.add("case");
  if (column.phone) out.add("phone");
  if (column.date_format) out.add("date");
  if (column.yes_no) out.add("yes_no");
  if (column.default) out.add("default");
  if (column.join) out.add("join");
  return out;
}

export function isDatePreset(format: string | null): boolean {
  return format === null || DATE_PRESETS.some((p) => p.value === format);
}

/** "Written as it is", or a short list of what changes ("Trimmed · UPPERCASE · Dates 20/01/2024"). */
export function transformSummary(column: ExportColumnDraft): string {
  const parts: string[] = [];
  if (column.trim) parts.push("Spaces trimmed");
  if (column.case === "upper") parts.push("UPPERCASE");
  if (column.case === "lower") parts.push("lowercase");
  if (column.phone === "e164") parts.push("Phones international");
  if (column.phone === "national") parts.push("Phones national");
  if (column.date_format) {
    const preset = DATE_PRESETS.find((p) => p.value === column.date_format);
    parts.push(`Dates ${preset ? (/\(([^)]*)\)/.exec(preset.label)?.[1] ?? column.date_format) : column.date_format}`);
  }
  if (column.yes_no) parts.push(`Yes/no as ${yesNoLabel(column.yes_no)}`);
  if (column.default) parts.push(`“${column.default}” when empty`);
  if (column.join !== null && column.join !== "") parts.push(`Lists joined by “${column.join}”`);
  return parts.length ? parts.join(" · ") : "Written as it is";
}

/** Facts that only a timeline event has; a column with one can't be in a file of people. */
const EVENT_ONLY = new Set([
  "kind",
  "occurred_at",
  "summary",
  "provider",
  "connection",
  "event_type",
  "customer_ref",
  "changed_fields",
  "changes",
]);

export function onlyForEvents(source: string): boolean {
  return EVENT_ONLY.has(source) || source.startsWith("change.");
}

/**
 * The engine's validation message with its keys put in words: "columns[1].transform.date.format:
 * …" becomes "Column 2 (“Joined”): …".
 */
export function plainMessage(message: string, columns: readonly Pick<ExportColumnDraft, "header">[]): string {
  return message
    .replace(/columns\[(\d+)\](?:\.[\w.]+)?: /g, (_, i: string) => {
      const n = Number(i);
      const header = columns[n]?.header.trim();
      return header ? `column ${n + 1} (“${header}”): ` : `column ${n + 1}: `;
    })
    .replace(/(^|: )(?:name|columns|format|rows): /g, "$1")
    .replace(/(^|: )time_zone: /g, "$1time zone: ");
}

// Which customers ----------------------------------------------------------------------------------

/** The consent filter's three choices, as a <select> value. */
export type ConsentChoice = "any" | "yes" | "not-yes";

export function consentChoice(value: boolean | null): ConsentChoice {
  return value === true ? "yes" : value === false ? "not-yes" : "any";
}

export function consentValue(choice: string): boolean | null {
  return choice === "yes" ? true : choice === "not-yes" ? false : null;
}

/** Whether any choice narrows the rows (include deleted widens them, so it doesn't count). */
export function hasFilters(f: ExportFiltersDraft): boolean {
  return (
    f.email_marketing !== null ||
    f.sms_marketing !== null ||
    f.providers.length > 0 ||
    f.connections.length > 0 ||
    f.tiers.length > 0 ||
    f.tags.length > 0 ||
    f.event_from !== null ||
    f.event_to !== null ||
    f.event_kinds.length > 0
  );
}

/**
 * How many rows the export has now: "All 40 customers", "12 customers match", "No customers match
 * these choices", or — when the engine didn't count because there are too many to read while
 * editing — "At most 120,000 customers".
 */
export function matchText(rows: string, matching: number | null, total: number | null, filtered: boolean): string {
  if (total === null) return "";
  const [one, many] = rows === "events" ? ["timeline event", "timeline events"] : ["customer", "customers"];
  if (matching === null) return `At most ${count(total, one, many)} (too many to count while you edit)`;
  if (!filtered) return matching === 1 ? `The only ${one}` : `All ${count(matching, one, many)}`;
  if (matching === 0) return `No ${many} match these choices`;
  return `${count(matching, one, many)} ${matching === 1 ? "matches" : "match"}`;
}
