import { render, screen, waitFor } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("$lib/backend", () => import("../test/mock-backend"));
import * as backend from "../test/mock-backend";
import { NOT_JOINED, relayStatus, settings } from "../test/fixtures";
import Settings from "./Settings.svelte";

beforeEach(() => {
  backend.resetBackend();
  backend.getRelayStatus.mockResolvedValue(NOT_JOINED);
});

describe("Settings", () => {
  it("says where Clientele receives messages, the data folder and the version", async () => {
    backend.getSettings.mockResolvedValue(settings());
    render(Settings);
    expect(await screen.findByTestId("listener-status")).toHaveTextContent(
      "Receiving messages at http://127.0.0.1:8787",
    );
    expect(screen.getByTestId("data-dir")).toHaveTextContent("/home/ana/.local/share/clientele");
    expect(screen.getByTestId("data-dir").tagName).not.toBe("INPUT");
    expect(screen.getByTestId("version")).toHaveTextContent("Clientele version 0.1.0");
    expect(screen.getByTestId("keep-in-tray")).toBeChecked();
    expect(screen.getByTestId("start-at-login")).not.toBeChecked();
  });

  it("shows the listener's error when it isn't receiving", async () => {
    backend.getSettings.mockResolvedValue(
      settings({ listener: { running: false, address: null, error: "Port 8787 is used by another program." } }),
    );
    render(Settings);
    const status = await screen.findByTestId("listener-status");
    expect(status).toHaveTextContent("Not receiving messages.");
    expect(status).toHaveTextContent("Port 8787 is used by another program.");
  });

  it("asks for confirmation, explaining the risk, before letting other computers send", async () => {
    const user = userEvent.setup();
    backend.getSettings.mockResolvedValue(settings());
    backend.updateSettings.mockResolvedValue(settings({ allow_network: true }));
    render(Settings);
    const toggle = await screen.findByTestId("allow-network");
    await user.click(toggle);

    const dialog = screen.getByTestId("network-confirm");
    expect(dialog).toHaveTextContent("any computer on the same network");
    expect(dialog).toHaveTextContent("still refused");
    expect(backend.updateSettings).not.toHaveBeenCalled();
    expect(toggle).not.toBeChecked();

    await user.click(screen.getByTestId("cancel-network"));
    expect(screen.queryByTestId("network-confirm")).not.toBeInTheDocument();
    expect(backend.updateSettings).not.toHaveBeenCalled();
    expect(toggle).not.toBeChecked();

    await user.click(toggle);
    await user.click(screen.getByTestId("confirm-network"));
    expect(backend.updateSettings).toHaveBeenCalledWith({
      port: 8787,
      allow_network: true,
      start_at_login: false,
      keep_in_tray: true,
    });
    await waitFor(() => expect(screen.getByTestId("allow-network")).toBeChecked());
  });

  it("turns network listening off without a dialog", async () => {
    const user = userEvent.setup();
    backend.getSettings.mockResolvedValue(settings({ allow_network: true }));
    backend.updateSettings.mockResolvedValue(settings({ allow_network: false }));
    render(Settings);
    await user.click(await screen.findByTestId("allow-network"));
    expect(screen.queryByTestId("network-confirm")).not.toBeInTheDocument();
    expect(backend.updateSettings).toHaveBeenCalledWith(expect.objectContaining({ allow_network: false }));
  });

  it("saves start at login, and shows the engine's message if saving fails", async () => {
    const user = userEvent.setup();
    backend.getSettings.mockResolvedValue(settings());
    backend.updateSettings.mockRejectedValue({ code: "internal", message: "Couldn't add Clientele to your startup programs." });
    render(Settings);
    await user.click(await screen.findByTestId("start-at-login"));
    expect(backend.updateSettings).toHaveBeenCalledWith(expect.objectContaining({ start_at_login: true }));
    expect(await screen.findByTestId("settings-error")).toHaveTextContent(
      "Couldn't add Clientele to your startup programs.",
    );
    expect(screen.getByTestId("start-at-login")).not.toBeChecked();
  });

  it("checks the port before saving it", async () => {
    const user = userEvent.setup();
    backend.getSettings.mockResolvedValue(settings());
    backend.updateSettings.mockResolvedValue(settings({ port: 9000 }));
    render(Settings);
    const port = await screen.findByTestId("port-input");
    await user.clear(port);
    await user.type(port, "80");
    await user.click(screen.getByTestId("save-port"));
    expect(screen.getByText("Choose a whole number from 1024 to 65535.")).toBeInTheDocument();
    expect(backend.updateSettings).not.toHaveBeenCalled();
    await user.clear(port);
    await user.type(port, "9000");
    await user.click(screen.getByTestId("save-port"));
    expect(backend.updateSettings).toHaveBeenCalledWith(expect.objectContaining({ port: 9000 }));
  });

  it("shows an error state with Copy details", async () => {
    backend.getSettings.mockRejectedValue({ code: "no_backend", message: "Clientele's engine isn't running." });
    render(Settings);
    expect(await screen.findByText("Couldn't show the settings")).toBeInTheDocument();
    expect(screen.getByTestId("copy-details")).toBeInTheDocument();
  });

  it("has a Receive from the internet section after Receiving messages", async () => {
    backend.getSettings.mockResolvedValue(settings());
    render(Settings);
    const section = await screen.findByTestId("relay-section");
    expect(section).toHaveTextContent("Receive from the internet");
    expect(await screen.findByTestId("relay-join-form")).toBeInTheDocument();
    const headings = screen.getAllByRole("heading", { level: 2 }).map((h) => h.textContent);
    expect(headings.slice(0, 3)).toEqual(["Receiving messages", "Receive from the internet", "Your data"]);
  });

  it("shows the relay's state when this computer is joined", async () => {
    backend.getSettings.mockResolvedValue(settings());
    backend.getRelayStatus.mockResolvedValue(relayStatus());
    render(Settings);
    expect(await screen.findByTestId("relay-status")).toHaveTextContent("Connected to relay.example.com");
  });
});
