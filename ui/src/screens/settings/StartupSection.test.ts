import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../../test/mock-backend"));
import * as backend from "../../test/mock-backend";
import { settings } from "../../test/fixtures";
import StartupSection from "./StartupSection.svelte";

beforeEach(() => {
  backend.resetBackend();
});

function show(overrides: Parameters<typeof settings>[0] = {}, tray = true) {
  backend.desktopStatus.mockResolvedValue({ tray, close_action: tray ? "keep_in_tray" : "minimize" });
  const onsave = vi.fn();
  render(StartupSection, { props: { settings: settings(overrides), saving: false, onsave } });
  return onsave;
}

describe("Starting and closing", () => {
  it("with a tray, says closing keeps Clientele next to the clock", async () => {
    show({ keep_in_tray: true });
    await waitFor(() => expect(backend.desktopStatus).toHaveBeenCalled());
    expect(screen.getByTestId("close-help")).toHaveTextContent("keeps Clientele running next to the clock");
    expect(screen.queryByTestId("no-tray-notice")).not.toBeInTheDocument();
  });

  it("without a tray, says closing minimizes and how to get back, and offers Quit", async () => {
    show({ keep_in_tray: true }, false);
    expect(await screen.findByTestId("no-tray-notice")).toHaveTextContent("doesn't show tray icons");
    expect(screen.getByTestId("close-help")).toHaveTextContent("minimizes Clientele, and it keeps receiving");
    expect(screen.getByTestId("close-help")).toHaveTextContent("task bar");
    expect(screen.getByTestId("quit-app")).toBeInTheDocument();
  });

  it("says closing quits when keep receiving is off", async () => {
    show({ keep_in_tray: false }, false);
    await waitFor(() => expect(backend.desktopStatus).toHaveBeenCalled());
    expect(screen.getByTestId("close-help")).toHaveTextContent("closing the window quits Clientele");
    expect(screen.getByTestId("keep-in-tray")).not.toBeChecked();
  });

  it("says why start at login is on, and what turning it off means", async () => {
    show({ start_at_login: true });
    expect(screen.getByTestId("start-at-login")).toBeChecked();
    expect(screen.getByTestId("start-at-login-help")).toHaveTextContent("on from the start");
    expect(screen.getByTestId("start-at-login-help")).toHaveTextContent("turn it off");
  });

  it("asks Settings to save a switch, which changes only once saved", async () => {
    const user = userEvent.setup();
    const onsave = show({ start_at_login: true, keep_in_tray: true });
    await user.click(screen.getByTestId("start-at-login"));
    expect(onsave).toHaveBeenCalledWith({ start_at_login: false }, "Saved.");
    expect(screen.getByTestId("start-at-login")).toBeChecked();
    await user.click(screen.getByTestId("keep-in-tray"));
    expect(onsave).toHaveBeenCalledWith({ keep_in_tray: false }, "Saved.");
  });

  it("quits only after confirming", async () => {
    const user = userEvent.setup();
    backend.quitApp.mockResolvedValue(null);
    show();
    await user.click(screen.getByTestId("quit-app"));
    expect(screen.getByTestId("quit-confirm")).toHaveTextContent("receives no messages");
    await user.click(screen.getByTestId("cancel-quit"));
    expect(backend.quitApp).not.toHaveBeenCalled();
    await user.click(screen.getByTestId("quit-app"));
    await user.click(screen.getByTestId("confirm-quit"));
    expect(backend.quitApp).toHaveBeenCalledTimes(1);
  });

  it("shows the text for a desktop with a tray when the app can't tell", async () => {
    backend.desktopStatus.mockRejectedValue({ code: "internal", message: "no" });
    render(StartupSection, { props: { settings: settings(), saving: false, onsave: vi.fn() } });
    await waitFor(() => expect(backend.desktopStatus).toHaveBeenCalled());
    expect(screen.getByTestId("close-help")).toHaveTextContent("next to the clock");
    expect(screen.queryByTestId("no-tray-notice")).not.toBeInTheDocument();
  });
});
