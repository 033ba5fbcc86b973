import { render, screen, waitFor } from "@testing-library/svelte";
import { beforeEach, describe, expect, it } from "vitest";
import { vi } from "vitest";

vi.mock("$lib/backend", () => import("./test/mock-backend"));
import * as backend from "./test/mock-backend";
import { NO_BACKEND } from "$lib/backend/errors";
import { router } from "$lib/router.svelte";
import { NOT_JOINED, settings } from "./test/fixtures";
import Root from "./Root.svelte";

function updating(done: number, total: number, giving_space_back = false) {
  return {
    state: "updating" as const,
    step: giving_space_back ? "Giving disk space back" : "Converting your stored messages",
    giving_space_back,
    done,
    total,
    unit: "messages",
  };
}

/** What the usual screens ask for when they open. */
function usualScreens() {
  backend.getSettings.mockResolvedValue(settings());
  backend.listConnections.mockResolvedValue([]);
  backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
  backend.searchPeople.mockResolvedValue({ total: 0, more: false, items: [] });
}

beforeEach(() => {
  backend.resetBackend();
  location.hash = "";
  router.sync();
});

describe("Updating your data", () => {
  it("says what is happening and how far, follows the progress, then shows the usual screens", async () => {
    usualScreens();
    backend.upgradeStatus.mockResolvedValue(updating(0, 0));
    render(Root);
    expect(await screen.findByRole("heading", { name: "Updating your data" })).toBeInTheDocument();
    expect(screen.getByTestId("updating-screen")).toHaveTextContent("nothing is lost");
    expect(screen.getByTestId("updating-progress")).toHaveTextContent("Getting ready…");
    expect(screen.queryByTestId("nav-customers")).toBeNull();
    // Nothing behind the usual screens is asked while it converts.
    expect(backend.searchPeople).not.toHaveBeenCalled();
    expect(backend.getSettings).not.toHaveBeenCalled();

    backend.emitUpgrade(updating(38_000, 95_000));
    await waitFor(() => expect(screen.getByTestId("updating-count")).toHaveTextContent("38,000 of 95,000 messages"));
    expect(screen.getByTestId("updating-progress")).toHaveTextContent("40%");
    const bar = screen.getByTestId("updating-progress").querySelector("progress")!;
    expect(bar.getAttribute("max")).toBe("95000");
    expect(bar.value).toBe(38_000);

    backend.emitUpgrade(updating(0, 0, true));
    await waitFor(() => expect(screen.getByTestId("updating-progress")).toHaveTextContent("Giving disk space back…"));

    backend.emitUpgrade({ state: "ready" });
    expect(await screen.findByTestId("nav-customers")).toBeInTheDocument();
    expect(screen.queryByTestId("updating-screen")).toBeNull();
    await waitFor(() => expect(backend.searchPeople).toHaveBeenCalled());
  });

  it("goes straight to the usual screens when there is nothing to convert", async () => {
    usualScreens();
    backend.upgradeStatus.mockResolvedValue({ state: "ready" });
    render(Root);
    expect(await screen.findByTestId("nav-customers")).toBeInTheDocument();
    expect(screen.queryByTestId("updating-screen")).toBeNull();
  });

  it("stays on the usual screens when the ready event comes before an older answer", async () => {
    usualScreens();
    let answer: (v: unknown) => void = () => {};
    backend.upgradeStatus.mockReturnValue(new Promise((resolve) => (answer = resolve)));
    render(Root);
    await waitFor(() => expect(backend.onUpgrade).toHaveBeenCalled());
    backend.emitUpgrade({ state: "ready" });
    expect(await screen.findByTestId("nav-customers")).toBeInTheDocument();
    answer(updating(10, 100));
    await new Promise((r) => setTimeout(r, 20));
    expect(screen.queryByTestId("updating-screen")).toBeNull();
  });

  it("says why when it couldn't, and that nothing was lost", async () => {
    backend.upgradeStatus.mockResolvedValue(updating(5, 10));
    render(Root);
    await screen.findByTestId("updating-screen");
    backend.emitUpgrade({ state: "failed", message: "The disk is full, so Clientele couldn't save." });
    expect(await screen.findByRole("heading", { name: "Couldn't update your data" })).toBeInTheDocument();
    expect(screen.getByTestId("updating-failed")).toHaveTextContent("The disk is full");
    expect(screen.getByTestId("updating-screen")).toHaveTextContent("Nothing has been lost");
  });

  it("outside the app (no engine to ask) shows the usual screens, which say so", async () => {
    backend.upgradeStatus.mockRejectedValue({ ...NO_BACKEND });
    render(Root);
    expect(await screen.findByTestId("nav-customers")).toBeInTheDocument();
  });
});
