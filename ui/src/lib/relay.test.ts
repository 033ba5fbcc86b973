import { describe, expect, it } from "vitest";
import { NOT_JOINED, relayStatus } from "../test/fixtures";
import { hostOf, relayActionError, relayAddress, relayHeadline, sinceText, technicalText } from "./relay";

describe("relay words", () => {
  it("turns what a person types into a relay address", () => {
    expect(relayAddress("relay.example.com")).toBe("https://relay.example.com");
    expect(relayAddress("  https://relay.example.com/ ")).toBe("https://relay.example.com");
    expect(relayAddress("http://127.0.0.1:8443")).toBe("http://127.0.0.1:8443");
    expect(relayAddress("relay.example.com:8443/base")).toBe("https://relay.example.com:8443/base");
    expect(relayAddress("")).toBeNull();
    expect(relayAddress("not an address")).toBeNull();
    expect(relayAddress("ftp://relay.example.com")).toBeNull();
    expect(hostOf("https://relay.example.com:8443")).toBe("relay.example.com:8443");
  });

  it("says each state of the link in one sentence", () => {
    const now = new Date("2025-03-04T12:00:00Z");
    expect(relayHeadline(NOT_JOINED, now)).toBeNull();
    expect(relayHeadline(relayStatus({ state: "connecting" }), now)?.text).toBe("Connecting to relay.example.com…");
    expect(relayHeadline(relayStatus({ last_delivery_at: "2025-03-04T11:58:00Z" }), now)).toEqual({
      text: "Connected to relay.example.com — last message 2 minutes ago",
      tone: "ok",
    });
    expect(relayHeadline(relayStatus({ received: 3 }), now)?.text).toBe("Connected to relay.example.com");
    expect(relayHeadline(relayStatus({ state: "unreachable", since: null }), now)).toEqual({
      text: "Can't reach the relay — messages wait there and arrive when it's back",
      tone: "warn",
    });
    expect(relayHeadline(relayStatus({ state: "revoked" }), now)).toEqual({
      text: "This computer's access was removed",
      tone: "danger",
    });
  });

  it("gives the time of day for today, and the day too for another day", () => {
    const now = new Date(2025, 2, 4, 12, 0);
    expect(sinceText(new Date(2025, 2, 4, 9, 14).toISOString(), now)).toMatch(/0?9:14/);
    expect(sinceText(new Date(2025, 2, 3, 9, 14).toISOString(), now)).toMatch(/3/);
    expect(sinceText(null, now)).toBeNull();
    expect(sinceText("yesterday", now)).toBeNull();
  });

  it("keeps words the window never shows out of technical details", () => {
    expect(technicalText("Clientele couldn't reach the relay at https://r.example/: nothing answered at that address")).toMatch(
      /nothing answered/,
    );
    expect(technicalText("received fatal alert from TLS peer")).toBeNull();
    expect(technicalText("the device token was refused")).toBeNull();
    expect(technicalText("If the relay uses its own certificate, join with --ca-cert.")).toBeNull();
    expect(technicalText(null)).toBeNull();
  });

  it("words the relay's refusals of a change, and leaves other codes to their message", () => {
    expect(relayActionError({ code: "relay_unreachable", message: "x" })).toMatch(/nothing was changed/);
    expect(relayActionError({ code: "relay_not_admin", message: "x" })).toMatch(/may not change the relay's connections/);
    expect(relayActionError({ code: "connection_name_taken", message: "x" })).toBeNull();
  });
});
