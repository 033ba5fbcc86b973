import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("./test/mock-backend"));
import * as backend from "./test/mock-backend";
import { NO_BACKEND } from "$lib/backend/errors";
import { router } from "$lib/router.svelte";
import { settings } from "./test/fixtures";
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
    expect(await screen.findByTestId("nav-status")).toHaveTextContent("Receiving messages");
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
