// The connect flow's rules and state, without the screen.
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../../test/mock-backend"));
import * as backend from "../../test/mock-backend";
import { PROVIDERS, connection, settings } from "../../test/fixtures";
import {
  ConnectFlowState,
  addressBase,
  connectionNameFrom,
  isNameError,
  NAME_PATTERN,
  nameProblem,
  sameName,
  suggestName,
} from "./flow.svelte";

const TIQUO = PROVIDERS[0]!;
const VAGARO = PROVIDERS[1]!;

describe("connect rules", () => {
  it("goes back to the name only for the engine's two name codes", () => {
    expect(isNameError("connection_name_taken")).toBe(true);
    expect(isNameError("invalid_input")).toBe(true);
    expect(isNameError("keychain_locked")).toBe(false);
    expect(isNameError("secret_empty")).toBe(false);
    expect(isNameError("unknown")).toBe(false);
  });

  it("treats names that differ only by case or - and _ as the same", () => {
    expect(sameName("Main-Salon", "main_salon")).toBe(true);
    expect(sameName("main", "main-2")).toBe(false);
  });

  it("suggests main, then the first free main-N, for that provider only", () => {
    expect(suggestName([], "tiquo")).toBe("main");
    expect(suggestName([connection({ provider: "vagaro", name: "main" })], "tiquo")).toBe("main");
    expect(
      suggestName(
        [connection({ provider: "tiquo", name: "Main" }), connection({ provider: "tiquo", name: "main_2" })],
        "tiquo",
      ),
    ).toBe("main-3");
  });

  it("makes the connection's name from what was typed", () => {
    expect(connectionNameFrom("Main Salon")).toBe("main-salon");
    expect(connectionNameFrom("  Main   Salon  ")).toBe("main-salon");
    expect(connectionNameFrom("Bella's Café & Bar!")).toBe("bella-s-cafe-bar");
    expect(connectionNameFrom("Salão Centro")).toBe("salao-centro");
    expect(connectionNameFrom("Straße 12")).toBe("strasse-12");
    expect(connectionNameFrom("main_salon--2")).toBe("main-salon-2");
    expect(connectionNameFrom("main")).toBe("main");
    expect(connectionNameFrom("---")).toBe("");
    expect(connectionNameFrom("")).toBe("");
    expect(connectionNameFrom("サロン")).toBe("");
    // At most 64 characters, never ending in a hyphen where it was cut.
    const long = connectionNameFrom(`${"a".repeat(63)} b`);
    expect(long).toBe("a".repeat(63));
    expect(connectionNameFrom("x".repeat(80))).toHaveLength(64);
    // Whatever was typed, the result is a name the engine accepts (or nothing).
    for (const typed of ["Ünïcödé Ñame", "a/b\\c?d#e", "  -x- ", "Tab\tand\nnewline", "😀 Salon 😀"]) {
      const made = connectionNameFrom(typed);
      expect(made === "" || NAME_PATTERN.test(made), `${typed} → ${made}`).toBe(true);
    }
  });

  it("says what is wrong with a name before the engine is asked", () => {
    const existing = [connection({ provider: "vagaro", name: "main" })];
    expect(nameProblem("", VAGARO, existing)).toBe("Give the connection a name, for example Main salon.");
    expect(nameProblem("", VAGARO, existing, "!!!")).toBe("Use some letters or digits in the name, for example Main salon.");
    expect(nameProblem("x".repeat(65), VAGARO, existing)).toMatch(/letters or digits/);
    expect(nameProblem("MAIN", VAGARO, existing)).toBe(
      "There is already a Vagaro connection called 'main'. Choose another name.",
    );
    expect(nameProblem("main", TIQUO, existing)).toBeNull();
    expect(nameProblem("main-salon", VAGARO, existing)).toBeNull();
  });

  it("builds the address from the listener, never from an every-interface address", () => {
    const at = (address: string | null, port = 8787) =>
      addressBase(settings({ port, listener: { running: true, address, error: null } }));
    expect(at("127.0.0.1:8787")).toBe("http://127.0.0.1:8787");
    expect(at("192.168.1.20:8787")).toBe("http://192.168.1.20:8787");
    expect(at("https://hooks.example.com")).toBe("https://hooks.example.com");
    expect(at("0.0.0.0:8787", 9000)).toBe("http://127.0.0.1:9000");
    expect(at("[::]:8787", 9000)).toBe("http://127.0.0.1:9000");
    expect(at(null, 9000)).toBe("http://127.0.0.1:9000");
  });
});

