// The plain words the screens use for engine values (see docs/words.md). One place, so the same
// thing is always called the same.

import type { ActivityItem, DeliveryDetailView, DeliveryStatus, FieldGroup, PhoneLink } from "$lib/backend";

/** The statuses a stored message can have, in the order the Activity filter offers them. */
export const STATUSES = ["processed", "pending", "needs_attention", "test"] as const satisfies readonly DeliveryStatus[];
export type KnownStatus = DeliveryStatus;

export const STATUS_LABEL: Record<KnownStatus, string> = {
  pending: "Waiting to be read",
  processed: "Read",
  needs_attention: "Couldn't read",
  test: "Test message",
  erased: "Erased",
};

export function isKnownStatus(status: string | null | undefined): status is KnownStatus {
  return Object.hasOwn(STATUS_LABEL, status ?? "");
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

/** Headings of the Person screen's profile groups; the first group (name, email, phone) has none. */
export const FIELD_GROUP_TITLE: Record<FieldGroup, string | null> = {
  main: null,
  contact: "Contact",
  address: "Address",
  marketing: "Marketing",
  loyalty: "Loyalty",
  dates: "Dates",
  other: "Other details",
};

const regionNames = (() => {
  try {
    return new Intl.DisplayNames(undefined, { type: "region" });
  } catch {
    return null;
  }
})();

/** "United Kingdom" for "GB", in the user's language; the code itself when the name is unknown. */
export function countryName(code: string): string {
  try {
    return regionNames?.of(code.toUpperCase()) ?? code;
  } catch {
    return code;
  }
}

/**
 * What the Person screen says next to a phone number that links nobody, or null when it links
 * (the phone rules are libphonenumber's: a number they call invalid never links records).
 */
export function phoneLinkText(link: PhoneLink | null | undefined): string | null {
  if (!link) return null;
  switch (link.kind) {
    case "linked":
      return null;
    case "shared":
      return `Not linked to other records: ${link.records} or more records share this number, so it may be a shop's or a placeholder.`;
    case "too_short":
      return "Not linked to other records: this is too short to be a phone number.";
    case "no_country":
      return "Not linked to other records: it has no country code, and no country for phone numbers is set in Settings.";
    case "invalid":
      return link.country
        ? `Not linked to other records: this isn't a valid ${countryName(link.country)} number.`
        : "Not linked to other records: this isn't a valid phone number.";
  }
}

/**
 * What "Copy details" puts on the clipboard for one stored message: everything support needs to
 * find and read it — ids, provider, connection, times, the verification result, the reading
 * error, the kept headers (never a signature or secret: those are never stored) and the message
 * itself. Nothing here is secret.
 */
export function deliveryDetailsText(d: DeliveryDetailView): string {
  const lines = [
    `Clientele message ${d.id}`,
    `Provider: ${d.provider_name} (${d.provider})`,
    `Connection: ${d.connection}`,
    `Received: ${d.received_at}`,
    `Status: ${d.status}`,
    `Received ${d.duplicates + 1} time(s)`,
    `Duplicate check key: ${d.dedupe_key}`,
    `Security check: ${d.verification}`,
  ];
  if (d.error) lines.push(`Reading error: ${d.error}`);
  for (const p of d.people) lines.push(`Customer: ${p.name} (${p.id})`);
  for (const e of d.events) lines.push(`Read: ${e.occurred_at} ${e.summary}`);
  if (d.headers.length > 0) {
    lines.push("Headers:");
    for (const [name, value] of d.headers) lines.push(`  ${name}: ${value}`);
  }
  lines.push("Message:", d.body_pretty);
  return lines.join("\n");
}

/** What "Copy details" puts on the clipboard for a refused request. */
export function refusalDetailsText(item: ActivityItem): string {
  const lines = [
    `Clientele refusal ${item.id}`,
    `Provider: ${item.provider_name} (${item.provider})`,
    `Connection: ${item.connection}`,
    `Received: ${item.received_at}`,
    `Reason: ${item.reason ?? item.summary}`,
  ];
  if (item.technical) lines.push(`Technical: ${item.technical}`);
  return lines.join("\n");
}
