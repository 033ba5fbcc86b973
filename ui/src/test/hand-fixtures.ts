// Engine answers about changes made by hand and forgetting, for component tests.

import type {
  DecisionView,
  ErasureView,
  ForgetOutcome,
  ForgetPreview,
  HandEditOutcome,
  RetentionView,
  SuppressionView,
} from "$lib/backend";

export function decision(overrides: Partial<DecisionView> = {}): DecisionView {
  return {
    id: 1,
    uid: "0f3a9c",
    kind: "merge",
    records: [
      {
        record: { provider: "tiquo", connection: "main", customer_ref: "cus_123" },
        provider_name: "Tiquo",
        label: "Tiquo customer cus_123 (main)",
        name: "Ana Silva",
      },
      {
        record: { provider: "vagaro", connection: "main", customer_ref: "V7" },
        provider_name: "Vagaro",
        label: "Vagaro customer V7 (main)",
        name: "Ana Silva",
      },
    ],
    made_at: "2026-03-03T10:15:00Z",
    made_by: "Front desk",
    undone_at: null,
    undone_by: null,
    summary: "Tiquo customer cus_123 and Vagaro customer V7 are the same person",
    people: [7],
    ...overrides,
  };
}

export function handOutcome(overrides: Partial<HandEditOutcome> = {}): HandEditOutcome {
  return { decision: decision(), person_id: 7, relay: { state: "not_joined" }, ...overrides };
}

export function forgetPreviewOf(overrides: Partial<ForgetPreview> = {}): ForgetPreview {
  return {
    person_id: 7,
    display_name: "Ana Silva",
    records: decision().records,
    deliveries: 12,
    exports: [
      { profile_name: "Mailing list", file: "/home/desk/Documents/mailing.csv", finished_at: "2026-03-01T09:00:00Z", certain: true },
      { profile_name: "Backup", file: "/home/desk/Documents/backup.xlsx", finished_at: "2026-02-01T09:00:00Z", certain: false },
    ],
    relay_joined: false,
    ...overrides,
  };
}

export function forgetOutcome(overrides: Partial<ForgetOutcome> = {}): ForgetOutcome {
  return {
    erasure_id: 3,
    people: 1,
    records: 2,
    deliveries: 12,
    rejections: 0,
    keep_forgetting: false,
    relay: { state: "not_joined" },
    ...overrides,
  };
}

export function retention(overrides: Partial<RetentionView> = {}): RetentionView {
  return { inactive_months: null, rejections_days: null, held_by_relay: false, can_change: true, ...overrides };
}

export function erasure(overrides: Partial<ErasureView> = {}): ErasureView {
  return {
    id: 1,
    at: "2026-03-03T11:00:00Z",
    computer: "Front desk",
    reason: "request",
    people: 1,
    records: 3,
    deliveries: 12,
    rejections: 1,
    ...overrides,
  };
}

export function suppression(overrides: Partial<SuppressionView> = {}): SuppressionView {
  return { forget_uid: "a1b2", since: "2026-03-03T11:00:00Z", records: 3, withheld: 2, lifted_at: null, ...overrides };
}