describe("connect state", () => {
  beforeEach(() => {
    backend.resetBackend();
    backend.listProviders.mockResolvedValue(PROVIDERS);
    backend.listConnections.mockResolvedValue([connection()]); // Vagaro – main exists
    backend.getSettings.mockResolvedValue(settings());
  });

  async function loaded(moved = vi.fn()) {
    const flow = new ConnectFlowState(moved);
    await flow.load();
    return flow;
  }

  it("loads the providers, the connections and the address", async () => {
    const flow = await loaded();
    expect(flow.providers).toEqual(PROVIDERS);
    expect(flow.base).toBe("http://127.0.0.1:8787");
    expect(flow.loadError).toBeNull();
    expect(flow.step).toBe("provider");
    expect(flow.stepIndex).toBe(0);
  });

  it("keeps the reason when it can't load", async () => {
    backend.getSettings.mockRejectedValue({ code: "database_busy", message: "The database is busy." });
    const flow = await loaded();
    expect(flow.loadError).toEqual({ code: "database_busy", message: "The database is busy." });
  });

  it("suggests a free name, moves on, and tells the screen once the step is shown", async () => {
    const moved = vi.fn();
    const flow = await loaded(moved);
    flow.chooseProvider(VAGARO);
    expect(flow.step).toBe("name");
    expect(flow.name).toBe("main-2");
    await vi.waitFor(() => expect(moved).toHaveBeenCalledWith("name"));

    flow.nameTyped = "  Main Salon ";
    expect(flow.name).toBe("main-salon");
    flow.submitName();
    expect(flow.nameError).toBeNull();
    expect(flow.step).toBe("address");
    expect(flow.stepIndex).toBe(2);
    expect(flow.previewAddress).toBe("http://127.0.0.1:8787/hooks/vagaro/main-salon");
  });

  it("stays on the name while it can't be used", async () => {
    const flow = await loaded();
    flow.chooseProvider(VAGARO);
    flow.nameTyped = "Main";
    flow.submitName();
    expect(flow.step).toBe("name");
    expect(flow.nameError).toMatch(/already a Vagaro connection called 'main'/);
    flow.nameTyped = "***";
    flow.submitName();
    expect(flow.step).toBe("name");
    expect(flow.nameError).toMatch(/letters or digits/);
  });

  it("forgets the secret's error as soon as the field changes", async () => {
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    await flow.create(true);
    expect(flow.secretError).toBe("Paste the signing secret from Tiquo first.");
    flow.secretChanged();
    expect(flow.secretError).toBeNull();
  });

  it("waits for the provider's first genuine message, and sees it arrive live", async () => {
    const waiting = connection({
      provider: "tiquo",
      name: "main",
      health: { last_delivery_at: null, deliveries_today: 0, rejections_today: 0, recent_rejections: [], quiet_warning: null },
    });
    backend.addConnection.mockResolvedValue(waiting);
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    flow.secret = "whsec_abc";
    await flow.create(true);

    backend.listConnections.mockResolvedValue([connection(), waiting]);
    const stop = flow.watchForFirstMessage();
    await vi.waitFor(() => expect(backend.liveListenerCount()).toBe(1));
    expect(flow.firstMessageAt).toBeNull();

    // A test message changes nothing: the engine's last message time ignores tests.
    await vi.waitFor(() => expect(backend.listConnections).toHaveBeenCalled());
    const looked = backend.listConnections.mock.calls.length;
    backend.emitLive({ deliveries: 1 });
    await vi.waitFor(() => expect(backend.listConnections.mock.calls.length).toBe(looked + 1));
    expect(flow.firstMessageAt).toBeNull();

    // The provider's own message arrives.
    const at = "2024-01-20T15:00:00Z";
    backend.listConnections.mockResolvedValue([
      connection(),
      { ...waiting, health: { ...waiting.health, last_delivery_at: at, deliveries_today: 1 } },
    ]);
    backend.emitLive({ rejections: 1 });
    expect(flow.firstMessageAt).toBeNull();
    backend.emitLive({ deliveries: 1 });
    await vi.waitFor(() => expect(flow.firstMessageAt).toBe(at));
    expect(flow.created?.health.deliveries_today).toBe(1);
    stop();
    expect(backend.liveListenerCount()).toBe(0);
  });

  it("refuses an empty secret without asking the engine, and always empties the field", async () => {
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    flow.secret = "   ";
    await flow.create(true);
    expect(flow.secretError).toBe("Paste the signing secret from Tiquo first.");
    expect(flow.secret).toBe("");
    expect(backend.addConnection).not.toHaveBeenCalled();
  });

  it("creates the connection with the trimmed secret, or with none", async () => {
    const created = connection({ provider: "tiquo", provider_name: "Tiquo" });
    backend.addConnection.mockResolvedValue(created);
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    flow.secret = " whsec_abc \n";
    await flow.create(true);
    expect(backend.addConnection).toHaveBeenLastCalledWith({ provider: "tiquo", name: "main", secret: "whsec_abc" });
    expect(flow.created).toEqual(created);
    expect(flow.step).toBe("test");
    expect(flow.saving).toBe(false);

    flow.secret = "typed but not meant";
    await flow.create(false);
    expect(backend.addConnection).toHaveBeenLastCalledWith({ provider: "tiquo", name: "main", secret: null });
  });

  it("sends name refusals back to the name and the rest to the secret", async () => {
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    flow.step = "secret";
    backend.addConnection.mockRejectedValue({ code: "connection_name_taken", message: "Taken." });
    flow.secret = "whsec_abc";
    await flow.create(true);
    expect(flow.step).toBe("name");
    expect(flow.nameError).toBe("Taken.");
    expect(flow.secretError).toBeNull();

    flow.step = "secret";
    backend.addConnection.mockRejectedValue({ code: "keychain_locked", message: "Locked." });
    flow.secret = "whsec_abc";
    await flow.create(true);
    expect(flow.step).toBe("secret");
    expect(flow.secretError).toBe("Locked.");

    // A code this window doesn't know is not a name problem, whatever its message says.
    backend.addConnection.mockRejectedValue({ code: "name_taken", message: "That connection name is taken." });
    flow.secret = "whsec_abc";
    await flow.create(true);
    expect(flow.step).toBe("secret");
    expect(flow.secretError).toBe("That connection name is taken.");
  });

  it("keeps the test's answer, or why it couldn't be sent", async () => {
    backend.addConnection.mockResolvedValue(connection({ provider: "tiquo", name: "main" }));
    const flow = await loaded();
    flow.chooseProvider(TIQUO);
    flow.secret = "whsec_abc";
    await flow.create(true);

    backend.sendTestEvent.mockResolvedValue({ ok: true, message: "Arrived." });
    await flow.sendTest();
    expect(backend.sendTestEvent).toHaveBeenCalledWith("tiquo", "main");
    expect(flow.testResult).toEqual({ ok: true, message: "Arrived." });
    expect(flow.testing).toBe(false);

    backend.sendTestEvent.mockRejectedValue({ code: "database_busy", message: "Busy." });
    await flow.sendTest();
    expect(flow.testResult).toBeNull();
    expect(flow.testError).toBe("Busy.");
  });
});
