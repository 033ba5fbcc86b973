// A sentence for the next screen: what a change made on one screen did, said on the screen it
// leads to ("Forgotten. 12 messages erased." on Customers after forgetting someone).

export type Flash = {
  where: string;
  text: string;
  tone: "ok" | "warn";
  /** A link to follow from the sentence ("Open the separated record"). */
  link?: { href: string; text: string };
};

let pending: Flash | null = null;

/** Leaves `text` for the screen `where` ("customers", "person/42", …) to show once. */
export function leaveFlash(where: string, text: string, tone: Flash["tone"] = "ok", link?: Flash["link"]): void {
  pending = { where, text, tone, ...(link ? { link } : {}) };
}

/** The sentence left for `where`, once; null when there is none. */
export function takeFlash(where: string): Flash | null {
  if (pending?.where !== where) return null;
  const f = pending;
  pending = null;
  return f;
}
