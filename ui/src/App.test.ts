import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("./test/mock-backend"));
import * as backend from "./test/mock-backend";
import { NO_BACKEND } from "$lib/backend/errors";
import { router } from "$lib/router.svelte";
import { NOT_JOINED, connection, relayStatus, settings } from "./test/fixtures";
import App from "./App.svelte";

beforeEach(() => {
  backend.resetBackend();
  location.hash = "";
  router.sync();
});

describe("App", () => {
  it("has the five places in the left navigation and opens Customers first", async () => {
    backend.getSettings.mockResolvedValue(settings());
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(App);
    for (const [id, label] of [
      ["customers", "Customers"],
      ["activity", "Activity"],
      ["providers", "Providers"],
      ["exports", "Exports"],
      ["settings", "Settings"],
    ]) {
      expect(screen.getByTestId(`nav-${id}`)).toHaveTextContent(label!);
    }
    expect(screen.getByTestId("nav-customers")).toHaveAttribute("aria-current", "page");
  });

  it("says it is ready, and how to start, while nothing is connected", async () => {
    backend.getSettings.mockResolvedValue(settings());
    backend.listConnections.mockResolvedValue([]);
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(App);
    await waitFor(() => expect(screen.getByTestId("nav-status")).toHaveTextContent("Ready — nothing is connected yet"));
    expect(screen.getByTestId("nav-status")).not.toHaveTextContent("Receiving messages");
    const link = screen.getByTestId("status-link");
    expect(link).toHaveTextContent("Connect a provider to start receiving");
    expect(link).toHaveAttribute("href", "#/providers/connect");
  });

  it("says it is receiving, and where, once something is connected", async () => {
    backend.getSettings.mockResolvedValue(settings());
    backend.listConnections.mockResolvedValue([connection()]);
    backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(App);
    await waitFor(() => expect(screen.getByTestId("nav-status")).toHaveTextContent("Receiving messages"));
    expect(screen.getByTestId("nav-status")).toHaveTextContent("http://127.0.0.1:8787");
  });

  it("on a computer joined to a relay, says messages come through it, and follows the link live", async () => {
    backend.getSettings.mockResolvedValue(settings());
    backend.listConnections.mockResolvedValue([]);
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(App);
    const status = screen.getByTestId("nav-status");
    await waitFor(() => expect(status).toHaveTextContent("Receiving through the relay relay.example.com"));
    await waitFor(() => expect(backend.relayListenerCount()).toBeGreaterThan(0));
    backend.emitRelay(relayStatus({ state: "unreachable", since: new Date().toISOString() }));
    await waitFor(() => expect(status).toHaveTextContent("Can't reach the relay — messages wait there"));
    expect(screen.getByTestId("status-link")).toHaveAttribute("href", "#/settings");
  });

  it("moves between screens from the navigation", async () => {
    const user = userEvent.setup();
    backend.getSettings.mockResolvedValue(settings());
    backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
    render(App);
    await user.click(screen.getByTestId("nav-exports"));
    expect(await screen.findByRole("heading", { level: 1, name: "Exports" })).toBeInTheDocument();
    expect(screen.getByTestId("nav-exports")).toHaveAttribute("aria-current", "page");
  });

  it("shows calm error states when the engine isn't running", async () => {
    for (const fn of [backend.getSettings, backend.searchPeople, backend.listConnections, backend.listProviders]) {
      fn.mockRejectedValue({ ...NO_BACKEND });
    }
    render(App);
    expect(await screen.findByText("Couldn't show your customers")).toBeInTheDocument();
    expect(screen.getByTestId("error-message")).toHaveTextContent("Clientele's engine isn't running");
    await waitFor(() => expect(screen.getByTestId("nav-status")).toHaveTextContent("Clientele's engine isn't running"));
  });
});
