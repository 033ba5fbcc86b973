// The plain words the screens use for engine values (see docs/words.md). One place, so the same
// thing is always called the same.

import type { DeliveryStatus } from "$lib/backend";

/** The statuses a stored message can have, in the order the Activity filter offers them. */
export const STATUSES = ["processed", "pending", "needs_attention", "test"] as const satisfies readonly DeliveryStatus[];
export type KnownStatus = DeliveryStatus;

export const STATUS_LABEL: Record<KnownStatus, string> = {
  pending: "Waiting to be read",
  processed: "Read",
  needs_attention: "Couldn't read",
  test: "Test message",
};

export function isKnownStatus(status: string | null | undefined): status is KnownStatus {
  return (STATUSES as readonly string[]).includes(status ?? "");
}

/** "Read", "Couldn't read", … ; an unknown status is shown as "Received". */
export function statusLabel(status: string | null | undefined): string {
  return isKnownStatus(status) ? STATUS_LABEL[status] : "Received";
}

/** The badge colour class for a status. */
export function statusTone(status: string | null | undefined): string {
  switch (status) {
    case "processed":
      return "badge-ok";
    case "needs_attention":
      return "badge-warn";
    case "test":
      return "badge-accent";
    default:
      return "";
  }
}

export const NEEDS_ATTENTION_SENTENCE =
  "Couldn't read this message; it is kept and can be read again after an update.";

/** "Received twice, kept once" — `duplicates` counts the extra copies. */
export function duplicatesText(duplicates: number): string | null {
  if (duplicates <= 0) return null;
  if (duplicates === 1) return "Received twice, kept once";
  return `Received ${duplicates + 1} times, kept once`;
}

/** "Vagaro – main" */
export function connectionLabel(providerName: string, connection: string): string {
  return `${providerName} – ${connection}`;
}
