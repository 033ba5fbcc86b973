// Receiving from the internet through a relay: the words Settings, Providers and the Connect flow
// use for the link's state and for what went wrong when joining, and a subscription to the
// engine's relay status event. (See docs/words.md, "Receive from the internet".)

import { onRelayStatus, type RelayStatus, type UiError } from "$lib/backend";
import { formatRelative } from "$lib/format";
import { subscribe } from "$lib/live";

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});

/** "09:14" today, "3 Mar, 09:14" another day — for "since …". */
export function sinceText(iso: string | null, now: Date = new Date()): string | null {
  if (!iso) return null;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return null;
  return at.toDateString() === now.toDateString() ? timeOfDay.format(at) : dayAndTime.format(at);
}

/** The relay's name in sentences: its host ("relay.example.com"), else its address. */
export function relayName(status: RelayStatus): string {
  return status.host ?? status.url ?? "the relay";
}

export type RelayTone = "ok" | "waiting" | "warn" | "danger";

/** The link's state in one sentence, with its tone; null when this computer isn't joined. */
export function relayHeadline(status: RelayStatus, now: Date = new Date()): { text: string; tone: RelayTone } | null {
  const name = relayName(status);
  switch (status.state) {
    case "not_joined":
      return null;
    case "connecting":
      return { text: `Connecting to ${name}…`, tone: "waiting" };
    case "connected": {
      const last = status.last_delivery_at
        ? `last message ${formatRelative(status.last_delivery_at, now)}`
        : status.received > 0
          ? null
          : "no messages yet";
      return { text: last ? `Connected to ${name} — ${last}` : `Connected to ${name}`, tone: "ok" };
    }
    case "unreachable": {
      const since = sinceText(status.since, now);
      return {
        text: `Can't reach the relay${since ? ` since ${since}` : ""} — messages wait there and arrive when it's back`,
        tone: "warn",
      };
    }
    case "revoked":
      return { text: "This computer's access was removed", tone: "danger" };
  }
}

/**
 * What the person typed as the relay's address, as an address Clientele can use: "https://" is
 * added when it has no "http(s)://" in front. Null when it can't be an address at all.
 */
export function relayAddress(typed: string): string | null {
  const text = typed.trim();
  if (text === "" || /\s/.test(text)) return null;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  try {
    const url = new URL(withScheme);
    if ((url.protocol !== "https:" && url.protocol !== "http:") || url.hostname === "") return null;
    return withScheme.replace(/\/+$/, "");
  } catch {
    return null;
  }
}

/** The host of an address the person typed, for sentences ("relay.example.com"). */
export function hostOf(address: string): string {
  try {
    return new URL(address).host;
  } catch {
    return address;
  }
}

/**
 * Joining failed: what happened, in a sentence, and what to do. `replaced` is true when the
 * sentence stands in for the engine's message (which then goes under "Show technical details").
 */
export function joinErrorText(error: UiError, host: string): { text: string; advice: string; replaced: boolean } {
  switch (error.code) {
    case "relay_unreachable":
      return {
        text: `Couldn't reach the relay at ${host}.`,
        advice:
          "Check the address and that this computer is online. If both are right, the relay may be switched off — ask whoever looks after it.",
        replaced: true,
      };
    case "relay_untrusted":
      return {
        text: `The relay at ${host} couldn't prove that it is the real one, so Clientele didn't join it.`,
        advice: "Check the address. If it is right, ask whoever looks after the relay to check its security settings.",
        replaced: true,
      };
    case "not_a_relay":
      return {
        text: `Something answered at ${host}, but it isn't a Clientele relay.`,
        advice: "Check the address with whoever looks after the relay.",
        replaced: true,
      };
    case "relay_refused":
    case "relay_access_removed":
      return {
        text: error.message,
        advice: "Ask whoever looks after the relay for a new pairing code, then try again.",
        replaced: false,
      };
    case "invalid_input":
      return { text: error.message, advice: "Check what you typed and try again.", replaced: false };
    case "relay_already_joined":
      return { text: error.message, advice: "Stop receiving through that relay first.", replaced: false };
    case "keychain_locked":
    case "keychain_unavailable":
    case "keychain_error":
      return {
        text: "Clientele couldn't keep this computer's access key in your keychain.",
        advice: "Unlock your computer's keychain (log in again if asked), then ask for a new pairing code and try again.",
        replaced: true,
      };
    default:
      return {
        text: error.message,
        advice: "Try again. If it keeps happening, copy the details and send them to whoever looks after the relay.",
        replaced: false,
      };
  }
}

/**
 * An engine message fit for "Show technical details", or null when it holds words the window
 * never shows (they stay in "Copy details", for support).
 */
export function technicalText(message: string | null | undefined): string | null {
  if (!message || /\b(tls|token|cursor)s?\b|--[a-z]/i.test(message)) return null;
  return message;
}

/** Starts listening to the relay's status; returns a function that stops, safe to call at any time. */
export function subscribeRelay(cb: (status: RelayStatus) => void): () => void {
  return subscribe(onRelayStatus, cb);
}

/**
 * A change that goes to the relay (adding or removing one of its connections) failed: the
 * sentence to show, for the relay's own codes; null for any other code (show its message).
 */
export function relayActionError(error: UiError): string | null {
  switch (error.code) {
    case "relay_unreachable":
      return "Couldn't reach the relay, so nothing was changed. Check that this computer is online, then try again.";
    case "relay_not_admin":
      return "This computer may not change the relay's connections. Ask whoever looks after the relay.";
    case "relay_access_removed":
      return "The relay no longer accepts this computer. See Settings, under “Receive from the internet”.";
    case "relay_untrusted":
      return "The relay couldn't prove that it is the real one, so nothing was sent to it. Ask whoever looks after it.";
    case "not_a_relay":
      return "The relay's address doesn't answer like a Clientele relay. Ask whoever looks after it.";
    default:
      return null;
  }
}
