// The navigation's line about receiving: true in every state, and pointing to the next step.
import { describe, expect, it } from "vitest";
import { NOT_JOINED, relayStatus } from "../test/fixtures";
import { navStatus } from "./engine.svelte";

const running = { running: true, address: "127.0.0.1:8787", error: null };

describe("navStatus", () => {
  it("never says 'Receiving messages' with nothing connected", () => {
    expect(navStatus({ listener: running, error: null, connections: 0, relay: NOT_JOINED })).toEqual({
      tone: "idle",
      text: "Ready — nothing is connected yet",
      detail: "Connect a provider to start receiving",
      href: "#/providers/connect",
    });
    expect(navStatus({ listener: running, error: null, connections: 2, relay: NOT_JOINED })).toEqual({
      tone: "ok",
      text: "Receiving messages",
      detail: "http://127.0.0.1:8787",
      href: null,
    });
    // Not knowing how many (the list couldn't be read) doesn't make it claim nothing is connected.
    expect(navStatus({ listener: running, error: null, connections: null, relay: null })?.text).toBe(
      "Receiving messages",
    );
  });

  it("says when it isn't receiving, and where to look", () => {
    const stopped = { running: false, address: null, error: "Port 8787 is already used by another program." };
    expect(navStatus({ listener: stopped, error: null, connections: 1, relay: null })).toMatchObject({
      tone: "bad",
      text: "Not receiving messages",
      href: "#/settings",
    });
    expect(navStatus({ listener: null, error: null, connections: null, relay: null })).toBeNull();
    expect(
      navStatus({ listener: null, error: { code: "no_backend", message: "…" }, connections: null, relay: null })?.text,
    ).toBe("Clientele's engine isn't running");
  });

  it("on a computer joined to a relay, speaks of the relay whatever is connected here", () => {
    const at = (state: "connecting" | "connected" | "unreachable" | "revoked") =>
      navStatus({ listener: running, error: null, connections: 0, relay: relayStatus({ state }) });
    expect(at("connected")).toMatchObject({ tone: "ok", text: "Receiving through the relay", detail: "relay.example.com" });
    expect(at("connecting")).toMatchObject({ tone: "idle", text: "Connecting to the relay…" });
    expect(at("unreachable")).toMatchObject({ tone: "warn", href: "#/settings" });
    expect(at("revoked")).toMatchObject({ tone: "bad", text: "This computer's access to the relay was removed" });
  });
});
