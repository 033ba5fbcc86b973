// The words for changes made by hand (merge, separate, undo), forgetting a customer, the erasure
// log and how long customers are kept — one place, so every screen says them the same way.

import type {
  ErasureReason,
  ErasureView,
  ExportMention,
  ForgetOutcome,
  ForgetPreview,
  RecordRef,
  RelaySync,
  RetentionView,
  SourceRef,
} from "$lib/backend";
import { count, formatDate } from "$lib/format";

/** `provider/connection/ref`, as the engine and the command line write a record. */
export function recordKey(record: RecordRef): string {
  return `${record.provider}/${record.connection}/${record.customer_ref}`;
}

/** Activity's line for a message about a forgotten customer: acknowledged, not kept, no data. */
export const WITHHELD_SENTENCE = "A message about a forgotten customer arrived and wasn't kept";

/** What "Not this person" does, said before it is done. */
export const SPLIT_SENTENCE =
  "This record will be shown as a customer of its own, and stays apart even if it shares an email or phone later. You can undo this in Changes made by hand.";

/** "Ana Silva and Ana S. will be shown as one customer. You can undo this." */
export function mergeSentence(a: string, b: string): string {
  return `${a} and ${b} will be shown as one customer. You can undo this in Changes made by hand.`;
}

/** The name a customer is shown by in a sentence, never empty. */
export function personName(name: string | null | undefined): string {
  const n = (name ?? "").trim();
  return n === "" ? "This customer" : n;
}

/** Why a record belongs to this customer, as the Linked records panel says it. */
export function linkReason(source: Pick<SourceRef, "linked_because" | "by_hand">): string {
  if (source.linked_because) {
    return source.by_hand ? source.linked_because : `Why linked: ${source.linked_because}`;
  }
  return "The first record of this customer";
}

/**
 * What the relay did with a change made here, in a sentence; null when this computer isn't joined
 * to a relay (there is nothing to say). `forgetting` picks the words for forgetting a customer.
 */
export function relaySentence(sync: RelaySync, forgetting = false): string | null {
  switch (sync.state) {
    case "not_joined":
      return null;
    case "shared":
      return forgetting
        ? "The relay has forgotten them too, and every desk joined to it forgets them when it next collects messages."
        : "Every desk joined to the relay shows this too.";
    case "pending":
    case "refused":
      return sync.message;
  }
}

/** Whether what the relay did deserves a warning: the change didn't reach it (yet, or at all). */
export function relayWarns(sync: RelaySync): boolean {
  return sync.state === "pending" || sync.state === "refused";
}

/** "Forgotten. 12 messages erased." */
export function forgetResult(outcome: ForgetOutcome): string {
  const parts = [`${count(outcome.deliveries, "message", "messages")} erased`];
  if (outcome.rejections > 0) parts.push(`${count(outcome.rejections, "refused request", "refused requests")} erased`);
  let text = `Forgotten. ${parts.join(", ")}.`;
  if (outcome.keep_forgetting) text += " Clientele keeps forgetting them if their providers send anything again.";
  return text;
}

/** The first paragraph of the forget confirmation. */
export function forgetWhat(preview: ForgetPreview): string {
  const where = preview.relay_joined ? "from this computer, from the relay and from every desk joined to it" : "from this computer";
  return `Every message, record and link about ${personName(preview.display_name)} is erased ${where}. This can't be undone.`;
}

/** "Their 3 records at Tiquo and Vagaro, and 12 messages about them." */
export function forgetCounts(preview: ForgetPreview): string {
  const providers = [...new Set(preview.records.map((r) => r.provider_name))];
  const at = providers.length > 0 ? ` at ${listWords(providers)}` : "";
  return `${count(preview.records.length, "record", "records")}${at}, and ${count(preview.deliveries, "message", "messages")} about them.`;
}

/** "Tiquo", "Tiquo and Vagaro", "Tiquo, Vagaro and Zupy" (or "… or Zupy"). */
export function listWords(items: string[], last: "and" | "or" = "and"): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} ${last} ${items[items.length - 1]}`;
}

/** One export the forgotten customer was (or may have been) written into. */
export function exportMentionText(m: ExportMention): string {
  return `${m.certain ? "Included them" : "May have included them"}: ${m.profile_name} · ${formatDate(m.finished_at)}`;
}

/** What "Keep forgetting them" means, with the providers named. */
export function keepForgettingSentence(preview: ForgetPreview): string {
  const providers = [...new Set(preview.records.map((r) => r.provider_name))];
  const who = providers.length > 0 ? listWords(providers, "or") : "a provider";
  return `If ${who} sends something about them again, Clientele acknowledges it and doesn't keep it.`;
}

export const ERASURE_REASON: Record<ErasureReason, string> = {
  request: "Asked to be forgotten",
  provider_deleted: "Deleted at the provider",
  retention: "No activity for a long time",
};

/** "1 customer, 3 records, 12 messages" — counts only, never who. */
export function erasureCounts(e: ErasureView): string {
  const parts = [
    count(e.people, "customer", "customers"),
    count(e.records, "record", "records"),
    count(e.deliveries, "message", "messages"),
  ];
  if (e.rejections > 0) parts.push(count(e.rejections, "refused request", "refused requests"));
  return parts.join(", ");
}

/** The retention policy in sentences, as Settings shows it when it is on. */
export function retentionSentences(r: Pick<RetentionView, "inactive_months" | "rejections_days">): string[] {
  const out: string[] = [];
  if (r.inactive_months !== null)
    out.push(`Customers with no activity for ${count(r.inactive_months, "month", "months")} are forgotten.`);
  if (r.rejections_days !== null)
    out.push(`Refused requests older than ${count(r.rejections_days, "day", "days")} are deleted.`);
  if (out.length === 0) out.push("Off: Clientele keeps customers and refused requests until you forget them.");
  return out;
}

/** "When Tiquo deletes a customer" — the choice on each connection, as it reads now. */
export function forgetDeletedText(providerName: string, days: number | null): string {
  if (days === null) return `Keep their history. Their page says they were deleted in ${providerName}.`;
  if (days === 0) return "Forget them at once.";
  return `Forget them ${count(days, "day", "days")} after ${providerName} deletes them.`;
}

/**
 * A whole number in `min..=max` typed into a box, or null when the box is empty or holds
 * anything else (the screen then says what it accepts).
 */
export function wholeNumber(text: string | number | null | undefined, min: number, max: number): number | null {
  if (text === null || text === undefined) return null;
  const s = String(text).trim();
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}
