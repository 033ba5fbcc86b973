// Realistic engine answers for the Exports screen's tests.

import type {
  ExportColumnDraft,
  ExportDraft,
  ExportFilterChoices,
  ExportPreviewView,
  ExportProfileSummary,
  ExportRunView,
  SourceOptionView,
} from "$lib/backend";
import { emptyFilters, plainColumn } from "../screens/exports/words";

export const PEOPLE_SOURCES: SourceOptionView[] = [
  { source: "email", label: "Email", group: "Customer details", sample: "ana.new@example.com · bruno@example.com", sensitive: false, kind: "text" },
  { source: "first_name", label: "First name", group: "Customer details", sample: "Ana · Bruno", sensitive: false, kind: "text" },
  { source: "last_name", label: "Last name", group: "Customer details", sample: "Silva · Costa", sensitive: false, kind: "text" },
  { source: "phone", label: "Phone", group: "Customer details", sample: "+44 7700 900123", sensitive: false, kind: "phone" },
  { source: "email_marketing_opt_in", label: "Email marketing", group: "Customer details", sample: "Yes · No", sensitive: false, kind: "yes_no" },
  { source: "tags", label: "Tags", group: "Customer details", sample: "VIP", sensitive: false, kind: "list" },
  { source: "loyalty_tier", label: "Loyalty tier", group: "Customer details", sample: "Silver · Gold", sensitive: false, kind: "text" },
  { source: "first_seen", label: "First seen", group: "Person facts", sample: "2024-01-05T10:00:00Z", sensitive: false, kind: "date" },
  { source: "zupy.cpf", label: "Cpf (Zupy)", group: "Provider fields", sample: null, sensitive: true, kind: "other" },
  { source: "vagaro.businessIds", label: "Business ids (Vagaro)", group: "Provider fields", sample: null, sensitive: false, kind: "other" },
];

export const EVENT_SOURCES: SourceOptionView[] = [
  ...PEOPLE_SOURCES,
  { source: "summary", label: "Summary", group: "Event facts", sample: "Joined through the booking portal", sensitive: false, kind: "text" },
  { source: "occurred_at", label: "When", group: "Event facts", sample: "2024-01-20T15:00:00Z", sensitive: false, kind: "date" },
];

export function column(header: string, source: string, overrides: Partial<ExportColumnDraft> = {}): ExportColumnDraft {
  return { ...plainColumn(header, source), ...overrides };
}

export function draft(overrides: Partial<ExportDraft> = {}): ExportDraft {
  return {
    name: "Mailing list",
    rows: "people",
    columns: [column("Email", "email"), column("First name", "first_name"), column("Tier", "loyalty_tier")],
    format: "csv",
    preset: "excel",
    neutralize_formulas: true,
    incremental: false,
    time_zone: null,
    filters: emptyFilters(),
    ...overrides,
  };
}

export function run(overrides: Partial<ExportRunView> = {}): ExportRunView {
  return {
    id: 1,
    profile: "Mailing list",
    started_at: "2024-01-20T15:00:00Z",
    finished_at: "2024-01-20T15:00:02Z",
    rows: 1234,
    file: "/home/ana/Documents/Mailing list-2024-01-20.csv",
    duration_ms: 2100,
    outcome: "succeeded",
    message: null,
    ...overrides,
  };
}

export function summary(overrides: Partial<ExportProfileSummary> = {}): ExportProfileSummary {
  return {
    name: "Mailing list",
    rows: "people",
    format: "csv",
    columns: 3,
    incremental: false,
    last_run: null,
    ...overrides,
  };
}

export function filterChoices(overrides: Partial<ExportFilterChoices> = {}): ExportFilterChoices {
  return {
    providers: [
      { value: "tiquo", label: "Tiquo" },
      { value: "vagaro", label: "Vagaro" },
    ],
    connections: [
      { value: "tiquo/main-salon", label: "Tiquo – main-salon" },
      { value: "vagaro/uptown", label: "Vagaro – uptown" },
    ],
    tiers: ["Gold", "Silver"],
    tags: ["Lapsed", "VIP"],
    ...overrides,
  };
}

export function preview(overrides: Partial<ExportPreviewView> = {}): ExportPreviewView {
  return {
    headers: ["Email", "First name", "Tier"],
    rows: [
      ["ana.new@example.com", "Ana", "Silver"],
      ["bruno@example.com", "Bruno", "'=HYPERLINK(\"http://x\")"],
    ],
    total: 2,
    matching: 2,
    ...overrides,
  };
}
