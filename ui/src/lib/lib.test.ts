import { describe, expect, it } from "vitest";
import { adviceFor, errorDetails } from "./errorText";
import { formatRelative } from "./format";
import { hrefFor, parseHash } from "./router.svelte";
import { countryName, duplicatesText, phoneLinkText, statusLabel } from "./words";

describe("words", () => {
  it("says duplicates the way people do", () => {
    expect(duplicatesText(0)).toBeNull();
    expect(duplicatesText(1)).toBe("Received twice, kept once");
    expect(duplicatesText(2)).toBe("Received 3 times, kept once");
  });

  it("never shows the engine's status codes", () => {
    expect(statusLabel("needs_attention")).toBe("Couldn't read");
    expect(statusLabel("something_new")).toBe("Received");
  });
});

describe("phone numbers that link nobody", () => {
  it("say why in plain words, naming the country", () => {
    expect(phoneLinkText(null)).toBeNull();
    expect(phoneLinkText({ kind: "linked" })).toBeNull();
    expect(phoneLinkText({ kind: "invalid", country: "GB" })).toBe(
      "Not linked to other records: this isn't a valid United Kingdom number.",
    );
    expect(phoneLinkText({ kind: "invalid", country: null })).toContain("isn't a valid phone number");
    expect(phoneLinkText({ kind: "no_country" })).toContain("no country for phone numbers is set in Settings");
    expect(phoneLinkText({ kind: "too_short" })).toContain("too short");
    expect(phoneLinkText({ kind: "shared", records: 26 })).toContain("26 or more records share this number");
    expect(countryName("br")).toBe("Brazil");
  });
});

describe("formatRelative", () => {
  it("says how long ago in words", () => {
    const now = new Date("2024-01-20T15:00:00Z");
    expect(formatRelative("2024-01-20T12:00:00Z", now)).toBe("3 hours ago");
    expect(formatRelative("2024-01-20T14:59:30Z", now)).toBe("just now");
    expect(formatRelative("2024-01-17T15:00:00Z", now)).toBe("3 days ago");
  });
});

describe("router", () => {
  it("round-trips every screen through the hash", () => {
    expect(parseHash("#/customers/42")).toEqual({ screen: "customers", personId: 42 });
    expect(parseHash("#/providers/connect")).toEqual({ screen: "providers", connecting: true });
    expect(parseHash("")).toEqual({ screen: "customers", personId: null });
    expect(parseHash("#/nonsense")).toEqual({ screen: "customers", personId: null });
    expect(hrefFor({ screen: "customers", personId: 3 })).toBe("#/customers/3");
    expect(hrefFor({ screen: "settings" })).toBe("#/settings");
    expect(parseHash("#/customers/changes")).toEqual({ screen: "customers", personId: null, changes: true });
    expect(hrefFor({ screen: "customers", personId: null, changes: true })).toBe("#/customers/changes");
  });
});

describe("errorText", () => {
  it("picks advice by the code, never by the message", () => {
    expect(adviceFor({ code: "invalid_input", message: "x" })).toBe("Change what you typed and try again.");
    expect(adviceFor({ code: "connection_name_taken", message: "x" })).toMatch(/^Choose another name/);
    expect(adviceFor({ code: "keychain_locked", message: "The disk is full." })).toMatch(/^Unlock/);
    expect(adviceFor({ code: "unknown", message: "The keychain is locked." })).toMatch(/^Try again/);
  });

  it("puts the code and the message in the details for support", () => {
    const details = errorDetails({ code: "disk_full", message: "The disk is full." }, "Settings");
    expect(details).toContain("Where: Settings");
    expect(details).toContain("Code: disk_full");
    expect(details).toContain("Message: The disk is full.");
  });
});
