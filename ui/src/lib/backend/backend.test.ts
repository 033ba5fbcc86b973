import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listen = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: (...args: unknown[]) => listen(...args) }));

import * as backend from "./index";
import { UI_ERROR_CODES } from "./errors";

function withTauri() {
  (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__ = {};
}

describe("backend without Tauri (vite preview, a plain browser)", () => {
  it("rejects every command with no_backend and never calls invoke", async () => {
    await expect(backend.listConnections()).rejects.toMatchObject({ code: "no_backend" });
    await expect(backend.getSettings()).rejects.toMatchObject({
      code: "no_backend",
      message: expect.stringContaining("engine isn't running"),
    });
    await expect(backend.onLiveUpdate(() => {})).rejects.toMatchObject({ code: "no_backend" });
    await expect(backend.joinRelay("https://relay.example.com", "K7QF-2MQD", null)).rejects.toMatchObject({
      code: "no_backend",
    });
    await expect(backend.onRelayStatus(() => {})).rejects.toMatchObject({ code: "no_backend" });
    expect(invoke).not.toHaveBeenCalled();
  });
});

describe("backend inside Tauri", () => {
  beforeEach(() => {
    withTauri();
    invoke.mockReset();
    listen.mockReset();
  });
  afterEach(() => {
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
  });

  it("calls each command by its name with camelCase top-level arguments", async () => {
    invoke.mockResolvedValue("ok");
    await backend.listProviders();
    await backend.addConnection({ provider: "tiquo", name: "main", secret: "s3cret" });
    await backend.replaceSecret("vagaro", "main", "tok");
    await backend.removeConnection("vagaro", "main");
    await backend.setConnectionPaused("vagaro", "main", true);
    await backend.sendTestEvent("vagaro", "main");
    await backend.listActivity({ kind: "all", provider: null, status: null, since_hours: 24, limit: 200 });
    await backend.deliveryDetail(5);
    await backend.reprocessDelivery(5);
    await backend.searchPeople("ana", 50, 50);
    await backend.personDetail(7);
    await backend.updateSettings({ port: 8787, allow_network: false, start_at_login: true, keep_in_tray: true });

    expect(invoke.mock.calls).toEqual([
      ["list_providers", undefined],
      ["add_connection", { request: { provider: "tiquo", name: "main", secret: "s3cret" } }],
      ["replace_secret", { provider: "vagaro", name: "main", secret: "tok" }],
      ["remove_connection", { provider: "vagaro", name: "main" }],
      ["set_connection_paused", { provider: "vagaro", name: "main", paused: true }],
      ["send_test_event", { provider: "vagaro", name: "main" }],
      ["list_activity", { query: { kind: "all", provider: null, status: null, since_hours: 24, limit: 200 } }],
      ["delivery_detail", { id: 5 }],
      ["reprocess_delivery", { id: 5 }],
      ["search_people", { query: "ana", offset: 50, limit: 50 }],
      ["person_detail", { id: 7 }],
      ["update_settings", { update: { port: 8787, allow_network: false, start_at_login: true, keep_in_tray: true } }],
    ]);
  });

  it("asks the app about the desktop, and quits it, by the commands' names", async () => {
    invoke.mockResolvedValueOnce({ tray: false, close_action: "minimize" });
    await expect(backend.desktopStatus()).resolves.toEqual({ tray: false, close_action: "minimize" });
    invoke.mockResolvedValueOnce(null);
    await backend.quitApp();
    expect(invoke.mock.calls).toEqual([
      ["desktop_status", undefined],
      ["quit_app", undefined],
    ]);
  });

  it("passes the engine's {code, message} through and normalizes anything else", async () => {
    invoke.mockRejectedValueOnce({ code: "invalid_input", message: "'a b' can't be used as a connection name" });
    await expect(backend.listConnections()).rejects.toEqual({
      code: "invalid_input",
      message: "'a b' can't be used as a connection name",
    });
    invoke.mockRejectedValueOnce("command list_connections not found");
    await expect(backend.listConnections()).rejects.toEqual({
      code: "unknown",
      message: "command list_connections not found",
    });
  });

  it("lists every event name exactly as the engine emits them", () => {
    expect(backend.LIVE_EVENT).toBe("clientele://live");
    expect(backend.EXPORT_PROGRESS_EVENT).toBe("clientele://export-progress");
    expect(backend.RELAY_EVENT).toBe("clientele://relay-status");
  });

  it("calls the relay commands by name, with nothing but the address, code and name", async () => {
    invoke.mockResolvedValue({ state: "connected" });
    await backend.getRelayStatus();
    await backend.joinRelay("https://relay.example.com", "K7QF-2MQD", null);
    await backend.joinRelay("https://relay.example.com", "K7QF-2MQD", "front-desk");
    await backend.leaveRelay();
    expect(invoke.mock.calls).toEqual([
      ["relay_status", undefined],
      ["join_relay", { url: "https://relay.example.com", code: "K7QF-2MQD", name: null }],
      ["join_relay", { url: "https://relay.example.com", code: "K7QF-2MQD", name: "front-desk" }],
      ["leave_relay", undefined],
    ]);
  });

  it("listens to the relay's status and hands the payload to the callback", async () => {
    const unlisten = vi.fn();
    listen.mockResolvedValue(unlisten);
    const cb = vi.fn();
    const stop = await backend.onRelayStatus(cb);
    expect(listen).toHaveBeenCalledWith("clientele://relay-status", expect.any(Function));
    const handler = listen.mock.calls[0]![1] as (e: { payload: unknown }) => void;
    handler({ payload: { state: "revoked" } });
    expect(cb).toHaveBeenCalledWith({ state: "revoked" });
    stop();
    expect(unlisten).toHaveBeenCalled();
  });

  it("listens to clientele://live and hands the payload to the callback", async () => {
    const unlisten = vi.fn();
    listen.mockResolvedValue(unlisten);
    const cb = vi.fn();
    const stop = await backend.onLiveUpdate(cb);
    expect(listen).toHaveBeenCalledWith("clientele://live", expect.any(Function));
    const handler = listen.mock.calls[0]![1] as (e: { payload: unknown }) => void;
    handler({ payload: { deliveries: 2, rejections: 0, people: [7] } });
    expect(cb).toHaveBeenCalledWith({ deliveries: 2, rejections: 0, people: [7] });
    stop();
    expect(unlisten).toHaveBeenCalled();
  });
});

describe("toAppError", () => {
  it("gives one shape for every thrown value", () => {
    expect(backend.toAppError({ code: "disk_full", message: "The disk is full" })).toEqual({
      code: "disk_full",
      message: "The disk is full",
    });
    expect(backend.toAppError(new Error("boom"))).toEqual({ code: "unknown", message: "boom" });
    expect(backend.toAppError(undefined).code).toBe("unknown");
    expect(backend.toAppError({ code: 3 }).message).toMatch(/went wrong/);
  });

  it("keeps every code on the list and turns any other into unknown, keeping the message", () => {
    for (const code of UI_ERROR_CODES) {
      expect(backend.toAppError({ code, message: "m" })).toEqual({ code, message: "m" });
    }
    expect(UI_ERROR_CODES).toContain("connection_name_taken");
    expect(UI_ERROR_CODES).toContain("no_backend");
    // "invalid" was renamed "invalid_input"; an engine newer than the window may send new codes.
    expect(backend.toAppError({ code: "invalid", message: "Bad name." })).toEqual({ code: "unknown", message: "Bad name." });
    expect(backend.toAppError({ code: "brand_new", message: "Something new." })).toEqual({
      code: "unknown",
      message: "Something new.",
    });
    expect(backend.toAppError({ code: "toString", message: "x" }).code).toBe("unknown");
  });
});
