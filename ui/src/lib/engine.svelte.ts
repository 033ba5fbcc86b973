// Whether Clientele is receiving messages, shown in the navigation on every screen ("is it
// working?"): the listener, how many connections there are (with none, nothing can arrive yet),
// and the link to the relay on a computer that receives through one. Settings refreshes it after
// a change, the Connect flow and Providers after a connection is added or removed, and the
// relay's status event keeps that part live.

import {
  getRelayStatus,
  getSettings,
  listConnections,
  toAppError,
  type ListenerStatus,
  type RelayStatus,
  type UiError,
} from "$lib/backend";
import { relayName } from "$lib/relay";

class EngineStatus {
  listener: ListenerStatus | null = $state(null);
  error: UiError | null = $state(null);
  /** How many connections there are; null when not known (then the line doesn't depend on it). */
  connections: number | null = $state(null);
  /** The link to the relay; null when not known. */
  relay: RelayStatus | null = $state(null);

  async refresh(): Promise<void> {
    const [settings, connections, relay] = await Promise.allSettled([
      getSettings(),
      listConnections(),
      getRelayStatus(),
    ]);
    if (settings.status === "fulfilled") {
      this.listener = settings.value.listener;
      this.error = null;
    } else {
      this.listener = null;
      this.error = toAppError(settings.reason);
    }
    this.connections =
      connections.status === "fulfilled" && Array.isArray(connections.value) ? connections.value.length : null;
    this.relay = relay.status === "fulfilled" && relay.value ? relay.value : null;
  }

  set(listener: ListenerStatus): void {
    this.listener = listener;
    this.error = null;
  }

  setRelay(relay: RelayStatus): void {
    this.relay = relay;
  }
}

export const engine = new EngineStatus();

/** "http://127.0.0.1:8787" from the listener's address, whether or not it has a scheme. */
export function listenerUrl(address: string): string {
  return /^https?:\/\//.test(address) ? address : `http://${address}`;
}

export type NavStatusTone = "ok" | "idle" | "warn" | "bad";

/** The navigation's line: what is true now, in a few words, and where to go about it. */
export interface NavStatus {
  tone: NavStatusTone;
  text: string;
  /** A smaller second line: an address, or a link's words. */
  detail: string | null;
  /** Where the detail leads, when it is a link. */
  href: string | null;
}

/**
 * What the navigation says about receiving. On a computer joined to a relay, messages come
 * through it, so its link is what matters; otherwise the listener, and whether anything is
 * connected to it at all ("Receiving messages" with nothing connected would not be true).
 */
export function navStatus(status: {
  listener: ListenerStatus | null;
  error: UiError | null;
  connections: number | null;
  relay: RelayStatus | null;
}): NavStatus | null {
  const { listener, error, connections, relay } = status;
  if (error) return { tone: "bad", text: "Clientele's engine isn't running", detail: null, href: null };
  if (relay && relay.state !== "not_joined") {
    const name = relayName(relay);
    switch (relay.state) {
      case "revoked":
        return { tone: "bad", text: "This computer's access to the relay was removed", detail: "See Settings", href: "#/settings" };
      case "unreachable":
        return { tone: "warn", text: "Can't reach the relay — messages wait there", detail: "See Settings", href: "#/settings" };
      case "connecting":
        return { tone: "idle", text: "Connecting to the relay…", detail: name, href: null };
      case "connected":
        return { tone: "ok", text: "Receiving through the relay", detail: name, href: null };
    }
  }
  if (!listener) return null;
  if (!listener.running) return { tone: "bad", text: "Not receiving messages", detail: "See Settings", href: "#/settings" };
  if (connections === 0) {
    return { tone: "idle", text: "Ready — nothing is connected yet", detail: "Connect a provider to start receiving", href: "#/providers/connect" };
  }
  return {
    tone: "ok",
    text: "Receiving messages",
    detail: listener.address ? listenerUrl(listener.address) : null,
    href: null,
  };
}
