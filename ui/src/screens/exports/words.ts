// The plain words and small pure rules of the Exports screen (see docs/words.md): what a row is,
// what file is written, how a run went, and the draft the editor works on.

import type {
  ExportColumnDraft,
  ExportDraft,
  ExportProfileSummary,
  ExportRows,
  ExportRunView,
} from "$lib/backend";
import { count, formatRelative } from "$lib/format";

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
    hint: "A CSV file that Excel opens with accents and line breaks intact.",
  },
  {
    value: "csv-other",
    label: "CSV for other software",
    hint: "A plain CSV file (no byte-order mark, Unix line endings) for mailing tools and other programs.",
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
